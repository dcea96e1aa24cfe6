//! What `train` prints at the end of a run: the min / max of every metric (burn's learner
//! summary) and where the run's files are, with the commands that use them.

use std::path::Path;

use serde_json::json;

use crate::monitor::Monitor;
use crate::output::{self, info, Mode};
use crate::run_dir::{self, RunDir};
use crate::train::{End, EpochRecord};

/// One epoch's line (Keras' format), or its JSON object with `--json`.
pub fn epoch(r: &EpochRecord, epochs: usize, improved: bool) -> anyhow::Result<()> {
    match output::mode() {
        Mode::Normal => println!(
            "Epoch {}/{epochs} - {:.1}s - {:.0} img/s - loss: {:.4} - acc: {:.4} - val_loss: {:.4} - val_acc: {:.4} - lr: {}{}",
            r.epoch,
            r.seconds,
            r.images_per_sec,
            r.loss,
            r.acc,
            r.val_loss,
            r.val_acc,
            r.lr,
            if improved { " - best" } else { "" }
        ),
        Mode::Json => output::json(&json!({
            "event": "epoch",
            "epoch": r.epoch,
            "epochs": epochs,
            "loss": r.loss,
            "acc": r.acc,
            "val_loss": r.val_loss,
            "val_acc": r.val_acc,
            "lr": r.lr,
            "seconds": r.seconds,
            "images_per_sec": r.images_per_sec,
            "best": improved,
        }))?,
        Mode::Quiet => {}
    }
    Ok(())
}

/// How a run ended, for its last lines.
pub struct Finish<'a> {
    pub end: End,
    pub run: &'a RunDir,
    pub history: &'a [EpochRecord],
    pub monitor: &'a Monitor,
    pub step: u64,
    pub model: &'a str,
    pub data_dir: &'a Path,
    pub epochs: usize,
    /// Loss and accuracy on the test set, for recipes that validate on a split.
    pub test: Option<(f32, f32)>,
}

/// The end of a run: the min/max table and where every file is (normal); one JSON object
/// (`--json`); one line (`--quiet`). An interrupted run ends with the command that resumes it.
pub fn finish(f: &Finish) -> anyhow::Result<()> {
    let status = match f.end {
        End::Trained => "completed",
        End::EarlyStopped => "early_stopped",
        End::AlreadyDone => "nothing_to_do",
        End::Interrupted(_) => "interrupted",
    };
    let resume = resume_command(f.run.path());
    let file = |name: &str| {
        let p = f.run.file(name);
        p.exists().then(|| p.display().to_string())
    };
    match output::mode() {
        Mode::Json => output::json(&json!({
            "event": "end",
            "status": status,
            "run_dir": f.run.path().display().to_string(),
            "epochs_done": f.history.len(),
            "steps": f.step,
            "last": f.history.last(),
            "monitor": f.monitor.metric.name(),
            "best_epoch": f.monitor.best.map(|b| b.0),
            "best_value": f.monitor.best.map(|b| b.1),
            "test_loss": f.test.map(|t| t.0),
            "test_accuracy": f.test.map(|t| t.1),
            "weights": file(run_dir::WEIGHTS),
            "best_weights": file(run_dir::BEST),
            "checkpoint": file(run_dir::CHECKPOINT),
            "history": file(run_dir::HISTORY),
            "curves": file(run_dir::CURVES_SVG),
            "resume_command": resume,
        })),
        Mode::Quiet => {
            if let End::Interrupted(_) = f.end {
                println!("resume with: {resume}");
            } else if let Some(r) = f.history.last() {
                println!(
                    "epoch {}: loss {:.4}, acc {:.4}, val_loss {:.4}, val_acc {:.4}; {}; run directory {}",
                    r.epoch,
                    r.loss,
                    r.acc,
                    r.val_loss,
                    r.val_acc,
                    f.monitor.describe_best(),
                    f.run.path().display()
                );
            }
            Ok(())
        }
        Mode::Normal => {
            if let End::Interrupted(_) = f.end {
                println!("resume with: {resume}");
            } else {
                print_extremes(f.history);
                print_files(f.run, f.monitor, f.model, f.data_dir, f.epochs, f.end);
            }
            Ok(())
        }
    }
}

/// The min / max of every metric over the run, with the epoch of each.
fn print_extremes(history: &[EpochRecord]) {
    if history.is_empty() {
        return;
    }
    info!("| metric   | min      | epoch | max      | epoch |");
    info!("|----------|----------|-------|----------|-------|");
    type Get = fn(&EpochRecord) -> f32;
    let metrics: [(&str, Get); 4] = [
        ("loss", |r| r.loss),
        ("acc", |r| r.acc),
        ("val_loss", |r| r.val_loss),
        ("val_acc", |r| r.val_acc),
    ];
    for (name, get) in metrics {
        let min = history
            .iter()
            .min_by(|a, b| get(a).total_cmp(&get(b)))
            .expect("non-empty");
        let max = history
            .iter()
            .max_by(|a, b| get(a).total_cmp(&get(b)))
            .expect("non-empty");
        info!(
            "| {name:<8} | {:<8.4} | {:<5} | {:<8.4} | {:<5} |",
            get(min),
            min.epoch,
            get(max),
            max.epoch
        );
    }
}

/// This program as the user invoked it (argv[0]), quoted for a POSIX shell where needed.
fn exe() -> String {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "scratchnet".to_string());
    quote(&exe)
}

fn quote(s: &str) -> String {
    if s.contains(|c: char| c.is_whitespace() || "'\"$\\`".contains(c)) {
        format!("'{}'", s.replace('\'', r"'\''"))
    } else {
        s.to_string()
    }
}

/// The command that continues the run in `run`, exactly as it can be typed.
pub fn resume_command(run: &Path) -> String {
    format!(
        "{} train --resume {}",
        exe(),
        quote(&run.display().to_string())
    )
}

/// Where everything is, and how to evaluate the best weights or continue the run.
fn print_files(
    run: &RunDir,
    monitor: &Monitor,
    model: &str,
    data_dir: &Path,
    epochs: usize,
    end: End,
) {
    let show = |name: &str| run.file(name).display().to_string();
    if run.file(run_dir::WEIGHTS).exists() {
        info!("weights:      {}", show(run_dir::WEIGHTS));
    }
    if run.file(run_dir::BEST).exists() {
        info!(
            "best weights: {} ({})",
            show(run_dir::BEST),
            monitor.describe_best()
        );
    }
    info!("history:      {}", show(run_dir::HISTORY));
    if run.file(run_dir::CURVES_SVG).exists() {
        info!(
            "curves:       {}, {}",
            show(run_dir::CURVES_SVG),
            show(run_dir::CURVES_PNG)
        );
    }
    if run.file(run_dir::CHECKPOINT).exists() {
        let longer = match end {
            End::EarlyStopped => "--patience N (larger)".to_string(),
            _ => format!("--epochs {}", epochs.saturating_mul(2)),
        };
        info!(
            "checkpoint:   {} (to train longer: `{} {longer}`)",
            show(run_dir::CHECKPOINT),
            resume_command(run.path())
        );
    }
    if run.file(run_dir::BEST).exists() {
        info!(
            "evaluate the best weights: {} eval --model {model} --weights {} --data {}",
            exe(),
            quote(&show(run_dir::BEST)),
            quote(&data_dir.display().to_string())
        );
    }
}
