//! The GPU kernels against the CPU: one module per op, named like the op's files
//! (`cpu/src/<op>.rs`, `gpu/src/<op>.rs`, `shaders/<op>.wgsl`), each checking the WGSL kernel
//! against the CPU kernel (itself checked against a plain reference in the cpu crate) on
//! awkward sizes, and that bad lengths are errors, not panics. One test binary, so the GPU
//! context and its compiled pipelines are shared by all of them.
//!
//! Outputs start as NaN so that an element a kernel forgets to write fails. Tolerance, unless a
//! test says otherwise: `|gpu - cpu| <= 1e-4 * max(1, |cpu|)`.
//!
//! Without any GPU adapter the tests print why and pass, except under `CI`, where lavapipe is
//! installed and a missing adapter is a failure.

#![cfg(feature = "gpu")]

#[path = "../common.rs"]
mod common;

mod adam;
mod avgpool2d;
mod batchnorm;
mod bias;
mod conv2d;
mod dropout;
mod elementwise;
mod gemm;
mod lrn;
mod maxpool2d;
mod optim;
mod relu;
mod rmsprop;
mod sgd;
mod shortcut;
mod softmax_xent;
mod training;

pub use common::{assert_close, data, gpu};
pub use cpu::maxpool2d::Pool2dDims;
pub use cpu::Padding;
pub use gpu::{GpuBuffer, GpuContext, GpuError};

/// [`assert_close`] at the default tolerance, 1e-4.
pub fn close(got: &[f32], want: &[f32], what: &str) {
    assert_close(got, want, 1e-4, what)
}

/// Fails unless `r` is a `GpuError::Shape`.
pub fn shape(r: Result<(), GpuError>, what: &str) {
    assert!(matches!(r, Err(GpuError::Shape(_))), "{what}: {r:?}");
}

/// Whether `r` is a `GpuError::Shape`.
pub fn is_shape(r: Result<(), GpuError>) -> bool {
    matches!(r, Err(GpuError::Shape(_)))
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// A GPU buffer of `n` NaNs (an output a kernel must overwrite).
pub fn nans(ctx: &GpuContext, n: usize) -> GpuBuffer {
    ctx.upload(&vec![f32::NAN; n]).unwrap()
}

pub fn read(ctx: &GpuContext, b: &GpuBuffer) -> Vec<f32> {
    ctx.read(b).unwrap()
}

/// Data with a few special values (-0.0, NaN, +-inf, exact zeros) when long enough.
pub fn spiky(n: usize, seed: u32) -> Vec<f32> {
    let mut v = data(n, seed);
    let specials = [-0.0, f32::NAN, 0.0, f32::INFINITY, f32::NEG_INFINITY];
    for (k, s) in specials.iter().enumerate() {
        if n > 2 * k + 1 {
            v[2 * k + 1] = *s;
        }
    }
    v
}

/// Gradients for step `step` of a parameter of length `n`.
pub fn grads(n: usize, step: u32) -> Vec<f32> {
    data(n, 1000 + step)
}

/// Every combination of these images and (window, stride, padding) whose window fits.
pub fn all_dims() -> Vec<Pool2dDims> {
    let images = [
        (1, 1, 1, 1),
        (2, 5, 7, 3),
        (1, 9, 13, 10),
        (3, 7, 5, 17),
        (2, 13, 9, 1),
    ];
    let windows = [
        (2, 2, Padding::Valid),
        (2, 2, Padding::Same),
        (3, 2, Padding::Valid),
        (3, 2, Padding::Same),
        (3, 1, Padding::Same),
        (3, 3, Padding::Valid),
        (2, 1, Padding::Valid),
    ];
    let mut out = Vec::new();
    for &(n, h, w, c) in &images {
        for &(k, stride, padding) in &windows {
            if let Some(d) = Pool2dDims::new(n, h, w, c, k, stride, padding) {
                out.push(d);
            }
        }
    }
    out
}
