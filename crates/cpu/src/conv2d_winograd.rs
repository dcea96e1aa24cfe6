//! Winograd convolution F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016): a 3x3, stride-1 `Same` convolution computed on 2x2 output tiles with 16
//! multiplications per tile and channel pair instead of 36.
//!
//! Math, per output tile (2x2 outputs at `(2ty, 2tx)`) and per input/output channel pair:
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`, with `d` the 4x4 input patch at `(2ty - 1, 2tx - 1)`
//! (zeros outside the image), `g` the 3x3 kernel, and
//! `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`,
//! `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`, `Aᵀ = [1 1 1 0; 0 1 -1 -1]`.
//! Summed over input channels, the element-wise product becomes 16 GEMMs, one per position
//! `ξ` of the 4x4 transformed tile: `M[ξ] = V[ξ] · U[ξ]`, with `V[ξ]` the transformed input
//! (`tiles x c_in`), `U[ξ]` the transformed kernel (`c_in x c_out`), `M[ξ]` `tiles x c_out`.
//!
//! Layout: NHWC in and out, as every CPU convolution here. Per image, the input is copied into
//! a zero-padded buffer (whole tiles past an odd edge read zeros), `V` is `[16][tiles][c_in]`
//! and `M` `[16][tiles][c_out]`, so every GEMM reads and writes contiguous row-major
//! matrices, and the transforms run over channels, 16 at a time, in fixed-size arrays the
//! compiler vectorises. The 16 GEMMs are GEMM version 4's (`gemm_packed`), each `U[ξ]`
//! packed once per call.
//!
//! Why it can be faster: 2.25x fewer multiply-adds in the GEMMs (16 per tile and channel pair
//! instead of 4 x 9 = 36), for the price of the two transforms (about 32 additions per tile
//! and input channel, 24 per tile and output channel) and of `V` and `M` passing through
//! cache. The GEMMs have `K = c_in`, so narrow layers (16 channels) gain least.
//!
//! Numerical error: the transforms only add and halve, so the result differs from the direct
//! sum by rounding, a few units in the last place of the largest partial sums (tested
//! against the reference at 1e-4 relative, like the other variants' 1e-5 on smaller sums).
//!
//! Gradients: the input gradient of a 3x3 stride-1 `Same` layer is a forward convolution
//! (`Conv2dDims::input_gradient_as_forward`), so it runs here too. The weight gradient runs
//! as F(3x3, 2x2) ([`WeightGrad`]): the same input transform, a 4x4 transform of each 2x2
//! tile of the output gradient, 16 GEMMs over the tiles of several images (`K` = tiles), and
//! a 4x4 -> 3x3 transform of the sums once per range of images.
//!
//! Where it runs: by default on layers of at least 32 input and output channels, 64 on one
//! side, with an even output size (`conv2d::winograd_wins`, with the measurements). There
//! [`forward_image_padded`] convolves one image from the direct variant's padded copy, and
//! [`WeightGrad::add_image`] takes the direct backward's padded copies of `x` and `dz`, so
//! the direct variant's fused passes (conv + ReLU + pool, the one-pass backward) keep their
//! structure and run their images' convolutions here. keras6 on the CIFAR-10 subset (15
//! epochs, seed 1), with the forward and input gradient by Winograd on its 128-channel
//! layers, trained the same: loss 0.889 vs 0.887 and training accuracy 0.680 vs 0.688 at
//! epoch 15 (validation accuracy on its 500 images 0.568 vs 0.540 at epoch 15; best 0.568 vs
//! 0.604: the last epochs swing by ±0.03 there).
//!
//! Two lessons from the profile. The 16 matrices `V[ξ]` (and `M[ξ]`, `Ŭ[ξ]`) were laid
//! end to end: for a 16x16 image at 64 channels they are 16 KB each, so the 16 values a
//! transform stores per tile and channel were a multiple of 4 KB apart, all in one set of
//! the L1 cache (12 lines per set); one cache line between the matrices (`plane`) took
//! the weight gradient's transform of `dy` from a fifth of its time to a few percent, and
//! the forward at 16x16 64 -> 64 from a draw with direct to 1.1-1.2x. And the 4x4 patches
//! were built with `std::array::from_fn`, which the AVX-512 version called out of line,
//! copying each 1 KB patch with `memmove` (40% of the variant's time); plain loops fixed it.

use std::cell::Cell;

use rayon::prelude::*;

use crate::conv2d::{with_scratch, with_taken, Conv2dDims};
use crate::gemm::Mat;
use crate::gemm_packed::{gemm_packed_segments, Kernel, PackedB, Segments, NR};
use crate::simd::multiversion;

/// Channels per step of the transforms: one AVX-512 vector of `f32`.
const LANES: usize = 16;

thread_local! {
    /// A task's padded image.
    static PADDED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// A task's transformed input `V` and products `M`, one after the other.
    static TILES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The 16 packed transformed kernels `U[ξ]` of one call.
    static PACKED_U: Cell<Vec<PackedB>> = const { Cell::new(Vec::new()) };
    /// The transformed kernel before packing.
    static KERNEL_U: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Whether F(2x2, 3x3) computes this convolution: a 3x3 kernel, stride 1, padding 1 on top
/// and left (`Same`, so 1 on the other sides too).
pub fn winograd_applies(d: &Conv2dDims) -> bool {
    d.kh == 3 && d.kw == 3 && d.stride == 1 && d.pad_top == 1 && d.pad_left == 1
}

/// Floats from one `ξ`'s matrix of transformed tiles (`rows x c`) to the next: the matrix
/// plus one cache line. Without the line, the 16 matrices of a 16x16 image at 64 channels
/// (16 KB each) start a multiple of 4 KB apart, so the 16 values a transform writes (or
/// reads) per tile and channel all fall into the same set of the L1 cache, which holds 12
/// lines per set: the weight gradient's transform of `dy` took a fifth of its time.
fn plane(rows: usize, c: usize) -> usize {
    rows * c + LANES
}

/// Output tiles of one image: `(rows, columns)` of 2x2 tiles covering the output.
fn tiles(d: &Conv2dDims) -> (usize, usize) {
    (d.out_h.div_ceil(2), d.out_w.div_ceil(2))
}

/// `U[ξ][ci][co] = (G g Gᵀ)[ξ]` for every channel pair, `g = w[.., .., ci, co]`.
fn transform_kernel(d: &Conv2dDims, w: &[f32], u: &mut [f32]) {
    let (ci_n, co_n) = (d.c_in, d.c_out);
    let pair = ci_n * co_n;
    for ci in 0..ci_n {
        for co in 0..co_n {
            let g = |ky: usize, kx: usize| w[(ky * 3 + kx) * pair + ci * co_n + co];
            // G g: 4 x 3.
            let gg: [[f32; 3]; 4] = [
                std::array::from_fn(|kx| g(0, kx)),
                std::array::from_fn(|kx| 0.5 * (g(0, kx) + g(1, kx) + g(2, kx))),
                std::array::from_fn(|kx| 0.5 * (g(0, kx) - g(1, kx) + g(2, kx))),
                std::array::from_fn(|kx| g(2, kx)),
            ];
            // (G g) Gᵀ: 4 x 4.
            for (i, row) in gg.iter().enumerate() {
                let (a, b, c) = (row[0], row[1], row[2]);
                let t = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                for (j, v) in t.into_iter().enumerate() {
                    u[(i * 4 + j) * pair + ci * co_n + co] = v;
                }
            }
        }
    }
}

/// Copies one image into `xp` (`hp x wp x c`, zeros around), its pixel `(0, 0)` at `(1, 1)`.
fn pad_image(d: &Conv2dDims, img: &[f32], hp: usize, wp: usize, xp: &mut [f32]) {
    let c = d.c_in;
    for (py, row) in xp.chunks_exact_mut(wp * c).enumerate() {
        match py.checked_sub(1).filter(|&iy| iy < d.h) {
            None => row.fill(0.0),
            Some(iy) => {
                row[..c].fill(0.0);
                row[c..(1 + d.w) * c].copy_from_slice(&img[iy * d.w * c..(iy + 1) * d.w * c]);
                row[(1 + d.w) * c..].fill(0.0);
            }
        }
    }
    debug_assert_eq!(xp.len(), hp * wp * c);
}

/// `LANES` channels from `src` (zeros past `lanes`). A fixed-size copy when all are there,
/// which compiles to vector moves; `copy_from_slice` with a run-time length became a call
/// to `memmove` per 64 bytes and took a quarter of the variant's time.
#[inline(always)]
fn load(src: &[f32], lanes: usize) -> [f32; LANES] {
    if lanes == LANES {
        src[..LANES].try_into().expect("LANES floats")
    } else {
        let mut v = [0.0; LANES];
        v[..lanes].copy_from_slice(&src[..lanes]);
        v
    }
}

/// The 4x4 tile of `lanes` channels whose element `ξ = (i, j)` starts at
/// `m[(i * 4 + j) * plane + at]`: one tile of the 16 products `M[ξ]`.
#[inline(always)]
fn load_4x4(m: &[f32], plane: usize, at: usize, lanes: usize) -> [[[f32; LANES]; 4]; 4] {
    let mut p = [[[0.0f32; LANES]; 4]; 4];
    for (i, prow) in p.iter_mut().enumerate() {
        for (j, px) in prow.iter_mut().enumerate() {
            *px = load(&m[(i * 4 + j) * plane + at..], lanes);
        }
    }
    p
}

/// Stores the first `lanes` of `v` into `dst`, as [`load`].
#[inline(always)]
fn store(dst: &mut [f32], v: &[f32; LANES], lanes: usize) {
    if lanes == LANES {
        dst[..LANES].copy_from_slice(v);
    } else {
        dst[..lanes].copy_from_slice(&v[..lanes]);
    }
}

multiversion! {
/// `V[ξ][first + t][c] = (Bᵀ d B)[ξ]` for every tile `t` of the padded image and channel
/// `c`, each `V[ξ]` having `rows` rows (the forward passes one image's tiles and 0; the
/// weight gradient gathers several images' tiles). Compiled for the widest SIMD the CPU
/// has: in baseline SSE2 the transforms took longer than the 16 GEMMs.
fn transform_input(d: &Conv2dDims, xp: &[f32], wp: usize, v: &mut [f32], rows: usize, first: usize) {
    let (th, tw) = tiles(d);
    let c_n = d.c_in;
    let plane = plane(rows, c_n);
    for ty in 0..th {
        for tx in 0..tw {
            let t = first + ty * tw + tx;
            // The patch's top-left pixel, and where the tile goes in each `V[ξ]`.
            let (src, dst) = ((2 * ty * wp + 2 * tx) * c_n, t * c_n);
            for c0 in (0..c_n).step_by(LANES) {
                // Whole vectors get their own copy of the body, with no lane count to test
                // on every load and store.
                match c_n - c0 {
                    l if l >= LANES => input_tile(xp, wp * c_n, c_n, src + c0, v, plane, dst + c0, LANES),
                    l => input_tile(xp, wp * c_n, c_n, src + c0, v, plane, dst + c0, l),
                }
            }
        }
    }
}
}

/// One tile and 16 channels of [`transform_input`]: the patch's pixel `(i, j)` at
/// `xp[src + i * row + j * px]`, `(Bᵀ d B)[ξ]` to `v[ξ * plane + dst]`, `lanes` channels.
///
/// One row `i` of `Bᵀ d B` at a time: its four elements are `Bᵀ` applied down the columns of
/// `d` (two rows of `d` each), then `B` along the row. Holding the whole 4x4 patch and its
/// row transform (2 x 16 vectors) spilled them to the stack, stored and reloaded on every
/// tile (a fifth of a keras6 step went to the transforms); one row needs 8 loads and 8
/// vectors.
// The image and the tile's place in it, the transformed matrices and the tile's place there.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_tile(
    xp: &[f32],
    row: usize,
    px: usize,
    src: usize,
    v: &mut [f32],
    plane: usize,
    dst: usize,
    lanes: usize,
) {
    let d = |i: usize, j: usize| load(&xp[src + i * row + j * px..], lanes);
    for i in 0..4 {
        let r: [[f32; LANES]; 4] = [
            bt(i, |k| d(k, 0)),
            bt(i, |k| d(k, 1)),
            bt(i, |k| d(k, 2)),
            bt(i, |k| d(k, 3)),
        ];
        for j in 0..4 {
            let o = bt(j, |k| r[k]);
            store(&mut v[(i * 4 + j) * plane + dst..], &o, lanes);
        }
    }
}

/// Element `i` of `Bᵀ d` for a column `d(0..4)` of 16-lane vectors, `Bᵀ = [1 0 -1 0; 0 1 1 0;
/// 0 -1 1 0; 0 1 0 -1]`: reads only the two elements it needs.
#[inline(always)]
fn bt(i: usize, d: impl Fn(usize) -> [f32; LANES]) -> [f32; LANES] {
    let (a, b, sub) = match i {
        0 => (d(0), d(2), true),
        1 => (d(1), d(2), false),
        2 => (d(2), d(1), true),
        _ => (d(1), d(3), true),
    };
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = if sub { a[l] - b[l] } else { a[l] + b[l] };
    }
    out
}

multiversion! {
/// `y` (one image) from the products: `Aᵀ M A` per tile and output channel, plus the bias,
/// then the ReLU; outputs past an odd edge are dropped.
fn transform_output(d: &Conv2dDims, m: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]) {
    let (th, tw) = tiles(d);
    let (c_n, t_n) = (d.c_out, th * tw);
    for ty in 0..th {
        for tx in 0..tw {
            let t = ty * tw + tx;
            for c0 in (0..c_n).step_by(LANES) {
                // Whole vectors get their own copy of the body (see `transform_input`).
                let tile = OutputTile { d, ty, tx, src: t * c_n + c0, plane: plane(t_n, c_n), c0 };
                match c_n - c0 {
                    l if l >= LANES => output_tile(&tile, m, bias, relu, y, LANES),
                    l => output_tile(&tile, m, bias, relu, y, l),
                }
            }
        }
    }
}
}

/// Where one tile and 16 channels of [`transform_output`] are: the layer, the tile, its
/// products at `m[ξ * plane + src]`, and its first channel.
#[derive(Clone, Copy)]
struct OutputTile<'a> {
    d: &'a Conv2dDims,
    ty: usize,
    tx: usize,
    src: usize,
    plane: usize,
    c0: usize,
}

/// One tile and `lanes` channels of [`transform_output`].
#[inline(always)]
fn output_tile(
    tile: &OutputTile,
    m: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
    lanes: usize,
) {
    let OutputTile {
        d,
        ty,
        tx,
        src,
        plane,
        c0,
    } = *tile;
    let c_n = d.c_out;
    let p = load_4x4(m, plane, src, lanes);
    // Aᵀ p: 2 x 4.
    let mut s = [[[0.0f32; LANES]; 4]; 2];
    for j in 0..4 {
        for l in 0..LANES {
            let (a, b, c, e) = (p[0][j][l], p[1][j][l], p[2][j][l], p[3][j][l]);
            s[0][j][l] = a + b + c;
            s[1][j][l] = b - c - e;
        }
    }
    let b0 = bias.map_or([0.0; LANES], |b| load(&b[c0..], lanes));
    for (i, srow) in s.iter().enumerate() {
        let oy = 2 * ty + i;
        if oy >= d.out_h {
            continue;
        }
        let mut out = [[0.0f32; LANES]; 2];
        for l in 0..LANES {
            let (a, b, c, e) = (srow[0][l], srow[1][l], srow[2][l], srow[3][l]);
            out[0][l] = a + b + c + b0[l];
            out[1][l] = b - c - e + b0[l];
            if relu {
                out[0][l] = out[0][l].max(0.0);
                out[1][l] = out[1][l].max(0.0);
            }
        }
        for (j, o) in out.iter().enumerate() {
            let ox = 2 * tx + j;
            if ox < d.out_w {
                store(&mut y[(oy * d.out_w + ox) * c_n + c0..], o, lanes);
            }
        }
    }
}

multiversion! {
/// `Ŭ[ξ][first + t][c] = (A g Aᵀ)[ξ]` for every 2x2 tile `g` of one image's output gradient
/// (`2 th x 2 tw` pixels of `c_n` channels, pixel `(y, x)` at `dz[(y * row + x) * c_n]`),
/// `A = [1 0; 1 1; 1 -1; 0 -1]` (the transpose of the forward's `Aᵀ`). The 16 `Ŭ[ξ]` are
/// written straight in their GEMMs' packed layout, the groups of an in-place B
/// ([`PackedB::in_place`]: `stride` floats from one panel to the next, `panels` per group).
#[allow(clippy::too_many_arguments)]
fn transform_output_grad(th: usize, tw: usize, c_n: usize, dz: &[f32], row: usize, u: &mut [f32], stride: usize, panels: usize, first: usize) {
    for ty in 0..th {
        for tx in 0..tw {
            let t = first + ty * tw + tx;
            let src = (2 * ty * row + 2 * tx) * c_n;
            for c0 in (0..c_n).step_by(LANES) {
                // Column c0 of row t in the panel of c0 (16 floats never cross a panel).
                let dst = (c0 / NR) * stride + t * NR + c0 % NR;
                let (row, group) = (row * c_n, panels * stride);
                // Whole vectors get their own copy of the body (see `transform_input`).
                match c_n - c0 {
                    l if l >= LANES => grad_tile(dz, src + c0, row, c_n, u, dst, group, LANES),
                    l => grad_tile(dz, src + c0, row, c_n, u, dst, group, l),
                }
            }
        }
    }
}
}

/// One tile and `lanes` channels of [`transform_output_grad`]: `g[i][j]` at
/// `dz[src + i * row + j * px]`, `(A g Aᵀ)[ξ]` to `u[ξ * group + dst]`.
// The gradient and the tile's place in it, the packed groups and the tile's place there.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn grad_tile(
    dz: &[f32],
    src: usize,
    row: usize,
    px: usize,
    u: &mut [f32],
    dst: usize,
    group: usize,
    lanes: usize,
) {
    let mut g = [[[0.0f32; LANES]; 2]; 2];
    for (i, grow) in g.iter_mut().enumerate() {
        for (j, gx) in grow.iter_mut().enumerate() {
            *gx = load(&dz[src + i * row + j * px..], lanes);
        }
    }
    // A g (rows), then (A g) Aᵀ (columns).
    let mut r = [[[0.0f32; LANES]; 2]; 4];
    for j in 0..2 {
        for l in 0..LANES {
            let (a, b) = (g[0][j][l], g[1][j][l]);
            r[0][j][l] = a;
            r[1][j][l] = a + b;
            r[2][j][l] = a - b;
            r[3][j][l] = -b;
        }
    }
    for (i, rrow) in r.iter().enumerate() {
        let mut out = [[0.0f32; LANES]; 4];
        for l in 0..LANES {
            let (a, b) = (rrow[0][l], rrow[1][l]);
            out[0][l] = a;
            out[1][l] = a + b;
            out[2][l] = a - b;
            out[3][l] = -b;
        }
        for (j, o) in out.iter().enumerate() {
            store(&mut u[(i * 4 + j) * group + dst..], o, lanes);
        }
    }
}

multiversion! {
/// Adds `Gᵀ M G` (3x3) to `dw` (HWIO) for every channel pair, `M` being the 4x4 of
/// accumulated products `m[ξ][ci][co]`.
fn transform_weight_grad(ci_n: usize, co_n: usize, m: &[f32], dw: &mut [f32]) {
    let pair = ci_n * co_n;
    for ci in 0..ci_n {
        for c0 in (0..co_n).step_by(LANES) {
            let lanes = LANES.min(co_n - c0);
            let p = load_4x4(m, pair, ci * co_n + c0, lanes);
            // Gᵀ p: 3 x 4.
            let mut r = [[[0.0f32; LANES]; 4]; 3];
            for j in 0..4 {
                for l in 0..LANES {
                    let (a, b, c, e) = (p[0][j][l], p[1][j][l], p[2][j][l], p[3][j][l]);
                    r[0][j][l] = a + 0.5 * (b + c);
                    r[1][j][l] = 0.5 * (b - c);
                    r[2][j][l] = 0.5 * (b + c) + e;
                }
            }
            for (ky, rrow) in r.iter().enumerate() {
                let mut out = [[0.0f32; LANES]; 3];
                for l in 0..LANES {
                    let (a, b, c, e) = (rrow[0][l], rrow[1][l], rrow[2][l], rrow[3][l]);
                    out[0][l] = a + 0.5 * (b + c);
                    out[1][l] = 0.5 * (b - c);
                    out[2][l] = 0.5 * (b + c) + e;
                }
                for (kx, o) in out.iter().enumerate() {
                    let at = (ky * 3 + kx) * pair + ci * co_n + c0;
                    let mut sum = load(&dw[at..], lanes);
                    for l in 0..LANES {
                        sum[l] += o[l];
                    }
                    store(&mut dw[at..], &sum, lanes);
                }
            }
        }
    }
}
}

/// Images whose tiles one weight-gradient GEMM takes together: enough for `K` (tiles) of
/// at least 64, so that the 16 products `M[ξ]` (`c_in x c_out` each) are loaded and stored
/// once per 64 steps or more.
fn images_per_block(d: &Conv2dDims) -> usize {
    let (th, tw) = tiles(d);
    64usize.div_ceil(th * tw).max(1)
}

/// The weight gradient of one thread's range of images by Winograd F(3x3, 2x2), gathered
/// image by image ([`WeightGrad::add_image`]) and written by [`WeightGrad::finish`].
///
/// Math: with `d` a 4x4 input patch and `g` the 2x2 output gradient of its tile, the kernel
/// gradient `Σ_tiles corr(d, g)` (3x3) is `Gᵀ [ Σ (A g Aᵀ) ⊙ (Bᵀ d B) ] G`, with the forward's
/// `B`, `G` and `A` (the transposition principle: F(3x3, 2x2) is F(2x2, 3x3) with the roles
/// of `A` and `G` swapped). Summed over tiles and channel pairs this is 16 GEMMs, one per
/// `ξ`: `M[ξ] += V[ξ]ᵀ · Ŭ[ξ]`, `V[ξ]` the transformed input (`tiles x c_in`, read
/// transposed), `Ŭ[ξ]` the transformed gradient (`tiles x c_out`, packed), `M[ξ]`
/// `c_in x c_out`; 16 multiply-adds per tile and channel pair instead of 36.
/// The bias gradient is the column sums of `Ŭ[5]` (`ξ = (1, 1)`: the sum of each tile's
/// four gradients), read while it is packed.
#[derive(Default)]
pub struct WeightGrad {
    /// Transformed inputs of a block of images: `[16][rows][c_in]`.
    v: Vec<f32>,
    /// Transformed gradients of the block, `Ŭ[ξ]` packed for its GEMM (written in place, one
    /// group per `ξ`).
    u: PackedB,
    /// The products `M[ξ]`, summed over the range: `[16][c_in][c_out]`.
    m: Vec<f32>,
    /// Tiles gathered in the block so far.
    filled: usize,
    /// Tiles per block: the rows of each `V[ξ]` and `Ŭ[ξ]` ([`images_per_block`] images).
    rows: usize,
}

thread_local! {
    /// A task's weight-gradient accumulator.
    static WEIGHT_GRAD: Cell<WeightGrad> = Cell::new(WeightGrad::default());
}

impl WeightGrad {
    /// Runs `f` with this thread's accumulator, cleared for `d` (which must satisfy
    /// [`reads_direct_padding`]).
    pub fn with<R>(d: &Conv2dDims, f: impl FnOnce(&mut WeightGrad) -> R) -> R {
        assert!(reads_direct_padding(d), "winograd: cannot run on {d:?}");
        with_taken(&WEIGHT_GRAD, |acc| {
            let (th, tw) = tiles(d);
            acc.rows = images_per_block(d) * th * tw;
            acc.v.resize(16 * plane(acc.rows, d.c_in), 0.0);
            acc.m.clear();
            acc.m.resize(16 * d.c_in * d.c_out, 0.0);
            acc.filled = 0;
            f(acc)
        })
    }

    /// Gathers one image: `xp` its input padded as the direct variant pads it
    /// (`Conv2dDims::padded_hw`, the image at `(1, 1)`), `dz` its output gradient, pixel
    /// `(y, x)` at `dz[(y * row + x) * c_out]`. Runs the block's GEMMs when it is full,
    /// adding the bias gradient to `db` (when not empty).
    pub fn add_image(
        &mut self,
        kernel: Kernel,
        d: &Conv2dDims,
        xp: &[f32],
        dz: &[f32],
        row: usize,
        db: &mut [f32],
    ) {
        let ((th, tw), rows) = (tiles(d), self.rows);
        let wp = d.padded_hw().1;
        transform_input(d, xp, wp, &mut self.v, rows, self.filled);
        if self.filled == 0 {
            self.u.in_place(rows, 16, d.c_out);
        }
        let (stride, panels) = (self.u.panel_stride(), self.u.group_panels());
        let u = self.u.in_place_data();
        transform_output_grad(th, tw, d.c_out, dz, row, u, stride, panels, self.filled);
        self.filled += th * tw;
        if self.filled == rows {
            self.multiply(kernel, d, db);
        }
    }

    /// The 16 GEMMs of the tiles gathered so far.
    fn multiply(&mut self, kernel: Kernel, d: &Conv2dDims, db: &mut [f32]) {
        let (ci, co, k, rows) = (d.c_in, d.c_out, self.filled, self.rows);
        self.u.set_rows(k);
        for xi in 0..16 {
            self.u.select(xi);
            if xi == 5 && !db.is_empty() {
                self.u.add_column_sums(db);
            }
            // V[ξ] read transposed: row `c` (a channel) at `c`, column `t` (a tile) at `t * ci`.
            let a = Mat {
                data: &self.v[xi * plane(rows, ci)..],
                rs: 1,
                cs: ci,
            };
            let c = &mut self.m[xi * ci * co..(xi + 1) * ci * co];
            gemm_packed_segments(kernel, ci, a, Segments::one(k), &self.u, 1.0, c, co);
        }
        self.filled = 0;
    }

    /// Runs the GEMMs of a last partial block, then adds the range's gradient `Gᵀ M G` to
    /// `dw` (HWIO).
    pub fn finish(&mut self, kernel: Kernel, d: &Conv2dDims, dw: &mut [f32], db: &mut [f32]) {
        if self.filled > 0 {
            self.multiply(kernel, d, db);
        }
        transform_weight_grad(d.c_in, d.c_out, &self.m, dw);
    }
}

/// Forward pass, Winograd F(2x2, 3x3): `y = conv(x, w) + bias`, then `max(y, 0)` with
/// `relu`, one task per image, the 16 GEMMs on the version-4 micro-kernel `kernel`. Panics
/// unless [`winograd_applies`] to `d`, or if this CPU cannot run `kernel`.
// The forward convolution's arguments plus the micro-kernel.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_winograd(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    d.check(x.len(), w.len(), y.len());
    assert!(
        winograd_applies(d),
        "winograd: needs a 3x3 stride-1 Same convolution"
    );
    if let Some(bias) = bias {
        assert_eq!(bias.len(), d.c_out, "conv2d: bias length");
    }
    let (th, tw) = tiles(d);
    // Whole tiles: 2 * tiles + 2 padded rows and columns.
    let (hp, wp) = (2 * th + 2, 2 * tw + 2);
    let in_img = d.h * d.w * d.c_in;
    with_packed_kernel(d, w, |u| {
        y.par_chunks_mut(d.out_pixels() * d.c_out)
            .zip(x.par_chunks(in_img))
            .for_each(|(yi, xi)| {
                with_scratch(&PADDED, hp * wp * d.c_in, |xp| {
                    pad_image(d, xi, hp, wp, xp);
                    forward_image_padded(kernel, d, u, xp, wp, bias, relu, yi);
                });
            });
    });
}

/// Runs `f` with the 16 transformed kernels `U[ξ]` of `w` packed for the GEMMs (once per
/// call, in this thread's slot).
pub fn with_packed_kernel<R>(d: &Conv2dDims, w: &[f32], f: impl FnOnce(&[PackedB]) -> R) -> R {
    let (ci, co) = (d.c_in, d.c_out);
    with_taken(&PACKED_U, |packed| {
        packed.resize_with(16, PackedB::default);
        with_scratch(&KERNEL_U, 16 * ci * co, |u| {
            transform_kernel(d, w, u);
            for (xi, pb) in packed.iter_mut().enumerate() {
                pb.pack(&u[xi * ci * co..(xi + 1) * ci * co], ci, co, co, 1);
            }
        });
        f(packed)
    })
}

/// Whether [`forward_image_padded`] can read `d`'s images from the direct variant's padded
/// copy (one zero row and column around, `Conv2dDims::padded_hw`): whole 2x2 tiles cover
/// the output exactly when its height and width are even.
pub fn reads_direct_padding(d: &Conv2dDims) -> bool {
    winograd_applies(d) && d.out_h.is_multiple_of(2) && d.out_w.is_multiple_of(2)
}

/// One image's forward convolution, Winograd, from its padded copy `xp` (row stride `wp`
/// pixels, the image at `(1, 1)`, zeros around and at least up to whole tiles), with the
/// packed transformed kernels `u` ([`with_packed_kernel`]): `yi = conv + bias`, then the
/// ReLU with `relu`.
// The image, its padding, the packed kernels, the epilogue and the micro-kernel.
#[allow(clippy::too_many_arguments)]
pub fn forward_image_padded(
    kernel: Kernel,
    d: &Conv2dDims,
    u: &[PackedB],
    xp: &[f32],
    wp: usize,
    bias: Option<&[f32]>,
    relu: bool,
    yi: &mut [f32],
) {
    let (ci, co) = (d.c_in, d.c_out);
    let (th, tw) = tiles(d);
    let t_n = th * tw;
    assert!(wp > 2 * tw + 1, "winograd: the padded rows are too short");
    assert!(
        xp.len() >= (2 * th + 2) * wp * ci,
        "winograd: the padded image is too short"
    );
    with_scratch(&TILES, 16 * (plane(t_n, ci) + plane(t_n, co)), |buf| {
        let (v, m) = buf.split_at_mut(16 * plane(t_n, ci));
        transform_input(d, xp, wp, v, t_n, 0);
        for (xi, pb) in u.iter().enumerate() {
            let a = Mat::row_major(&v[xi * plane(t_n, ci)..][..t_n * ci], ci);
            let c = &mut m[xi * plane(t_n, co)..][..t_n * co];
            gemm_packed_segments(kernel, t_n, a, Segments::one(ci), pb, 0.0, c, co);
        }
        transform_output(d, m, bias, relu, yi);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::conv2d_forward_reference;
    use crate::testutil::{assert_close, random_vec, v4_kernels};
    use crate::Padding;

    #[test]
    fn applies_to_3x3_stride_1_same_only() {
        let dims = |k, s, p| Conv2dDims::new(1, 8, 8, 2, k, k, 3, s, p).unwrap();
        assert!(winograd_applies(&dims(3, 1, Padding::Same)));
        assert!(!winograd_applies(&dims(3, 2, Padding::Same)));
        assert!(!winograd_applies(&dims(3, 1, Padding::Valid)));
        assert!(!winograd_applies(&dims(5, 1, Padding::Same)));
        assert!(!winograd_applies(&dims(1, 1, Padding::Same)));
    }

    /// Against the reference on awkward shapes: odd heights and widths (partial tiles),
    /// channel counts below, at and past a multiple of 16, batch 1 and 3, with and without
    /// bias and ReLU.
    #[test]
    fn forward_winograd_matches_reference() {
        let cases = [
            // n, h, w, c_in, c_out
            (1, 1, 1, 1, 1),
            (1, 2, 2, 3, 2),
            (3, 5, 7, 3, 5),
            (2, 8, 8, 16, 16),
            (1, 9, 6, 17, 33),
            (2, 7, 11, 32, 20),
            (1, 4, 13, 40, 64),
        ];
        for kernel in v4_kernels() {
            for (i, &(n, h, w, ci, co)) in cases.iter().enumerate() {
                let d = Conv2dDims::new(n, h, w, ci, 3, 3, co, 1, Padding::Same).unwrap();
                let seed = 40 + i as u64;
                let x = random_vec(d.input_len(), seed);
                let wt = random_vec(d.weight_len(), seed + 1);
                let bias = random_vec(co, seed + 2);
                for b in [None, Some(bias.as_slice())] {
                    let mut want = vec![f32::NAN; d.output_len()];
                    conv2d_forward_reference(&d, &x, &wt, b, &mut want);
                    let mut got = vec![f32::NAN; d.output_len()];
                    conv2d_forward_winograd(kernel, &d, &x, &wt, b, false, &mut got);
                    let what = format!("{kernel:?} winograd {d:?} bias={}", b.is_some());
                    assert_close(&got, &want, 1e-4, &what);
                    want.iter_mut().for_each(|v| *v = v.max(0.0));
                    conv2d_forward_winograd(kernel, &d, &x, &wt, b, true, &mut got);
                    assert_close(&got, &want, 1e-4, &format!("{what} + relu"));
                }
            }
        }
    }

    /// The error against the reference, measured on a layer of keras6's size (64 channels,
    /// unit-scale inputs): the largest deviation relative to the output's scale stays near
    /// f32 rounding of the partial sums.
    #[test]
    fn winograd_error_is_near_rounding() {
        let d = Conv2dDims::new(2, 16, 16, 64, 3, 3, 64, 1, Padding::Same).unwrap();
        let x = random_vec(d.input_len(), 91);
        let w = random_vec(d.weight_len(), 92);
        let mut want = vec![0.0; d.output_len()];
        conv2d_forward_reference(&d, &x, &w, None, &mut want);
        let Some(&kernel) = v4_kernels().first() else {
            return;
        };
        let mut got = vec![0.0; d.output_len()];
        conv2d_forward_winograd(kernel, &d, &x, &w, None, false, &mut got);
        let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0.0f32, |a, (g, r)| a.max((g - r).abs()));
        assert!(
            err <= 1e-5 * scale,
            "max error {err} at output scale {scale}"
        );
    }
}
