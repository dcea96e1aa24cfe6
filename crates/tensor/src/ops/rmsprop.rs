//! RMSprop as standalone Keras 2.2 (see `cpu/src/rmsprop.rs`).

pub use cpu::rmsprop::{rmsprop_step_size, RmspropHyper};

use crate::{Device, Result, Tensor};

/// One RMSprop update of `param` and its running mean square `accum`, in place, with step
/// size `lr_t` (from [`rmsprop_step_size`]). A non-finite `guard` changes nothing.
pub fn rmsprop_update(
    param: &mut Tensor,
    grad: &Tensor,
    accum: &mut Tensor,
    h: &RmspropHyper,
    lr_t: f32,
    guard: Option<&Tensor>,
) -> Result<()> {
    for other in [grad.shape(), accum.shape()] {
        crate::ops::same_shape("rmsprop_update", param.shape(), other)?;
    }
    match crate::ops::same_device("rmsprop_update", &[param, grad, accum])? {
        Device::Cpu => {
            if crate::ops::guard_allows(guard)? {
                cpu::rmsprop::rmsprop_update(
                    param.data_mut(),
                    grad.as_slice(),
                    accum.data_mut(),
                    h,
                    lr_t,
                )
            }
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let guard = crate::ops::gpu_guard("rmsprop_update", guard)?;
            gpu::rmsprop::rmsprop_update(
                &ctx,
                param.gpu_buf_mut(),
                grad.gpu_buf(),
                accum.gpu_buf_mut(),
                h,
                lr_t,
                guard,
            )?
        }
    }
    Ok(())
}
