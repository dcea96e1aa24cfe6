//! bias: add a per-channel bias along the last dimension, and its gradient.

use crate::{Device, Result, Shape, Tensor, TensorError};

fn check(op: &'static str, x: &Shape, b: &Shape) -> Result<()> {
    if b.rank() != 1 || x.rank() == 0 || x.last() != b.dims()[0] {
        return Err(TensorError::shape(
            op,
            format!("bias {b} does not match the last dimension of {x}"),
        ));
    }
    Ok(())
}

/// `y = x + b` with `b` broadcast over every dimension but the last.
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    check("bias_add", x.shape(), b.shape())?;
    let dev = crate::ops::same_device("bias_add", &[x, b])?;
    let mut y = x.clone();
    match dev {
        Device::Cpu => cpu::bias::bias_add(y.data_mut(), b.as_slice()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::bias_add(&ctx, y.gpu_buf_mut(), b.gpu_buf())?,
    }
    Ok(y)
}

/// `db[j] = Σ_rows dy[.., j]`: the gradient of the bias of length `dy.last()`.
pub fn bias_grad(dy: &Tensor) -> Result<Tensor> {
    let c = dy.shape().last();
    let dev = dy.device();
    let mut db = Tensor::uninit_on([c], &dev)?;
    match dev {
        Device::Cpu => cpu::bias::bias_grad(dy.as_slice(), c, db.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::elementwise::bias_grad(&ctx, dy.gpu_buf(), c, db.gpu_buf())?,
    }
    Ok(db)
}
