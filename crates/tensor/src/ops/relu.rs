//! relu: `max(x, 0)` and its gradient.

use crate::{Device, Result, Tensor};

pub fn relu(x: &Tensor) -> Result<Tensor> {
    let dev = x.device();
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => cpu::relu::relu_forward(x.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::relu_forward(&ctx, x.gpu_buf(), y.gpu_buf())?,
    }
    Ok(y)
}

/// `dx = dy` where the forward output `y` is positive, else 0.
pub fn relu_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    crate::ops::same_shape("relu_backward", y.shape(), dy.shape())?;
    let dev = crate::ops::same_device("relu_backward", &[y, dy])?;
    let mut dx = Tensor::uninit_on(y.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => cpu::relu::relu_backward(y.as_slice(), dy.as_slice(), dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::elementwise::relu_backward(&ctx, y.gpu_buf(), dy.gpu_buf(), dx.gpu_buf())?
        }
    }
    Ok(dx)
}
