//! maxpool2d: NHWC max pooling, forward and backward.

use cpu::maxpool2d::{self as k, Pool2dDims};

use crate::{Device, Padding, Result, Shape, Tensor, TensorError};

/// The kernel dims for input shape `[n, h, w, c]`.
pub fn maxpool2d_dims(
    x: &Shape,
    size: usize,
    stride: usize,
    padding: Padding,
) -> Result<Pool2dDims> {
    let xd = x.dims();
    if xd.len() != 4 {
        return Err(TensorError::shape(
            "maxpool2d",
            format!("input must be [n, h, w, c], got {x}"),
        ));
    }
    Pool2dDims::new(xd[0], xd[1], xd[2], xd[3], size, stride, padding).ok_or_else(|| {
        TensorError::shape(
            "maxpool2d",
            format!("window {size} stride {stride} with {padding} padding does not fit input {x}"),
        )
    })
}

fn output_shape(d: &Pool2dDims) -> Shape {
    Shape::new([d.n, d.out_h, d.out_w, d.c])
}

pub fn maxpool2d(x: &Tensor, size: usize, stride: usize, padding: Padding) -> Result<Tensor> {
    let d = maxpool2d_dims(x.shape(), size, stride, padding)?;
    let dev = x.device();
    let mut y = Tensor::uninit_on(output_shape(&d), &dev)?;
    match dev {
        Device::Cpu => k::maxpool2d_forward(&d, x.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::maxpool2d::maxpool2d_forward(&ctx, &d, x.gpu_buf(), y.gpu_buf())?,
    }
    Ok(y)
}

/// Routes each window's gradient to its maximum in the forward input `x`.
pub fn maxpool2d_backward(
    x: &Tensor,
    dy: &Tensor,
    size: usize,
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let d = maxpool2d_dims(x.shape(), size, stride, padding)?;
    crate::ops::same_shape("maxpool2d_backward", dy.shape(), &output_shape(&d))?;
    let dev = crate::ops::same_device("maxpool2d_backward", &[x, dy])?;
    let mut dx = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => k::maxpool2d_backward(&d, x.as_slice(), dy.as_slice(), dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::maxpool2d::maxpool2d_backward(&ctx, &d, x.gpu_buf(), dy.gpu_buf(), dx.gpu_buf())?
        }
    }
    Ok(dx)
}
