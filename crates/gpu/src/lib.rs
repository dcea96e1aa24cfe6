//! The GPU backend: a wgpu device, the caches every kernel shares, and the WGSL kernels.
//!
//! WGSL is the only GPU language here, so the same kernels run wherever wgpu does: Vulkan,
//! Metal, DX12, and Mesa lavapipe (software Vulkan on the CPU, which is how CI tests them).
//!
//! The core, one `impl` of [`GpuContext`] delegating to three parts that know nothing of it:
//! - [`GpuContext`] (context.rs): device, queue, adapter description and limits, opened once;
//!   `alloc`, `upload`, `zeros`, `read`, `dispatch`. A buffer larger than the binding limit is
//!   a [`GpuError::TooLarge`], never a validation panic.
//! - [`GpuBuffer`] and [`BufferCache`] (buffer.rs): f32 storage buffers, recycled by size.
//! - [`PipelineCache`] (pipeline.rs): each (shader, entry point) is compiled once, after the
//!   shared prelude (`shaders/prelude.wgsl` plus the constants Rust owns, such as
//!   [`WORKGROUP`]).
//! - Recording (record.rs): every kernel is recorded into one open command encoder, which is
//!   submitted only at a readback or [`GpuContext::flush`], so a training step is one submit.
//!
//! The kernels: one Rust file per op, named like the op's file in `crates/cpu/src/` and its
//! shader in `shaders/` (`maxpool2d.rs` runs `shaders/maxpool2d.wgsl`, the twin of
//! `cpu/src/maxpool2d.rs`). Shared pieces: `checks.rs` (argument checks), `window2d.rs`
//! (the pooling uniform, with `shaders/window2d.wgsl`), `optim.rs` (what the three optimiser
//! updates share, with `shaders/optim.wgsl`). Each uniform struct's layout is tested against
//! its WGSL twin (`uniform_layout.rs`).
//!
//! Sizes reach the shaders through a small uniform buffer, not as constants baked into the
//! source. One compiled pipeline then serves every shape, which matters because compiling a
//! pipeline costs 50-500 ms (lavapipe) and a network runs dozens of shapes. Baked constants are
//! the alternative (wgpu-mm, wonnx): they let the compiler unroll loops and drop bounds checks,
//! at the price of one compile per shape.

pub mod adam;
pub mod avgpool2d;
pub mod batchnorm;
pub mod buffer;
pub mod checks;
pub mod context;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod error;
pub mod gemm;
pub mod lrn;
pub mod maxpool2d;
pub mod optim;
pub mod pipeline;
pub mod record;
pub mod rmsprop;
pub mod sgd;
pub mod shortcut;
pub mod softmax_xent;
#[cfg(test)]
mod uniform_layout;
pub mod window2d;

pub use buffer::{BufferCache, GpuBuffer};
pub use context::GpuContext;
pub use error::GpuError;
pub use gemm::{gemm, gemm_view, Epilogue, GemmVariant, View};
pub use pipeline::{PipelineCache, Shader};
pub use record::{grid, Kernel, WORKGROUP};

/// `uniform_matches!(SHADER, "WgslName", RustType { field, ... })`: a test that runs
/// `uniform_layout::check` with the Rust offsets read by `offset_of!`. List every field of the Rust
/// struct, in order.
#[macro_export]
#[doc(hidden)]
macro_rules! uniform_matches {
    ($shader:expr, $wgsl:literal, $t:ty { $($f:ident),* $(,)? }) => {
        #[cfg(test)]
        #[test]
        fn uniform_matches_its_wgsl_twin() {
            $crate::uniform_layout::check(
                &$shader,
                $wgsl,
                std::mem::size_of::<$t>(),
                &[$((stringify!($f), std::mem::offset_of!($t, $f))),*],
            )
        }
    };
}
