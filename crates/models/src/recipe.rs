//! A training recipe: everything an article fixed besides the architecture. Printed at the
//! start of a run and saved with it as `config.json`.

use nn::schedule::Schedule;
use serde::{Deserialize, Serialize};

/// How raw 0..255 pixels become network inputs (before augmentation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Preprocess {
    /// `pixel / 255`.
    Unit,
    /// Raw 0..255 values as floats.
    Raw,
    /// `(pixel - mean[c]) / std[c]` on 0..255 pixels (NIN's constants).
    PerChannel { mean: [f32; 3], std: [f32; 3] },
    /// Raw pixels, then TensorFlow's per-image standardisation after any crop.
    PerImage,
}

impl Preprocess {
    /// The factor `fill_batch` applies to raw bytes.
    pub fn scale(self) -> f32 {
        match self {
            Preprocess::Unit => 1.0 / 255.0,
            _ => 1.0,
        }
    }
}

/// The optimiser and its settings other than the learning rate (the schedule owns that).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optim {
    /// Adam with Keras' defaults (beta1 0.9, beta2 0.999, epsilon 1e-7).
    Adam,
    /// SGD with momentum (Keras semantics).
    Sgd { momentum: f32, nesterov: bool },
    /// RMSprop (standalone Keras 2.2: rho 0.9, epsilon 1e-7) with time-based decay.
    Rmsprop { decay: f32 },
}

/// Training-time augmentation (all off means none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    pub flip: bool,
    /// Random shift up to this fraction of the height and width, empty pixels set to 0.
    pub shift: Option<f32>,
    /// Zero-pad by `pad`, then crop `size x size` (random in training, centre at evaluation).
    pub crop: Option<(usize, usize)>,
}

/// What the per-epoch validation runs on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Validation {
    /// The test batch (the Keras articles).
    TestSet,
    /// The last fraction of the training batches (article 004: 45k / 5k).
    SplitLast(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Which article it comes from.
    pub source: String,
    /// The accuracy the article reported.
    pub expected: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optim,
    /// The learning rate over training.
    pub schedule: Schedule,
    /// Keras `kernel_regularizer=l2(wd)` on every kernel; 0 for none.
    pub weight_decay: f32,
    pub preprocess: Preprocess,
    pub augment: Augmentation,
    pub validation: Validation,
}

impl Recipe {
    /// A recipe with a constant rate, no decay or augmentation, validated on the test set.
    pub fn simple(
        source: &str,
        expected: &str,
        epochs: usize,
        batch_size: usize,
        optimizer: Optim,
        lr: f32,
        preprocess: Preprocess,
    ) -> Self {
        Recipe {
            source: source.into(),
            expected: expected.into(),
            epochs,
            batch_size,
            optimizer,
            schedule: Schedule::Constant(lr),
            weight_decay: 0.0,
            preprocess,
            augment: Augmentation::default(),
            validation: Validation::TestSet,
        }
    }
}

/// Words for the printed recipe.
impl std::fmt::Display for Preprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Preprocess::Unit => write!(f, "pixels / 255"),
            Preprocess::Raw => write!(f, "raw pixels 0-255"),
            Preprocess::PerChannel { .. } => write!(f, "per-channel mean/std normalisation"),
            Preprocess::PerImage => write!(f, "per-image standardisation"),
        }
    }
}

impl std::fmt::Display for Optim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Optim::Adam => write!(f, "Adam"),
            Optim::Sgd {
                momentum,
                nesterov: true,
            } => write!(f, "SGD (Nesterov momentum {momentum})"),
            Optim::Sgd {
                momentum,
                nesterov: false,
            } => write!(f, "SGD (momentum {momentum})"),
            Optim::Rmsprop { decay } if *decay > 0.0 => write!(f, "RMSprop (decay {decay:e})"),
            Optim::Rmsprop { .. } => write!(f, "RMSprop"),
        }
    }
}

impl Recipe {
    /// The recipe in one line, e.g. `Adam, lr 0.001 (constant), batch 64, 50 epochs, ...`.
    pub fn summary(&self) -> String {
        let wd = if self.weight_decay > 0.0 {
            format!(", weight decay {}", self.weight_decay)
        } else {
            String::new()
        };
        format!(
            "{}, {}, batch {}, {} epochs{wd}, {}, augmentation {}, validation {}",
            self.optimizer,
            self.schedule.describe(),
            self.batch_size,
            self.epochs,
            self.preprocess,
            self.augment,
            self.validation
        )
    }
}

impl std::fmt::Display for Augmentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some((pad, size)) = self.crop {
            parts.push(format!("pad {pad} + random {size}x{size} crop"));
        }
        if let Some(s) = self.shift {
            parts.push(format!("random shift up to {}%", s * 100.0));
        }
        if self.flip {
            parts.push("horizontal flip".to_string());
        }
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(" + "))
        }
    }
}

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Validation::TestSet => write!(f, "on the test set"),
            Validation::SplitLast(frac) => {
                write!(f, "on the last {}% of the training images", frac * 100.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_print_in_words() {
        assert_eq!(Preprocess::Unit.to_string(), "pixels / 255");
        let a = Augmentation {
            flip: true,
            shift: None,
            crop: Some((4, 32)),
        };
        assert_eq!(a.to_string(), "pad 4 + random 32x32 crop + horizontal flip");
        assert_eq!(Augmentation::default().to_string(), "none");
        assert_eq!(
            Validation::SplitLast(0.1).to_string(),
            "on the last 10% of the training images"
        );
    }
}
