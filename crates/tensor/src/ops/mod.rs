//! Tensor ops: shape checks plus dispatch to the kernel of the operands' device.
//!
//! One file per op, named like its kernel everywhere else: `conv2d` is `tensor/src/ops/conv2d.rs`
//! here, `cpu/src/conv2d.rs`, `gpu/src/conv2d.rs` and `shaders/conv2d.wgsl` below it, and
//! `autograd/src/ops/conv2d.rs` (forward and backward on the tape) above it. The README's op
//! table lists every op at every layer.

pub mod adam;
pub mod argmax;
pub mod avgpool2d;
pub mod batchnorm;
pub mod bias;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod gemm;
pub mod lrn;
pub mod maxpool2d;
pub mod relu;
pub mod rmsprop;
pub mod sgd;
pub mod shortcut;
pub mod softmax_xent;

pub use adam::{adam_step_size, adam_update, AdamHyper};
pub use argmax::{accumulate_correct, count_correct};
pub use avgpool2d::{avgpool2d, avgpool2d_backward, global_avgpool, global_avgpool_backward};
pub use batchnorm::{
    batchnorm_backward, batchnorm_infer, batchnorm_relu_backward, batchnorm_relu_train,
    batchnorm_train, update_moving_average,
};
pub use bias::{bias_add, bias_grad};
pub use conv2d::{
    conv2d, conv2d_backward, conv2d_backward_input, conv2d_backward_weight, conv2d_dims,
    conv2d_relu_backward, conv2d_relu_maxpool, conv2d_relu_maxpool_backward, ConvPoolSaved,
    PoolWindow,
};
pub use dropout::{dropout, dropout_backward};
pub use elementwise::{add, add_assign, add_relu, axpy, sum_squares};
pub use gemm::{gemm, Transpose};
pub use lrn::{lrn, lrn_backward, LrnParams};
pub use maxpool2d::{maxpool2d, maxpool2d_backward, maxpool2d_dims};
pub use relu::{relu, relu_backward};
pub use rmsprop::{rmsprop_step_size, rmsprop_update, RmspropHyper};
pub use sgd::{sgd_update, SgdHyper};
pub use shortcut::{subsample_pad, subsample_pad_backward};
pub use softmax_xent::{softmax_xent, softmax_xent_backward};

use crate::{Device, Result, Shape, Tensor, TensorError};

/// Fails unless two shapes are equal.
pub(crate) fn same_shape(op: &'static str, a: &Shape, b: &Shape) -> Result<()> {
    if a != b {
        return Err(TensorError::shape(op, format!("shapes differ: {a} vs {b}")));
    }
    Ok(())
}

/// The device all `tensors` are on, or an error naming the op when they differ.
pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<Device> {
    let first = tensors[0].device();
    for t in &tensors[1..] {
        let d = t.device();
        if d != first {
            return Err(TensorError::Devices {
                op,
                a: first.describe(),
                b: d.describe(),
            });
        }
    }
    Ok(first)
}

/// On the CPU: whether an optimiser or statistics update may run, given the step's `guard`
/// (its loss): yes without a guard or with a finite one.
pub(crate) fn guard_allows(guard: Option<&Tensor>) -> Result<bool> {
    match guard {
        None => Ok(true),
        Some(g) => Ok(g.item()?.is_finite()),
    }
}

/// On the GPU: the buffer a kernel checks before updating (its first element must be
/// finite), or `None` when there is no guard. No readback.
#[cfg(feature = "gpu")]
pub(crate) fn gpu_guard<'a>(
    op: &'static str,
    guard: Option<&'a Tensor>,
) -> Result<Option<&'a gpu::GpuBuffer>> {
    match guard {
        None => Ok(None),
        Some(g) if g.is_gpu() && g.numel() >= 1 => Ok(Some(g.gpu_buf())),
        Some(g) => Err(TensorError::argument(
            op,
            format!(
                "the guard must be a GPU tensor with one element, got {}",
                g.shape()
            ),
        )),
    }
}

/// Labels as an f32 tensor on `device` (exact: class indices are far below 2^24), for the
/// GPU kernels that compare logits with them.
#[cfg(feature = "gpu")]
pub(crate) fn labels_on(labels: &[u32], device: &Device) -> Result<Tensor> {
    let host = Tensor::from_vec([labels.len()], labels.iter().map(|&l| l as f32).collect())?;
    host.to_device(device)
}
