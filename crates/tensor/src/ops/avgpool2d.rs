//! avgpool2d: NHWC average pooling (padding excluded from the count, as TensorFlow), and
//! global average pooling `[n, h, w, c] -> [n, c]`.

use cpu::avgpool2d as k;

use crate::{Device, Padding, Result, Shape, Tensor, TensorError};

fn dims(x: &Shape, size: usize, stride: usize, padding: Padding) -> Result<k::AvgPool2dDims> {
    let xd = x.dims();
    if xd.len() != 4 {
        return Err(TensorError::shape(
            "avgpool2d",
            format!("input must be [n, h, w, c], got {x}"),
        ));
    }
    k::AvgPool2dDims::new(xd[0], xd[1], xd[2], xd[3], size, stride, padding).ok_or_else(|| {
        TensorError::shape(
            "avgpool2d",
            format!("window {size} stride {stride} with {padding} padding does not fit input {x}"),
        )
    })
}

pub fn avgpool2d(x: &Tensor, size: usize, stride: usize, padding: Padding) -> Result<Tensor> {
    let d = dims(x.shape(), size, stride, padding)?;
    let dev = x.device();
    let mut y = Tensor::uninit_on([d.n, d.out_h, d.out_w, d.c], &dev)?;
    match dev {
        Device::Cpu => k::avgpool2d_forward(&d, x.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::avgpool2d::avgpool2d_forward(&ctx, &d, x.gpu_buf(), y.gpu_buf())?,
    }
    Ok(y)
}

pub fn avgpool2d_backward(
    x_shape: &Shape,
    dy: &Tensor,
    size: usize,
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let d = dims(x_shape, size, stride, padding)?;
    crate::ops::same_shape(
        "avgpool2d_backward",
        dy.shape(),
        &Shape::new([d.n, d.out_h, d.out_w, d.c]),
    )?;
    let dev = dy.device();
    let mut dx = Tensor::uninit_on(x_shape.clone(), &dev)?;
    match dev {
        Device::Cpu => k::avgpool2d_backward(&d, dy.as_slice(), dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::avgpool2d::avgpool2d_backward(&ctx, &d, dy.gpu_buf(), dx.gpu_buf())?
        }
    }
    Ok(dx)
}

fn gap_dims(x: &Shape) -> Result<(usize, usize, usize)> {
    match x.dims() {
        &[n, h, w, c] => Ok((n, h * w, c)),
        _ => Err(TensorError::shape(
            "global_avgpool",
            format!("input must be [n, h, w, c], got {x}"),
        )),
    }
}

pub fn global_avgpool(x: &Tensor) -> Result<Tensor> {
    let (n, hw, c) = gap_dims(x.shape())?;
    let dev = x.device();
    let mut y = Tensor::uninit_on([n, c], &dev)?;
    match dev {
        Device::Cpu => k::global_avgpool_forward(x.as_slice(), n, hw, c, y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::avgpool2d::global_avgpool_forward(&ctx, x.gpu_buf(), n, hw, c, y.gpu_buf())?
        }
    }
    Ok(y)
}

pub fn global_avgpool_backward(x_shape: &Shape, dy: &Tensor) -> Result<Tensor> {
    let (n, hw, c) = gap_dims(x_shape)?;
    crate::ops::same_shape("global_avgpool_backward", dy.shape(), &Shape::new([n, c]))?;
    let dev = dy.device();
    let mut dx = Tensor::uninit_on(x_shape.clone(), &dev)?;
    match dev {
        Device::Cpu => k::global_avgpool_backward(dy.as_slice(), n, hw, c, dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::avgpool2d::global_avgpool_backward(&ctx, dy.gpu_buf(), n, hw, c, dx.gpu_buf())?
        }
    }
    Ok(dx)
}
