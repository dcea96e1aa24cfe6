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

/// The gradients of `y = conv(x, w) + b` from `dy`, each computed only where `wants` (dx,
/// dw, db) asks: [`conv2d_backward_input`], [`conv2d_backward_weight`] and
/// [`crate::ops::bias_grad`]. On the CPU a stride-1 layer asked for both `dx` and `dw` makes
/// them in one pass over the images (see [`cpu::conv2d::conv2d_backward`]).
pub fn conv2d_backward(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    stride: usize,
    padding: Padding,
    wants: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    crate::ops::same_shape("conv2d_backward", dy.shape(), &output_shape(&d))?;
    let dev = crate::ops::same_device("conv2d_backward", &[x, w, dy])?;
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => {
            let [want_dx, want_dw, want_db] = wants;
            Ok([
                want_dx
                    .then(|| conv2d_backward_input(dy, w, x.shape(), stride, padding))
                    .transpose()?,
                want_dw
                    .then(|| conv2d_backward_weight(x, dy, w.shape(), stride, padding))
                    .transpose()?,
                want_db.then(|| crate::ops::bias_grad(dy)).transpose()?,
            ])
        }
        Device::Cpu => cpu_grads(x, w, d.c_out, wants, |dx, dw, db| {
            k::conv2d_backward(&d, x.as_slice(), w.as_slice(), dy.as_slice(), dx, dw, db)
        }),
    }
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
    match dev {
        #[cfg(feature = "gpu")]
        Device::Gpu(_) => {
            let dz = crate::ops::relu_backward(y, dy)?;
            conv2d_backward(x, w, &dz, stride, padding, wants)
        }
        Device::Cpu => cpu_grads(x, w, d.c_out, wants, |dx, dw, db| {
            let (xs, ws) = (x.as_slice(), w.as_slice());
            k::conv2d_relu_backward(&d, xs, ws, y.as_slice(), dy.as_slice(), dx, dw, db)
        }),
    }
}

/// A max pool's window: `size x size`, moved by `stride`, with `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    pub size: usize,
    pub stride: usize,
    pub padding: Padding,
}

/// What the backward of [`conv2d_relu_maxpool`] keeps from its forward (besides `x`, `w`).
#[derive(Clone, Debug)]
pub enum ConvPoolSaved {
    /// The ReLU's output, the pool's input (the GPU, and CPU pairs that are not routed).
    Output(Tensor),
    /// The pool's output and each window's winner, one byte each (CPU pairs that are
    /// routed: [`cpu::conv2d::conv2d_relu_maxpool_routes`]); the convolution's full-size
    /// output is never kept.
    Winners { p: Tensor, arg: Vec<u8> },
}

/// `p = maxpool(max(conv(x, w) + b, 0))` with `pool`'s window: the values of [`conv2d`]
/// with its ReLU followed by [`maxpool2d()`](crate::ops::maxpool2d()), and what the
/// backward needs ([`ConvPoolSaved`]). On the CPU, where the pair is routed, each image's
/// convolution output is pooled while it is in cache and never written out.
pub fn conv2d_relu_maxpool(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: Padding,
    pool: PoolWindow,
) -> Result<(Tensor, ConvPoolSaved)> {
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    let pd = crate::ops::maxpool2d_dims(&output_shape(&d), pool.size, pool.stride, pool.padding)?;
    let mut operands = vec![x, w];
    operands.extend(b);
    let dev = crate::ops::same_device("conv2d_relu_maxpool", &operands)?;
    if !matches!(dev, Device::Cpu) || !k::conv2d_relu_maxpool_routes(&d, &pd) {
        let y = conv2d(x, w, b, stride, padding, true)?;
        let p = crate::ops::maxpool2d(&y, pool.size, pool.stride, pool.padding)?;
        return Ok((p, ConvPoolSaved::Output(y)));
    }
    if let Some(b) = b {
        crate::ops::same_shape("conv2d_relu_maxpool", b.shape(), &Shape::new([d.c_out]))?;
    }
    let mut p = Tensor::uninit_on([pd.n, pd.out_h, pd.out_w, pd.c], &dev)?;
    let mut arg = vec![0u8; pd.output_len()];
    k::conv2d_relu_maxpool_forward_routed(
        &d,
        &pd,
        x.as_slice(),
        w.as_slice(),
        b.map(|b| b.as_slice()),
        p.data_mut(),
        &mut arg,
    );
    Ok((p.clone(), ConvPoolSaved::Winners { p, arg }))
}

/// The gradients of `p = maxpool(max(conv(x, w) + b, 0))` ([`conv2d_relu_maxpool`]) from
/// what its forward kept and the pool's output gradient `dp`: those of
/// [`conv2d_relu_backward`] for `dy = maxpool2d_backward(y, dp)`, each computed only where
/// `wants` (dx, dw, db) asks. Routed pairs send `dp` straight into the buffers the
/// convolution's gradients read (see [`cpu::conv2d::conv2d_relu_maxpool_backward_routed`]);
/// the others make `dy` first.
// The convolution's tensors, its shape, the pool's window, and which gradients to make.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_backward(
    x: &Tensor,
    w: &Tensor,
    saved: &ConvPoolSaved,
    dp: &Tensor,
    stride: usize,
    padding: Padding,
    pool: PoolWindow,
    wants: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let op = "conv2d_relu_maxpool_backward";
    let d = conv2d_dims(x.shape(), w.shape(), stride, padding)?;
    let pd = crate::ops::maxpool2d_dims(&output_shape(&d), pool.size, pool.stride, pool.padding)?;
    crate::ops::same_shape(
        op,
        dp.shape(),
        &Shape::new([pd.n, pd.out_h, pd.out_w, pd.c]),
    )?;
    let (p, arg) = match saved {
        ConvPoolSaved::Output(y) => {
            crate::ops::same_shape(op, y.shape(), &output_shape(&d))?;
            if !matches!(y.device(), Device::Cpu) {
                let dy =
                    crate::ops::maxpool2d_backward(y, dp, pool.size, pool.stride, pool.padding)?;
                return conv2d_relu_backward(x, w, y, &dy, stride, padding, wants);
            }
            (y, None)
        }
        ConvPoolSaved::Winners { p, arg } => {
            crate::ops::same_shape(op, p.shape(), dp.shape())?;
            (p, Some(arg))
        }
    };
    crate::ops::same_device(op, &[x, w, p, dp])?;
    let (xs, ws, ps, dps) = (x.as_slice(), w.as_slice(), p.as_slice(), dp.as_slice());
    cpu_grads(x, w, d.c_out, wants, |dx, dw, db| match arg {
        // `p` is the pool's output here.
        Some(arg) => {
            k::conv2d_relu_maxpool_backward_routed(&d, &pd, xs, ws, ps, arg, dps, dx, dw, db)
        }
        // `p` is the ReLU's output `y` here.
        None => k::conv2d_relu_maxpool_backward(&d, &pd, xs, ws, ps, dps, dx, dw, db),
    })
}

/// The gradients of a convolution on the CPU: allocates those `wants` asks for (`dx` shaped
/// like `x`, `dw` like `w`, `db` one per output channel) and lets `fill` write them.
fn cpu_grads(
    x: &Tensor,
    w: &Tensor,
    c_out: usize,
    wants: [bool; 3],
    fill: impl FnOnce(Option<&mut [f32]>, Option<&mut [f32]>, Option<&mut [f32]>),
) -> Result<[Option<Tensor>; 3]> {
    let shapes = [x.shape().clone(), w.shape().clone(), Shape::new([c_out])];
    let mut grads = [None, None, None];
    for ((g, shape), want) in grads.iter_mut().zip(shapes).zip(wants) {
        if want {
            *g = Some(Tensor::uninit_on(shape, &Device::Cpu)?);
        }
    }
    let [dx, dw, db] = &mut grads;
    fn slice(t: &mut Option<Tensor>) -> Option<&mut [f32]> {
        t.as_mut().map(|t| t.data_mut())
    }
    fill(slice(dx), slice(dw), slice(db));
    Ok(grads)
}
