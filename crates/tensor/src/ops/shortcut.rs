//! The "option A" residual shortcut of He et al. (2016, section 4.2): subsample the input with
//! a stride and zero-pad its channels, so an identity path fits a block that halves the size
//! and doubles the channels, with no parameters.
//!
//! `y[b, i, j, pad_before + ch] = x[b, i * stride, j * stride, ch]`, other channels 0; the
//! backward takes the same positions back out of `dy`.

use cpu::shortcut::{self as k, ShortcutDims};

use crate::{Device, Result, Tensor, TensorError};

fn dims(
    x_dims: &[usize],
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Result<ShortcutDims> {
    let &[n, h, w, c] = x_dims else {
        return Err(TensorError::shape(
            "subsample_pad",
            format!("input must be [n, h, w, c], got {x_dims:?}"),
        ));
    };
    if stride == 0 {
        return Err(TensorError::argument(
            "subsample_pad",
            "stride must be at least 1",
        ));
    }
    Ok(ShortcutDims {
        n,
        h,
        w,
        c,
        stride,
        pad_before,
        pad_after,
    })
}

/// `[n, h, w, c] -> [n, ceil(h / stride), ceil(w / stride), pad_before + c + pad_after]`.
pub fn subsample_pad(
    x: &Tensor,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Result<Tensor> {
    let d = dims(x.dims(), stride, pad_before, pad_after)?;
    let dev = x.device();
    let mut y = Tensor::uninit_on([d.n, d.out_h(), d.out_w(), d.c_out()], &dev)?;
    match dev {
        Device::Cpu => k::subsample_pad(&d, x.as_slice(), y.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::shortcut::subsample_pad(&ctx, &d, x.gpu_buf(), y.gpu_buf())?,
    }
    Ok(y)
}

/// Backward of [`subsample_pad`] for an input of shape `x_dims`.
pub fn subsample_pad_backward(
    dy: &Tensor,
    x_dims: &[usize],
    stride: usize,
    pad_before: usize,
) -> Result<Tensor> {
    let c_out = dy.shape().last();
    let c = x_dims.last().copied().unwrap_or(0);
    if c_out < pad_before + c {
        return Err(TensorError::shape(
            "subsample_pad_backward",
            format!("gradient {} does not fit", dy.shape()),
        ));
    }
    let d = dims(x_dims, stride, pad_before, c_out - pad_before - c)?;
    if dy.dims() != [d.n, d.out_h(), d.out_w(), d.c_out()] {
        return Err(TensorError::shape(
            "subsample_pad_backward",
            format!("gradient {} does not fit", dy.shape()),
        ));
    }
    let dev = dy.device();
    let mut dx = Tensor::uninit_on(x_dims.to_vec(), &dev)?;
    match dev {
        Device::Cpu => k::subsample_pad_backward(&d, dy.as_slice(), dx.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            gpu::shortcut::subsample_pad_backward(&ctx, &d, dy.gpu_buf(), dx.gpu_buf())?
        }
    }
    Ok(dx)
}
