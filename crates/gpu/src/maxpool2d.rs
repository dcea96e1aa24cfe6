//! Max pooling on the GPU and its gradient: the kernels of `shaders/maxpool2d.wgsl` (after
//! `shaders/window2d.wgsl`) and their dispatch.
//!
//! The math, the NHWC layout, TensorFlow's padding and the tie rule are those of
//! `cpu::maxpool2d`, whose [`Pool2dDims`] the functions take. Each kernel is one thread per
//! element it writes; the backward is a gather (one thread per `dx` element summing the windows
//! that hold it), so overlapping windows need no atomics and `dx` needs no zeroing first.

use crate::buffer::GpuBuffer;
use crate::checks::{check_distinct, check_len};
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use crate::window2d::params;
use cpu::maxpool2d::Pool2dDims;

/// The WGSL source of max pooling.
pub const SHADER: Shader = Shader {
    name: "maxpool2d",
    source: concat!(
        include_str!("../../../shaders/window2d.wgsl"),
        include_str!("../../../shaders/maxpool2d.wgsl")
    ),
    trusted: false,
};

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// Max pooling forward: `y` (`n x out_h x out_w x c`) gets the maximum of each window of `x`
/// (`n x h x w x c`), padded positions left out. Matches `cpu::maxpool2d::maxpool2d_forward`
/// bit for bit.
pub fn maxpool2d_forward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "maxpool2d forward";
    let mut p = params(WHAT, d, ("x", x), ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("maxpool2d_forward"), &p, &[x, y], y.len())
}

/// Max pooling backward: `dx` (overwritten, `x`'s shape) gets each `dy` at the first element
/// (row-major within the window) equal to its window's maximum; gradients of overlapping
/// windows add up. Matches `cpu::maxpool2d::maxpool2d_backward` (same tie rule, same order of
/// addition) bit for bit.
pub fn maxpool2d_backward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "maxpool2d backward";
    let mut p = params(WHAT, d, ("x", x), ("dy", dy))?;
    check_len(WHAT, "dx", dx, d.input_len())?;
    check_distinct(WHAT, &[x, dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    if dy.is_empty() {
        ctx.record_clear(dx, dx.len());
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("maxpool2d_backward"), &p, &[x, dy, dx], dx.len())
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
