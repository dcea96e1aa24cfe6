//! What a long training run must survive, end to end through the binary: a resumed run
//! computes exactly what an uninterrupted one does; Ctrl-C and SIGTERM stop it with a
//! checkpoint; `kill -9` and a full disk leave the last checkpoint intact and resumable; a run
//! directory is never overwritten; the best weights, early stopping and the curves.
//! Everything runs on tiny synthetic data, in seconds.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{s, scratchnet, temp_dir, text, tiny_cifar};
use safetensors::SafeTensors;

/// history.csv without the timing columns (`seconds`, `images_per_sec`).
fn history_without_timing(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("history.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

/// Every tensor of a safetensors file, by name, as raw bytes.
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect()
}

/// The metadata of a safetensors file.
fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let data = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&data).unwrap();
    meta.metadata().clone().unwrap_or_default()
}

fn train(args: &[&str]) -> (String, String) {
    let o = scratchnet(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}\n{out}\n{err}");
    (out, err)
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scratchnet")
}

/// Waits until `ready()` (polling), failing after a minute.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn history_rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("history.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// A run of 4 epochs, and a run of 2 epochs resumed to 4, give the same history (but for the
/// timing columns), the same final weights bit for bit, and the same optimiser state.
fn assert_resume_is_exact(model: &str, extra: &[&str]) {
    let data = tiny_cifar(&format!("exact-{model}"), 12);
    let (full, part) = (data.join("full"), data.join("part"));
    let run_for = |run: &Path, epochs: &str| {
        let mut a = vec![
            "train",
            "--model",
            model,
            "--data",
            s(&data),
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--epochs",
            epochs,
            "--run-dir",
            s(run),
        ];
        a.extend(extra);
        train(&a);
    };
    run_for(&full, "4");
    run_for(&part, "2");
    assert_eq!(history_rows(&part), 2);
    let (out, _) = train(&["train", "--resume", s(&part), "--epochs", "4"]);
    assert!(out.contains("resumed"), "{out}");

    assert_eq!(
        history_without_timing(&full),
        history_without_timing(&part),
        "{model}: history after resuming"
    );
    assert_eq!(history_rows(&part), 4);
    for file in [
        "weights.safetensors",
        "checkpoint.safetensors",
        "best.safetensors",
    ] {
        let (a, b) = (tensors(&full.join(file)), tensors(&part.join(file)));
        assert_eq!(a.len(), b.len(), "{model} {file}: tensor count");
        for (name, bytes) in &a {
            assert!(
                bytes == &b[name],
                "{model} {file}: `{name}` differs after resuming"
            );
        }
    }
    // The checkpoint carries the optimiser's buffers too.
    let ckpt = tensors(&part.join("checkpoint.safetensors"));
    assert!(
        ckpt.keys().any(|k| k.starts_with("optimizer.")),
        "{model}: no optimiser state in the checkpoint"
    );
}

#[test]
fn resume_is_exact_for_adam_with_dropout() {
    // keras6: Adam, dropout; validates on the test set.
    assert_resume_is_exact("keras6", &[]);
}

#[test]
fn resume_is_exact_for_sgd_momentum_batch_norm_and_augmentation() {
    // resnet20: SGD with momentum, L2, batch norm (moving statistics), pad-and-crop + flip,
    // a held-out split.
    assert_resume_is_exact("resnet20", &[]);
}

/// Ctrl-C (then SIGTERM) in the middle of a run: exit status 130 (143), a checkpoint, the
/// command that resumes; and that command finishes the run exactly as an uninterrupted one.
#[test]
fn ctrl_c_and_sigterm_stop_with_a_checkpoint_and_resume_exactly() {
    let data = tiny_cifar("signals", 40);
    let data_s = s(&data).to_string();
    let args = |run: &Path| -> Vec<String> {
        [
            "train",
            "--model",
            "keras6",
            "--data",
            &data_s,
            "--batch-size",
            "8",
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--run-dir",
            s(run),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let reference = data.join("reference");
    train(&refs(&args(&reference)));

    for (sig, status) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let run = data.join(format!("stopped-{sig}"));
        let child = spawn(&refs(&args(&run)));
        wait_for("the first epoch", || history_rows(&run) >= 1);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(status), "{out}\n{err}");
        assert!(run.join("checkpoint.safetensors").is_file());
        let resume = out
            .lines()
            .find_map(|l| l.strip_prefix("resume with: "))
            .unwrap_or_else(|| panic!("no resume command in:\n{out}"));
        // The printed command, run as printed.
        let words: Vec<&str> = resume.split_whitespace().collect();
        assert_eq!(words[0], env!("CARGO_BIN_EXE_scratchnet"), "{resume}");
        assert_eq!(&words[1..], ["train", "--resume", s(&run)], "{resume}");
        train(&words[1..]);
        assert_eq!(
            history_without_timing(&reference),
            history_without_timing(&run),
            "signal {sig}: history after resuming"
        );
        assert_eq!(
            tensors(&reference.join("weights.safetensors")),
            tensors(&run.join("weights.safetensors")),
            "signal {sig}: final weights after resuming"
        );
    }
}

/// A second Ctrl-C does not wait for the step to end: the process exits at once with 130,
/// without the message of a clean stop; the run directory stays resumable.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    let data = tiny_cifar("twice", 160);
    let run = data.join("run");
    // One batch of all 800 images per epoch keeps each step long (about a second: with 200
    // images the faster convolutions of late 2026 sometimes ended the step between the two
    // signals, and the run stopped cleanly); the signals go in the middle of the second
    // epoch's step, 20 ms apart (closer, two pending SIGINTs could merge into one).
    let child = spawn(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "800",
        "--epochs",
        "50",
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    wait_for("the first epoch", || history_rows(&run) >= 1);
    // Past the end of epoch 1 (curves, checks) and into epoch 2's one long step.
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}\n{err}");
    assert!(
        !out.contains("resume with"),
        "stopped cleanly instead:\n{out}"
    );
    // One epoch more than the checkpoint holds (however far the run got before the signals).
    let meta = metadata(&run.join("checkpoint.safetensors"));
    let training: serde_json::Value = serde_json::from_str(&meta["training"]).unwrap();
    let next = training["epochs_done"].as_u64().unwrap() + 1;
    let (out, _) = train(&["train", "--resume", s(&run), "--epochs", &next.to_string()]);
    assert!(out.contains(&format!("Epoch {next}/{next}")), "{out}");
}

/// `kill -9` in the middle of training: the last completed checkpoint is intact, a resume
/// removes the temporary file a killed write left, and the run finishes with one history row
/// per epoch.
#[test]
fn kill_9_leaves_the_last_checkpoint_resumable() {
    let data = tiny_cifar("kill9", 40);
    let run = data.join("run");
    let mut child = spawn(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "8",
        "--epochs",
        "100",
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    wait_for("two epochs", || history_rows(&run) >= 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = history_rows(&run);
    // What a kill during a checkpoint write leaves behind.
    let stale = run.join(".checkpoint.safetensors.99999-0.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();

    let epochs = (done + 2).to_string();
    let (out, _) = train(&["train", "--resume", s(&run), "--epochs", &epochs]);
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(out.contains("left by an interrupted write"), "{out}");
    let rows: Vec<usize> = history_without_timing(&run)[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows, (1..=done + 2).collect::<Vec<_>>());
    assert_eq!(metadata(&run.join("weights.safetensors"))["epoch"], epochs);
}

/// Mounts a tmpfs of `size` at `dir` for as long as the guard lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                s(dir),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), s(&self.0)])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A disk that fills up: one clear error; the previous checkpoint, a history that agrees
/// with it, no temporary file; and once there is room again, the run resumes and finishes.
#[test]
fn a_full_disk_ends_the_run_cleanly() {
    let data = tiny_cifar("fulldisk", 12);
    let mount = data.join("small-disk");
    // keras6 with Adam: the checkpoint is 3.7 MB, the weights and best weights 1.2 MB each,
    // so the first epoch fits in 8 MiB and the second epoch's checkpoint does not.
    let Some(disk) = Tmpfs::mount(&mount, "8m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root) to fill a disk");
        return;
    };
    let run = mount.join("run");
    let o = scratchnet(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "16",
        "--epochs",
        "4",
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("No space left on device") && errors[0].contains("--resume"),
        "{err}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let meta = metadata(&run.join("checkpoint.safetensors"));
    let training: serde_json::Value = serde_json::from_str(&meta["training"]).unwrap();
    let epochs_done = training["epochs_done"].as_u64().unwrap() as usize;
    assert!(epochs_done >= 1);
    assert_eq!(
        history_rows(&run),
        epochs_done,
        "history and checkpoint disagree"
    );

    disk.resize("64m");
    let (out, _) = train(&["train", "--resume", s(&run)]);
    assert!(out.contains("Epoch 4/4"), "{out}");
    assert_eq!(history_rows(&run), 4);
}

/// A run directory that holds a run is refused (naming --resume) and left untouched; a
/// resumed run refuses flags that contradict its recipe.
#[test]
fn a_run_is_never_overwritten_and_keeps_its_recipe() {
    let data = tiny_cifar("nooverwrite", 8);
    let run = data.join("run");
    let common = ["--data", s(&data), "--batch-size", "16", "--device", "cpu"];
    let mut args = vec![
        "train",
        "--model",
        "keras6",
        "--epochs",
        "1",
        "--run-dir",
        s(&run),
    ];
    args.extend(common);
    train(&args);
    let before: Vec<Vec<u8>> = ["config.json", "history.csv", "weights.safetensors"]
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    let o = scratchnet(&args);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("already holds a training run") && err.contains("--resume"),
        "{err}"
    );
    let after: Vec<Vec<u8>> = ["config.json", "history.csv", "weights.safetensors"]
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    assert!(before == after, "the existing run was changed");

    for (flag, value) in [
        ("--lr", "0.5"),
        ("--batch-size", "32"),
        ("--model", "resnet20"),
    ] {
        let o = scratchnet(&["train", "--resume", s(&run), flag, value]);
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert!(
            err.contains(&format!("{flag} {value} contradicts")),
            "{err}"
        );
    }
    let o = scratchnet(&["train", "--resume", s(&data)]);
    assert!(text(&o).1.contains("not a run directory"));
    // Done already: says how to extend, changes nothing.
    let (out, _) = train(&["train", "--resume", s(&run)]);
    assert!(out.contains("pass --epochs"), "{out}");
    assert_eq!(history_rows(&run), 1);
}

/// `--monitor val_loss --patience 1`: best.safetensors holds the best epoch (in its
/// metadata), the run stops one epoch after it, and the end of the run says where
/// everything is.
#[test]
fn best_weights_and_early_stopping() {
    let data = tiny_cifar("best", 16);
    let run = data.join("run");
    // Random labels and a large rate: the validation loss soon stops improving.
    let (out, _) = train(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "16",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--monitor",
        "val_loss",
        "--patience",
        "1",
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(out.contains("validates on the test set"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("early stopping at epoch"))
        .unwrap_or_else(|| panic!("no early stop in 30 epochs:\n{out}"));
    let history = history_without_timing(&run);
    let val_loss: Vec<f32> = history[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    let best = val_loss
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i + 1)
        .unwrap();
    assert_eq!(
        line,
        format!(
            "early stopping at epoch {} (best: epoch {best}, val_loss {:.4})",
            best + 1,
            val_loss[best - 1]
        )
    );
    assert_eq!(val_loss.len(), best + 1);
    let meta = metadata(&run.join("best.safetensors"));
    assert_eq!(meta["epoch"], best.to_string());
    assert_eq!(meta["monitor"], "val_loss");
    let eval_line = format!(
        "evaluate the best weights: {} eval --model keras6 --weights {}",
        env!("CARGO_BIN_EXE_scratchnet"),
        s(&run.join("best.safetensors"))
    );
    for want in ["best weights:", "history:", "curves:", &eval_line] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    // The best weights are a weights file like any other.
    let o = scratchnet(&[
        "eval",
        "--model",
        "keras6",
        "--weights",
        s(&run.join("best.safetensors")),
        "--data",
        s(&data),
        "--device",
        "cpu",
    ]);
    let (eval_out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let acc = eval_out
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .unwrap();
    let recorded: f32 = history[best].split(',').nth(4).unwrap().parse().unwrap();
    assert_eq!(acc, format!("{recorded:.4}"), "eval of best.safetensors");
}

/// Curves after every epoch, and `plot` of two runs on the same axes; bad input is an error.
#[test]
fn curves_are_drawn_and_runs_compared() {
    let data = tiny_cifar("curves", 8);
    let (a, b) = (data.join("run-a"), data.join("run-b"));
    for (run, lr) in [(&a, "0.001"), (&b, "0.003")] {
        train(&[
            "train",
            "--model",
            "keras6",
            "--data",
            s(&data),
            "--batch-size",
            "16",
            "--epochs",
            "2",
            "--lr",
            lr,
            "--device",
            "cpu",
            "--run-dir",
            s(run),
        ]);
        let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
        assert!(svg.contains("epoch") && svg.contains("validation"));
        let png = std::fs::read(run.join("curves.png")).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }
    let out_file = data.join("compare.png");
    let o = scratchnet(&["plot", s(&a), s(&b), "--out", s(&out_file)]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("run-a: 2 epochs") && out.contains("run-b: 2 epochs"),
        "{out}"
    );
    let svg = std::fs::read_to_string(data.join("compare.svg")).unwrap();
    assert!(svg.contains("run-a training") && svg.contains("run-b validation"));
    assert!(out_file.is_file());

    let o = scratchnet(&["plot", s(&temp_dir("curves-empty"))]);
    let (_, err) = text(&o);
    assert!(!o.status.success() && err.contains("history.csv"), "{err}");
    let o = scratchnet(&["plot", s(&a), "--out", s(&data.join("x.pdf"))]);
    assert!(text(&o).1.contains(".svg or .png"));
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A run killed before its first checkpoint starts over on --resume, from its
/// --init-weights; and --max-steps limits one session, not the resumed one.
#[test]
fn resume_starts_over_from_init_weights_and_drops_max_steps() {
    let data = tiny_cifar("initresume", 40);
    let init = data.join("init.safetensors");
    nn::checkpoint::save(&models::build("keras6", 9).unwrap(), &init).unwrap();
    let run = data.join("run");
    let mut child = spawn(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--init-weights",
        s(&init),
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    wait_for("the run to start", || run.join("history.csv").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !run.join("checkpoint.safetensors").exists(),
        "the first epoch ended before the kill: the test needs a slower epoch"
    );
    let (out, _) = train(&["train", "--resume", s(&run)]);
    assert!(out.contains("starting it from the beginning"), "{out}");
    assert!(
        out.contains(&format!("initial weights: {}", s(&init))),
        "{out}"
    );

    let run = data.join("smoke");
    let (out, _) = train(&[
        "train",
        "--model",
        "keras6",
        "--data",
        s(&data),
        "--batch-size",
        "100",
        "--epochs",
        "3",
        "--max-steps",
        "2",
        "--device",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(out.contains("stopped after 2 steps"), "{out}");
    let (out, _) = train(&["train", "--resume", s(&run)]);
    assert!(out.contains("Epoch 3/3"), "{out}");
    assert_eq!(history_rows(&run), 3);
}
