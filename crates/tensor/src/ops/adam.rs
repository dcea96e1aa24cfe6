//! adam: the in-place Adam update of one parameter tensor.

pub use cpu::adam::{adam_step_size, AdamHyper};

use crate::{Device, Result, Tensor};

/// Updates `param`, `m` and `v` in place from `grad`, with step size `lr_t` from
/// [`adam_step_size`].
pub fn adam_update(
    param: &mut Tensor,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    h: &AdamHyper,
    lr_t: f32,
    guard: Option<&Tensor>,
) -> Result<()> {
    for other in [grad.shape(), m.shape(), v.shape()] {
        crate::ops::same_shape("adam_update", param.shape(), other)?;
    }
    match crate::ops::same_device("adam_update", &[param, grad, m, v])? {
        Device::Cpu => {
            if crate::ops::guard_allows(guard)? {
                cpu::adam::adam_update(
                    param.data_mut(),
                    grad.as_slice(),
                    m.data_mut(),
                    v.data_mut(),
                    h,
                    lr_t,
                )
            }
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let guard = crate::ops::gpu_guard("adam_update", guard)?;
            gpu::adam::adam_update(
                &ctx,
                param.gpu_buf_mut(),
                grad.gpu_buf(),
                m.gpu_buf_mut(),
                v.gpu_buf_mut(),
                h,
                lr_t,
                guard,
            )?
        }
    }
    Ok(())
}
