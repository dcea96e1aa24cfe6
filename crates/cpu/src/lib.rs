//! CPU kernels for the scratchnet engine.
//!
//! Every op lives in one file named after it and offers two versions:
//! - `*_reference`: plain loops, written to be read. It is the specification that the fast
//!   kernel and the WGSL kernel are tested against, and the fallback for odd shapes.
//! - the fast kernel (no suffix): the same math, parallel over independent work with rayon,
//!   with inner loops over contiguous memory that the compiler vectorises, and GEMM through
//!   `matrixmultiply`.
//!
//! Kernels work on plain `&[f32]` slices plus a small dims struct; they know nothing of tensors
//! or autograd. Images are NHWC (channels last) and conv kernels HWIO, as in Keras: see the
//! README's "Memory layout" section for why.

pub mod adam;
pub mod argmax;
pub mod avgpool2d;
pub mod batchnorm;
pub mod bias;
pub mod conv2d;
pub mod dropout;
pub mod gemm;
pub mod gemm_packed;
pub mod lrn;
pub mod maxpool2d;
pub mod padding;
pub mod peak;
pub mod relu;
pub mod rmsprop;
pub mod rng;
pub mod sgd;
pub mod shortcut;
pub mod softmax_xent;

#[cfg(test)]
pub(crate) mod testutil;

pub use padding::Padding;
