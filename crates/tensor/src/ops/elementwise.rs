//! Element-wise arithmetic used by autograd (gradient accumulation) and the optimisers.

use crate::{Device, Result, Tensor};

/// `a + b`, same shapes, in one pass into a new tensor.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::ops::same_shape("add", a.shape(), b.shape())?;
    let dev = crate::ops::same_device("add", &[a, b])?;
    let mut y = Tensor::uninit_on(a.shape().clone(), &dev)?;
    match dev {
        Device::Cpu => cpu::elementwise::add(a.as_slice(), b.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::add(&ctx, a.gpu_buf(), b.gpu_buf(), y.gpu_buf())?,
    }
    Ok(y)
}

/// `y = max(a + b, 0)`, same shapes, in one pass on the CPU (a residual block's sum and ReLU).
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::ops::same_shape("add_relu", a.shape(), b.shape())?;
    match crate::ops::same_device("add_relu", &[a, b])? {
        Device::Cpu => {
            let mut y = Tensor::uninit_on(a.shape().clone(), &Device::Cpu)?;
            cpu::elementwise::add_relu(a.as_slice(), b.as_slice(), y.data_mut());
            Ok(y)
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => crate::ops::relu(&add(a, b)?),
    }
}

/// `a += b`, same shapes.
pub fn add_assign(a: &mut Tensor, b: &Tensor) -> Result<()> {
    crate::ops::same_shape("add", a.shape(), b.shape())?;
    match crate::ops::same_device("add", &[a, b])? {
        Device::Cpu => cpu::elementwise::add_assign(a.data_mut(), b.as_slice()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::add_assign(&ctx, a.gpu_buf_mut(), b.gpu_buf())?,
    }
    Ok(())
}

/// `y += alpha * x` (the L2 penalty's gradient: `grad += 2 wd * w`).
pub fn axpy(alpha: f32, x: &Tensor, y: &mut Tensor) -> Result<()> {
    crate::ops::same_shape("axpy", x.shape(), y.shape())?;
    match crate::ops::same_device("axpy", &[x, y])? {
        Device::Cpu => cpu::elementwise::axpy(alpha, x.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::axpy(&ctx, alpha, x.gpu_buf(), y.gpu_buf_mut())?,
    }
    Ok(())
}

/// `sum(x^2)` as a one-element tensor on `x`'s device (summed in f64 on the CPU).
pub fn sum_squares(x: &Tensor) -> Result<Tensor> {
    let dev = x.device();
    match &dev {
        Device::Cpu => {
            let s: f64 = x.as_slice().iter().map(|&v| (v as f64) * (v as f64)).sum();
            Ok(Tensor::scalar(s as f32))
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let out = Tensor::uninit_on(crate::Shape::new(vec![]), &dev)?;
            gpu::elementwise::sum_squares(ctx, x.gpu_buf(), out.gpu_buf(), 0)?;
            Ok(out)
        }
    }
}
