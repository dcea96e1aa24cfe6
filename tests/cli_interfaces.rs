//! The everyday commands end to end: `predict`, `eval`'s per-class table and confusion
//! matrix, `models`, machine-readable (`--json`) and quiet output, `--threads`, the default
//! data folder, and bad numbers on the command line.

mod common;

use std::path::Path;

use common::{s, scratchnet, temp_dir, text, tiny_cifar, Scratch};

/// Writes a PNG of `w x h` pixels with `channels` (1 gray, 3 RGB, 4 RGBA) from `pixel(x, y)`.
fn write_png(path: &Path, w: u32, h: u32, channels: usize, pixel: impl Fn(u32, u32) -> Vec<u8>) {
    let colour = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    };
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| pixel(x, y))
            .collect();
        wr.write_image_data(&data).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON value ({e}):\n{out}"))
}

/// A folder whose test batch is the first image of `data`'s, labelled `label`.
fn one_image_test(data: &Path, name: &str) -> (Scratch, Vec<u8>, u8) {
    let bytes = std::fs::read(data.join("test_batch.bin")).unwrap();
    let record = bytes[..3073].to_vec();
    let d = temp_dir(name);
    std::fs::write(d.join("test_batch.bin"), &record).unwrap();
    (d, record[1..].to_vec(), record[0])
}

/// Weights saved for keras6 by a short training run, so predictions are not all one class.
fn trained_weights(data: &Path) -> std::path::PathBuf {
    let run = data.join("run");
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(data),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--quiet",
        "--run-dir",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    run.join("weights.safetensors")
}

#[test]
fn predict_agrees_with_eval_and_reads_any_png() {
    let data = tiny_cifar("predict", 16);
    let w = trained_weights(&data);
    // The first test image as a PNG (the binary batch stores R, G and B planes).
    let (one, planes, label) = one_image_test(&data, "predict-one");
    let png = one.join("test0.png");
    write_png(&png, 32, 32, 3, |x, y| {
        let i = (y * 32 + x) as usize;
        vec![planes[i], planes[1024 + i], planes[2048 + i]]
    });
    let o = scratchnet(&[
        "eval",
        "--weights",
        s(&w),
        "--data",
        s(&one),
        "--device",
        "cpu",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v = json_of(&out);
    let row = &v["confusion"][label as usize];
    let eval_class = (0..10).find(|&c| row[c] == 1).expect("one prediction");

    let o = scratchnet(&[
        "predict",
        "--weights",
        s(&w),
        s(&png),
        "--top",
        "2",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v = json_of(&out);
    let top = &v[0]["top"];
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(
        top[0]["class"], eval_class,
        "predict and eval disagree: {out}"
    );
    let (p0, p1) = (
        top[0]["probability"].as_f64().unwrap(),
        top[1]["probability"].as_f64().unwrap(),
    );
    assert!(p0 >= p1 && p0 <= 1.0 && p1 >= 0.0);

    // Grayscale, transparent and odd-sized images are read too; the text output names the
    // classes.
    let gray = one.join("gray.png");
    write_png(&gray, 50, 37, 1, |x, y| vec![((x * 5 + y) % 256) as u8]);
    let rgba = one.join("alpha.png");
    write_png(&rgba, 64, 64, 4, |x, y| {
        vec![x as u8 * 4, y as u8 * 4, 90, (x * 4) as u8]
    });
    let o = scratchnet(&[
        "predict",
        "--weights",
        s(&w),
        s(&gray),
        s(&rgba),
        "--top",
        "3",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(".png: ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0].matches(", ").count(), 2, "three classes: {out}");
    assert!(
        data::CLASS_NAMES.iter().any(|c| lines[1].contains(c)),
        "{out}"
    );

    // Not an image: one clear error naming the file.
    let not_image = one.join("notes.png");
    std::fs::write(&not_image, b"this is text").unwrap();
    let o = scratchnet(&["predict", "--weights", s(&w), s(&not_image)]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("notes.png") && err.contains("not an image"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn eval_reports_classes_and_a_consistent_confusion_matrix() {
    let data = tiny_cifar("evalfull", 30);
    let w = trained_weights(&data);
    // --model comes from the weights file.
    let o = scratchnet(&[
        "eval",
        "--weights",
        s(&w),
        "--data",
        s(&data),
        "--device",
        "cpu",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let acc: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .unwrap()
        .parse()
        .unwrap();
    for name in data::CLASS_NAMES {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{out}"
        );
    }
    assert!(out.contains("confusion matrix (rows: true class"), "{out}");

    let o = scratchnet(&[
        "eval",
        "--weights",
        s(&w),
        "--data",
        s(&data),
        "--device",
        "cpu",
        "--json",
    ]);
    let (out, _) = text(&o);
    let v = json_of(&out);
    assert_eq!(v["images"], 30);
    let m = v["confusion"].as_array().unwrap();
    let diagonal: u64 = (0..10).map(|c| m[c][c].as_u64().unwrap()).sum();
    let total: u64 = m
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);
    assert_eq!(
        format!("{:.4}", diagonal as f64 / 30.0),
        format!("{acc:.4}")
    );
    assert_eq!(v["per_class"].as_array().unwrap().len(), 10);
    assert_eq!(v["per_class"][3]["name"], "cat");
    for key in ["loss", "accuracy", "images", "per_class"] {
        assert!(!v[key].is_null(), "{key} missing");
    }

    let o = scratchnet(&[
        "eval",
        "--weights",
        s(&w),
        "--data",
        s(&data),
        "--device",
        "cpu",
        "--quiet",
    ]);
    let (out, _) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("loss: ") && lines[1].starts_with("accuracy: "));
}

#[test]
fn models_lists_the_catalogue() {
    let o = scratchnet(&["models"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    let keras6 = out.lines().find(|l| l.starts_with("keras6 ")).expect(&out);
    assert!(
        keras6.contains("307,498") && keras6.contains("77.3"),
        "{keras6}"
    );
    let o = scratchnet(&["models", "--json"]);
    let v = json_of(&text(&o).0);
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 26);
    let r20 = all.iter().find(|m| m["name"] == "resnet20").unwrap();
    assert_eq!(r20["parameters"], 271_786);
    assert!(r20["recipe"]
        .as_str()
        .unwrap()
        .contains("SGD (momentum 0.9)"));

    let o = scratchnet(&["summary", "--model", "kears6"]);
    let (_, err) = text(&o);
    assert!(
        err.contains("did you mean `keras6`?") && err.contains("scratchnet models"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn train_json_and_quiet_output() {
    let data = tiny_cifar("trainjson", 8);
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--json",
        "--run-dir",
        s(&data.join("run-json")),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let events: Vec<serde_json::Value> = out.lines().map(json_of).collect();
    assert_eq!(events.len(), 3, "two epochs and the end:\n{out}");
    assert_eq!(events[0]["event"], "epoch");
    assert_eq!(events[1]["epoch"], 2);
    for key in [
        "loss",
        "acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "images_per_sec",
    ] {
        assert!(events[1][key].is_number(), "{key}: {}", events[1]);
    }
    assert_eq!(events[2]["event"], "end");
    assert_eq!(events[2]["status"], "completed");
    assert_eq!(events[2]["epochs_done"], 2);
    assert!(
        err.contains("device: cpu"),
        "the informational lines go to stderr: {err}"
    );

    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--quiet",
        "--threads",
        "1",
        "--run-dir",
        s(&data.join("run-quiet")),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("epoch 1: loss "), "{out}");
}

#[test]
fn threads_and_the_default_data_folder() {
    let data = tiny_cifar("datafolder", 8);
    // SCRATCHNET_DATA is the default folder for train and eval alike, and each says so.
    let run = data.join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args([
            "train",
            "--model",
            "keras6",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--threads",
            "1",
        ])
        .args(["--device", "cpu", "--run-dir", s(&run)])
        .env("SCRATCHNET_DATA", &*data)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("device: cpu (1 thread,"), "{out}");
    assert!(out.contains(&format!("data: {}", data.display())), "{out}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args([
            "eval",
            "--weights",
            s(&run.join("weights.safetensors")),
            "--device",
            "cpu",
        ])
        .args(["--threads", "2"])
        .env("SCRATCHNET_DATA", &*data)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("device: cpu (2 threads,"), "{out}");
    assert!(out.contains(&format!("data: {}", data.display())), "{out}");
}

#[test]
fn bad_numbers_are_clear_errors_or_clamped() {
    let data = tiny_cifar("badnumbers", 8);
    let base = [
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--device",
        "cpu",
    ];
    for (flag, value, want) in [
        ("--epochs", "0", "--epochs must be at least 1"),
        ("--max-steps", "0", "--max-steps must be at least 1"),
        ("--threads", "0", "--threads must be at least 1"),
        ("--lr", "0", "--lr must be a positive number"),
    ] {
        let run = data.join(format!("run{flag}"));
        let mut a = base.to_vec();
        a.extend([flag, value, "--run-dir", s(&run)]);
        let o = scratchnet(&a);
        let (_, err) = text(&o);
        assert!(
            !o.status.success() && err.contains(want),
            "{flag} {value}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A batch larger than the data set is clamped, with a note (40 training images here).
    let mut a = base.to_vec();
    a.extend(["--batch-size", "1000000000", "--epochs", "1", "--run-dir"]);
    let run = data.join("run-huge");
    a.push(s(&run));
    let o = scratchnet(&a);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("using batches of 40"), "{out}");
    let o = scratchnet(&[
        "eval",
        "--weights",
        s(&run.join("weights.safetensors")),
        "--data",
        s(&data),
        "--batch-size",
        "4611686018427387904",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = scratchnet(&[
        "bench",
        "--model",
        "keras6",
        "--batch-size",
        "4611686018427387904",
    ]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("larger than bench allows"),
        "{err}"
    );
}

#[test]
fn a_frozen_base_without_init_weights_is_pointed_out() {
    let dir = temp_dir("frozen-note");
    let missing = dir.join("no-data");
    let run = dir.join("run");
    let args = [
        "train",
        "--model",
        "vgg16_finetune",
        "--device",
        "cpu",
        "--data",
        s(&missing),
        "--run-dir",
        s(&run),
    ];
    let (out, err) = text(&scratchnet(&args));
    let all = format!("{out}{err}");
    assert!(
        all.contains("freezes 7,635,264 parameters") && all.contains("without --init-weights"),
        "{all}"
    );
    // A model that trains every parameter gets no such note.
    let (out, err) = text(&scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--device",
        "cpu",
        "--data",
        s(&missing),
        "--run-dir",
        s(&run),
    ]));
    assert!(
        !format!("{out}{err}").contains("--init-weights"),
        "{out}{err}"
    );
}
