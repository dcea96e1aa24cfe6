//! `train`: the epoch loop, Keras-style output, and what a long run needs to survive: resume,
//! durable checkpoints, the best weights, early stopping, learning curves, and a clean stop on
//! Ctrl-C or SIGTERM. What goes into the run directory, and in which order, is described in
//! `run_dir.rs`.
//!
//! Everything random in a run is a function of the seed and a counter (the data order of the
//! epoch, the augmentation and dropout masks of the global step), so a resumed run needs only
//! the epoch and step it stopped at, besides the weights and the optimiser's state: a run
//! stopped and resumed computes exactly what an uninterrupted one computes.

use crate::output::info;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use data::augment::Mode;
use data::Dataset;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nn::optim::Optimizer;
use serde::{Deserialize, Serialize};

use crate::curves;
use crate::device::DeviceFlag;
use crate::interrupt::{Interrupt, Signal};
use crate::monitor::{Metric, Monitor};
use crate::overrides::{apply_overrides, merge_resumed, optimizer};
use crate::pipeline::{evaluate, Pipeline};
use crate::run_dir::{self, RunDir};

const DEFAULT_SEED: u64 = 1;

#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
#[command(after_help = "Examples:
  scratchnet train --model keras6
  scratchnet train --model resnet20 --epochs 30 --patience 5 --run-dir runs/r20
  scratchnet train --resume runs/r20 --epochs 60")]
pub struct TrainArgs {
    /// Model name from the catalogue (see `summary`); not needed with --resume.
    #[arg(long, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Folder with the CIFAR-10 batches (never downloaded into). Default: $SCRATCHNET_DATA, else
    /// ~/.cache/scratchnet/cifar-10, downloading the official archive there the first time.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Epochs (default: the recipe's); with --resume, a larger number extends the run.
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
    /// Seed for initial weights, shuffling, augmentation and dropout [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the final weights here.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Stop after this many training steps in all (smoke runs); the epoch it ends in is
    /// recorded as it stands. Applies to this session only: --resume does not inherit it.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Start from these weights: a scratchnet weights file of the same model, or (for the VGG16
    /// models) Keras' ImageNet VGG16 notop weights exported to safetensors (see the README).
    #[arg(long)]
    pub init_weights: Option<PathBuf>,
    /// Where the run's files go (default: runs/MODEL-UNIXTIME); must not hold a run yet.
    #[arg(long, conflicts_with = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Where the step runs: a hardware GPU if there is one (auto), the CPU kernels, or the
    /// first GPU adapter found, software ones included (gpu) [default: auto].
    #[arg(long, value_enum)]
    pub device: Option<DeviceFlag>,
    /// The metric that picks best.safetensors and drives --patience [default: val_acc].
    #[arg(long, value_enum)]
    pub monitor: Option<Metric>,
    /// Stop after this many epochs without an improvement of the monitored metric.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Continue the run in this directory from its last checkpoint, with its model, recipe
    /// and flags (only --epochs, --patience, --data, --device, --save and --max-steps may
    /// change).
    #[arg(long, value_name = "RUN_DIR")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS; with --resume, the run's own).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object per epoch and a final one, and nothing else, on stdout.
    #[arg(long, conflicts_with = "quiet")]
    #[serde(skip)]
    pub json: bool,
    /// Print only the final result.
    #[arg(long)]
    #[serde(skip)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerFlag {
    Adam,
    Sgd,
    SgdNesterov,
    Rmsprop,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationFlag {
    Test,
    Split,
}

/// One epoch's metrics, as printed and as written to history.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Every epoch of the run, those of earlier sessions of a resumed run included.
    pub history: Vec<EpochRecord>,
    pub run_dir: PathBuf,
    /// The signal that stopped the run early (after a checkpoint was written).
    pub interrupted: Option<Signal>,
}

#[derive(Serialize, Deserialize)]
struct Config {
    model: String,
    recipe: models::Recipe,
    args: TrainArgs,
    parameters: usize,
}

/// Where a run stands: saved in every checkpoint (as JSON), so that `--resume` continues
/// exactly from there.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Epochs completed.
    epochs_done: usize,
    /// Training steps taken in all (the schedule's, augmentation's and dropout's counter).
    step: u64,
    /// The part of epoch `epochs_done + 1` done before an interruption.
    partial: Option<EpochSums>,
    /// The record of every completed epoch.
    history: Vec<EpochRecord>,
    monitor: Monitor,
}

/// Running sums over the steps of one epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct EpochSums {
    /// Batches of the epoch's order already trained on.
    batches: usize,
    loss_sum: f64,
    correct: usize,
    seen: usize,
    /// Seconds spent on them (training only, and the whole epoch so far).
    train_seconds: f64,
    seconds: f64,
}

impl EpochSums {
    fn add(&mut self, s: nn::step::BatchStats) {
        self.loss_sum += s.loss as f64 * s.examples as f64;
        self.correct += s.correct;
        self.seen += s.examples;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.seen.max(1) as f64
    }
    fn acc(&self) -> f64 {
        self.correct as f64 / self.seen.max(1) as f64
    }
}

/// The training, validation and test sets the recipe asks for.
fn load_data(
    recipe: &models::Recipe,
    args: &TrainArgs,
) -> anyhow::Result<(PathBuf, Dataset, Dataset, Dataset)> {
    let (data_dir, cifar) = crate::data_dir::load(args.data.as_deref())?;
    let (all_train, test_set) = (cifar.train, cifar.test);
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
    anyhow::ensure!(
        !val_set.is_empty(),
        "no validation images in {} ({val_name}): val_loss and val_acc would mean nothing",
        data_dir.display()
    );
    info!(
        "data: {} ({} training images, {} validation images from {val_name})",
        data_dir.display(),
        train_set.len(),
        val_set.len()
    );
    Ok((data_dir, train_set, val_set, test_set))
}

/// The flags of this run: those given, or for `--resume` those the run was started with
/// (merged with the ones that may change), with every default filled in.
fn resolve_args(given: &TrainArgs) -> anyhow::Result<(TrainArgs, Option<RunDir>)> {
    // Paths are stored absolute, so that --resume works from any folder.
    let mut given = given.clone();
    for p in [&mut given.data, &mut given.save, &mut given.init_weights]
        .into_iter()
        .flatten()
    {
        *p = std::path::absolute(&*p).unwrap_or_else(|_| p.clone());
    }
    let Some(dir) = &given.resume else {
        let mut args = given.clone();
        args.seed = Some(given.seed.unwrap_or(DEFAULT_SEED));
        args.device = Some(given.device.unwrap_or_default());
        args.monitor = Some(given.monitor.unwrap_or_default());
        return Ok((args, None));
    };
    let run = RunDir::open(dir)?;
    let config_path = run.file(run_dir::CONFIG);
    let config: Config = serde_json::from_str(&run.read_config()?)
        .with_context(|| format!("{} is damaged or not scratchnet's", config_path.display()))?;
    let args = merge_resumed(&config.args, &given, &config_path)?;
    if let (Some(now), Some(then)) = (given.threads, config.args.threads) {
        if now != then {
            info!(
                "note: this run was trained with {then} threads and continues with {now}: the weight-gradient sums are split by thread, so the results may differ in the last bits from an uninterrupted run"
            );
        }
    }
    Ok((args, Some(run)))
}

/// The default run directory, `runs/<model>-<unix time>` (with a suffix if that exists).
fn default_run_dir(model: &str) -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = PathBuf::from("runs").join(format!("{model}-{t}"));
    (1..)
        .map(|i| {
            if i == 1 {
                base.clone()
            } else {
                PathBuf::from(format!("{}-{i}", base.display()))
            }
        })
        .find(|p| !p.exists())
        .expect("an unused name")
}

/// Loads `--init-weights` into a new run's model.
fn init_weights(model: &mut nn::Sequential, path: &Path) -> anyhow::Result<()> {
    if nn::checkpoint::is_native(path) {
        nn::checkpoint::load(model, path)?;
        info!("initial weights: {}", path.display());
    } else if let Some(mapping) = models::import_mapping(model.name()) {
        let n = nn::checkpoint::import_mapped(model, path, &mapping)?;
        info!(
            "initial weights: {n} tensors imported from {}",
            path.display()
        );
    } else {
        anyhow::bail!(
            "{} is not a scratchnet weights file, and model `{}` imports no other format",
            path.display(),
            model.name()
        );
    }
    Ok(())
}

/// Trains one run, new or resumed: checks everything it can first, then loads the data, opens
/// the run directory, runs the epochs and reports. The steps are the functions below, in order.
pub fn train(given: &TrainArgs) -> anyhow::Result<TrainOutcome> {
    let (args, resumed_dir) = resolve_args(given)?;
    let model_name = args.model.clone().unwrap_or_default();
    // Everything that can be checked is checked before a device is touched or a file written.
    let mut model = models::build(&model_name, args.seed.unwrap_or(DEFAULT_SEED))?;
    let mut recipe = models::recipe(&model_name)?;
    apply_overrides(&mut recipe, &args)?;
    let metric = args.monitor.unwrap_or_default();
    crate::device::set_threads(args.threads)?;
    let new_run = match &resumed_dir {
        Some(_) => None,
        None => Some(new_run_path(&args, &model_name)?),
    };

    let device = place_model(&mut model, &args, resumed_dir.as_ref())?;
    let mut opt = optimizer(&recipe.optimizer, recipe.schedule.lr(0, 0));
    announce(&model, &recipe, opt.as_ref());
    let (data_dir, train_set, val_set, test_set) = load_data(&recipe, &args)?;
    clamp_batch(&mut recipe, train_set.len());
    // From here on, Ctrl-C and SIGTERM stop the run cleanly (before, they end it at once,
    // with nothing written yet).
    let interrupt = Interrupt::install()?;
    let config = Config {
        model: model_name.clone(),
        recipe: recipe.clone(),
        args: TrainArgs {
            // The count used, so that a resume uses it too (results depend on it in the
            // last bits).
            threads: Some(rayon::current_num_threads()),
            ..args.clone()
        },
        parameters: model.store.total_count(),
    };
    let (run, mut progress) = match (resumed_dir, new_run) {
        (Some(run), _) => {
            let progress = reopen_run(&run, &config, &mut model, opt.as_mut(), metric)?;
            (run, progress)
        }
        (None, Some(path)) => start_run(&path, &config, metric)?,
        (None, None) => unreachable!("a run is either resumed or new"),
    };
    if recipe.validation == models::Validation::TestSet {
        info!(
            "note: this recipe validates on the test set (as its article does), so best.safetensors is picked by test-set {}: an optimistic estimate of accuracy on new images (--validation split holds out training images instead)",
            metric.name()
        );
    }

    let ctx = RunCtx {
        args: &args,
        recipe: &recipe,
        run: &run,
        train_set: &train_set,
        val_set: &val_set,
        interrupt: &interrupt,
        device: &device,
    };
    let end = run_epochs(&ctx, &mut model, opt.as_mut(), &mut progress)?;
    let outcome = finish(&ctx, &model, progress, end, &test_set, &data_dir);
    // The host buffers this run kept for reuse go back to the allocator.
    tensor::buffer_cache::trim();
    outcome
}

/// The directory of a new run, refused at once if it already holds a run. It is created (and
/// locked) only once the data has loaded, so a run that fails to start leaves no empty folder.
fn new_run_path(args: &TrainArgs, model_name: &str) -> anyhow::Result<PathBuf> {
    let path = args
        .run_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(model_name));
    RunDir::refuse_existing(&path)?;
    Ok(path)
}

/// Opens the device and moves the model there, after loading `--init-weights` when the run
/// starts from the beginning (a resumed run starts from its checkpoint; one killed before its
/// first checkpoint starts again, --init-weights included).
fn place_model(
    model: &mut nn::Sequential,
    args: &TrainArgs,
    resumed_dir: Option<&RunDir>,
) -> anyhow::Result<tensor::Device> {
    let (device, line) = crate::device::select(args.device.unwrap_or_default())?;
    info!("{line}");
    let restart = resumed_dir.is_none_or(|r| !r.file(run_dir::CHECKPOINT).exists());
    if restart {
        match &args.init_weights {
            Some(path) => init_weights(model, path)?,
            None => {
                let frozen = model.store.total_count() - model.store.trainable_count();
                if frozen > 0 {
                    info!(
                        "note: {} freezes {} parameters that are meant to hold pretrained weights (docs/models.md); without --init-weights they keep their random initial values",
                        model.name(),
                        nn::summary::thousands(frozen)
                    );
                }
            }
        }
    }
    model.to_device(&device)?;
    Ok(device)
}

/// The model and recipe lines at the start of a run.
fn announce(model: &nn::Sequential, recipe: &models::Recipe, opt: &dyn Optimizer) {
    info!(
        "model: {} ({} parameters, {} trainable, {:.1} MFLOP forward per image)",
        model.name(),
        nn::summary::thousands(model.store.total_count()),
        nn::summary::thousands(model.store.trainable_count()),
        model.forward_flops_per_example() as f64 / 1e6
    );
    info!(
        "recipe: {}; {} epochs, batch {}, {}, {}, weight decay {}, preprocess: {}, augmentation: {}, validation {}; expected: {}",
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
}

/// A batch larger than the training set becomes the whole set (with a note).
fn clamp_batch(recipe: &mut models::Recipe, train_len: usize) {
    if recipe.batch_size > train_len {
        info!(
            "note: batch {} is larger than the {train_len} training images: using batches of {train_len}",
            recipe.batch_size
        );
        recipe.batch_size = train_len;
    }
}

/// Creates a new run's directory and writes its config and the history header.
fn start_run(path: &Path, config: &Config, metric: Metric) -> anyhow::Result<(RunDir, Progress)> {
    let run = RunDir::create(path)?;
    run.write_config(&serde_json::to_string_pretty(config)?)?;
    run.start_history()?;
    info!("run directory: {}", run.path().display());
    Ok((run, Progress::new(metric)))
}

/// Checks that a resumed run's recipe is the one it started with, restores the model and
/// optimiser from its checkpoint, and stores the flags given now for later resumes.
fn reopen_run(
    run: &RunDir,
    config: &Config,
    model: &mut nn::Sequential,
    opt: &mut dyn Optimizer,
    metric: Metric,
) -> anyhow::Result<Progress> {
    let stored: Config = serde_json::from_str(&run.read_config()?)?;
    let mut then = stored.recipe;
    then.epochs = config.recipe.epochs;
    anyhow::ensure!(
        then == config.recipe,
        "the recipe of `{}` differs from the one {} started with (this version of scratchnet trains it differently): resume with the version that started the run, or start a new run",
        config.model,
        run.path().display()
    );
    let progress = resume(run, model, opt, metric)?;
    // The flags that may change (--epochs, --patience, ...) are kept for later resumes.
    run.write_config(&serde_json::to_string_pretty(config)?)?;
    Ok(progress)
}

/// After the epochs: the test-set evaluation (when validation did not use it), `--save`, and
/// the end-of-run report.
fn finish(
    ctx: &RunCtx,
    model: &nn::Sequential,
    progress: Progress,
    end: End,
    test_set: &Dataset,
    data_dir: &Path,
) -> anyhow::Result<TrainOutcome> {
    let recipe = ctx.recipe;
    let mut test = None;
    if recipe.validation != models::Validation::TestSet && end == End::Trained {
        let (loss, acc) = evaluate(model, test_set, recipe, 500)?;
        info!(
            "test ({} images): loss {loss:.4}, accuracy {acc:.4}",
            test_set.len()
        );
        test = Some((loss, acc));
    }
    if let (Some(path), false) = (&ctx.args.save, matches!(end, End::Interrupted(_))) {
        nn::checkpoint::save(model, path)?;
        info!("saved weights to {}", path.display());
    }
    let model_name = ctx.args.model.clone().unwrap_or_default();
    crate::report::finish(&crate::report::Finish {
        end,
        run: ctx.run,
        history: &progress.history,
        monitor: &progress.monitor,
        step: progress.step,
        model: &model_name,
        data_dir,
        epochs: recipe.epochs,
        test,
    })?;
    Ok(TrainOutcome {
        history: progress.history,
        run_dir: ctx.run.path().to_path_buf(),
        interrupted: match end {
            End::Interrupted(sig) => Some(sig),
            _ => None,
        },
    })
}

impl Progress {
    fn new(metric: Metric) -> Self {
        Progress {
            monitor: Monitor::new(metric),
            ..Progress::default()
        }
    }
}

/// Loads the run's checkpoint into `model` and `opt`, brings history.csv in line with it, and
/// returns where the run stands.
fn resume(
    run: &RunDir,
    model: &mut nn::Sequential,
    opt: &mut dyn Optimizer,
    metric: Metric,
) -> anyhow::Result<Progress> {
    let path = run.file(run_dir::CHECKPOINT);
    if !path.exists() {
        info!(
            "{} has no checkpoint yet (the run stopped before its first epoch ended): starting it from the beginning",
            run.path().display()
        );
        run.reconcile_history(&[])?;
        return Ok(Progress::new(metric));
    }
    let json = nn::checkpoint::load_training(model, opt, &path)?;
    let progress: Progress = serde_json::from_str(&json)
        .with_context(|| format!("{}: the training state is damaged", path.display()))?;
    anyhow::ensure!(
        progress.monitor.metric == metric,
        "the run monitors {}, not {}",
        progress.monitor.metric.name(),
        metric.name()
    );
    let appended = run.reconcile_history(&progress.history)?;
    if appended > 0 {
        info!(
            "history.csv: appended {appended} row(s) that the checkpoint had but the file did not"
        );
    }
    let within = progress
        .partial
        .as_ref()
        .map(|p| {
            format!(
                ", {} batches into epoch {}",
                p.batches,
                progress.epochs_done + 1
            )
        })
        .unwrap_or_default();
    info!(
        "resumed {} from {}: {} epochs done{within}, step {}",
        run.path().display(),
        path.display(),
        progress.epochs_done,
        progress.step
    );
    Ok(progress)
}

/// What one training process needs to run epochs.
struct RunCtx<'a> {
    args: &'a TrainArgs,
    recipe: &'a models::Recipe,
    run: &'a RunDir,
    train_set: &'a Dataset,
    val_set: &'a Dataset,
    interrupt: &'a Interrupt,
    device: &'a tensor::Device,
}

/// How the epoch loop ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum End {
    /// The epochs (or --max-steps) ran out.
    Trained,
    /// The monitored metric stopped improving (--patience), or had already.
    EarlyStopped,
    /// The run had nothing left to do.
    AlreadyDone,
    Interrupted(Signal),
}

fn run_epochs(
    ctx: &RunCtx,
    model: &mut nn::Sequential,
    opt: &mut dyn Optimizer,
    progress: &mut Progress,
) -> anyhow::Result<End> {
    let (args, recipe) = (ctx.args, ctx.recipe);
    if progress.monitor.exhausted(args.patience) {
        info!(
            "the run stopped early already ({} epochs without improvement, {}); a larger --patience continues it",
            progress.monitor.since_best,
            progress.monitor.describe_best()
        );
        return Ok(End::AlreadyDone);
    }
    if progress.epochs_done >= recipe.epochs {
        info!(
            "the run has done its {} epochs; pass --epochs with a larger number to extend it",
            progress.epochs_done
        );
        return Ok(End::AlreadyDone);
    }
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    let bs = recipe.batch_size;
    let steps_per_epoch = ctx.train_set.len().div_ceil(bs);
    let mut pipe = Pipeline::new(recipe, bs, seed);
    let show_bar = std::io::stderr().is_terminal();
    // Loss and accuracy are summed on the model's device and read every `read_every` steps:
    // each step on the CPU (free there), now and then on the GPU, where a read waits for the
    // queue to drain.
    let read_every = if ctx.device.is_gpu() { 20 } else { 1 };

    while progress.epochs_done < recipe.epochs {
        let epoch = progress.epochs_done;
        let order = data::shuffled_indices(ctx.train_set.len(), seed, epoch as u64);
        let mut sums = progress.partial.take().unwrap_or_default();
        let bar = progress_bar(show_bar, steps_per_epoch, sums.batches);
        let start = Instant::now();
        let mut metrics = nn::step::Metrics::new(ctx.device)?;
        let mut stopped_by = None;
        let mut out_of_steps = false;
        for idx in order.chunks(bs).skip(sums.batches) {
            if args.max_steps.is_some_and(|m| progress.step >= m) {
                out_of_steps = true;
                break;
            }
            opt.set_learning_rate(recipe.schedule.lr(epoch, progress.step));
            let x = pipe.batch(ctx.train_set, idx, Mode::Train, progress.step)?;
            let dropout_seed =
                cpu::rng::pcg_hash((seed as u32) ^ cpu::rng::pcg_hash(progress.step as u32));
            let labels = &pipe.labels[..idx.len()];
            let batch = nn::step::TrainBatch {
                images: x,
                labels,
                seed: dropout_seed,
                step: progress.step,
            };
            nn::step::record_train_step(model, opt, batch, recipe.weight_decay, &mut metrics)?;
            progress.step += 1;
            sums.batches += 1;
            bar.inc(1);
            let signal = ctx.interrupt.received();
            if progress.step.is_multiple_of(read_every) || signal.is_some() {
                sums.add(metrics.take()?);
                bar.set_message(format!("loss: {:.4} - acc: {:.4}", sums.loss(), sums.acc()));
            }
            if signal.is_some() && sums.batches < steps_per_epoch {
                stopped_by = signal;
                break;
            }
        }
        sums.add(metrics.take()?);
        bar.finish_and_clear();
        sums.train_seconds += start.elapsed().as_secs_f64();
        if let Some(sig) = stopped_by {
            sums.seconds += start.elapsed().as_secs_f64();
            let batches = sums.batches;
            progress.partial = Some(sums);
            save_checkpoint(ctx.run, model, opt, progress)?;
            info!(
                "\n{}: stopped after step {} ({batches} of {steps_per_epoch} batches into epoch {}); checkpoint written to {}",
                sig.name(),
                progress.step,
                epoch + 1,
                ctx.run.file(run_dir::CHECKPOINT).display()
            );
            return Ok(End::Interrupted(sig));
        }
        if sums.seen == 0 {
            // --max-steps ran out exactly at the end of the previous epoch.
            return Ok(End::Trained);
        }
        let (val_loss, val_acc) = evaluate(model, ctx.val_set, recipe, 500)?;
        let rec = EpochRecord {
            epoch: epoch + 1,
            loss: sums.loss() as f32,
            acc: sums.acc() as f32,
            val_loss,
            val_acc,
            lr: opt.learning_rate(),
            seconds: (sums.seconds + start.elapsed().as_secs_f64()) as f32,
            images_per_sec: (sums.seen as f64 / sums.train_seconds) as f32,
        };
        let improved = progress.monitor.update(&rec);
        progress.history.push(rec.clone());
        progress.epochs_done += 1;
        save_epoch(ctx, model, opt, progress, &rec, improved).with_context(|| {
            format!(
                "epoch {}'s files could not all be written (the last checkpoint on disk is intact: free some space, then continue with `{}`)",
                rec.epoch,
                crate::report::resume_command(ctx.run.path())
            )
        })?;
        crate::report::epoch(&rec, recipe.epochs, improved)?;
        if out_of_steps || args.max_steps.is_some_and(|m| progress.step >= m) {
            info!("stopped after {} steps (--max-steps)", progress.step);
            return Ok(End::Trained);
        }
        if progress.monitor.exhausted(args.patience) {
            info!(
                "early stopping at epoch {} ({})",
                rec.epoch,
                progress.monitor.describe_best()
            );
            return Ok(End::EarlyStopped);
        }
        let more = progress.epochs_done < recipe.epochs;
        if let (Some(sig), true) = (ctx.interrupt.received(), more) {
            info!(
                "\n{}: stopped at the end of epoch {}; checkpoint written to {}",
                sig.name(),
                rec.epoch,
                ctx.run.file(run_dir::CHECKPOINT).display()
            );
            return Ok(End::Interrupted(sig));
        }
    }
    Ok(End::Trained)
}

fn progress_bar(show: bool, len: usize, done: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{pos}/{len} [{bar:30}] {elapsed} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_position(done as u64);
    b
}

fn save_checkpoint(
    run: &RunDir,
    model: &nn::Sequential,
    opt: &dyn Optimizer,
    progress: &Progress,
) -> anyhow::Result<()> {
    let json = serde_json::to_string(progress)?;
    nn::checkpoint::save_training(model, opt, &json, &run.file(run_dir::CHECKPOINT))?;
    Ok(())
}

/// An epoch's files, in the order that keeps them consistent: the best weights, the last
/// weights, the checkpoint (durable), then the history row, then the curves.
fn save_epoch(
    ctx: &RunCtx,
    model: &nn::Sequential,
    opt: &dyn Optimizer,
    progress: &Progress,
    rec: &EpochRecord,
    improved: bool,
) -> anyhow::Result<()> {
    let run = ctx.run;
    if improved {
        let metric = progress.monitor.metric;
        nn::checkpoint::save_with_metadata(
            model,
            &run.file(run_dir::BEST),
            &[
                ("epoch", rec.epoch.to_string()),
                ("monitor", metric.name().to_string()),
                ("value", metric.of(rec).to_string()),
            ],
        )?;
    }
    nn::checkpoint::save_with_metadata(
        model,
        &run.file(run_dir::WEIGHTS),
        &[("epoch", rec.epoch.to_string())],
    )?;
    // The checkpoint last: until it is on disk, a resume redoes this epoch and writes the
    // same best and last weights again.
    save_checkpoint(run, model, opt, progress)?;
    run.append_history(rec)?;
    let title = format!(
        "{} ({})",
        ctx.args.model.as_deref().unwrap_or_default(),
        run.path().display()
    );
    let runs = [curves::Run {
        label: String::new(),
        history: &progress.history,
    }];
    if let Err(e) = curves::write(
        &run.file(run_dir::CURVES_SVG),
        &run.file(run_dir::CURVES_PNG),
        &title,
        &runs,
    ) {
        // The curves are a view of history.csv: a failure to draw them ends no run.
        eprintln!("warning: {e:#}");
    }
    Ok(())
}
