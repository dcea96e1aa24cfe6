//! The GPU backend: a wgpu device, the caches every kernel shares, and the WGSL kernels.
//!
//! WGSL is the only GPU language here, so the same kernels run wherever wgpu does: Vulkan,
//! Metal, DX12, and Mesa lavapipe (software Vulkan on the CPU, which is how CI tests them).
//!
//! - [`GpuContext`] (context.rs): device, queue, adapter description and limits, opened once.
//! - [`GpuBuffer`] and [`BufferPool`] (buffer.rs): f32 storage buffers, recycled by size;
//!   `upload`, `zeros`, `read`. A buffer larger than the binding limit is a
//!   [`GpuError::TooLarge`], never a validation panic.
//! - [`PipelineCache`] (pipeline.rs): each (shader, entry point) is compiled once.
//! - Recording (record.rs): every kernel is recorded into one open command encoder, which is
//!   submitted only at a readback or [`GpuContext::flush`], so a training step is one submit.
//! - One Rust file per shader family in `shaders/`: [`gemm`] (`shaders/gemm.wgsl`), [`conv2d`]
//!   (`shaders/conv2d.wgsl`: im2col / col2im around the GEMMs, and a direct kernel).
//!
//! Sizes reach the shaders through a small uniform buffer, not as constants baked into the
//! source. One compiled pipeline then serves every shape, which matters because compiling a
//! pipeline costs 50-500 ms (lavapipe) and a network runs dozens of shapes. Baked constants are
//! the alternative (wgpu-mm, wonnx): they let the compiler unroll loops and drop bounds checks,
//! at the price of one compile per shape.

pub mod batchnorm;
pub mod buffer;
pub mod context;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod error;
pub mod gemm;
pub mod lrn;
pub mod optim;
pub mod pipeline;
pub mod pool;
pub mod record;
pub mod shortcut;
pub mod softmax_xent;

pub use buffer::{BufferPool, GpuBuffer};
pub use context::GpuContext;
pub use error::GpuError;
pub use gemm::{gemm, gemm_view, Epilogue, GemmVariant, View};
pub use pipeline::{PipelineCache, Shader};
pub use record::{grid, Kernel, WORKGROUP};
