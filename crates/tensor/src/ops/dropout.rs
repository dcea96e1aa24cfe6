//! dropout: inverted dropout with a counter-based, seeded mask.

use crate::{Device, Result, Tensor, TensorError};

/// Returns `(y, mask)` where `mask` holds `1/(1-p)` for kept elements and 0 for dropped ones.
pub fn dropout(x: &Tensor, p: f32, seed: u32) -> Result<(Tensor, Tensor)> {
    if !(0.0..1.0).contains(&p) {
        return Err(TensorError::argument(
            "dropout",
            format!("rate must be in [0, 1), got {p}"),
        ));
    }
    let dev = x.device();
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    let mut mask = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => {
            cpu::dropout::dropout_forward(x.as_slice(), p, seed, y.data_mut(), mask.data_mut())
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::dropout::dropout_forward(&ctx, x.gpu_buf(), p, seed, y.gpu_buf(), mask.gpu_buf())?
        }
    }
    Ok((y, mask))
}

/// `dx = dy * mask`.
pub fn dropout_backward(dy: &Tensor, mask: &Tensor) -> Result<Tensor> {
    crate::ops::same_shape("dropout_backward", dy.shape(), mask.shape())?;
    let dev = crate::ops::same_device("dropout_backward", &[dy, mask])?;
    let mut dx = Tensor::uninit_on(dy.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => {
            cpu::dropout::dropout_backward(dy.as_slice(), mask.as_slice(), dx.data_mut())
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::dropout::dropout_backward(&ctx, dy.gpu_buf(), mask.gpu_buf(), dx.gpu_buf())?
        }
    }
    Ok(dx)
}
