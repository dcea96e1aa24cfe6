//! lrn: local response normalisation across channels (tf.nn.lrn).

pub use cpu::lrn::LrnParams;

use crate::{Device, Result, Tensor};

pub fn lrn(x: &Tensor, p: &LrnParams) -> Result<Tensor> {
    let c = x.shape().last();
    let dev = x.device();
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => cpu::lrn::lrn_forward(x.as_slice(), c, p, y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::lrn::lrn_forward(&ctx, x.gpu_buf(), c, p, y.gpu_buf())?,
    }
    Ok(y)
}

pub fn lrn_backward(x: &Tensor, dy: &Tensor, p: &LrnParams) -> Result<Tensor> {
    crate::ops::same_shape("lrn_backward", x.shape(), dy.shape())?;
    let c = x.shape().last();
    let dev = crate::ops::same_device("lrn_backward", &[x, dy])?;
    let mut dx = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => cpu::lrn::lrn_backward(x.as_slice(), dy.as_slice(), c, p, dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::lrn::lrn_backward(&ctx, x.gpu_buf(), dy.gpu_buf(), c, p, dx.gpu_buf())?
        }
    }
    Ok(dx)
}
