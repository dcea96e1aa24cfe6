//! Errors from building models, running them and reading checkpoints.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NnError {
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
    /// A layer that cannot follow the previous one (a kernel larger than its input, say).
    #[error("cannot build model `{model}`: layer {layer}: {detail}")]
    Build {
        model: String,
        layer: String,
        detail: String,
    },
    /// A batch whose shape is not the model's input.
    #[error(
        "model `{model}` expects input images of shape {expected}, got a batch of shape {got}"
    )]
    Input {
        model: String,
        expected: String,
        got: String,
    },
    /// The loss stopped being a number, at step `step` (on the GPU, where metrics are read
    /// now and then, somewhere in `step..=last`). No parameter changed from that step on.
    #[error("the loss became {value} at step {step}{}: training diverged; lower the learning rate or check the input scaling (the parameters were not updated from that step on, and no checkpoint was written for it)", if last > step { format!(" (or up to step {last})") } else { String::new() })]
    NonFiniteLoss { value: f32, step: u64, last: u64 },
    /// An optimiser state that does not fit the optimiser it is loaded into.
    #[error("{0}")]
    OptimizerState(String),
    #[error("cannot read weights file {path}: {detail}")]
    CheckpointRead { path: PathBuf, detail: String },
    #[error("cannot write weights file {path}: {detail}")]
    CheckpointWrite { path: PathBuf, detail: String },
}
