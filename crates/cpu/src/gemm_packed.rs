//! GEMM version 4: `C = A · B + beta · C` with B packed once and a register-tiled
//! micro-kernel (AVX-512, or AVX2 + FMA), for the shapes convolution produces.
//!
//! Math and layout: as [`crate::gemm`]; A is a strided [`Mat`] view (element `(i, p)` at
//! `a[i * rs + p * cs]`: row-major im2col rows have `cs = 1`, and a transposed im2col matrix,
//! as the weight gradient uses, has `rs = 1`) and C is row-major with row stride `ldc`. B is
//! given once as a [`PackedB`]: its `n` columns cut into panels of [`NR`] = 32, each panel
//! stored k-major (`panel[p][0..32]`), zero padded past `n`.
//!
//! Why it is faster than version 2 (matrixmultiply) on convolution shapes:
//! - In a convolution, B is the kernel matrix (`k x c_out`, at most ~600 KB) and is the same
//!   for every chunk of images. Version 2 packs it again in every call, i.e. for every chunk
//!   of every task; here it is packed once per layer call and shared read-only by all tasks.
//! - A (the im2col rows) is not packed at all: the micro-kernel broadcasts `A[i][p]` straight
//!   from `MR` row streams, each read sequentially. im2col already made A contiguous, so a
//!   second copy into panels (which version 2 makes) only costs memory traffic.
//! - AVX-512 ([`Kernel::Avx512`]): a 14 x 32 tile of C in 28 of the 32 zmm registers (the
//!   shape oneDNN's AVX-512 kernels use): per step of `p` it loads two vectors of B,
//!   broadcasts 14 values of A, and issues 28 FMAs, so FMA throughput, not loads, is the
//!   limit. Version 2's kernel is 16 x 16 (16 accumulators, one B vector per step).
//! - Narrow panels on AVX-512: a panel with at most 16 valid columns (all of B in a
//!   16-channel layer, the last panel of a 48- or 144-column B) runs as 28 x 16 tiles, one
//!   vector per row, so no FMA is spent on the zero padding of the second vector. On
//!   resnet20's first stage (16 channels at 32x32, batch 128) this took a residual block's
//!   forward from 21.1 to 18.3 ms and its backward from 37.0 to 35.0 ms (medians of 4
//!   alternated `bench` runs, Intel Xeon with AVX-512, 2 threads).
//! - A's row stride as a constant (AVX-512, row strides 16, 32, 64 and 128: a direct
//!   convolution's A has row stride `c_in`): each row of a tile is then a fixed displacement
//!   from one pointer. With a run-time stride the compiler walks a tile's rows with a chain
//!   of `lea`s, one per row per step, which take execution ports the FMAs need (perf
//!   annotate). Forward convolutions, batch 64, medians of 3 alternated runs: 16 channels at
//!   32x32 +5%, 32-64 channels +2-6%; a tile on data in L1: 76% -> 79% of the FMA peak.
//! - AVX2 + FMA ([`Kernel::Avx2Fma`]): 16 ymm registers only, so a panel is taken as two
//!   16-column halves, each a 6 x 16 tile of C in 12 registers (BLIS' Haswell shape): two B
//!   loads and six broadcasts feed 12 FMAs per step of `p`. A's rows are read once per half.
//!
//! Edges: the rows are cut into tiles as evenly as the tile height allows (32 rows under a
//! 28-row tile run as 16 + 16, not 28 + 4, whose 4 FMA chains could not hide the FMA
//! latency), each count a const-generic instantiation of the same kernel, and columns past
//! `n` in the last panel are masked on load and store.
//!
//! A's columns may be walked in [`Segments`] (runs of columns at a fixed distance), which is
//! how `conv2d_direct` multiplies a padded image without copying its windows out first.
//!
//! Which kernel runs is chosen at run time ([`active`]): AVX-512 where the CPU has it, else
//! AVX2 + FMA (see [`best`] for the measurements), unless [`choose`] picked another (for
//! benchmarks); on a CPU with neither, callers use version 2.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::gemm::Mat;

/// A micro-kernel of version 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// 14 x 32 tiles in zmm registers.
    Avx512,
    /// 6 x 16 tiles in ymm registers.
    Avx2Fma,
}

impl Kernel {
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512",
            Kernel::Avx2Fma => "avx2",
        }
    }

    /// Whether this CPU can run it.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Kernel::Avx2Fma => {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Which kernel [`active`] reports: the best one (0), none (1), or a given one (2, 3).
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// What the convolutions should use: `Some(kernel)`, or `None` for version 2; `None` here
/// restores the default, [`best`]. An error (and no change) for a kernel the CPU lacks.
pub fn choose(choice: Option<Option<Kernel>>) -> Result<(), String> {
    let code = match choice {
        None => 0,
        Some(None) => 1,
        Some(Some(k)) if !k.supported() => {
            return Err(format!("this CPU cannot run the {} GEMM kernel", k.name()))
        }
        Some(Some(Kernel::Avx512)) => 2,
        Some(Some(Kernel::Avx2Fma)) => 3,
    };
    CHOICE.store(code, Ordering::Relaxed);
    Ok(())
}

/// The kernel the convolutions use by default: AVX-512 where the CPU has it, else AVX2 +
/// FMA where it has that, else none (version 2). The AVX2 kernel trails matrixmultiply on a
/// lone GEMM (on the AVX-512 Xeon, one thread: 115 vs 122 GFLOP/s at 1024x288x32, 102 vs
/// 146 at 256x1152x128: each 6 x 16 tile streams a whole k x 32 panel of B from L2 for 12
/// ymm FMAs per line), and it lost a keras6 step when convolutions were im2col + GEMM; but
/// under the direct and Winograd variants and their fused passes, which only version 4
/// runs, whole steps are faster with it than matrixmultiply + im2col: on the Xeon's AVX2
/// units (against matrixmultiply's AVX-512 kernel, 2 threads, two alternated `bench` runs
/// each) keras6 866-887 vs 631-690 images/s, basic3 836-886 vs 669-670, resnet20 530-532 vs
/// 419-427. Not yet measured on an AVX2-only CPU: `bench --gemm matrixmultiply` there
/// gives the old default for comparison.
pub fn best() -> Option<Kernel> {
    [Kernel::Avx512, Kernel::Avx2Fma]
        .into_iter()
        .find(|k| k.supported())
}

/// The kernel callers should use now (see [`choose`]); `None` means version 2.
pub fn active() -> Option<Kernel> {
    match CHOICE.load(Ordering::Relaxed) {
        1 => None,
        2 => Some(Kernel::Avx512),
        3 => Some(Kernel::Avx2Fma),
        _ => best(),
    }
}

/// Columns per packed panel: two 16-lane AVX-512 vectors.
pub const NR: usize = 32;
/// Rows per micro-kernel call.
pub const MR: usize = 14;

/// B (`k x n`) packed into panels of [`NR`] columns, each k-major and zero padded.
#[derive(Clone, Debug, Default)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    data: Vec<f32>,
    /// Floats from one panel to the next: `k * NR` when packed, more when written in place
    /// ([`PackedB::in_place`]).
    stride: usize,
    /// The first panel of B in `data` (0 unless an in-place group is selected).
    first: usize,
    /// A bias per column, zero padded to whole panels, added to every row of C on store
    /// ([`PackedB::set_bias`]); empty for none.
    bias: Vec<f32>,
    /// Whether C gets `max(·, 0)` on store ([`PackedB::set_relu`]).
    relu: bool,
}

impl PackedB {
    /// Packs `b` (element `(p, j)` at `b[p * rs + j * cs]`) into `self`, reusing its buffer.
    pub fn pack(&mut self, b: &[f32], k: usize, n: usize, rs: usize, cs: usize) {
        if k > 0 && n > 0 {
            assert!((k - 1) * rs + (n - 1) * cs < b.len(), "pack: B too short");
        }
        self.pack_with(k, n, |p, j0, row| {
            if cs == 1 {
                // Rows of B contiguous (a kernel matrix, a chunk of dy): one copy each, of a
                // fixed size for whole panels (a few vector moves, not a call to memmove).
                let src = &b[p * rs + j0..p * rs + j0 + row.len()];
                match (
                    <&mut [f32; NR]>::try_from(&mut *row),
                    <&[f32; NR]>::try_from(src),
                ) {
                    (Ok(dst), Ok(src)) => *dst = *src,
                    _ => row.copy_from_slice(src),
                }
            } else {
                for (jj, v) in row.iter_mut().enumerate() {
                    *v = b[p * rs + (j0 + jj) * cs];
                }
            }
        });
    }

    /// [`PackedB::pack`] of a matrix whose rows come in runs: `runs * run_len` rows of `n`
    /// contiguous floats, the rows of a run `n` apart and the runs `run_stride` apart (row
    /// `p` at `b[(p / run_len) * run_stride + (p % run_len) * n]`). A band of output rows
    /// inside a padded image is such a matrix: one run per image row.
    pub fn pack_runs(
        &mut self,
        b: &[f32],
        runs: usize,
        run_len: usize,
        run_stride: usize,
        n: usize,
    ) {
        if runs > 0 && run_len > 0 && n > 0 {
            assert!(
                (runs - 1) * run_stride + run_len * n <= b.len(),
                "pack: B too short"
            );
        }
        self.pack_with(runs * run_len, n, |p, j0, row| {
            let at = (p / run_len) * run_stride + (p % run_len) * n + j0;
            row.copy_from_slice(&b[at..at + row.len()]);
        });
    }

    /// [`PackedB::pack`] of a row-major `k x n` matrix `b` through ReLU's backward: element
    /// `(p, j)` is `b[p * n + j]` where `y[p * n + j] > 0`, else 0 (as
    /// [`crate::relu::relu_backward`], bit for bit). A convolution with a fused ReLU packs its
    /// `dy` this way, so the masked gradient is never written out as a tensor of its own.
    pub fn pack_relu_masked(&mut self, b: &[f32], y: &[f32], k: usize, n: usize) {
        assert!(
            b.len() >= k * n && y.len() >= k * n,
            "pack: B or y too short"
        );
        self.pack_with(k, n, |p, j0, row| {
            let at = p * n + j0;
            crate::relu::backward_block(&y[at..at + row.len()], &b[at..at + row.len()], row)
        });
    }

    /// Adds each column's sum over the `k` packed rows to `sums[j]` (`j < n`): the bias
    /// gradient of the rows packed, read while they are in cache.
    pub fn add_column_sums(&self, sums: &mut [f32]) {
        assert!(sums.len() >= self.n, "add_column_sums: one sum per column");
        for (panel, chunk) in sums[..self.n].chunks_mut(NR).enumerate() {
            let mut acc = [0.0f32; NR];
            for row in self.panel(panel).chunks_exact(NR) {
                add_row(&mut acc, row);
            }
            chunk.iter_mut().zip(acc).for_each(|(s, a)| *s += a);
        }
    }

    /// Sizes the buffer for `k x n` and fills each panel row's first `width` floats with
    /// `fill(p, j0, row)` (row `p`, columns from `j0`); the padding stays zero.
    fn pack_with(&mut self, k: usize, n: usize, mut fill: impl FnMut(usize, usize, &mut [f32])) {
        self.k = k;
        self.n = n;
        self.bias.clear();
        self.relu = false;
        // Every element is written below (the padding of a last panel with zeros), so the
        // buffer is not cleared first: a pass over it that the packing would overwrite.
        self.data.resize(n.div_ceil(NR) * k * NR, 0.0);
        self.stride = k * NR;
        self.first = 0;
        if k == 0 || n == 0 {
            return;
        }
        for (panel, dst) in self.data.chunks_exact_mut(k * NR).enumerate() {
            let j0 = panel * NR;
            let width = NR.min(n - j0);
            for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
                let (valid, padding) = row.split_at_mut(width);
                fill(p, j0, valid);
                padding.fill(0.0);
            }
        }
    }

    /// Adds `bias[j]` to every element of column `j` of C on store, in the micro-kernel's
    /// epilogue: `C = A · B + bias (+ C)`. A conv layer's bias then costs no pass of its own
    /// (before, C was pre-filled with the bias row by row and the GEMM accumulated onto it).
    /// Cleared by the next [`PackedB::pack`]. Panics unless `bias` has `n` values.
    pub fn set_bias(&mut self, bias: &[f32]) {
        assert_eq!(bias.len(), self.n, "set_bias: one value per column");
        self.bias.clear();
        self.bias.resize(self.n.div_ceil(NR) * NR, 0.0);
        self.bias[..self.n].copy_from_slice(bias);
    }

    /// Applies ReLU to C on store, after the bias (and C's old values, when accumulating),
    /// in the micro-kernel's epilogue: a convolution with a fused ReLU then needs no pass
    /// over its output of its own. Cleared by the next [`PackedB::pack`].
    pub fn set_relu(&mut self, on: bool) {
        self.relu = on;
    }

    /// The padded bias from column `j` on, or null when there is none.
    fn bias_from(&self, j: usize) -> *const f32 {
        if self.bias.is_empty() {
            std::ptr::null()
        } else {
            self.bias[j..].as_ptr()
        }
    }

    fn panel(&self, index: usize) -> &[f32] {
        &self.data[(self.first + index) * self.stride..][..self.k * NR]
    }

    /// Lays out room for `groups` matrices of up to `rows x n` side by side, written in place
    /// by the caller, and returns it. Each group is [`PackedB::group_panels`] panels (its
    /// columns padded to whole panels, the padding zeroed here); group `g`'s element
    /// `(p, j)` goes to `[(g * group_panels + j / NR) * stride + p * NR + j % NR]`,
    /// `stride` = [`PackedB::panel_stride`]. Then [`PackedB::select`] makes one group the B
    /// of a GEMM. For a producer that can write B in its packed order: no copy afterwards.
    ///
    /// The panels are one cache line more than `rows * NR` floats apart: the groups of a
    /// Winograd transform are written together, 16 at a time, and at a multiple of 4 KB
    /// apart they would all fall into one set of the L1 cache.
    pub(crate) fn in_place(&mut self, rows: usize, groups: usize, n: usize) -> &mut [f32] {
        let panels = n.div_ceil(NR);
        self.k = rows;
        self.n = n;
        self.stride = rows * NR + NR / 2;
        self.first = 0;
        self.bias.clear();
        self.relu = false;
        self.data.resize(groups * panels * self.stride, 0.0);
        if !n.is_multiple_of(NR) {
            for g in 0..groups {
                let last = &mut self.data[(g * panels + panels - 1) * self.stride..];
                for row in last[..rows * NR].chunks_exact_mut(NR) {
                    row[n % NR..].fill(0.0);
                }
            }
        }
        &mut self.data
    }

    /// Floats from one panel to the next.
    pub(crate) fn panel_stride(&self) -> usize {
        self.stride
    }

    /// Panels per group of an in-place B ([`PackedB::in_place`]).
    pub(crate) fn group_panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// The data of an in-place B, to write more rows into (layout as
    /// [`PackedB::in_place`]).
    pub(crate) fn in_place_data(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Makes group `g` of an in-place B the matrix its GEMMs read.
    pub(crate) fn select(&mut self, g: usize) {
        let first = g * self.group_panels();
        assert!(
            (first + self.group_panels()) * self.stride <= self.data.len(),
            "select: no such group"
        );
        self.first = first;
    }

    /// The rows of an in-place B that hold data: the first `k` of each panel.
    pub(crate) fn set_rows(&mut self, k: usize) {
        assert!(
            k * NR <= self.stride,
            "set_rows: more rows than were laid out"
        );
        self.k = k;
    }
}

crate::simd::multiversion! {
    /// `acc += row`, element-wise, over one panel row.
    fn add_row(acc: &mut [f32; NR], row: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

/// What a micro-kernel does when it stores a tile of `A · B` (plus the bias) into C.
#[derive(Clone, Copy, Debug)]
struct Store {
    /// Add C's old values (`beta = 1`).
    accumulate: bool,
    /// Then `max(·, 0)` ([`PackedB::set_relu`]).
    relu: bool,
}

/// Whether version 4 should run (some kernel is [`active`]).
pub fn available() -> bool {
    active().is_some()
}

/// How the micro-kernels walk the columns of A: column `p = s * len + q` (`s < count`,
/// `q < len`) of row `i` is at `a.data[i * a.rs + s * stride + q * a.cs]`, and row `p` of the
/// packed B is read with it. A plain matrix is [`Segments::one`] run of `k` columns. A
/// direct convolution's A is `kh` segments, one per kernel row: each is the `kw * c_in`
/// contiguous floats of one padded input row, and the next segment starts one padded image
/// row (`stride`) further on. So the convolution needs no im2col copy: the micro-kernel reads
/// the receptive fields where they lie (see `conv2d`'s direct variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    pub count: usize,
    pub len: usize,
    pub stride: usize,
}

impl Segments {
    /// A plain `k`-column matrix: one segment.
    pub fn one(k: usize) -> Self {
        Segments {
            count: 1,
            len: k,
            stride: 0,
        }
    }
}

/// Rows per tile when `m` rows are cut into tiles of at most `max` rows, as evenly as
/// possible: 32 rows with 28-row tiles run as two tiles of 16 (16 independent FMA chains
/// each), not 28 + 4 (4 chains cannot cover the FMA latency).
fn balanced(m: usize, max: usize) -> usize {
    m.div_ceil(m.div_ceil(max).max(1)).max(1)
}

/// `C[m x n] = A[m x k] · B + beta · C` on one thread with the [`active`] kernel, for a
/// strided view `a` of A (`k` and `n` come from `b`) and a row-major C with row stride `ldc`.
/// `beta` must be 0 (overwrite, NaNs included) or 1 (accumulate). Panics if no kernel is
/// active or a slice is too short.
pub fn gemm_packed(m: usize, a: Mat, b: &PackedB, beta: f32, c: &mut [f32], ldc: usize) {
    let kernel = active().expect("gemm_packed needs AVX-512F or AVX2 + FMA; use gemm_serial");
    gemm_packed_segments(kernel, m, a, Segments::one(b.k), b, beta, c, ldc)
}

/// [`gemm_packed`] with a given kernel. Panics if this CPU cannot run it.
pub fn gemm_packed_with(
    kernel: Kernel,
    m: usize,
    a: Mat,
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_packed_segments(kernel, m, a, Segments::one(b.k), b, beta, c, ldc)
}

/// [`gemm_packed_with`] with A's columns walked in [`Segments`] (`seg.count * seg.len` must
/// be `b.k`). Panics if this CPU cannot run `kernel` or a slice is too short.
// The GEMM's arguments plus the kernel and A's segments.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_segments(
    kernel: Kernel,
    m: usize,
    a: Mat,
    seg: Segments,
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    assert!(
        beta == 0.0 || beta == 1.0,
        "gemm_packed: beta must be 0 or 1"
    );
    assert!(
        kernel.supported(),
        "gemm_packed: this CPU cannot run the {} kernel",
        kernel.name()
    );
    assert_eq!(seg.count * seg.len, k, "gemm_packed: segments must cover k");
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "gemm_packed: leading dimension of C too small");
    if k > 0 {
        // The farthest element of A: the last row's last segment's last column.
        let last = (m - 1) * a.rs + (seg.count - 1) * seg.stride + (seg.len - 1) * a.cs;
        assert!(
            last < a.data.len(),
            "gemm_packed: A needs {} elements, slice has {}",
            last + 1,
            a.data.len()
        );
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm_packed: C too short");
    let store = Store {
        accumulate: beta == 1.0,
        relu: b.relu,
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the kernel's instruction set is available (asserted above); the asserts above
    // bound every access: A's elements (i < m, every segment's p < len), rows < m of C (n
    // floats each at stride ldc), and the packed panels hold k * NR floats each.
    unsafe {
        match kernel {
            Kernel::Avx512 => avx512::gemm(m, a, seg, b, store, c, ldc),
            Kernel::Avx2Fma => avx2::gemm(m, a, seg, b, store, c, ldc),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{balanced, PackedB, Segments, Store, NR};
    use crate::gemm::Mat;
    use std::arch::x86_64::*;

    /// Rows per micro-kernel call.
    const MR: usize = 6;
    /// Columns per tile: half a panel, two 8-lane vectors.
    const HALF: usize = 16;

    /// Lane masks (all ones where the column is valid) for a tile with `width` valid columns.
    #[target_feature(enable = "avx2")]
    fn masks(width: usize) -> (__m256i, __m256i) {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let w = width as i32;
        (
            _mm256_cmpgt_epi32(_mm256_set1_epi32(w), lanes),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(w - 8), lanes),
        )
    }

    /// `C = A · B (+ C when accumulate)` with 6 x 16 tiles: [`super::gemm_packed_with`]'s
    /// work once it has checked its arguments.
    ///
    /// # Safety
    /// - The CPU must support AVX2 and FMA (this function is compiled for them).
    /// - `a` must hold every element `(i, p)` for `i < m`, `p < b.k`, walked as `seg` says
    ///   (`seg.count * seg.len == b.k`; checked by `gemm_packed_segments`).
    /// - `c` must hold `m` rows of `b.n` floats at row stride `ldc`, `ldc >= b.n`: at least
    ///   `(m - 1) * ldc + b.n` floats when `m, b.n > 0`.
    /// - `b` must be packed ([`PackedB::pack`]), so each panel holds `b.k * NR` floats.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm(
        m: usize,
        a: Mat,
        seg: Segments,
        b: &PackedB,
        store: Store,
        c: &mut [f32],
        ldc: usize,
    ) {
        let n = b.n;
        let (a_rs, a_cs) = (a.rs, a.cs);
        let per_tile = balanced(m, MR);
        for panel in 0..n.div_ceil(NR) {
            let j0 = panel * NR;
            let width = NR.min(n - j0);
            for half in 0..2 {
                let jh = half * HALF;
                if jh >= width {
                    break;
                }
                let (m0, m1) = masks(width - jh);
                let bp = b.panel(panel).as_ptr().add(jh);
                let bias = b.bias_from(j0 + jh);
                let mut i0 = 0;
                while i0 < m {
                    let rows = per_tile.min(m - i0);
                    let ap = a.data.as_ptr().add(i0 * a_rs);
                    let cp = c.as_mut_ptr().add(i0 * ldc + j0 + jh);
                    macro_rules! call {
                        ($($r:literal)*) => {
                            match rows {
                                $($r => tile::<$r>(seg, ap, (a_rs, a_cs), bp, cp, ldc, store, bias, m0, m1),)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    call!(1 2 3 4 5 6);
                    i0 += rows;
                }
            }
        }
    }

    /// One `R x 16` tile of C: `R` rows of A times half a packed panel (row stride `NR`).
    ///
    /// # Safety
    /// - The CPU must support AVX2 and FMA.
    /// - `a.add(r * a_rs + s * seg.stride + p * a_cs)` must be readable for `r < R`,
    ///   `s < seg.count`, `p < seg.len`.
    /// - `b` must be readable for `k = seg.count * seg.len` rows of 16 floats at stride [`NR`]
    ///   (`b.add(p * NR)` to `b.add(p * NR + 15)` for `p < k`).
    /// - `c.add(r * ldc + j)` must be readable and writable for `r < R` and every column `j`
    ///   whose lane is set in `m0` (columns 0..8) or `m1` (columns 8..16), with no other
    ///   reference to those floats alive. No alignment is required.
    /// - `bias` is null or readable for 16 floats.
    // A BLIS-style micro-kernel: raw pointers, strides and masks of one tile, inlined.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize>(
        seg: Segments,
        a: *const f32,
        (a_rs, a_cs): (usize, usize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        store: Store,
        bias: *const f32,
        m0: __m256i,
        m1: __m256i,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for s in 0..seg.count {
            let (a, b) = (a.add(s * seg.stride), b.add(s * seg.len * NR));
            for p in 0..seg.len {
                let b0 = _mm256_loadu_ps(b.add(p * NR));
                let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*a.add(r * a_rs + p * a_cs));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cr = c.add(r * ldc);
            let (mut lo, mut hi) = (row[0], row[1]);
            if !bias.is_null() {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias.add(8)));
            }
            if store.accumulate {
                lo = _mm256_add_ps(lo, _mm256_maskload_ps(cr, m0));
                hi = _mm256_add_ps(hi, _mm256_maskload_ps(cr.add(8), m1));
            }
            if store.relu {
                lo = _mm256_max_ps(lo, _mm256_setzero_ps());
                hi = _mm256_max_ps(hi, _mm256_setzero_ps());
            }
            _mm256_maskstore_ps(cr, m0, lo);
            _mm256_maskstore_ps(cr.add(8), m1, hi);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{balanced, PackedB, Segments, Store, MR, NR};
    use crate::gemm::Mat;
    use std::arch::x86_64::*;

    /// Lane masks for the two vectors of a panel with `width` valid columns.
    fn masks(width: usize) -> (__mmask16, __mmask16) {
        let lo = if width >= 16 {
            0xFFFF
        } else {
            (1u32 << width) as u16 - 1
        };
        let hi = if width >= NR {
            0xFFFF
        } else if width > 16 {
            (1u32 << (width - 16)) as u16 - 1
        } else {
            0
        };
        (lo, hi)
    }

    /// `C = A · B (+ C when accumulate)` with 14 x 32 tiles: [`super::gemm_packed_with`]'s
    /// work once it has checked its arguments.
    ///
    /// # Safety
    /// - The CPU must support AVX-512F (this function is compiled for it).
    /// - `a` must hold every element `(i, p)` for `i < m`, `p < b.k`, walked as `seg` says
    ///   (`seg.count * seg.len == b.k`; checked by `gemm_packed_segments`).
    /// - `c` must hold `m` rows of `b.n` floats at row stride `ldc`, `ldc >= b.n`: at least
    ///   `(m - 1) * ldc + b.n` floats when `m, b.n > 0`.
    /// - `b` must be packed ([`PackedB::pack`]), so each panel holds `b.k * NR` floats.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm(
        m: usize,
        a: Mat,
        seg: Segments,
        b: &PackedB,
        store: Store,
        c: &mut [f32],
        ldc: usize,
    ) {
        let n = b.n;
        let (a_rs, a_cs) = (a.rs, a.cs);
        let per_tile = balanced(m, if a_cs == 1 { ROWS_UNROLLED } else { MR });
        for panel in 0..n.div_ceil(NR) {
            let j0 = panel * NR;
            let width = NR.min(n - j0);
            let (mlo, mhi) = masks(width);
            let bp = b.panel(panel).as_ptr();
            let bias = b.bias_from(j0);
            if width <= 16 {
                let args = (m, seg, a, bp, c.as_mut_ptr().add(j0), ldc, store, bias, mlo);
                match (a_cs, a_rs) {
                    (1, 16) => narrow_panel::<16>(args),
                    _ => narrow_panel::<0>(args),
                }
                continue;
            }
            let cp = c.as_mut_ptr().add(j0);
            let args = (m, per_tile, seg, a, bp, cp, ldc, store, bias, mlo, mhi);
            match (a_cs, a_rs) {
                (1, 32) => wide_panel::<32>(args),
                (1, 64) => wide_panel::<64>(args),
                (1, 128) => wide_panel::<128>(args),
                _ => wide_panel::<0>(args),
            }
        }
    }

    /// The arguments of [`wide_panel`]: `m`, rows per tile, A's segments, A, the panel, C
    /// from the panel's first column, `ldc`, what to do on store, the bias and the two lane
    /// masks.
    type WideArgs<'a> = (
        usize,
        usize,
        Segments,
        Mat<'a>,
        *const f32,
        *mut f32,
        usize,
        Store,
        *const f32,
        __mmask16,
        __mmask16,
    );

    /// The `m` rows of one panel as `per_tile x 32` tiles. `RS` is A's row stride when it is
    /// known at compile time (0: read it from `a`): with a constant stride each row of a
    /// tile is a fixed displacement from one pointer, so the compiler addresses A's rows
    /// with no arithmetic; with a run-time stride it walks them with a chain of `lea`s, one
    /// per row and step, that competes with the FMAs for the execution ports.
    ///
    /// # Safety
    /// As [`gemm`], for this panel; `RS` is 0 or `a.rs` with `a.cs == 1`.
    #[target_feature(enable = "avx512f")]
    unsafe fn wide_panel<const RS: usize>(args: WideArgs) {
        let (m, per_tile, seg, a, bp, c, ldc, store, bias, mlo, mhi) = args;
        debug_assert!(RS == 0 || (RS == a.rs && a.cs == 1));
        let mut i0 = 0;
        while i0 < m {
            let rows = per_tile.min(m - i0);
            let ap = a.data.as_ptr().add(i0 * a.rs);
            let cp = c.add(i0 * ldc);
            macro_rules! call {
                ($($r:literal)*) => {
                    match rows {
                        $($r => tile::<$r, RS>(seg, ap, (a.rs, a.cs), bp, cp, ldc, store, bias, mlo, mhi),)*
                        _ => unreachable!(),
                    }
                };
            }
            call!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
            i0 += rows;
        }
    }

    /// Rows per wide tile when A's columns are contiguous and the tile takes two steps of p
    /// per row pointer: 2 x 13 accumulators, four B vectors and a broadcast fill 31 of the 32
    /// registers; 14 rows spilled an accumulator to the stack in every step.
    const ROWS_UNROLLED: usize = 13;

    /// Rows per narrow tile: 28 accumulators of one vector each.
    const MR_NARROW: usize = 28;

    /// The arguments of [`narrow_panel`]: `m`, A's segments, A, the panel, C from the panel's
    /// first column, `ldc`, what to do on store, the bias and the lane mask.
    type NarrowArgs<'a> = (
        usize,
        Segments,
        Mat<'a>,
        *const f32,
        *mut f32,
        usize,
        Store,
        *const f32,
        __mmask16,
    );

    /// A panel with at most 16 valid columns (a 16-channel layer's whole B, or the last
    /// panel of 48 or 144 columns): the 14 x 32 tile would spend half its FMAs on zero
    /// padding, so these rows run as 28 x 16 tiles instead, 28 FMAs per step of `p` on valid
    /// columns only, one B load and 28 broadcasts of A feeding them.
    ///
    /// # Safety
    /// As [`gemm`], for the panel at `bp` (its first 16 columns) and C from column `c`'s
    /// position on; `mlo` masks the valid columns.
    /// `RS` is A's row stride when known at compile time, as in [`wide_panel`] (0: `a.rs`).
    #[target_feature(enable = "avx512f")]
    unsafe fn narrow_panel<const RS: usize>(args: NarrowArgs) {
        let (m, seg, a, bp, c, ldc, store, bias, mlo) = args;
        debug_assert!(RS == 0 || (RS == a.rs && a.cs == 1));
        let per_tile = balanced(m, MR_NARROW);
        let mut i0 = 0;
        while i0 < m {
            let rows = per_tile.min(m - i0);
            let ap = a.data.as_ptr().add(i0 * a.rs);
            let cp = c.add(i0 * ldc);
            macro_rules! call {
                ($($r:literal)*) => {
                    match rows {
                        $($r => narrow_tile::<$r, RS>(seg, ap, (a.rs, a.cs), bp, cp, ldc, store, bias, mlo),)*
                        _ => unreachable!(),
                    }
                };
            }
            call!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28);
            i0 += rows;
        }
    }

    /// One `R x 16` tile of C: `R` rows of A times the first 16 columns of a packed panel.
    ///
    /// # Safety
    /// As [`tile`], with only the columns in `mlo` (0..16) touched in C and `bias` null or
    /// readable for 16 floats.
    // A BLIS-style micro-kernel: raw pointers, strides and mask of one tile, inlined.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn narrow_tile<const R: usize, const RS: usize>(
        seg: Segments,
        a: *const f32,
        (a_rs, a_cs): (usize, usize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        store: Store,
        bias: *const f32,
        mlo: __mmask16,
    ) {
        let a_rs = if RS == 0 { a_rs } else { RS };
        let mut acc = [_mm512_setzero_ps(); R];
        for s in 0..seg.count {
            let (a, b) = (a.add(s * seg.stride), b.add(s * seg.len * NR));
            let mut p = 0;
            if a_cs == 1 {
                // Rows far apart, columns contiguous (im2col rows, a padded image): four
                // steps of p per row pointer. One step at a time, the compiler walks the
                // rows with a chain of dependent pointer additions (`ptr += a_rs`), one per
                // FMA, and that chain, not the FMA units, set the pace: 1 FMA per cycle,
                // half the peak. Here each row's pointer feeds four FMAs at fixed offsets.
                while p + 4 <= seg.len {
                    let bv = [0, 1, 2, 3].map(|u| _mm512_loadu_ps(b.add((p + u) * NR)));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let ar = a.add(r * a_rs + p);
                        for (u, bu) in bv.iter().enumerate() {
                            *row = _mm512_fmadd_ps(_mm512_set1_ps(*ar.add(u)), *bu, *row);
                        }
                    }
                    p += 4;
                }
            }
            if a_rs == 1 {
                // Rows adjacent (a transposed A, as the weight gradient reads it): fixed
                // offsets from one pointer per step.
                for p in p..seg.len {
                    let b0 = _mm512_loadu_ps(b.add(p * NR));
                    let ap = a.add(p * a_cs);
                    for (r, row) in acc.iter_mut().enumerate() {
                        *row = _mm512_fmadd_ps(_mm512_set1_ps(*ap.add(r)), b0, *row);
                    }
                }
                continue;
            }
            for p in p..seg.len {
                let b0 = _mm512_loadu_ps(b.add(p * NR));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * a_rs + p * a_cs));
                    *row = _mm512_fmadd_ps(av, b0, *row);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cr = c.add(r * ldc);
            let mut v = *row;
            if !bias.is_null() {
                v = _mm512_add_ps(v, _mm512_loadu_ps(bias));
            }
            if store.accumulate {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mlo, cr));
            }
            if store.relu {
                v = _mm512_max_ps(v, _mm512_setzero_ps());
            }
            _mm512_mask_storeu_ps(cr, mlo, v);
        }
    }

    /// One `R x 32` tile of C: `R` rows of A times one packed panel.
    ///
    /// # Safety
    /// - The CPU must support AVX-512F.
    /// - `a.add(r * a_rs + s * seg.stride + p * a_cs)` must be readable for `r < R`,
    ///   `s < seg.count`, `p < seg.len`.
    /// - `b` must be readable for `seg.count * seg.len * NR` floats (one packed panel, rows at
    ///   stride [`NR`]).
    /// - `c.add(r * ldc + j)` must be readable and writable for `r < R` and every column `j`
    ///   whose lane is set in `mlo` (columns 0..16) or `mhi` (columns 16..32), with no other
    ///   reference to those floats alive. No alignment is required.
    /// - `bias` is null or readable for 32 floats.
    // A BLIS-style micro-kernel: raw pointers, strides and masks of one tile, inlined.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const RS: usize>(
        seg: Segments,
        a: *const f32,
        (a_rs, a_cs): (usize, usize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        store: Store,
        bias: *const f32,
        mlo: __mmask16,
        mhi: __mmask16,
    ) {
        // A compile-time row stride where the caller knows one (see `wide_panel`).
        let a_rs = if RS == 0 { a_rs } else { RS };
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for s in 0..seg.count {
            let (a, b) = (a.add(s * seg.stride), b.add(s * seg.len * NR));
            let mut p = 0;
            if a_cs == 1 {
                // As in `narrow_tile`: two steps of p per row pointer, so the chain of
                // pointer additions that walks the rows feeds four FMAs per link, not two.
                // (Two, not four: 28 accumulators and four B vectors fill the 32 registers.)
                while p + 2 <= seg.len {
                    let b0 = _mm512_loadu_ps(b.add(p * NR));
                    let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
                    let b2 = _mm512_loadu_ps(b.add((p + 1) * NR));
                    let b3 = _mm512_loadu_ps(b.add((p + 1) * NR + 16));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let ar = a.add(r * a_rs + p);
                        let (a0, a1) = (_mm512_set1_ps(*ar), _mm512_set1_ps(*ar.add(1)));
                        row[0] = _mm512_fmadd_ps(a0, b0, row[0]);
                        row[1] = _mm512_fmadd_ps(a0, b1, row[1]);
                        row[0] = _mm512_fmadd_ps(a1, b2, row[0]);
                        row[1] = _mm512_fmadd_ps(a1, b3, row[1]);
                    }
                    p += 2;
                }
            }
            if a_rs == 1 {
                // Rows adjacent (a transposed A, as the weight gradient reads it): fixed
                // offsets from one pointer per step.
                for p in p..seg.len {
                    let b0 = _mm512_loadu_ps(b.add(p * NR));
                    let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
                    let ap = a.add(p * a_cs);
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av = _mm512_set1_ps(*ap.add(r));
                        row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                        row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                    }
                }
                continue;
            }
            for p in p..seg.len {
                let b0 = _mm512_loadu_ps(b.add(p * NR));
                let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
                let ap = a.add(p * a_cs);
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r * a_rs));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cr = c.add(r * ldc);
            let (mut lo, mut hi) = (row[0], row[1]);
            if !bias.is_null() {
                lo = _mm512_add_ps(lo, _mm512_loadu_ps(bias));
                hi = _mm512_add_ps(hi, _mm512_loadu_ps(bias.add(16)));
            }
            if store.accumulate {
                lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mlo, cr));
                hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mhi, cr.add(16)));
            }
            if store.relu {
                lo = _mm512_max_ps(lo, _mm512_setzero_ps());
                hi = _mm512_max_ps(hi, _mm512_setzero_ps());
            }
            _mm512_mask_storeu_ps(cr, mlo, lo);
            _mm512_mask_storeu_ps(cr.add(16), mhi, hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::gemm_reference;
    use crate::testutil::{assert_close, random_vec, v4_kernels};

    #[test]
    fn matches_reference_on_awkward_shapes() {
        for kernel in v4_kernels() {
            matches_reference_with(kernel);
        }
    }

    fn matches_reference_with(kernel: Kernel) {
        let mut pb = PackedB::default();
        for &(m, k, n) in &[
            (1, 1, 1),
            (14, 3, 32),
            (6, 4, 16),
            (7, 3, 8),
            (5, 2, 20),
            (12, 10, 47),
            (15, 7, 33),
            (13, 27, 32),
            (29, 288, 64),
            (100, 5, 17),
            (64, 1152, 128),
            (3, 0, 5),
            // Panels of at most 16 valid columns (the narrow tiles on AVX-512), with row
            // counts past one and two 28-row tiles.
            (61, 20, 16),
            (45, 9, 48),
            (29, 144, 7),
            // Row strides (k + 3) the AVX-512 kernel specialises at compile time: 16 (narrow
            // panels), 32, 64 and 128 (wide panels, and the narrow last panel of 40 and 33).
            (17, 13, 16),
            (30, 29, 40),
            (27, 61, 64),
            (14, 125, 33),
        ] {
            let a = random_vec(m * (k + 3), 1);
            let b = random_vec(k * n, 2);
            for beta in [0.0, 1.0] {
                // A with a row stride larger than k, C with one larger than n.
                let (lda, ldc) = (k + 3, n + 2);
                let c0 = random_vec(m * ldc, 3);
                let mut want = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        want[i * n + j] = c0[i * ldc + j];
                    }
                }
                let am = Mat {
                    data: &a,
                    rs: lda,
                    cs: 1,
                };
                gemm_reference(m, k, n, am, Mat::row_major(&b, n), beta, &mut want);
                pb.pack(&b, k, n, n, 1);
                let mut c = c0.clone();
                gemm_packed_with(kernel, m, am, &pb, beta, &mut c, ldc);
                let got: Vec<f32> = (0..m)
                    .flat_map(|i| c[i * ldc..i * ldc + n].to_vec())
                    .collect();
                let tol = 1e-5 * (k as f32).sqrt().max(1.0);
                assert_close(
                    &got,
                    &want,
                    tol,
                    &format!("{kernel:?} {m}x{k}x{n} beta {beta}"),
                );
                // Columns past n in each row of C are untouched.
                for i in 0..m {
                    assert_eq!(
                        c[i * ldc + n..i * ldc + ldc],
                        c0[i * ldc + n..i * ldc + ldc]
                    );
                }
            }
        }
    }

    /// A walked in segments equals the plain GEMM of the matrix those segments gather, on
    /// every kernel, with row counts that split into uneven tiles and narrow and wide panels.
    #[test]
    fn segmented_a_matches_reference_on_the_gathered_matrix() {
        for kernel in v4_kernels() {
            let mut pb = PackedB::default();
            // (m, count, len, cs, rs, stride, n)
            for &(m, count, len, cs, rs, stride, n) in &[
                (1, 1, 5, 1, 5, 0, 3),
                (32, 3, 48, 1, 16, 34 * 16, 16),
                (11, 3, 9, 1, 6, 40, 40),
                (16, 32, 32, 16, 1, 16 * 34, 16),
                (30, 2, 7, 2, 3, 50, 70),
                (29, 5, 4, 1, 4, 33, 9),
            ] {
                let k = count * len;
                let need = (m - 1) * rs + (count - 1) * stride + (len - 1) * cs + 1;
                let data = random_vec(need, 4);
                let a = Mat {
                    data: &data,
                    rs,
                    cs,
                };
                let seg = Segments { count, len, stride };
                let mut gathered = vec![0.0; m * k];
                for i in 0..m {
                    for s in 0..count {
                        for q in 0..len {
                            gathered[i * k + s * len + q] = data[i * rs + s * stride + q * cs];
                        }
                    }
                }
                let b = random_vec(k * n, 5);
                let mut want = vec![0.0; m * n];
                let g = Mat::row_major(&gathered, k);
                gemm_reference(m, k, n, g, Mat::row_major(&b, n), 0.0, &mut want);
                pb.pack(&b, k, n, n, 1);
                let mut got = vec![f32::NAN; m * n];
                gemm_packed_segments(kernel, m, a, seg, &pb, 0.0, &mut got, n);
                let what = format!("{kernel:?} segments {m} rows x {count} x {len}, n {n}");
                assert_close(&got, &want, 1e-5 * (k as f32).sqrt(), &what);
            }
        }
    }

    /// Rows cut into tiles as evenly as the tile height allows.
    #[test]
    fn balanced_tiles() {
        assert_eq!(balanced(32, 28), 16);
        assert_eq!(balanced(28, 28), 28);
        assert_eq!(balanced(29, 28), 15);
        assert_eq!(balanced(1024, 28), 28);
        assert_eq!(balanced(8, 14), 8);
        assert_eq!(balanced(0, 14), 1);
    }

    /// A bias set on the packed B is added to every row of C, on both kernels, for widths
    /// that end a panel in each half and in the narrow tiles; `pack` clears it.
    #[test]
    fn relu_in_the_epilogue_matches_reference_then_relu() {
        for kernel in v4_kernels() {
            let mut pb = PackedB::default();
            // Narrow panels (n <= 16), wide ones, and a masked last panel.
            for &(m, k, n) in &[(17, 9, 16), (30, 27, 32), (29, 12, 45), (3, 2, 70)] {
                let (a, b) = (random_vec(m * k, 4), random_vec(k * n, 5));
                let (bias, c0) = (random_vec(n, 6), random_vec(m * n, 7));
                for accumulate in [false, true] {
                    let beta = if accumulate { 1.0 } else { 0.0 };
                    let mut want = c0.clone();
                    let (am, bm) = (Mat::row_major(&a, k), Mat::row_major(&b, n));
                    gemm_reference(m, k, n, am, bm, beta, &mut want);
                    for (i, v) in want.iter_mut().enumerate() {
                        *v = (*v + bias[i % n]).max(0.0);
                    }
                    pb.pack(&b, k, n, n, 1);
                    pb.set_bias(&bias);
                    pb.set_relu(true);
                    let mut c = c0.clone();
                    gemm_packed_with(kernel, m, am, &pb, beta, &mut c, n);
                    let what = format!("{kernel:?} {m}x{k}x{n} + bias, relu, beta {beta}");
                    assert_close(&c, &want, 1e-5, &what);
                    assert!(c.iter().all(|&v| v >= 0.0), "{what}: a negative value");
                }
            }
        }
    }

    #[test]
    fn bias_in_the_epilogue_matches_reference_plus_bias() {
        for kernel in v4_kernels() {
            let mut pb = PackedB::default();
            for &(m, k, n) in &[
                (17, 9, 16),
                (30, 27, 32),
                (5, 4, 7),
                (29, 12, 45),
                (3, 2, 70),
            ] {
                let (a, b) = (random_vec(m * k, 1), random_vec(k * n, 2));
                let bias = random_vec(n, 3);
                let mut want = vec![0.0; m * n];
                gemm_reference(
                    m,
                    k,
                    n,
                    Mat::row_major(&a, k),
                    Mat::row_major(&b, n),
                    0.0,
                    &mut want,
                );
                for (i, v) in want.iter_mut().enumerate() {
                    *v += bias[i % n];
                }
                pb.pack(&b, k, n, n, 1);
                pb.set_bias(&bias);
                let mut c = vec![f32::NAN; m * n];
                gemm_packed_with(kernel, m, Mat::row_major(&a, k), &pb, 0.0, &mut c, n);
                let what = format!("{kernel:?} {m}x{k}x{n} + bias");
                assert_close(&c, &want, 1e-5, &what);
                // Packing again clears the bias.
                pb.pack(&b, k, n, n, 1);
                gemm_packed_with(kernel, m, Mat::row_major(&a, k), &pb, 0.0, &mut c, n);
                let mut plain = vec![0.0; m * n];
                gemm_reference(
                    m,
                    k,
                    n,
                    Mat::row_major(&a, k),
                    Mat::row_major(&b, n),
                    0.0,
                    &mut plain,
                );
                assert_close(&c, &plain, 1e-5, &format!("{what}, then packed again"));
            }
        }
    }

    /// A given transposed (rs = 1), as the weight gradient uses it.
    #[test]
    fn transposed_a_matches_reference() {
        for kernel in v4_kernels() {
            transposed_a_with(kernel);
        }
    }

    fn transposed_a_with(kernel: Kernel) {
        let mut pb = PackedB::default();
        for &(m, k, n) in &[
            (288, 1024, 32),
            (27, 50, 64),
            (17, 9, 33),
            (7, 5, 9),
            (144, 300, 16),
        ] {
            let a = random_vec(k * m, 5); // stored k x m: A = storedᵀ
            let b = random_vec(k * n, 6);
            let mut want = vec![0.0; m * n];
            gemm_reference(
                m,
                k,
                n,
                Mat::row_major(&a, m).t(),
                Mat::row_major(&b, n),
                0.0,
                &mut want,
            );
            pb.pack(&b, k, n, n, 1);
            let mut got = vec![f32::NAN; m * n];
            let at = Mat::row_major(&a, m).t();
            gemm_packed_with(kernel, m, at, &pb, 0.0, &mut got, n);
            assert_close(
                &got,
                &want,
                1e-5 * (k as f32).sqrt(),
                &format!("{kernel:?} {m}x{k}x{n} Aᵀ"),
            );
        }
    }

    #[test]
    fn packing_a_transposed_b_equals_packing_its_copy() {
        let (k, n) = (9, 40);
        let b = random_vec(k * n, 4);
        let bt: Vec<f32> = (0..n)
            .flat_map(|j| (0..k).map(move |p| (j, p)))
            .map(|(j, p)| b[p * n + j])
            .collect();
        let (mut x, mut y) = (PackedB::default(), PackedB::default());
        x.pack(&b, k, n, n, 1);
        y.pack(&bt, k, n, 1, k);
        assert_eq!(x.data, y.data);
    }
}
