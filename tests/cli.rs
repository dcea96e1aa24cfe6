//! The command line end to end: each subcommand's output contract, and one clear error with a
//! non-zero exit for each kind of bad input. Uses a tiny synthetic data folder, so it runs
//! everywhere.

mod common;

use common::{s, scratchnet, text, tiny_cifar};

#[test]
fn summary_prints_keras_totals() {
    let o = scratchnet(&["summary", "--model", "keras6"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("Total params: 307,498"), "{out}");
    assert!(out.contains("Trainable params: 307,498"), "{out}");
    assert!(out.contains("Non-trainable params: 0"), "{out}");
}

#[test]
fn unknown_model_fails_clearly() {
    for cmd in ["summary", "bench"] {
        let o = scratchnet(&[cmd, "--model", "nope"]);
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert!(
            err.contains("unknown model `nope`") && err.contains("keras6"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
}

#[test]
fn train_eval_round_trip_and_weights_errors() {
    let data = tiny_cifar("roundtrip", 40);
    let run = data.join("run");
    let w = data.join("w.safetensors");
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
        "--max-steps",
        "3",
        "--save",
        s(&w),
        "--run-dir",
        s(&run),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.lines().next().unwrap().starts_with("device: cpu"),
        "{out}"
    );
    let epoch = out
        .lines()
        .find(|l| l.starts_with("Epoch 1/2"))
        .expect(&out);
    for key in ["loss:", "acc:", "val_loss:", "val_acc:", "img/s"] {
        assert!(epoch.contains(key), "{epoch}");
    }
    assert!(out.contains("stopped after 3 steps"), "{out}");
    assert!(w.is_file() && run.join("weights.safetensors").is_file());
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(
        history.starts_with("epoch,loss,acc,val_loss,val_acc"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(run.join("config.json").is_file());

    let o = scratchnet(&[
        "eval",
        "--model",
        "keras6",
        "--weights",
        s(&w),
        "--data",
        s(&data),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let acc = out
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .expect(&out);
    let acc: f32 = acc.parse().unwrap();
    assert!((0.0..=1.0).contains(&acc));

    // Weights of another model.
    let o = scratchnet(&[
        "eval",
        "--model",
        "keras6_v3",
        "--weights",
        s(&w),
        "--data",
        s(&data),
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("for model `keras6`") && err.contains("w.safetensors"),
        "{err}"
    );

    // A corrupt weights file.
    let bad = data.join("bad.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    bytes.truncate(100);
    std::fs::write(&bad, bytes).unwrap();
    let o = scratchnet(&[
        "eval",
        "--model",
        "keras6",
        "--weights",
        s(&bad),
        "--data",
        s(&data),
    ]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("bad.safetensors"),
        "{err}"
    );
}

/// Every part of a recipe can be overridden, and the printed recipe shows the override.
#[test]
fn flags_override_the_recipe() {
    let data = tiny_cifar("overrides", 24);
    let o = scratchnet(&[
        "train",
        "--model",
        "nin_bn",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-steps",
        "1",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--weight-decay",
        "0",
        "--preprocess",
        "unit",
        "--validation",
        "split",
        "--no-augment",
        "--run-dir",
        s(&data.join("run")),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let recipe = out.lines().find(|l| l.starts_with("recipe:")).expect(&out);
    for want in [
        "1 epochs",
        "batch 8",
        "Adam(lr=0.003",
        "weight decay 0,",
        "preprocess: pixels / 255",
        "validation on the last 10% of the training images",
        "augmentation: none",
    ] {
        assert!(recipe.contains(want), "{want} missing from: {recipe}");
    }
    assert!(
        out.contains("validation images from the last part"),
        "{out}"
    );
    let o = scratchnet(&["train", "--model", "keras6", "--optimizer", "lbfgs"]);
    assert!(!o.status.success());
}

#[test]
fn eval_needs_only_the_test_batch() {
    let data = tiny_cifar("testonly", 8);
    for f in 1..=5 {
        std::fs::remove_file(data.join(format!("data_batch_{f}.bin"))).unwrap();
    }
    let w = data.join("w.safetensors");
    let m = models::build("keras6", 1).unwrap();
    nn::checkpoint::save(&m, &w).unwrap();
    let o = scratchnet(&[
        "eval",
        "--model",
        "keras6",
        "--weights",
        s(&w),
        "--data",
        s(&data),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("accuracy: 0.") || l == "accuracy: 1.0000"),
        "{out}"
    );
}

#[test]
fn bad_data_fails_with_the_file_named() {
    // Missing folder.
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        "/nonexistent/cifar",
        "--epochs",
        "1",
    ]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("/nonexistent/cifar"),
        "{err}"
    );

    // Truncated batch file.
    let data = tiny_cifar("truncated", 4);
    let f = data.join("data_batch_2.bin");
    let len = std::fs::metadata(&f).unwrap().len();
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..len as usize - 100]).unwrap();
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--run-dir",
        s(&data.join("run")),
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("data_batch_2.bin") && err.contains("3073"),
        "{err}"
    );

    // A missing batch among the five.
    let data = tiny_cifar("missing", 4);
    std::fs::remove_file(data.join("data_batch_4.bin")).unwrap();
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--run-dir",
        s(&data.join("run")),
    ]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("data_batch_4.bin"),
        "{err}"
    );
}

#[test]
fn bench_ends_with_images_per_second() {
    let o = scratchnet(&[
        "bench",
        "--model",
        "keras6",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--warmup",
        "1",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let last = out.lines().last().unwrap();
    let rate: f64 = last
        .strip_prefix("train images/s: ")
        .expect(last)
        .parse()
        .unwrap();
    assert!(rate > 0.0);
    // keras6's second convolution runs fused with the pool after it; its third alone.
    assert!(
        out.contains("conv2d_1 + max_pooling2d (fused)") && out.contains("conv2d_2 (Conv2D)"),
        "per-layer table missing: {out}"
    );
}

/// `--init-weights` with Keras' VGG16 notop tensor names (as the README's export writes them):
/// the imported kernels are the ones training starts from, and a bad file is one clear error.
#[test]
fn vgg16_imports_keras_weights() {
    use safetensors::tensor::{Dtype, TensorView};
    let data = tiny_cifar("vgg", 4);
    // Keras' layer names and HWIO shapes; every value encodes its tensor's index.
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut c_in = 3;
    for (block, (filters, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for conv in 1..=convs {
            let name = format!("block{}_conv{conv}", block + 1);
            let k = tensors.len() as f32 * 1e-3;
            let kernel: Vec<u8> = (0..9 * c_in * filters)
                .flat_map(|_| k.to_le_bytes())
                .collect();
            tensors.push((format!("{name}.kernel"), vec![3, 3, c_in, filters], kernel));
            tensors.push((format!("{name}.bias"), vec![filters], vec![0; 4 * filters]));
            c_in = filters;
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let file = data.join("vgg16_notop.safetensors");
    std::fs::write(&file, safetensors::serialize(views, None).unwrap()).unwrap();

    let o = scratchnet(&[
        "train",
        "--model",
        "vgg16_finetune",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--max-steps",
        "1",
        "--init-weights",
        s(&file),
        "--run-dir",
        s(&data.join("run")),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("26 tensors imported"), "{out}");
    // block1_conv1 is frozen, so after a step it still holds the imported values.
    let mut m = models::build("vgg16_finetune", 0).unwrap();
    nn::checkpoint::load(&mut m, &data.join("run/weights.safetensors")).unwrap();
    let first = m.store.iter().next().unwrap().1;
    assert_eq!(first.name, "conv2d.kernel");
    assert!(
        first.value.as_slice().iter().all(|&v| v == 0.0),
        "block1_conv1 is tensor 0"
    );
    let third = m.store.iter().nth(2).unwrap().1;
    assert!(
        third.value.as_slice().iter().all(|&v| v == 2e-3),
        "block1_conv2 is tensor 2"
    );

    // A file of another kind entirely.
    let bad = data.join("bad.h5");
    std::fs::write(&bad, b"\x89HDF\r\n\x1a\n not really").unwrap();
    let o = scratchnet(&[
        "train",
        "--model",
        "vgg16_finetune",
        "--data",
        s(&data),
        "--init-weights",
        s(&bad),
    ]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("bad.h5") && err.contains("README"),
        "{err}"
    );
}

/// `--device gpu` trains on the GPU (lavapipe in CI), names the adapter on the first line, and
/// its weights evaluate to the same accuracy on the GPU and on the CPU.
#[cfg(feature = "gpu")]
#[test]
fn train_and_eval_on_the_gpu() {
    if let Err(e) = gpu::GpuContext::new() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set, so the GPU tests must run, but: {e}"
        );
        eprintln!("skipped: {e}");
        return;
    }
    let data = tiny_cifar("gpu", 8);
    let weights = data.join("w.safetensors");
    let out = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "gpu",
        "--save",
        s(&weights),
        "--run-dir",
        s(&data.join("run")),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("device: gpu: "), "{first}");
    assert!(stdout.contains("Epoch 1/1"), "{stdout}");
    let accuracy = |device: &str| {
        let out = scratchnet(&[
            "eval",
            "--model",
            "keras6",
            "--weights",
            s(&weights),
            "--data",
            s(&data),
            "--device",
            device,
        ]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("accuracy: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("no accuracy line in {stdout}"))
    };
    assert_eq!(accuracy("gpu"), accuracy("cpu"));
}

/// A build without the `gpu` feature: `--device gpu` is one clear error line, and `--device
/// auto` (the default) trains on the CPU.
#[cfg(not(feature = "gpu"))]
#[test]
fn gpu_flag_in_a_cpu_only_build() {
    let data = tiny_cifar("cpu-only", 8);
    let train = |device: &str| {
        scratchnet(&[
            "train",
            "--model",
            "keras6",
            "--data",
            s(&data),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-steps",
            "1",
            "--device",
            device,
            "--run-dir",
            s(&data.join(device)),
        ])
    };
    let o = train("gpu");
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("--device gpu") && err.contains("without the `gpu` feature"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    let o = train("auto");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.lines()
            .next()
            .unwrap_or_default()
            .starts_with("device: cpu"),
        "{out}"
    );
}
