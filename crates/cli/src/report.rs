//! What `train` prints at the end of a run: the min / max of every metric (burn's learner
//! summary) and where the run's files are, with the commands that use them.

use std::path::Path;

use crate::monitor::Monitor;
use crate::run_dir::{self, RunDir};
use crate::train::EpochRecord;

/// The min / max of every metric over the run, with the epoch of each.
pub fn print_extremes(history: &[EpochRecord]) {
    if history.is_empty() {
        return;
    }
    println!("| metric   | min      | epoch | max      | epoch |");
    println!("|----------|----------|-------|----------|-------|");
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
        println!(
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
pub fn print_files(run: &RunDir, monitor: &Monitor, model: &str, data_dir: &Path, epochs: usize) {
    let show = |name: &str| run.file(name).display().to_string();
    if run.file(run_dir::WEIGHTS).exists() {
        println!("weights:      {}", show(run_dir::WEIGHTS));
    }
    if run.file(run_dir::BEST).exists() {
        println!(
            "best weights: {} ({})",
            show(run_dir::BEST),
            monitor.describe_best()
        );
    }
    println!("history:      {}", show(run_dir::HISTORY));
    if run.file(run_dir::CURVES_SVG).exists() {
        println!(
            "curves:       {}, {}",
            show(run_dir::CURVES_SVG),
            show(run_dir::CURVES_PNG)
        );
    }
    if run.file(run_dir::CHECKPOINT).exists() {
        println!(
            "checkpoint:   {} (to train longer: `{} --epochs {}`)",
            show(run_dir::CHECKPOINT),
            resume_command(run.path()),
            epochs * 2
        );
    }
    if run.file(run_dir::BEST).exists() {
        println!(
            "evaluate the best weights: {} eval --model {model} --weights {} --data {}",
            exe(),
            quote(&show(run_dir::BEST)),
            quote(&data_dir.display().to_string())
        );
    }
}
