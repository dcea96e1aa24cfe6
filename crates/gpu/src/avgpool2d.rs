//! Average pooling and global average pooling on the GPU, and their gradients: the kernels of
//! `shaders/avgpool2d.wgsl` (after `shaders/window2d.wgsl`) and their dispatch.
//!
//! The math, the NHWC layout and TensorFlow's padding (left out of the sum and the count) are
//! those of `cpu::avgpool2d`. Each kernel is one thread per element it writes; the backward
//! passes are gathers, so overlapping windows need no atomics and `dx` needs no zeroing first.

use crate::buffer::GpuBuffer;
use crate::checks::check_distinct;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use crate::window2d::{global_params, params};
use cpu::maxpool2d::Pool2dDims;

/// The WGSL source of average pooling.
pub const SHADER: Shader = Shader {
    name: "avgpool2d",
    source: concat!(
        include_str!("../../../shaders/window2d.wgsl"),
        include_str!("../../../shaders/avgpool2d.wgsl")
    ),
    trusted: false,
};

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// Average pooling forward: `y` gets the mean of each window's in-image elements (padding is
/// left out of the sum and the count, as in TensorFlow). Matches
/// `cpu::avgpool2d::avgpool2d_forward` to rounding.
pub fn avgpool2d_forward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "avgpool2d forward";
    let mut p = params(WHAT, d, ("x", x), ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("avgpool2d_forward"), &p, &[x, y], y.len())
}

/// Average pooling backward: `dx` (overwritten, `n x h x w x c`) gets `dy / count` from every
/// window holding each element; overlapping windows add up. Matches
/// `cpu::avgpool2d::avgpool2d_backward` to rounding.
pub fn avgpool2d_backward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "avgpool2d backward";
    let mut p = params(WHAT, d, ("dx", dx), ("dy", dy))?;
    check_distinct(WHAT, &[dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    if dy.is_empty() {
        ctx.record_clear(dx, dx.len());
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("avgpool2d_backward"), &p, &[dy, dx], dx.len())
}

/// Global average pooling `[n, hw, c] -> [n, c]`: `y[b][ch] = (sum_p x[b][p][ch]) / hw`.
/// Sums in f32 (the CPU's `cpu::avgpool2d::global_avgpool_forward` uses f64), so they agree
/// to rounding. `hw` must be at least 1.
pub fn global_avgpool_forward(
    ctx: &GpuContext,
    x: &GpuBuffer,
    n: usize,
    hw: usize,
    c: usize,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "global_avgpool forward";
    let mut p = global_params(WHAT, ("x", x), n, hw, c, ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("global_avgpool_forward"), &p, &[x, y], y.len())
}

/// Gradient of the global average pooling: `dx[b][p][ch] = dy[b][ch] / hw` (overwrites `dx`).
/// Matches `cpu::avgpool2d::global_avgpool_backward` to rounding.
pub fn global_avgpool_backward(
    ctx: &GpuContext,
    dy: &GpuBuffer,
    n: usize,
    hw: usize,
    c: usize,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "global_avgpool backward";
    let mut p = global_params(WHAT, ("dx", dx), n, hw, c, ("dy", dy))?;
    check_distinct(WHAT, &[dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("global_avgpool_backward"), &p, &[dy, dx], dx.len())
}

crate::uniform_matches!(
    SHADER,
    "Window2d",
    crate::window2d::Params {
        n,
        h,
        w,
        c,
        k,
        stride,
        pad_top,
        pad_left,
        out_h,
        out_w,
        total,
        neg_inf
    }
);
