//! What the flags of `train` change: the parts of the article's recipe they override, and,
//! for `--resume`, which flags may differ from the ones the run was started with.

use nn::optim::{Adam, Optimizer, Rmsprop, RmspropHyper, Sgd, SgdHyper};
use nn::schedule::Schedule;
use tensor::ops::AdamHyper;

use crate::train::{OptimizerFlag, PreprocessFlag, TrainArgs, ValidationFlag};

/// Flags that a resumed run may change: how long it runs and where, not what it computes.
const FREE_ON_RESUME: [&str; 7] = [
    "epochs",
    "patience",
    "data",
    "device",
    "save",
    "max_steps",
    "threads",
];

/// The recipe's optimiser at learning rate `lr`.
pub fn optimizer(o: &models::Optim, lr: f32) -> Box<dyn Optimizer> {
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
pub fn apply_overrides(recipe: &mut models::Recipe, args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(e) = args.epochs {
        anyhow::ensure!(e > 0, "--epochs must be at least 1");
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
    anyhow::ensure!(args.max_steps != Some(0), "--max-steps must be at least 1");
    Ok(())
}

/// The flags of a resumed run: those it was started with (`stored`, from its config.json),
/// with the flags given now that may change (epochs, patience, data folder, device, --save,
/// --max-steps, --threads; --max-steps applies to this session only). A flag given now that contradicts the stored one is an error naming both.
pub fn merge_resumed(
    stored: &TrainArgs,
    given: &TrainArgs,
    config: &std::path::Path,
) -> anyhow::Result<TrainArgs> {
    let stored_json = serde_json::to_value(stored)?;
    let given_json = serde_json::to_value(given)?;
    let (Some(s), Some(g)) = (stored_json.as_object(), given_json.as_object()) else {
        anyhow::bail!("flags do not serialise to an object");
    };
    for (key, value) in g {
        let not_given = value.is_null() || *value == serde_json::Value::Bool(false);
        if not_given || FREE_ON_RESUME.contains(&key.as_str()) {
            continue;
        }
        let before = s.get(key).unwrap_or(&serde_json::Value::Null);
        if before != value {
            anyhow::bail!(
                "--{} {} contradicts the run being resumed ({} has {}): a resumed run keeps its model and recipe; drop the flag, or start a new run in a fresh --run-dir",
                key.replace('_', "-"),
                show(value),
                config.display(),
                if before.is_null() || *before == serde_json::Value::Bool(false) {
                    "no such flag".to_string()
                } else {
                    format!("--{} {}", key.replace('_', "-"), show(before))
                }
            );
        }
    }
    let mut merged = stored.clone();
    merged.epochs = given.epochs.or(stored.epochs);
    merged.patience = given.patience.or(stored.patience);
    merged.data = given.data.clone().or(stored.data.clone());
    merged.device = given.device.or(stored.device);
    merged.save = given.save.clone().or(stored.save.clone());
    // A limit for one session, not for the run.
    merged.max_steps = given.max_steps;
    merged.threads = given.threads.or(stored.threads);
    merged.resume = given.resume.clone();
    Ok(merged)
}

/// A flag's value as a user types it.
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => String::new(),
        // Flags are f32: print them as the user typed them, not as their f64 widening.
        serde_json::Value::Number(n) if n.is_f64() => {
            n.as_f64().map_or(n.to_string(), |f| (f as f32).to_string())
        }
        other => other.to_string(),
    }
}
