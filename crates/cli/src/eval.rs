//! `eval --weights FILE`: loss, accuracy, per-class accuracy and the confusion matrix on the
//! test batch, with the recipe's evaluation preprocessing. The model is the one the weights
//! file was saved for.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use data::{CLASSES, CLASS_NAMES};
use serde_json::json;

use crate::device::DeviceFlag;
use crate::output::{self, info, Mode};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  scratchnet eval --weights runs/keras6-1764600000/best.safetensors
  scratchnet eval --weights w.safetensors --data ~/cifar-10 --json")]
pub struct EvalArgs {
    /// A weights file written by `train` (weights.safetensors, best.safetensors, --save).
    #[arg(long)]
    pub weights: PathBuf,
    /// The model; by default the one the weights file was saved for.
    #[arg(long)]
    pub model: Option<String>,
    /// Folder with test_batch.bin (or the python test_batch); default: as for `train`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images per evaluated batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// auto (a hardware GPU if there is one), cpu, or gpu (any adapter, software included).
    #[arg(long, value_enum, default_value_t = DeviceFlag::Auto)]
    pub device: DeviceFlag,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object (loss, accuracy, images, per_class, confusion) and nothing else.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print only the loss and accuracy lines.
    #[arg(long)]
    pub quiet: bool,
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let meta = nn::checkpoint::metadata(&args.weights)?;
    let name = match (&args.model, meta.get("model")) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => anyhow::bail!(
            "{} does not say which model it is for (not a scratchnet weights file?): pass --model",
            args.weights.display()
        ),
    };
    let mut model = models::build(&name, 0)?;
    let recipe = models::recipe(&name)?;
    nn::checkpoint::load(&mut model, &args.weights)?;
    let data_dir = crate::data_dir::find(args.data.as_deref())?;
    let test = data::load_test(&data_dir)
        .with_context(|| format!("loading the test set from {}", data_dir.display()))?;
    crate::device::set_threads(args.threads)?;
    let (device, line) = crate::device::select(args.device)?;
    info!("{line}");
    model.to_device(&device)?;
    info!("model: {name} (weights {})", args.weights.display());
    info!("data: {} ({} test images)", data_dir.display(), test.len());
    let batch = args.batch_size.min(test.len().max(1));
    let (loss, predictions) = crate::pipeline::predict_all(&model, &test, &recipe, batch)?;

    // confusion[true][predicted]
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    for (&label, &p) in test.labels.iter().zip(&predictions) {
        confusion[label as usize][p as usize] += 1;
    }
    let n = test.len();
    let correct: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n.max(1) as f64;
    let per_class: Vec<(usize, usize)> = (0..CLASSES)
        .map(|c| (confusion[c].iter().sum(), confusion[c][c]))
        .collect();

    match output::mode() {
        Mode::Json => output::json(&json!({
            "model": name,
            "weights": args.weights.display().to_string(),
            "data": data_dir.display().to_string(),
            "images": n,
            "loss": loss,
            "accuracy": accuracy,
            "correct": correct,
            "per_class": per_class.iter().enumerate().map(|(c, &(images, ok))| json!({
                "class": c,
                "name": CLASS_NAMES[c],
                "images": images,
                "correct": ok,
                "accuracy": if images > 0 { Some(ok as f64 / images as f64) } else { None },
            })).collect::<Vec<_>>(),
            "confusion": confusion,
        }))?,
        Mode::Quiet | Mode::Normal => {
            info!("test images: {n}");
            println!("loss: {loss:.4}");
            println!("accuracy: {accuracy:.4}");
            info!("");
            info!(
                "{:<12} {:>7} {:>8} {:>9}",
                "class", "images", "correct", "accuracy"
            );
            for (c, &(images, ok)) in per_class.iter().enumerate() {
                let acc = if images > 0 {
                    format!("{:.4}", ok as f64 / images as f64)
                } else {
                    "-".to_string()
                };
                info!("{:<12} {images:>7} {ok:>8} {acc:>9}", CLASS_NAMES[c]);
            }
            info!("");
            info!("confusion matrix (rows: true class, columns: predicted class)");
            let short: Vec<String> = CLASS_NAMES
                .iter()
                .map(|c| c[..5.min(c.len())].to_string())
                .collect();
            info!(
                "{:<12} {}",
                "",
                short.iter().map(|s| format!("{s:>6}")).collect::<String>()
            );
            for (c, row) in confusion.iter().enumerate() {
                info!(
                    "{:<12} {}",
                    CLASS_NAMES[c],
                    row.iter().map(|v| format!("{v:>6}")).collect::<String>()
                );
            }
        }
    }
    Ok(())
}
