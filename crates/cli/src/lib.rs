//! The `scratchnet` command line.
//!
//! - `train`: trains a catalogue model on CIFAR-10 with its article's recipe.
//! - `eval`: accuracy of saved weights on `test_batch`.
//! - `summary`: Keras' `model.summary()` table.
//! - `bench`: training-step throughput on random data, with a per-layer time breakdown.
//! - `plot`: learning curves of one or several runs.
//! - `predict`: the top classes of PNG or JPEG images.
//! - `models`: the catalogue.

mod bench;
mod curves;
mod data_dir;
mod device;
mod eval;
mod interrupt;
mod models_list;
mod monitor;
mod output;
mod overrides;
mod pipeline;
mod plot;
mod predict;
mod report;
mod run_dir;
mod summary;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use device::DeviceFlag;
pub use train::{train, TrainArgs, TrainOutcome};

#[derive(Parser)]
#[command(
    name = "scratchnet",
    version,
    about = "Train classic CNNs on CIFAR-10 with hand-written kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the article's recipe by default; flags override parts of it).
    Train(TrainArgs),
    /// Evaluate saved weights on the test batch: loss, accuracy, per-class accuracy and the
    /// confusion matrix.
    Eval(eval::EvalArgs),
    /// Classify PNG or JPEG images with saved weights (top classes with probabilities).
    Predict(predict::PredictArgs),
    /// List every catalogue model: parameters, forward MFLOP, article, reported accuracy and
    /// default recipe.
    Models(models_list::ModelsArgs),
    /// Print the Keras-style summary table of a model.
    Summary {
        /// Model name (`scratchnet models` lists them).
        #[arg(long)]
        model: String,
    },
    /// Time training steps on random data and print `train images/s: N` last.
    Bench(bench::BenchArgs),
    /// Draw the learning curves of one or several runs (curves.svg and curves.png).
    Plot(plot::PlotArgs),
}

/// Runs the command line; errors print as one `error:` line and exit with status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_display_probe();
    keep_freed_memory();
    let result = match cli.command {
        Command::Train(args) => {
            output::set_mode(args.json, args.quiet);
            let outcome = train(&args);
            match outcome {
                // Stopped by Ctrl-C or SIGTERM, after writing a checkpoint: the status a shell
                // reports for that signal.
                Ok(TrainOutcome {
                    interrupted: Some(sig),
                    ..
                }) => return ExitCode::from(sig.exit_status()),
                other => other.map(|_| ()),
            }
        }
        Command::Eval(args) => {
            output::set_mode(args.json, args.quiet);
            eval::eval(&args)
        }
        Command::Models(args) => models_list::list(&args),
        Command::Predict(args) => {
            output::set_mode(args.json, false);
            predict::predict(&args)
        }
        Command::Summary { model } => summary::summary(&model),
        Command::Bench(args) => {
            output::set_mode(args.json, args.quiet);
            bench::bench(&args)
        }
        Command::Plot(args) => plot::plot(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if output::mode() == output::Mode::Json {
                // A consumer reading stdout learns how the command ended, too.
                let end = serde_json::json!({
                    "event": "end",
                    "status": "error",
                    "message": format!("{e:#}"),
                });
                let _ = output::json(&end);
            }
            ExitCode::FAILURE
        }
    }
}

/// A training step allocates and frees the same few-MB tensors every step. glibc's malloc
/// hands blocks over its (adaptive) mmap threshold back to the kernel when they are freed and
/// trims the heap's free top beyond 128 KB, so the next step takes fresh pages: a page fault
/// and a cleared page for every 4 KB of every activation (perf: 5-7% of a ResNet-20 step in
/// `clear_page_erms` and the fault path). Here blocks up to glibc's largest threshold (32 MB)
/// come from the heap, and up to 1 GB of freed heap is kept for the next step. The process's
/// memory stays at its peak, which a training run reaches every step anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's parameters; it is called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Listing GPU adapters makes Mesa's Vulkan drivers look for a Wayland display, and
/// libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice
/// when that variable is unset (as for root in a container). No display is needed here, so
/// the variable points at the temporary folder for this process (and its drivers) alone.
fn quiet_display_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Called first thing in `main`, before any thread exists.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}
