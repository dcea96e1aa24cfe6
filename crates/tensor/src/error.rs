//! Errors from tensor ops: always a value naming the op and the shapes involved.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum TensorError {
    /// Operands whose shapes do not fit the op.
    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },
    /// A value that is not allowed, such as a dropout rate of 1.
    #[error("{op}: invalid argument: {detail}")]
    Argument { op: &'static str, detail: String },
    /// Operands on different devices (a CPU tensor given to a GPU op or the reverse).
    #[error("{op}: operands are on different devices ({a} and {b}): move them with to_device")]
    Devices {
        op: &'static str,
        a: String,
        b: String,
    },
    /// The GPU refused: a buffer past its binding limit, no adapter, a failed readback.
    #[error("{0}")]
    Gpu(String),
}

#[cfg(feature = "gpu")]
impl From<gpu::GpuError> for TensorError {
    fn from(e: gpu::GpuError) -> Self {
        TensorError::Gpu(e.to_string())
    }
}

impl TensorError {
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        TensorError::Shape {
            op,
            detail: detail.into(),
        }
    }
    pub fn argument(op: &'static str, detail: impl Into<String>) -> Self {
        TensorError::Argument {
            op,
            detail: detail.into(),
        }
    }
}
