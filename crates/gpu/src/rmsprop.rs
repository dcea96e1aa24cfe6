//! RMSprop on the GPU: the kernels of `shaders/rmsprop.wgsl` (after `shaders/optim.wgsl`), the
//! twin of `cpu::rmsprop`, taking the same hyper-parameters. See optim.rs for the guard.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::optim::{update, Params};
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::rmsprop::RmspropHyper;

/// The WGSL source of the RMSprop update.
pub const SHADER: Shader = Shader {
    name: "rmsprop",
    source: concat!(
        include_str!("../../../shaders/optim.wgsl"),
        include_str!("../../../shaders/rmsprop.wgsl")
    ),
    trusted: false,
};

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// One RMSprop step on every element, as `cpu::rmsprop::rmsprop_update` (`lr_t` from
/// `cpu::rmsprop::rmsprop_step_size`): `accum = rho accum + (1 - rho) g^2`,
/// `param -= lr_t g / (sqrt(accum) + epsilon)`. Nothing changes when `guard[0]` is not finite.
// The arguments of the CPU twin plus the context and the guard: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update(
    ctx: &GpuContext,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    accum: &GpuBuffer,
    h: &RmspropHyper,
    lr_t: f32,
    guard: Option<&GpuBuffer>,
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
        kernel("rmsprop"),
        params,
        param,
        grad,
        &[(accum, "accum")],
        guard,
    )
}

crate::uniform_matches!(
    SHADER,
    "Params",
    crate::optim::Params {
        n,
        flags,
        lr,
        c1,
        c2,
        eps
    }
);
