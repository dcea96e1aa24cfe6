//! SGD with optional (Nesterov) momentum, Keras semantics (see `cpu/src/sgd.rs`).

pub use cpu::sgd::SgdHyper;

use crate::{Device, Result, Tensor};

/// One SGD update of `param` in place. `velocity` is required when `h.momentum != 0`.
/// `guard`: see [`crate::ops::update_moving_average`]; a non-finite guard changes nothing.
pub fn sgd_update(
    param: &mut Tensor,
    grad: &Tensor,
    velocity: Option<&mut Tensor>,
    h: &SgdHyper,
    guard: Option<&Tensor>,
) -> Result<()> {
    crate::ops::same_shape("sgd_update", param.shape(), grad.shape())?;
    if let Some(v) = &velocity {
        crate::ops::same_shape("sgd_update", param.shape(), v.shape())?;
    }
    let mut operands = vec![&*param, grad];
    operands.extend(velocity.as_deref());
    match crate::ops::same_device("sgd_update", &operands)? {
        Device::Cpu => {
            if crate::ops::guard_allows(guard)? {
                let v: &mut [f32] = match velocity {
                    Some(v) => v.data_mut(),
                    None => &mut [],
                };
                cpu::sgd::sgd_update(param.data_mut(), grad.as_slice(), v, h)
            }
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let guard = crate::ops::gpu_guard("sgd_update", guard)?;
            let v = velocity.map(|v| v.gpu_buf_mut());
            gpu::sgd::sgd_update(&ctx, param.gpu_buf_mut(), grad.gpu_buf(), v, h, guard)?
        }
    }
    Ok(())
}
