//! What the GPU optimiser updates share (adam.rs, sgd.rs, rmsprop.rs; `shaders/optim.wgsl` is
//! the shader-side twin): the uniform, and the checks and dispatch of one update.
//!
//! Every update takes a `guard`: a buffer whose element 0 holds this step's loss. When it is not
//! finite (NaN or inf) the kernel changes nothing, so a diverging step is skipped on the GPU
//! without a readback. `None` means no guard (the kernel then reads a zero).

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::elementwise::{count, distinct, same_len};
use crate::error::GpuError;
use crate::record::Kernel;

/// `Params` in optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) flags: u32,
    pub(crate) lr: f32,
    pub(crate) c1: f32,
    pub(crate) c2: f32,
    pub(crate) eps: f32,
}

/// `flags` bit of `sgd_momentum`: Nesterov momentum.
pub(crate) const NESTEROV: u32 = 1;

/// Checks the lengths and the guard, then records `entry` over `param.len()` elements with the
/// buffers bound as (guard, grad, param, states...).
pub(crate) fn update(
    ctx: &GpuContext,
    kernel: Kernel,
    mut params: Params,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    states: &[(&GpuBuffer, &str)],
    guard: Option<&GpuBuffer>,
) -> Result<(), GpuError> {
    let entry = kernel.entry;
    let guard = guard.unwrap_or_else(|| ctx.zero());
    let n = param.len();
    same_len(grad, n, &format!("{entry}: grad"))?;
    for (s, name) in states {
        same_len(s, n, &format!("{entry}: {name}"))?;
    }
    if guard.is_empty() {
        return Err(GpuError::Shape(format!(
            "{entry}: the guard buffer is empty (pass None for no guard)"
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
    ctx.dispatch_threads(kernel, &params, &buffers, n)
}
