//! Tensors for the scratchnet engine: [`Shape`], [`Tensor`] and [`Device`].
//!
//! A tensor is a shape plus shared, immutable storage (`Arc`), so cloning one is cheap and the
//! autograd tape can keep the activations it needs without copying them. Every op lives in
//! `ops/<name>.rs`, named like its kernel in the `cpu` crate, checks shapes (a mismatch is an
//! error value, never a panic) and dispatches on the device of its operands.
//!
//! Storage comes from a size-keyed cache (`buffer_cache.rs`): a freed buffer is kept and handed to the
//! next tensor of the same length, so after its first step a training loop stops allocating.

pub mod buffer_cache;
mod error;
mod shape;
mod tensor;

pub mod ops;

pub use error::TensorError;
pub use shape::Shape;
pub use tensor::{Device, Tensor};

/// Re-exported so callers name padding without depending on the kernel crate.
pub use cpu::Padding;

pub type Result<T, E = TensorError> = std::result::Result<T, E>;
