//! GEMM: `C = A · B + beta · C`, the kernel under dense layers and (through im2col) convolutions.
//!
//! Math: `C[i][j] = beta * C[i][j] + sum_p A[i][p] * B[p][j]` for an `m x k` matrix A and a
//! `k x n` matrix B. `C` is row-major and contiguous (`m x n`). A and B are described by a
//! [`Mat`]: a slice plus a row stride and a column stride, so a transposed operand is just a
//! view with the strides swapped (`Mat::t`), and no copy is made.
//!
//! Versions, in order of speed:
//! 1. [`gemm_reference`]: the triple loop. The specification.
//! 2. [`gemm_serial`]: `matrixmultiply::sgemm` on one thread. It packs panels of A and B into
//!    cache-sized contiguous blocks and runs a register-blocked micro-kernel with AVX2/AVX-512
//!    FMA chosen at run time (the BLIS design: Van Zee & van de Geijn, "BLIS: A Framework for
//!    Rapidly Instantiating BLAS Functionality", 2015). Used inside kernels that are already
//!    parallel over images (conv2d), where a nested split would only add overhead.
//! 3. [`gemm`]: version 2 split across the rayon pool by blocks of rows of C (or of columns
//!    when C has few rows), one single-threaded sgemm per block. Measured here this beats
//!    matrixmultiply's own `threading` feature (300 vs 262 GFLOP/s at 1024^3 on 2 cores).

use rayon::prelude::*;

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    /// Distance between rows, in elements.
    pub rs: usize,
    /// Distance between columns, in elements.
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }

    /// Panics unless every element of a `rows x cols` view lies inside the slice.
    pub(crate) fn check(&self, rows: usize, cols: usize, name: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
        assert!(
            last < self.data.len(),
            "gemm: {name} view {rows}x{cols} (strides {}, {}) needs {} elements, slice has {}",
            self.rs,
            self.cs,
            last + 1,
            self.data.len()
        );
    }

    /// The view of rows `start..` (used to split work by rows).
    fn rows_from(self, start: usize) -> Self {
        Mat {
            data: &self.data[start * self.rs..],
            ..self
        }
    }

    /// The view of columns `start..`.
    fn cols_from(self, start: usize) -> Self {
        Mat {
            data: &self.data[start * self.cs..],
            ..self
        }
    }
}

/// Version 1: the plain triple loop, accumulating in f32 in the natural order.
pub fn gemm_reference(m: usize, k: usize, n: usize, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    a.check(m, k, "A");
    b.check(k, n, "B");
    assert_eq!(c.len(), m * n, "gemm: C must be m x n");
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a.at(i, p) * b.at(p, j);
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta * c[i * n + j]
            };
            c[i * n + j] = old + acc;
        }
    }
}

/// Version 2: one thread, packed and register-blocked (matrixmultiply).
pub fn gemm_serial(m: usize, k: usize, n: usize, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    assert_eq!(c.len(), m * n, "gemm: C must be m x n");
    // SAFETY: C is an exclusively borrowed, contiguous m x n matrix.
    unsafe { sgemm_raw(m, k, n, a, b, beta, c.as_mut_ptr(), n) }
}

/// Version 2 on a C given as a raw pointer with row stride `ldc`.
///
/// # Safety
/// `c` must be valid for reads and writes at `c + i * ldc + j` for all `i < m`, `j < n`, and
/// no other thread may access those elements during the call.
// The BLAS sgemm argument list (m, k, n, A, B, beta, C, ldc): the form GEMM is known by.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_raw(
    m: usize,
    k: usize,
    n: usize,
    a: Mat,
    b: Mat,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // Nothing to multiply: C = beta * C (and beta == 0 means "overwrite", NaNs included).
        for i in 0..m {
            for j in 0..n {
                let v = c.add(i * ldc + j);
                *v = if beta == 0.0 { 0.0 } else { beta * *v };
            }
        }
        return;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    // The checks above prove that A and B are in bounds; C is the caller's promise.
    matrixmultiply::sgemm(
        m,
        k,
        n,
        1.0,
        a.data.as_ptr(),
        a.rs as isize,
        a.cs as isize,
        b.data.as_ptr(),
        b.rs as isize,
        b.cs as isize,
        beta,
        c,
        ldc as isize,
        1,
    );
}

/// Below this many multiply-adds, splitting across threads costs more than it saves.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// Version 3: version 2 split across the rayon pool.
///
/// C is cut into as many blocks as there are threads, by rows when C has at least as many
/// rows as columns, otherwise by columns; each block is an independent single-threaded sgemm.
/// Each block packs all of the operand it shares with the others (B for row blocks, A for
/// column blocks), so the split shares the smaller one: a dense layer's forward (128 x 4096
/// times 4096 x 1024) split by rows packed the 16 MB weight matrix once per thread; by
/// columns it packs the 2 MB input (basic3's dense forward 8.8 -> 6.8 ms, `bench`).
pub fn gemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    assert_eq!(c.len(), m * n, "gemm: C must be m x n");
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PARALLEL_MIN_FLOPS {
        return gemm_serial(m, k, n, a, b, beta, c);
    }
    // Blocks of at least 16 rows/columns keep the micro-kernel's tiles full.
    if m >= n {
        let rows = m.div_ceil(threads).max(16);
        c.par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(block, c_block)| {
                let r0 = block * rows;
                let mb = c_block.len() / n;
                gemm_serial(mb, k, n, a.rows_from(r0), b, beta, c_block);
            });
    } else {
        let cols = n.div_ceil(threads).max(16);
        let blocks = n.div_ceil(cols);
        // Column blocks of a row-major C interleave in memory, so no safe slice split exists:
        // each task gets a raw pointer to its first column and touches only its own columns.
        let c_ptr = SendPtr(c.as_mut_ptr());
        (0..blocks).into_par_iter().for_each(|block| {
            let c0 = block * cols;
            let nb = cols.min(n - c0);
            let c_ptr = &c_ptr;
            // SAFETY: C is exclusively borrowed for the whole call; task `block` reads and
            // writes only columns c0..c0+nb of each of the m rows, disjoint from every other task.
            unsafe { sgemm_raw(m, k, nb, a, b.cols_from(c0), beta, c_ptr.0.add(c0), n) };
        });
    }
}

struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint column blocks of one C to rayon tasks (see `gemm`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Floating-point operations of one GEMM (a multiply and an add per inner-product term).
pub fn gemm_flops(m: usize, k: usize, n: usize) -> u64 {
    2 * m as u64 * k as u64 * n as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, random_vec};

    fn check_all(m: usize, k: usize, n: usize, ta: bool, tb: bool, beta: f32) {
        let a_data = random_vec(m * k, 1);
        let b_data = random_vec(k * n, 2);
        // Stored transposed when asked, then viewed back through `t()`.
        let a = if ta {
            Mat::row_major(&a_data, m).t()
        } else {
            Mat::row_major(&a_data, k)
        };
        let b = if tb {
            Mat::row_major(&b_data, k).t()
        } else {
            Mat::row_major(&b_data, n)
        };
        let c0 = random_vec(m * n, 3);
        let mut want = c0.clone();
        gemm_reference(m, k, n, a, b, beta, &mut want);
        let mut serial = c0.clone();
        gemm_serial(m, k, n, a, b, beta, &mut serial);
        let mut fast = c0.clone();
        gemm(m, k, n, a, b, beta, &mut fast);
        let what = format!("{m}x{k}x{n} ta={ta} tb={tb} beta={beta}");
        let tol = 1e-5 * (k as f32).sqrt().max(1.0);
        assert_close(&serial, &want, tol, &format!("serial {what}"));
        assert_close(&fast, &want, tol, &format!("parallel {what}"));
    }

    #[test]
    fn fast_matches_reference_on_awkward_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 7, 1),
            (3, 5, 7),
            (17, 13, 9),
            (64, 27, 32),
            (5, 300, 131),
            (257, 33, 10),
            (10, 45, 300),
            (2, 2048, 10),
            // Past PARALLEL_MIN_FLOPS: split by columns (m < n) and by rows, ragged blocks.
            (37, 101, 131),
            (131, 101, 37),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                check_all(m, k, n, ta, tb, 0.0);
            }
            check_all(m, k, n, false, false, 1.0);
            check_all(m, k, n, true, false, 0.5);
        }
    }

    #[test]
    fn beta_zero_overwrites_nan() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32, 4.0];
        let mut c = [f32::NAN];
        gemm(
            1,
            2,
            1,
            Mat::row_major(&a, 2),
            Mat::row_major(&b, 1),
            0.0,
            &mut c,
        );
        assert_eq!(c[0], 11.0);
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = vec![2.0f32; 6];
        gemm_serial(
            2,
            0,
            3,
            Mat::row_major(&[], 0),
            Mat::row_major(&[], 3),
            0.5,
            &mut c,
        );
        assert!(c.iter().all(|&v| v == 1.0));
    }
}
