//! gemm: `C = op(A) · op(B)` for rank-2 tensors, on the GEMM kernel.

use cpu::gemm::Mat;

use crate::{Device, Result, Tensor, TensorError};

/// Whether an operand is used as stored or transposed (a strided view, never a copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    No,
    Yes,
}

/// Rows and columns of `op(t)`.
fn op_dims(t: &Tensor, tr: Transpose) -> (usize, usize) {
    let (r, c) = (t.dims()[0], t.dims()[1]);
    match tr {
        Transpose::No => (r, c),
        Transpose::Yes => (c, r),
    }
}

fn view(t: &Tensor, tr: Transpose) -> Mat<'_> {
    let m = Mat::row_major(t.as_slice(), t.dims()[1]);
    match tr {
        Transpose::No => m,
        Transpose::Yes => m.t(),
    }
}

#[cfg(feature = "gpu")]
fn gpu_view(t: &Tensor, tr: Transpose) -> gpu::View<'_> {
    let m = gpu::View::row_major(t.gpu_buf(), t.dims()[1]);
    match tr {
        Transpose::No => m,
        Transpose::Yes => m.t(),
    }
}

pub fn gemm(a: &Tensor, ta: Transpose, b: &Tensor, tb: Transpose) -> Result<Tensor> {
    a.expect_rank("gemm", "A", 2)?;
    b.expect_rank("gemm", "B", 2)?;
    let (m, ka) = op_dims(a, ta);
    let (kb, n) = op_dims(b, tb);
    if ka != kb {
        return Err(TensorError::shape(
            "gemm",
            format!(
                "inner dimensions differ: A {} ({ta:?}) is {m}x{ka}, B {} ({tb:?}) is {kb}x{n}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let dev = crate::ops::same_device("gemm", &[a, b])?;
    let mut c = Tensor::uninit_on([m, n], &dev)?;
    match dev {
        Device::Cpu => cpu::gemm::gemm(m, ka, n, view(a, ta), view(b, tb), 0.0, c.data_mut()),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => gpu::gemm_view(
            &ctx,
            gpu::GemmVariant::best_for(&ctx),
            m,
            ka,
            n,
            gpu_view(a, ta),
            gpu_view(b, tb),
            c.gpu_buf(),
            0,
            gpu::Epilogue::default(),
        )?,
    }
    Ok(c)
}
