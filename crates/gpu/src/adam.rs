//! Adam on the GPU: the kernels of `shaders/adam.wgsl` (after `shaders/optim.wgsl`), the
//! twin of `cpu::adam`, taking the same hyper-parameters. See optim.rs for the guard.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::optim::{update, Params};
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::adam::AdamHyper;

/// The WGSL source of the Adam update.
pub const SHADER: Shader = Shader {
    name: "adam",
    source: concat!(
        include_str!("../../../shaders/optim.wgsl"),
        include_str!("../../../shaders/adam.wgsl")
    ),
    trusted: false,
};

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// One Adam step on every element, as `cpu::adam::adam_update` (`lr_t` from
/// `cpu::adam::adam_step_size`): `m += (g - m)(1 - beta1)`, `v += (g^2 - v)(1 - beta2)`,
/// `param -= m lr_t / (sqrt(v) + epsilon)`. Nothing changes when `guard[0]` is not finite.
// The arguments of the CPU twin plus the context and the guard: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    ctx: &GpuContext,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    m: &GpuBuffer,
    v: &GpuBuffer,
    h: &AdamHyper,
    lr_t: f32,
    guard: Option<&GpuBuffer>,
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
        kernel("adam"),
        params,
        param,
        grad,
        &[(m, "m"), (v, "v")],
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
