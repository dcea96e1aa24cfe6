//! `train`: the epoch loop, Keras-style output, and the run directory.
//!
//! Each run writes `config.json` (the recipe and flags it used), `history.csv` (one row per
//! epoch) and `weights.safetensors` (after every epoch, written atomically) into its run
//! directory, and `--save FILE` gets a copy of the final weights.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use data::augment::Mode;
use data::Dataset;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nn::optim::{Adam, Optimizer, Rmsprop, RmspropHyper, Sgd, SgdHyper};
use nn::schedule::Schedule;
use serde::Serialize;
use tensor::ops::AdamHyper;

use crate::device::DeviceFlag;
use crate::pipeline::{evaluate, Pipeline};

#[derive(Args, Debug, Clone, Serialize)]
pub struct TrainArgs {
    /// Model name from the catalogue (see `summary`).
    #[arg(long)]
    pub model: String,
    /// Folder with the CIFAR-10 batches. Without it, ./data is used, downloading the official
    /// archive there the first time.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Epochs (default: the recipe's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (default: the recipe's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// A constant learning rate instead of the recipe's schedule.
    #[arg(long)]
    pub lr: Option<f32>,
    /// L2 weight decay on every kernel (default: the recipe's).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Train without the recipe's augmentation (evaluation preprocessing still applies).
    #[arg(long)]
    pub no_augment: bool,
    /// Another optimiser than the recipe's (with Keras' defaults for its other settings).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerFlag>,
    /// Another pixel preprocessing than the recipe's.
    #[arg(long, value_enum)]
    pub preprocess: Option<PreprocessFlag>,
    /// Validate on the test batch, or on the last 10% of the training batches.
    #[arg(long, value_enum)]
    pub validation: Option<ValidationFlag>,
    /// Seed for initial weights, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the final weights here.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Stop after this many training steps in total (for smoke runs).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Start from these weights: a scratchnet weights file of the same model, or (for the VGG16
    /// models) Keras' ImageNet VGG16 notop weights exported to safetensors (see the README).
    #[arg(long)]
    pub init_weights: Option<PathBuf>,
    /// Where config.json, history.csv and the weights go (default: runs/<model>-<unix time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where the step runs: a hardware GPU if there is one (auto), the CPU kernels, or the
    /// first GPU adapter found, software ones included (gpu).
    #[arg(long, value_enum, default_value_t = DeviceFlag::Auto)]
    pub device: DeviceFlag,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
pub enum OptimizerFlag {
    Adam,
    Sgd,
    SgdNesterov,
    Rmsprop,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
pub enum PreprocessFlag {
    /// pixel / 255
    Unit,
    /// raw 0..255
    Raw,
    /// per-channel mean/std (NIN's constants)
    PerChannel,
    /// per-image standardisation
    PerImage,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
pub enum ValidationFlag {
    Test,
    Split,
}

/// One epoch's metrics, as printed and as written to history.csv.
#[derive(Clone, Debug, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f32,
    pub acc: f32,
    pub val_loss: f32,
    pub val_acc: f32,
    pub lr: f32,
    pub seconds: f32,
    pub images_per_sec: f32,
}

pub struct TrainOutcome {
    pub history: Vec<EpochRecord>,
    pub run_dir: PathBuf,
}

#[derive(Serialize)]
struct Config<'a> {
    model: &'a str,
    recipe: &'a models::Recipe,
    args: &'a TrainArgs,
    parameters: usize,
}

/// The recipe's optimiser at learning rate `lr`.
fn optimizer(o: &models::Optim, lr: f32) -> Box<dyn Optimizer> {
    match *o {
        models::Optim::Adam => Box::new(Adam::new(AdamHyper {
            lr,
            ..AdamHyper::default()
        })),
        models::Optim::Sgd { momentum, nesterov } => Box::new(Sgd::new(SgdHyper {
            lr,
            momentum,
            nesterov,
        })),
        models::Optim::Rmsprop { decay } => Box::new(Rmsprop::new(RmspropHyper {
            lr,
            decay,
            ..RmspropHyper::default()
        })),
    }
}

/// Replaces the parts of `recipe` that flags override.
fn apply_overrides(recipe: &mut models::Recipe, args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(e) = args.epochs {
        recipe.epochs = e;
    }
    if let Some(b) = args.batch_size {
        anyhow::ensure!(b > 0, "--batch-size must be at least 1");
        recipe.batch_size = b;
    }
    if let Some(lr) = args.lr {
        anyhow::ensure!(lr > 0.0 && lr.is_finite(), "--lr must be a positive number");
        recipe.schedule = Schedule::Constant(lr);
    }
    if let Some(wd) = args.weight_decay {
        anyhow::ensure!(
            wd >= 0.0 && wd.is_finite(),
            "--weight-decay must be 0 or more"
        );
        recipe.weight_decay = wd;
    }
    if args.no_augment {
        recipe.augment = models::Augmentation::default();
    }
    if let Some(o) = args.optimizer {
        recipe.optimizer = match o {
            OptimizerFlag::Adam => models::Optim::Adam,
            OptimizerFlag::Sgd => models::Optim::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            OptimizerFlag::SgdNesterov => models::Optim::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            OptimizerFlag::Rmsprop => models::Optim::Rmsprop { decay: 0.0 },
        };
    }
    if let Some(p) = args.preprocess {
        recipe.preprocess = match p {
            PreprocessFlag::Unit => models::Preprocess::Unit,
            PreprocessFlag::Raw => models::Preprocess::Raw,
            PreprocessFlag::PerChannel => models::Preprocess::PerChannel {
                mean: data::augment::NIN_MEAN,
                std: data::augment::NIN_STD,
            },
            PreprocessFlag::PerImage => models::Preprocess::PerImage,
        };
    }
    if let Some(v) = args.validation {
        recipe.validation = match v {
            ValidationFlag::Test => models::Validation::TestSet,
            ValidationFlag::Split => models::Validation::SplitLast(0.1),
        };
    }
    Ok(())
}

/// The training, validation and test sets the recipe asks for.
fn load_data(
    recipe: &models::Recipe,
    args: &TrainArgs,
) -> anyhow::Result<(Dataset, Dataset, Dataset)> {
    let data_dir = data::find_or_download(args.data.as_deref(), std::path::Path::new("data"))?;
    let all_train = data::load_train(&data_dir)?;
    let test_set = data::load_test(&data_dir)?;
    let (train_set, val_set, val_name) = match recipe.validation {
        models::Validation::TestSet => (all_train, test_set.clone(), "test_batch"),
        models::Validation::SplitLast(f) => {
            let (t, v) = data::split::split_last(&all_train, f);
            (t, v, "the last part of the training batches")
        }
    };
    anyhow::ensure!(
        !train_set.is_empty(),
        "no training images left in {}",
        data_dir.display()
    );
    println!(
        "data: {} ({} training images, {} validation images from {val_name})",
        data_dir.display(),
        train_set.len(),
        val_set.len()
    );
    Ok((train_set, val_set, test_set))
}

pub fn train(args: &TrainArgs) -> anyhow::Result<TrainOutcome> {
    let (device, line) = crate::device::select(args.device)?;
    println!("{line}");
    let mut model = models::build(&args.model, args.seed)?;
    let mut recipe = models::recipe(&args.model)?;
    apply_overrides(&mut recipe, args)?;
    if let Some(path) = &args.init_weights {
        if nn::checkpoint::is_native(path) {
            nn::checkpoint::load(&mut model, path)?;
            println!("initial weights: {}", path.display());
        } else if let Some(mapping) = models::import_mapping(&args.model) {
            let n = nn::checkpoint::import_mapped(&mut model, path, &mapping)?;
            println!(
                "initial weights: {n} tensors imported from {}",
                path.display()
            );
        } else {
            anyhow::bail!(
                "{} is not a scratchnet weights file, and model `{}` imports no other format",
                path.display(),
                args.model
            );
        }
    }
    model.to_device(&device)?;
    let mut opt = optimizer(&recipe.optimizer, recipe.schedule.lr(0, 0));
    println!(
        "model: {} ({} parameters, {} trainable, {:.1} MFLOP forward per image)",
        model.name(),
        nn::summary::thousands(model.store.total_count()),
        nn::summary::thousands(model.store.trainable_count()),
        model.forward_flops_per_example() as f64 / 1e6
    );
    println!(
        "recipe: {}; {} epochs, batch {}, {}, lr {}, weight decay {}, preprocess {:?}, augment {:?}, validation {:?}; expected: {}",
        recipe.source,
        recipe.epochs,
        recipe.batch_size,
        opt.describe(),
        recipe.schedule.describe(),
        recipe.weight_decay,
        recipe.preprocess,
        recipe.augment,
        recipe.validation,
        recipe.expected
    );

    let (train_set, val_set, test_set) = load_data(&recipe, args)?;

    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from("runs").join(format!("{}-{t}", args.model))
    });
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("creating run directory {}", run_dir.display()))?;
    let config = Config {
        model: &args.model,
        recipe: &recipe,
        args,
        parameters: model.store.total_count(),
    };
    std::fs::write(
        run_dir.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )
    .with_context(|| format!("writing {}", run_dir.join("config.json").display()))?;
    let history_path = run_dir.join("history.csv");
    let mut history_file = std::fs::File::create(&history_path)
        .with_context(|| format!("creating {}", history_path.display()))?;
    writeln!(
        history_file,
        "epoch,loss,acc,val_loss,val_acc,lr,seconds,images_per_sec"
    )?;
    println!("run directory: {}", run_dir.display());

    let bs = recipe.batch_size;
    let steps_per_epoch = train_set.len().div_ceil(bs);
    let mut pipe = Pipeline::new(&recipe, bs, args.seed);
    let mut history = Vec::new();
    let mut step: u64 = 0;
    let show_bar = std::io::stderr().is_terminal();

    for epoch in 0..recipe.epochs {
        let order = data::shuffled_indices(train_set.len(), args.seed, epoch as u64);
        let bar = if show_bar {
            let b = ProgressBar::with_draw_target(
                Some(steps_per_epoch as u64),
                ProgressDrawTarget::stderr(),
            );
            b.set_style(
                ProgressStyle::with_template("{pos}/{len} [{bar:30}] {elapsed} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        // Loss and accuracy are summed on the model's device and read every `read_every`
        // steps: each step on the CPU (free there), now and then on the GPU, where a read
        // waits for the queue to drain.
        let read_every = if device.is_gpu() { 20 } else { 1 };
        let mut metrics = nn::step::Metrics::new(&device)?;
        let mut read = |metrics: &mut nn::step::Metrics| -> anyhow::Result<()> {
            let s = metrics.take()?;
            loss_sum += s.loss as f64 * s.examples as f64;
            correct += s.correct;
            seen += s.examples;
            bar.set_message(format!(
                "loss: {:.4} - acc: {:.4}",
                loss_sum / seen.max(1) as f64,
                correct as f64 / seen.max(1) as f64
            ));
            Ok(())
        };
        for idx in order.chunks(bs) {
            if args.max_steps.is_some_and(|m| step >= m) {
                break;
            }
            opt.set_learning_rate(recipe.schedule.lr(epoch, step));
            let x = pipe.batch(&train_set, idx, Mode::Train, step)?;
            let seed = cpu::rng::pcg_hash((args.seed as u32) ^ cpu::rng::pcg_hash(step as u32));
            let labels = &pipe.labels[..idx.len()];
            let wd = recipe.weight_decay;
            nn::step::record_train_step(
                &mut model,
                opt.as_mut(),
                x,
                labels,
                seed,
                step,
                wd,
                &mut metrics,
            )?;
            step += 1;
            bar.inc(1);
            if step.is_multiple_of(read_every) {
                read(&mut metrics)?;
            }
        }
        read(&mut metrics)?;
        bar.finish_and_clear();
        let train_secs = start.elapsed().as_secs_f32();
        if seen == 0 {
            break;
        }
        let (val_loss, val_acc) = evaluate(&model, &val_set, &recipe, 500)?;
        let rec = EpochRecord {
            epoch: epoch + 1,
            loss: (loss_sum / seen as f64) as f32,
            acc: (correct as f64 / seen as f64) as f32,
            val_loss,
            val_acc,
            lr: opt.learning_rate(),
            seconds: start.elapsed().as_secs_f32(),
            images_per_sec: seen as f32 / train_secs,
        };
        println!(
            "Epoch {}/{} - {:.1}s - {:.0} img/s - loss: {:.4} - acc: {:.4} - val_loss: {:.4} - val_acc: {:.4} - lr: {}",
            rec.epoch, recipe.epochs, rec.seconds, rec.images_per_sec, rec.loss, rec.acc, rec.val_loss, rec.val_acc, rec.lr
        );
        writeln!(
            history_file,
            "{},{},{},{},{},{},{},{}",
            rec.epoch,
            rec.loss,
            rec.acc,
            rec.val_loss,
            rec.val_acc,
            rec.lr,
            rec.seconds,
            rec.images_per_sec
        )?;
        nn::checkpoint::save(&model, &run_dir.join("weights.safetensors"))?;
        history.push(rec);
        if args.max_steps.is_some_and(|m| step >= m) {
            println!("stopped after {step} steps (--max-steps)");
            break;
        }
    }

    if recipe.validation != models::Validation::TestSet && !history.is_empty() {
        let (loss, acc) = evaluate(&model, &test_set, &recipe, 500)?;
        println!(
            "test ({} images): loss {loss:.4}, accuracy {acc:.4}",
            test_set.len()
        );
    }
    if let Some(path) = &args.save {
        nn::checkpoint::save(&model, path)?;
        println!("saved weights to {}", path.display());
    }
    print_extremes(&history);
    Ok(TrainOutcome { history, run_dir })
}

/// The min / max of every metric over the run (burn's learner summary).
fn print_extremes(history: &[EpochRecord]) {
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
