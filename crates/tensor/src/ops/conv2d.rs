//! conv2d: NHWC input, HWIO kernel, optional bias; forward and both backward passes.

use cpu::conv2d::{self as k, Conv2dDims};
#[cfg(feature = "gpu")]
use gpu::conv2d::{self as g, ConvVariant};
#[cfg(feature = "gpu")]
use gpu::GemmVariant;

use crate::{Device, Padding, Result, Shape, Tensor, TensorError};

/// The kernel dims for input shape `[n, h, w, c_in]` and kernel shape `[kh, kw, c_in, c_out]`.
pub fn conv2d_dims(x: &Shape, w: &Shape, stride: usize, padding: Padding) -> Result<Conv2dDims> {
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() != 4 || wd.len() != 4 {
        return Err(TensorError::shape(
            "conv2d",
            format!("input must be [n, h, w, c] and kernel [kh, kw, c_in, c_out]; got {x} and {w}"),
        ));
    }
    if xd[3] != wd[2] {
        return Err(TensorError::shape(
            "conv2d",
            format!(
                "input {x} has {} channels but kernel {w} expects {}",
                xd[3], wd[2]
            ),
        ));
    }
    Conv2dDims::new(
        xd[0], xd[1], xd[2], xd[3], wd[0], wd[1], wd[3], stride, padding,
    )
    .ok_or_else(|| {
        TensorError::shape(
            "conv2d",
            format!("kernel {w} with stride {stride} and {padding} padding does not fit input {x}"),
        )
    })
}

fn output_shape(d: &Conv2dDims) -> Shape {
    Shape::new([d.n, d.out_h, d.out_w, d.c_out])
}

/// `y = conv(x, w) + bias`, followed by ReLU when `relu` (fused into the kernel).
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: Padding,
    relu: bool,
) -> Result<Tensor> {
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    if let Some(b) = bias {
        if b.dims() != [d.c_out] {
            return Err(TensorError::shape(
                "conv2d",
                format!("bias must be [{}], got {}", d.c_out, b.shape()),
            ));
        }
    }
    let mut operands = vec![x, w];
    operands.extend(bias);
    let dev = crate::ops::same_device("conv2d", &operands)?;
    let mut y = Tensor::uninit_on(output_shape(&d), &dev)?;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let v = ConvVariant::Im2colGemm(GemmVariant::best_for(&ctx));
            let b = bias.map(|b| b.gpu_buf());
            g::conv2d_forward(&ctx, v, &d, x.gpu_buf(), w.gpu_buf(), b, relu, y.gpu_buf())?
        }
        Device::Cpu => k::conv2d_forward(
            &d,
            x.as_slice(),
            w.as_slice(),
            bias.map(|b| b.as_slice()),
            relu,
            y.data_mut(),
        ),
    }
    Ok(y)
}

/// `dx` for an input of shape `x_shape`, given the output gradient `dy`.
pub fn conv2d_backward_input(
    dy: &Tensor,
    w: &Tensor,
    x_shape: &Shape,
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let d = conv2d_dims(x_shape, w.shape(), stride, padding)?;
    crate::ops::same_shape("conv2d_backward_input", dy.shape(), &output_shape(&d))?;
    let dev = crate::ops::same_device("conv2d_backward_input", &[dy, w])?;
    let mut dx = Tensor::uninit_on(x_shape.clone(), &dev)?;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => g::conv2d_backward_input(
            &ctx,
            GemmVariant::best_for(&ctx),
            &d,
            dy.gpu_buf(),
            w.gpu_buf(),
            dx.gpu_buf(),
        )?,
        Device::Cpu => k::conv2d_backward_input(&d, dy.as_slice(), w.as_slice(), dx.data_mut()),
    }
    Ok(dx)
}

/// `dw` for a kernel of shape `w_shape`, given the input `x` and output gradient `dy`.
pub fn conv2d_backward_weight(
    x: &Tensor,
    dy: &Tensor,
    w_shape: &Shape,
    stride: usize,
    padding: Padding,
) -> Result<Tensor> {
    let d = conv2d_dims(x.shape(), w_shape, stride, padding)?;
    crate::ops::same_shape("conv2d_backward_weight", dy.shape(), &output_shape(&d))?;
    let dev = crate::ops::same_device("conv2d_backward_weight", &[x, dy])?;
    let mut dw = Tensor::uninit_on(w_shape.clone(), &dev)?;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => g::conv2d_backward_weight(
            &ctx,
            GemmVariant::best_for(&ctx),
            &d,
            x.gpu_buf(),
            dy.gpu_buf(),
            dw.gpu_buf(),
        )?,
        Device::Cpu => k::conv2d_backward_weight(&d, x.as_slice(), dy.as_slice(), dw.data_mut()),
    }
    Ok(dw)
}

/// The gradients of `y = max(conv(x, w) + b, 0)` (a convolution with a fused ReLU) from its
/// output `y` and `dy`, each computed only where `wants` (dx, dw, db) asks: with `dz = dy`
/// where `y > 0`, else 0, `dx` and `dw` are [`conv2d_backward_input`] and
/// [`conv2d_backward_weight`] of `dz`, and `db = Σ dz` over every position.
///
/// On the CPU the mask is applied where the kernels read `dy` (see
/// [`cpu::conv2d::conv2d_relu_backward`]); on the GPU `dz` is made first.
pub fn conv2d_relu_backward(
    x: &Tensor,
    w: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    stride: usize,
    padding: Padding,
    wants: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    crate::ops::same_shape("conv2d_relu_backward", dy.shape(), &output_shape(&d))?;
    crate::ops::same_shape("conv2d_relu_backward", y.shape(), dy.shape())?;
    let dev = crate::ops::same_device("conv2d_relu_backward", &[x, w, y, dy])?;
    let [want_dx, want_dw, want_db] = wants;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => {
            let dz = crate::ops::relu_backward(y, dy)?;
            Ok([
                want_dx
                    .then(|| conv2d_backward_input(&dz, w, x.shape(), stride, padding))
                    .transpose()?,
                want_dw
                    .then(|| conv2d_backward_weight(x, &dz, w.shape(), stride, padding))
                    .transpose()?,
                want_db.then(|| crate::ops::bias_grad(&dz)).transpose()?,
            ])
        }
        Device::Cpu => {
            let mut dx = want_dx
                .then(|| Tensor::uninit_on(x.shape().clone(), &dev))
                .transpose()?;
            let mut dw = want_dw
                .then(|| Tensor::uninit_on(w.shape().clone(), &dev))
                .transpose()?;
            let mut db = want_db
                .then(|| Tensor::uninit_on([d.c_out], &dev))
                .transpose()?;
            k::conv2d_relu_backward(
                &d,
                x.as_slice(),
                w.as_slice(),
                y.as_slice(),
                dy.as_slice(),
                dx.as_mut().map(|t| t.data_mut()),
                dw.as_mut().map(|t| t.data_mut()),
                db.as_mut().map(|t| t.data_mut()),
            );
            Ok([dx, dw, db])
        }
    }
}

/// A max pool's window: `size x size`, moved by `stride`, with `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    pub size: usize,
    pub stride: usize,
    pub padding: Padding,
}

/// `p = maxpool(max(conv(x, w) + b, 0))` with `pool`'s window: returns the ReLU's output
/// `y` (the pool's input, which the backward needs) and `p`, the values of [`conv2d`] with
/// its ReLU followed by [`maxpool2d()`](crate::ops::maxpool2d()). On the CPU each image is pooled while
/// its convolution's output is in cache.
pub fn conv2d_relu_maxpool(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: Padding,
    pool: PoolWindow,
) -> Result<(Tensor, Tensor)> {
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    let y_shape = output_shape(&d);
    let pd = crate::ops::maxpool2d_dims(&y_shape, pool.size, pool.stride, pool.padding)?;
    let mut operands = vec![x, w];
    operands.extend(b);
    match crate::ops::same_device("conv2d_relu_maxpool", &operands)? {
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => {
            let y = conv2d(x, w, b, stride, padding, true)?;
            let p = crate::ops::maxpool2d(&y, pool.size, pool.stride, pool.padding)?;
            Ok((y, p))
        }
        Device::Cpu => {
            if let Some(b) = b {
                crate::ops::same_shape("conv2d_relu_maxpool", b.shape(), &Shape::new([d.c_out]))?;
            }
            let mut y = Tensor::uninit_on(y_shape, &Device::Cpu)?;
            let mut p = Tensor::uninit_on([pd.n, pd.out_h, pd.out_w, pd.c], &Device::Cpu)?;
            k::conv2d_relu_maxpool_forward(
                &d,
                &pd,
                x.as_slice(),
                w.as_slice(),
                b.map(|b| b.as_slice()),
                y.data_mut(),
                p.data_mut(),
            );
            Ok((y, p))
        }
    }
}

/// The gradients of `p = maxpool(max(conv(x, w) + b, 0))` (a convolution with a fused ReLU
/// followed by a max pool) from the ReLU's output `y` (the pool's input) and `dp`: the
/// gradients of [`conv2d_relu_backward`] for `dy = maxpool2d_backward(y, dp)`, each
/// computed only where `wants` (dx, dw, db) asks.
///
/// On the CPU, pools whose windows cannot overlap route `dp` straight into the buffers the
/// convolution's gradients read (see [`cpu::conv2d::conv2d_relu_maxpool_backward`]); on the
/// GPU `dy` is made first.
// The convolution's tensors, its shape, the pool's window, and which gradients to make.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_backward(
    x: &Tensor,
    w: &Tensor,
    y: &Tensor,
    dp: &Tensor,
    stride: usize,
    padding: Padding,
    pool: PoolWindow,
    wants: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let op = "conv2d_relu_maxpool_backward";
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    crate::ops::same_shape(op, y.shape(), &output_shape(&d))?;
    let pd = crate::ops::maxpool2d_dims(y.shape(), pool.size, pool.stride, pool.padding)?;
    let p_shape = Shape::new([pd.n, pd.out_h, pd.out_w, pd.c]);
    crate::ops::same_shape(op, dp.shape(), &p_shape)?;
    let dev = crate::ops::same_device(op, &[x, w, y, dp])?;
    let [want_dx, want_dw, want_db] = wants;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => {
            let dy = crate::ops::maxpool2d_backward(y, dp, pool.size, pool.stride, pool.padding)?;
            conv2d_relu_backward(x, w, y, &dy, stride, padding, wants)
        }
        Device::Cpu => {
            let mut dx = want_dx
                .then(|| Tensor::uninit_on(x.shape().clone(), &dev))
                .transpose()?;
            let mut dw = want_dw
                .then(|| Tensor::uninit_on(w.shape().clone(), &dev))
                .transpose()?;
            let mut db = want_db
                .then(|| Tensor::uninit_on([d.c_out], &dev))
                .transpose()?;
            k::conv2d_relu_maxpool_backward(
                &d,
                &pd,
                x.as_slice(),
                w.as_slice(),
                y.as_slice(),
                dp.as_slice(),
                dx.as_mut().map(|t| t.data_mut()),
                dw.as_mut().map(|t| t.data_mut()),
                db.as_mut().map(|t| t.data_mut()),
            );
            Ok([dx, dw, db])
        }
    }
}
