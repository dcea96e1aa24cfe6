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
//! (`Conv2dDims::input_gradient_as_forward`), so it runs here too. The weight gradient of
//! this variant is the direct one (`conv2d_direct`): its Winograd form, F(3x3, 2x2), is not
//! written yet.
//!
//! Where it runs: by default on layers of at least 64 input and output channels, 128 on one
//! side, with an even output size (`conv2d::winograd_wins`, with the measurements). There
//! [`forward_image_padded`] convolves one image from the direct variant's padded copy, so the
//! direct variant's fused passes (conv + ReLU + pool, the one-pass backward) keep their
//! structure and run their images' convolutions here. Measured against direct at those
//! shapes (isolated layers, batch 64, Xeon AVX-512): 1.04-1.25x; whole steps (alternated
//! `bench` runs, medians of 3, with 64 -> 64 layers included then): keras6 +2%, basic3 +5%. keras6 on the CIFAR-10 subset (15
//! epochs, seed 1) trains the same: loss 0.889 vs 0.887 and training accuracy 0.680 vs
//! 0.688 at epoch 15 (validation accuracy on its 500 images 0.568 vs 0.540 at epoch 15; best
//! 0.568 vs 0.604: the last epochs swing by ±0.03 there).
//!
//! A lesson from the profile: the 4x4 patches were built with `std::array::from_fn`, which
//! the AVX-512 version called out of line, copying each 1 KB patch with `memmove` (40% of
//! the variant's time). With plain loops the variant went from 0.86-1.0x of direct to the
//! figures above.

use std::cell::Cell;

use rayon::prelude::*;

use crate::conv2d::{with_scratch, with_taken, Conv2dDims};
use crate::gemm::Mat;
use crate::gemm_packed::{gemm_packed_segments, Kernel, PackedB, Segments};
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
/// `V[ξ][t][c] = (Bᵀ d B)[ξ]` for every tile `t` of the padded image and channel `c`
/// (compiled for the widest SIMD the CPU has: in baseline SSE2 the transforms took longer
/// than the 16 GEMMs).
fn transform_input(d: &Conv2dDims, xp: &[f32], wp: usize, v: &mut [f32]) {
    let (th, tw) = tiles(d);
    let (c_n, t_n) = (d.c_in, th * tw);
    for ty in 0..th {
        for tx in 0..tw {
            let t = ty * tw + tx;
            for c0 in (0..c_n).step_by(LANES) {
                let lanes = LANES.min(c_n - c0);
                // The 4x4 patch, 16 channels at a time. (Plain loops: built with
                // `std::array::from_fn`, the AVX-512 version called it out of line and copied
                // each 1 KB patch with `memmove`, 40% of the variant's time in perf.)
                let mut p = [[[0.0f32; LANES]; 4]; 4];
                for (i, prow) in p.iter_mut().enumerate() {
                    for (j, px) in prow.iter_mut().enumerate() {
                        *px = load(&xp[((2 * ty + i) * wp + 2 * tx + j) * c_n + c0..], lanes);
                    }
                }
                // Bᵀ p (rows), then (Bᵀ p) B (columns).
                let mut r = [[[0.0f32; LANES]; 4]; 4];
                for j in 0..4 {
                    for l in 0..LANES {
                        let (a, b, c, e) = (p[0][j][l], p[1][j][l], p[2][j][l], p[3][j][l]);
                        r[0][j][l] = a - c;
                        r[1][j][l] = b + c;
                        r[2][j][l] = c - b;
                        r[3][j][l] = b - e;
                    }
                }
                for (i, rrow) in r.iter().enumerate() {
                    let mut out = [[0.0f32; LANES]; 4];
                    for l in 0..LANES {
                        let (a, b, c, e) = (rrow[0][l], rrow[1][l], rrow[2][l], rrow[3][l]);
                        out[0][l] = a - c;
                        out[1][l] = b + c;
                        out[2][l] = c - b;
                        out[3][l] = b - e;
                    }
                    for (j, o) in out.iter().enumerate() {
                        store(&mut v[((i * 4 + j) * t_n + t) * c_n + c0..], o, lanes);
                    }
                }
            }
        }
    }
}
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
                let lanes = LANES.min(c_n - c0);
                let mut p = [[[0.0f32; LANES]; 4]; 4];
                for (i, prow) in p.iter_mut().enumerate() {
                    for (j, px) in prow.iter_mut().enumerate() {
                        *px = load(&m[((i * 4 + j) * t_n + t) * c_n + c0..], lanes);
                    }
                }
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
        }
    }
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
    with_scratch(&TILES, 16 * t_n * (ci + co), |buf| {
        let (v, m) = buf.split_at_mut(16 * t_n * ci);
        transform_input(d, xp, wp, v);
        for (xi, pb) in u.iter().enumerate() {
            let a = Mat::row_major(&v[xi * t_n * ci..(xi + 1) * t_n * ci], ci);
            let c = &mut m[xi * t_n * co..(xi + 1) * t_n * co];
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
