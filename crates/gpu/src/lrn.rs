//! Local response normalisation across channels on the GPU: the kernels of `shaders/lrn.wgsl`.
//!
//! The math, layout (`pixels x c`, channels last) and parameters ([`LrnParams`]) are those of
//! `cpu::lrn`. One thread per element; each sums its channel window directly in f32 (the CPU
//! keeps an f64 running sum), so the two agree to rounding.

use crate::buffer::GpuBuffer;
use crate::checks::{check_distinct, check_len, check_u32};
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::lrn::LrnParams;

/// The WGSL source of the LRN family.
pub const SHADER: Shader = Shader {
    name: "lrn",
    source: include_str!("../../../shaders/lrn.wgsl"),
    trusted: false,
};

/// The uniform the shader reads its sizes from (`Lrn` in lrn.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    c: u32,
    total: u32,
    r: u32,
    bias: f32,
    alpha: f32,
    beta: f32,
}

fn params(what: &str, x: &GpuBuffer, c: usize, p: &LrnParams) -> Result<Params, GpuError> {
    if c == 0 {
        return Err(GpuError::Shape(format!("{what}: c is 0")));
    }
    if !x.len().is_multiple_of(c) {
        return Err(GpuError::Shape(format!(
            "{what}: x holds {} elements, not a multiple of c = {c}",
            x.len()
        )));
    }
    check_u32(what, x.len() + c)?;
    Ok(Params {
        c: c as u32,
        total: x.len() as u32,
        // A radius of c or more already covers every channel.
        r: p.depth_radius.min(c) as u32,
        bias: p.bias,
        alpha: p.alpha,
        beta: p.beta,
    })
}

/// LRN forward: `y[d] = x[d] / (bias + alpha * sum_{|d' - d| <= r} x[d']^2)^beta` per pixel of
/// `c` channels. Matches `cpu::lrn::lrn_forward` to rounding.
pub fn lrn_forward(
    ctx: &GpuContext,
    x: &GpuBuffer,
    c: usize,
    p: &LrnParams,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "lrn forward";
    let params = params(WHAT, x, c, p)?;
    check_len(WHAT, "y", y, x.len())?;
    check_distinct(WHAT, &[x, y])?;
    if x.is_empty() {
        return Ok(());
    }
    let k = Kernel {
        shader: SHADER,
        entry: "lrn_forward",
    };
    ctx.dispatch_threads(k, &params, &[x, y], x.len())
}

/// LRN backward: overwrites `dx` with the gradient through both `x[i]` itself and every `s[j]`
/// whose window holds it. Matches `cpu::lrn::lrn_backward` to rounding.
pub fn lrn_backward(
    ctx: &GpuContext,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    c: usize,
    p: &LrnParams,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "lrn backward";
    let params = params(WHAT, x, c, p)?;
    check_len(WHAT, "dy", dy, x.len())?;
    check_len(WHAT, "dx", dx, x.len())?;
    check_distinct(WHAT, &[x, dy, dx])?;
    if x.is_empty() {
        return Ok(());
    }
    let k = Kernel {
        shader: SHADER,
        entry: "lrn_backward",
    };
    ctx.dispatch_threads(k, &params, &[x, dy, dx], x.len())
}

crate::uniform_matches!(
    SHADER,
    "Lrn",
    Params {
        c,
        total,
        r,
        bias,
        alpha,
        beta
    }
);
