//! The `scratchnet` command line.
//!
//! - `train`: trains a catalogue model on CIFAR-10 with its article's recipe.
//! - `eval`: accuracy of saved weights on `test_batch`.
//! - `summary`: Keras' `model.summary()` table.
//! - `bench`: training-step throughput on random data, with a per-layer time breakdown.
//! - `plot`: learning curves of one or several runs.

mod bench;
mod curves;
mod device;
mod eval;
mod interrupt;
mod monitor;
mod overrides;
mod pipeline;
mod plot;
mod report;
mod run_dir;
mod summary;
mod train;

use std::path::PathBuf;
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
    /// Evaluate saved weights on DIR/test_batch and print `accuracy: 0.xxxx`.
    Eval {
        #[arg(long)]
        model: String,
        #[arg(long)]
        weights: PathBuf,
        /// Folder with test_batch.bin (or the python test_batch).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// auto (a hardware GPU if there is one), cpu, or gpu (any adapter, software included).
        #[arg(long, value_enum, default_value_t = device::DeviceFlag::Auto)]
        device: device::DeviceFlag,
    },
    /// Print the Keras-style summary table of a model.
    Summary {
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
    let result = match cli.command {
        Command::Train(args) => match train(&args) {
            // Stopped by Ctrl-C or SIGTERM, after writing a checkpoint: the status a shell
            // reports for that signal.
            Ok(TrainOutcome {
                interrupted: Some(sig),
                ..
            }) => return ExitCode::from(sig.exit_status()),
            other => other.map(|_| ()),
        },
        Command::Eval {
            model,
            weights,
            data,
            batch_size,
            device,
        } => eval::eval(&model, &weights, &data, batch_size, device),
        Command::Summary { model } => summary::summary(&model),
        Command::Bench(args) => bench::bench(&args),
        Command::Plot(args) => plot::plot(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
