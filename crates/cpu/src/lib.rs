//! CPU kernels for the scratchnet engine.
//!
//! Most ops live in one file named after the op and offer two versions:
//! - `*_reference`: plain loops, written to be read. It is the specification: the fast kernel
//!   here and the WGSL kernel in the `gpu` crate are tested against it. Nothing else calls it
//!   (only the tests and benchmarks do).
//! - the fast kernel (no suffix): the same math, parallel over independent work with rayon,
//!   with inner loops over contiguous memory that the compiler vectorises. It is what the
//!   `tensor` crate runs on the CPU.
//!
//! Kernels work on plain `&[f32]` slices plus a small dims struct; they know nothing of tensors
//! or autograd. Images are NHWC (channels last) and conv kernels HWIO, as in Keras: see the
//! README's "Memory layout" section for why.
//!
//! The files:
//! - [`adam`], [`rmsprop`], [`sgd`]: the optimiser updates, as Keras computes them.
//! - [`argmax`]: row-wise argmax and the count of correct predictions (one version: the
//!   per-row scan is the specification, run over rows in parallel).
//! - [`avgpool2d`]: windowed and global average pooling and their gradients.
//! - [`batchnorm`]: batch normalisation over the channels (training, inference, backward,
//!   moving averages).
//! - [`bias`]: bias add and its gradient.
//! - [`conv2d`]: convolution forward and both backward passes, the variants
//!   ([`ConvVariant`](conv2d::ConvVariant)) and the entry points that run the chosen one;
//!   im2col + GEMM per chunk of images, the GEMM from [`gemm_packed`] when a kernel of it is
//!   active, else [`gemm`].
//! - [`conv2d_direct`]: the direct variant: version 4's micro-kernels reading the receptive
//!   fields from a zero-padded image, no im2col matrix.
//! - [`conv2d_winograd`]: the Winograd variant, F(2x2, 3x3), for 3x3 stride-1 `Same` layers.
//! - [`dropout`]: inverted dropout with counter-based masks.
//! - [`elementwise`]: `a + b`, `y += x` and `y += alpha * x` (residual joins, gradient
//!   accumulation, the L2 gradient).
//! - [`gemm`]: `C = A · B + beta · C` on strided views: the reference triple loop, and
//!   `matrixmultiply` on one thread or split across the pool.
//! - [`gemm_packed`]: GEMM version 4 for convolution shapes: B packed once per layer call and
//!   register-tiled micro-kernels, chosen at run time: AVX-512 where the CPU has it, else
//!   AVX2 + FMA, otherwise none and conv2d uses [`gemm`].
//! - [`lrn`]: local response normalisation across channels and its gradient.
//! - [`maxpool2d`]: max pooling and its gradient, and [`Pool2dDims`](maxpool2d::Pool2dDims),
//!   the shape both poolings use.
//! - [`padding`]: `Same` / `Valid` output sizes and padding, and where a window reads
//!   (shared by conv2d and the poolings).
//! - [`peak`]: the measured FMA peak of this CPU, the yardstick of the benchmarks.
//! - [`relu`]: ReLU and its gradient.
//! - [`rng`]: the counter-based hash behind dropout masks (the GPU computes the same bits).
//! - `simd`: `multiversion!`, which compiles a vectorisable kernel body for AVX-512, AVX2
//!   and the baseline and runs the widest this CPU has.
//! - [`shortcut`]: ResNet's parameter-free "option A" shortcut (subsample, pad channels).
//! - [`softmax_xent`]: softmax fused with cross-entropy, and its gradient.

pub mod adam;
pub mod argmax;
pub mod avgpool2d;
pub mod batchnorm;
pub mod bias;
pub mod conv2d;
pub mod conv2d_direct;
pub mod conv2d_winograd;
pub mod dropout;
pub mod elementwise;
pub mod gemm;
pub mod gemm_packed;
pub mod lrn;
pub mod maxpool2d;
pub mod maxpool2d_argmax;
pub mod padding;
pub mod peak;
pub mod relu;
pub mod rmsprop;
pub mod rng;
pub mod sgd;
pub mod shortcut;
mod simd;
pub mod softmax_xent;

#[cfg(test)]
pub(crate) mod testutil;

pub use padding::Padding;
