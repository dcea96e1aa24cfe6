//! batchnorm: per-channel normalisation over every dimension but the last (Keras'
//! BatchNormalization on NHWC or `[n, features]`), training and inference forms.

use cpu::batchnorm::BatchNormDims;

use crate::{Device, Result, Tensor, TensorError};

fn check(op: &'static str, x: &Tensor, params: &[&Tensor]) -> Result<usize> {
    let c = x.shape().last();
    for p in params {
        if p.dims() != [c] {
            return Err(TensorError::shape(
                op,
                format!(
                    "per-channel parameter {} does not match {} channels of {}",
                    p.shape(),
                    c,
                    x.shape()
                ),
            ));
        }
    }
    Ok(c)
}

/// Training forward with batch statistics. Returns `(y, batch mean, batch variance)`.
pub fn batchnorm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = check("batchnorm", x, &[gamma, beta])?;
    let dev = crate::ops::same_device("batchnorm", &[x, gamma, beta])?;
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    let (mut mean, mut var) = (Tensor::uninit_on([c], &dev)?, Tensor::uninit_on([c], &dev)?);
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::batchnorm::batchnorm_forward_train(
            &ctx,
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.gpu_buf(),
            gamma.gpu_buf(),
            beta.gpu_buf(),
            y.gpu_buf(),
            mean.gpu_buf(),
            var.gpu_buf(),
        )?,
        Device::Cpu => cpu::batchnorm::batchnorm_forward_train(
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.as_slice(),
            gamma.as_slice(),
            beta.as_slice(),
            y.data_mut(),
            mean.data_mut(),
            var.data_mut(),
        ),
    }
    Ok((y, mean, var))
}

/// Inference forward with the moving statistics.
pub fn batchnorm_infer(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    moving_mean: &Tensor,
    moving_var: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let c = check("batchnorm", x, &[gamma, beta, moving_mean, moving_var])?;
    let dev = crate::ops::same_device("batchnorm", &[x, gamma, beta, moving_mean, moving_var])?;
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::batchnorm::batchnorm_forward_infer(
            &ctx,
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.gpu_buf(),
            gamma.gpu_buf(),
            beta.gpu_buf(),
            moving_mean.gpu_buf(),
            moving_var.gpu_buf(),
            y.gpu_buf(),
        )?,
        Device::Cpu => cpu::batchnorm::batchnorm_forward_infer(
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.as_slice(),
            gamma.as_slice(),
            beta.as_slice(),
            moving_mean.as_slice(),
            moving_var.as_slice(),
            y.data_mut(),
        ),
    }
    Ok(y)
}

/// Backward of [`batchnorm_train`]: `(dx, dgamma, dbeta)`.
pub fn batchnorm_backward(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = check("batchnorm_backward", x, &[gamma, mean, var])?;
    crate::ops::same_shape("batchnorm_backward", x.shape(), dy.shape())?;
    let dev = crate::ops::same_device("batchnorm_backward", &[x, dy, gamma, mean, var])?;
    let mut dx = Tensor::uninit_on(x.shape().clone(), &dev)?;
    let (mut dg, mut db) = (Tensor::uninit_on([c], &dev)?, Tensor::uninit_on([c], &dev)?);
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::batchnorm::batchnorm_backward(
            &ctx,
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.gpu_buf(),
            dy.gpu_buf(),
            gamma.gpu_buf(),
            mean.gpu_buf(),
            var.gpu_buf(),
            dx.gpu_buf(),
            dg.gpu_buf(),
            db.gpu_buf(),
        )?,
        Device::Cpu => cpu::batchnorm::batchnorm_backward(
            &BatchNormDims::from_len(x.numel(), c, eps),
            x.as_slice(),
            dy.as_slice(),
            gamma.as_slice(),
            mean.as_slice(),
            var.as_slice(),
            dx.data_mut(),
            dg.data_mut(),
            db.data_mut(),
        ),
    }
    Ok((dx, dg, db))
}

/// Training forward followed by ReLU: `y = max(0, batchnorm(x))`, with the batch statistics
/// as [`batchnorm_train`] returns them. On the CPU the ReLU is applied as `y` is written (no
/// pass of its own); on the GPU it is the ReLU kernel after the batch-norm kernels.
pub fn batchnorm_relu_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = check("batchnorm_relu", x, &[gamma, beta])?;
    let dev = crate::ops::same_device("batchnorm_relu", &[x, gamma, beta])?;
    if dev.is_gpu() {
        let (y, mean, var) = batchnorm_train(x, gamma, beta, eps)?;
        return Ok((crate::ops::relu(&y)?, mean, var));
    }
    let mut y = Tensor::uninit_on(x.shape().clone(), &dev)?;
    let (mut mean, mut var) = (Tensor::uninit_on([c], &dev)?, Tensor::uninit_on([c], &dev)?);
    cpu::batchnorm::batchnorm_relu_forward_train(
        &BatchNormDims::from_len(x.numel(), c, eps),
        x.as_slice(),
        gamma.as_slice(),
        beta.as_slice(),
        y.data_mut(),
        mean.data_mut(),
        var.data_mut(),
    );
    Ok((y, mean, var))
}

/// Backward of [`batchnorm_relu_train`], whose output was `y`: batch norm's backward of
/// `dy * (y > 0)`. On the CPU in the passes of batch norm's backward alone (the mask is
/// recomputed from `x`, `dy * mask` is never stored); on the GPU the ReLU's backward kernel,
/// then batch norm's. Returns `(dx, dgamma, dbeta)`.
// The tensors of batch norm's backward, plus the forward's beta and output.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_backward(
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "batchnorm_relu_backward";
    let c = check(op, x, &[gamma, beta, mean, var])?;
    crate::ops::same_shape(op, x.shape(), dy.shape())?;
    crate::ops::same_shape(op, x.shape(), y.shape())?;
    let dev = crate::ops::same_device(op, &[x, y, dy, gamma, beta, mean, var])?;
    if dev.is_gpu() {
        let dz = crate::ops::relu_backward(y, dy)?;
        return batchnorm_backward(x, &dz, gamma, mean, var, eps);
    }
    let mut dx = Tensor::uninit_on(x.shape().clone(), &dev)?;
    let (mut dg, mut db) = (Tensor::uninit_on([c], &dev)?, Tensor::uninit_on([c], &dev)?);
    cpu::batchnorm::batchnorm_relu_backward(
        &BatchNormDims::from_len(x.numel(), c, eps),
        x.as_slice(),
        dy.as_slice(),
        gamma.as_slice(),
        beta.as_slice(),
        mean.as_slice(),
        var.as_slice(),
        dx.data_mut(),
        dg.data_mut(),
        db.data_mut(),
    );
    Ok((dx, dg, db))
}

/// `moving = momentum * moving + (1 - momentum) * batch`, in place.
///
/// `guard`, when given, is a one-element tensor (the step's loss): if it is not finite the
/// average is left unchanged, so a step that produced NaN changes nothing (on the GPU this is
/// decided on the device, without a readback).
pub fn update_moving_average(
    moving: &mut Tensor,
    batch: &Tensor,
    momentum: f32,
    guard: Option<&Tensor>,
) -> Result<()> {
    crate::ops::same_shape("update_moving_average", moving.shape(), batch.shape())?;
    let dev = crate::ops::same_device("update_moving_average", &[moving, batch])?;
    match dev {
        Device::Cpu => {
            if crate::ops::guard_allows(guard)? {
                cpu::batchnorm::update_moving_average(momentum, batch.as_slice(), moving.data_mut())
            }
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let guard = crate::ops::gpu_guard("update_moving_average", guard)?;
            gpu::batchnorm::update_moving_average(
                &ctx,
                momentum,
                batch.gpu_buf(),
                moving.gpu_buf_mut(),
                guard,
            )?
        }
    }
    Ok(())
}
