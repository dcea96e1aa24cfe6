//! Optimiser updates on the GPU (`shaders/optim.wgsl`): Adam, SGD (plain, momentum, Nesterov)
//! and RMSprop, the twins of `cpu::adam`, `cpu::sgd` and `cpu::rmsprop`, taking the same
//! hyper-parameter structs.
//!
//! Every update takes a `guard`: a buffer whose element 0 holds this step's loss. When it is not
//! finite (NaN or inf) the kernel changes nothing, so a diverging step is skipped on the GPU
//! without a readback. Callers with no loss to guard on pass `&ctx.dummy` (a zero).

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::elementwise::{count, distinct, same_len};
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::adam::AdamHyper;
use cpu::rmsprop::RmspropHyper;
use cpu::sgd::SgdHyper;

/// The WGSL source of the optimiser updates.
pub const SHADER: Shader = Shader {
    name: "optim",
    source: include_str!("../../../shaders/optim.wgsl"),
    trusted: false,
};

/// `Params` in optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    flags: u32,
    lr: f32,
    c1: f32,
    c2: f32,
    eps: f32,
}

const NESTEROV: u32 = 1;

/// Checks the lengths and the guard, then records `entry` over `param.len()` elements with the
/// buffers bound as (guard, grad, param, states...).
fn update(
    ctx: &GpuContext,
    entry: &'static str,
    mut params: Params,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    states: &[(&GpuBuffer, &str)],
    guard: &GpuBuffer,
) -> Result<(), GpuError> {
    let n = param.len();
    same_len(grad, n, &format!("{entry}: grad"))?;
    for (s, name) in states {
        same_len(s, n, &format!("{entry}: {name}"))?;
    }
    if guard.is_empty() {
        return Err(GpuError::Shape(format!(
            "{entry}: the guard buffer is empty (pass ctx.dummy for no guard)"
        )));
    }
    let written: Vec<&GpuBuffer> = std::iter::once(param)
        .chain(states.iter().map(|(s, _)| *s))
        .collect();
    for (k, w) in written.iter().enumerate() {
        let mut others = vec![grad, guard];
        others.extend(
            written
                .iter()
                .enumerate()
                .filter(|&(o, _)| o != k)
                .map(|(_, b)| *b),
        );
        distinct(w, &others, entry)?;
    }
    params.n = count(n, entry)?;
    let mut buffers = vec![guard, grad];
    buffers.extend(written);
    let k = Kernel {
        shader: SHADER,
        entry,
    };
    ctx.dispatch_threads(k, &params, &buffers, n)
}

/// One Adam step on every element, as `cpu::adam::adam_update` (`lr_t` from
/// `cpu::adam::adam_step_size`): `m += (g - m)(1 - beta1)`, `v += (g^2 - v)(1 - beta2)`,
/// `param -= m lr_t / (sqrt(v) + epsilon)`. Nothing changes when `guard[0]` is not finite.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    ctx: &GpuContext,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    m: &GpuBuffer,
    v: &GpuBuffer,
    h: &AdamHyper,
    lr_t: f32,
    guard: &GpuBuffer,
) -> Result<(), GpuError> {
    let params = Params {
        lr: lr_t,
        c1: 1.0 - h.beta1,
        c2: 1.0 - h.beta2,
        eps: h.epsilon,
        ..Params::default()
    };
    update(
        ctx,
        "adam",
        params,
        param,
        grad,
        &[(m, "m"), (v, "v")],
        guard,
    )
}

/// One SGD step on every element, as `cpu::sgd::sgd_update`: `param -= lr g` when
/// `h.momentum` is 0 (the velocity, if any, is left alone); otherwise
/// `velocity = momentum velocity - lr g` and `param += velocity` (or, with `h.nesterov`,
/// `param += momentum velocity - lr g`), which needs a velocity buffer. Nothing changes when
/// `guard[0]` is not finite.
pub fn sgd_update(
    ctx: &GpuContext,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    velocity: Option<&GpuBuffer>,
    h: &SgdHyper,
    guard: &GpuBuffer,
) -> Result<(), GpuError> {
    let params = Params {
        flags: if h.nesterov { NESTEROV } else { 0 },
        lr: h.lr,
        c1: h.momentum,
        ..Params::default()
    };
    if h.momentum == 0.0 {
        return update(ctx, "sgd_plain", params, param, grad, &[], guard);
    }
    let Some(velocity) = velocity else {
        return Err(GpuError::Shape(format!(
            "sgd_update: momentum {} needs a velocity buffer",
            h.momentum
        )));
    };
    update(
        ctx,
        "sgd_momentum",
        params,
        param,
        grad,
        &[(velocity, "velocity")],
        guard,
    )
}

/// One RMSprop step on every element, as `cpu::rmsprop::rmsprop_update` (`lr_t` from
/// `cpu::rmsprop::rmsprop_step_size`): `accum = rho accum + (1 - rho) g^2`,
/// `param -= lr_t g / (sqrt(accum) + epsilon)`. Nothing changes when `guard[0]` is not finite.
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update(
    ctx: &GpuContext,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    accum: &GpuBuffer,
    h: &RmspropHyper,
    lr_t: f32,
    guard: &GpuBuffer,
) -> Result<(), GpuError> {
    let params = Params {
        lr: lr_t,
        c1: h.rho,
        c2: 1.0 - h.rho,
        eps: h.epsilon,
        ..Params::default()
    };
    update(
        ctx,
        "rmsprop",
        params,
        param,
        grad,
        &[(accum, "accum")],
        guard,
    )
}
