//! Batch normalisation on the GPU: the kernels of `shaders/batchnorm.wgsl` and their dispatch.
//!
//! The math and layout are those of `cpu::batchnorm` (`rows x c`, channels last; per-channel
//! vectors of length `c`): training forward (batch mean and biased variance, then normalise),
//! inference forward, the backward of the training forward, and the moving averages. The
//! reductions are one workgroup per channel with a fixed-order tree in workgroup memory, so
//! results are deterministic; they are accumulated in f32 (around a shift, then around the
//! mean) where the CPU uses f64, and agree with it to about 1e-6 relative.

use crate::buffer::GpuBuffer;
use crate::checks::{check_distinct, check_len, check_u32};
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::{grid, Kernel};
use cpu::batchnorm::BatchNormDims;

/// The WGSL source of the batch-normalisation family.
pub const SHADER: Shader = Shader {
    name: "batchnorm",
    source: include_str!("../../../shaders/batchnorm.wgsl"),
    trusted: false,
};

/// The uniform the shader reads its sizes from (`Bn` in batchnorm.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    c: u32,
    eps: f32,
    total: u32,
    momentum: f32,
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// Checks `d` against `x` (`rows x c` elements) and the per-channel vectors (`c` each).
fn check_dims(
    what: &str,
    d: &BatchNormDims,
    x: &GpuBuffer,
    per_channel: &[(&str, &GpuBuffer)],
) -> Result<(), GpuError> {
    if d.c == 0 {
        return Err(GpuError::Shape(format!("{what}: c is 0")));
    }
    check_len(what, "x", x, d.input_len())?;
    for (name, v) in per_channel {
        check_len(what, name, v, d.c)?;
    }
    check_u32(what, x.len())
}

fn params(d: &BatchNormDims) -> Params {
    Params {
        rows: d.rows as u32,
        c: d.c as u32,
        eps: d.eps,
        total: d.input_len() as u32,
        momentum: 0.0,
    }
}

/// Training forward: writes the batch `mean` and biased `var` of each channel, then
/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`. With no rows, `mean` and `var` are 0.
/// Matches `cpu::batchnorm::batchnorm_forward_train` to rounding.
// The CPU twin's arguments, in its order, plus the context.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_train(
    ctx: &GpuContext,
    d: &BatchNormDims,
    x: &GpuBuffer,
    gamma: &GpuBuffer,
    beta: &GpuBuffer,
    y: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "batchnorm forward";
    check_dims(
        WHAT,
        d,
        x,
        &[
            ("gamma", gamma),
            ("beta", beta),
            ("mean", mean),
            ("var", var),
        ],
    )?;
    check_len(WHAT, "y", y, x.len())?;
    check_distinct(WHAT, &[x, gamma, beta, y, mean, var])?;
    if d.rows == 0 {
        ctx.record_clear(mean, d.c);
        ctx.record_clear(var, d.c);
        return Ok(());
    }
    let p = params(d);
    ctx.dispatch(kernel("bn_stats"), &p, &[x, mean, var], grid(d.c as u64)?)?;
    ctx.dispatch_threads(
        kernel("bn_normalize"),
        &p,
        &[x, gamma, beta, mean, var, y],
        x.len(),
    )
}

/// Inference forward: `y = gamma * (x - moving_mean) / sqrt(moving_var + eps) + beta`.
/// Matches `cpu::batchnorm::batchnorm_forward_infer` to rounding.
// The CPU twin's arguments, in its order, plus the context.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_infer(
    ctx: &GpuContext,
    d: &BatchNormDims,
    x: &GpuBuffer,
    gamma: &GpuBuffer,
    beta: &GpuBuffer,
    moving_mean: &GpuBuffer,
    moving_var: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "batchnorm inference";
    check_dims(
        WHAT,
        d,
        x,
        &[
            ("gamma", gamma),
            ("beta", beta),
            ("moving_mean", moving_mean),
            ("moving_var", moving_var),
        ],
    )?;
    check_len(WHAT, "y", y, x.len())?;
    check_distinct(WHAT, &[x, gamma, beta, moving_mean, moving_var, y])?;
    if d.rows == 0 {
        return Ok(());
    }
    ctx.dispatch_threads(
        kernel("bn_normalize"),
        &params(d),
        &[x, gamma, beta, moving_mean, moving_var, y],
        x.len(),
    )
}

/// Backward of the training forward: overwrites `dx`, `dgamma` (`sum dy * xhat`) and `dbeta`
/// (`sum dy`); `mean` and `var` are the batch statistics the forward wrote. With no rows,
/// `dgamma` and `dbeta` are 0. Matches `cpu::batchnorm::batchnorm_backward` to rounding.
// The CPU twin's arguments, in its order, plus the context.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    ctx: &GpuContext,
    d: &BatchNormDims,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    gamma: &GpuBuffer,
    mean: &GpuBuffer,
    var: &GpuBuffer,
    dx: &GpuBuffer,
    dgamma: &GpuBuffer,
    dbeta: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "batchnorm backward";
    check_dims(
        WHAT,
        d,
        x,
        &[
            ("gamma", gamma),
            ("mean", mean),
            ("var", var),
            ("dgamma", dgamma),
            ("dbeta", dbeta),
        ],
    )?;
    check_len(WHAT, "dy", dy, x.len())?;
    check_len(WHAT, "dx", dx, x.len())?;
    check_distinct(WHAT, &[x, dy, gamma, mean, var, dx, dgamma, dbeta])?;
    if d.rows == 0 {
        ctx.record_clear(dgamma, d.c);
        ctx.record_clear(dbeta, d.c);
        return Ok(());
    }
    let p = params(d);
    ctx.dispatch(
        kernel("bn_backward_reduce"),
        &p,
        &[x, dy, mean, var, dgamma, dbeta],
        grid(d.c as u64)?,
    )?;
    ctx.dispatch_threads(
        kernel("bn_backward_dx"),
        &p,
        &[x, dy, gamma, mean, var, dgamma, dbeta, dx],
        x.len(),
    )
}

/// `moving = momentum * moving + (1 - momentum) * batch`, element-wise, unless `guard[0]` is
/// not finite (inf or NaN), in which case `moving` is left unchanged; `None` means no guard.
/// Matches `cpu::batchnorm::update_moving_average`.
pub fn update_moving_average(
    ctx: &GpuContext,
    momentum: f32,
    batch: &GpuBuffer,
    moving: &GpuBuffer,
    guard: Option<&GpuBuffer>,
) -> Result<(), GpuError> {
    const WHAT: &str = "update_moving_average";
    let guard = guard.unwrap_or_else(|| ctx.zero());
    check_len(WHAT, "batch", batch, moving.len())?;
    if guard.is_empty() {
        return Err(GpuError::Shape(format!(
            "{WHAT}: the guard buffer is empty"
        )));
    }
    check_u32(WHAT, moving.len())?;
    check_distinct(WHAT, &[moving, batch, guard])?;
    if moving.is_empty() {
        return Ok(());
    }
    let p = Params {
        rows: 0,
        c: 1,
        eps: 0.0,
        total: moving.len() as u32,
        momentum,
    };
    ctx.dispatch_threads(
        kernel("bn_moving_average"),
        &p,
        &[moving, batch, guard],
        moving.len(),
    )
}

crate::uniform_matches!(
    SHADER,
    "Bn",
    Params {
        rows,
        c,
        eps,
        total,
        momentum
    }
);
