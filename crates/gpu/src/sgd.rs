//! SGD (plain, momentum, Nesterov) on the GPU: the kernels of `shaders/sgd.wgsl` (after `shaders/optim.wgsl`), the
//! twin of `cpu::sgd`, taking the same hyper-parameters. See optim.rs for the guard.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::optim::{update, Params, NESTEROV};
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::sgd::SgdHyper;

/// The WGSL source of the SGD (plain, momentum, Nesterov) update.
pub const SHADER: Shader = Shader {
    name: "sgd",
    source: concat!(
        include_str!("../../../shaders/optim.wgsl"),
        include_str!("../../../shaders/sgd.wgsl")
    ),
    trusted: false,
};

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
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
    guard: Option<&GpuBuffer>,
) -> Result<(), GpuError> {
    let params = Params {
        flags: if h.nesterov { NESTEROV } else { 0 },
        lr: h.lr,
        c1: h.momentum,
        ..Params::default()
    };
    if h.momentum == 0.0 {
        return update(ctx, kernel("sgd_plain"), params, param, grad, &[], guard);
    }
    let Some(velocity) = velocity else {
        return Err(GpuError::Shape(format!(
            "sgd_update: momentum {} needs a velocity buffer",
            h.momentum
        )));
    };
    update(
        ctx,
        kernel("sgd_momentum"),
        params,
        param,
        grad,
        &[(velocity, "velocity")],
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
