//! Differentiable ops: each file adds methods to [`crate::Tape`] that compute the forward
//! value with a `tensor::ops` kernel and record the matching backward. Files are named like the
//! op's file in `tensor/src/ops/` and `cpu/src/`; `reshape` and `sum_product` exist only here.

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
pub mod reshape;
pub mod shortcut;
pub mod softmax_xent;
pub mod sum_product;
