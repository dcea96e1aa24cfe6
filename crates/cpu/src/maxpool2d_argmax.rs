//! Max pooling that records where each window's maximum was (one byte per output), and the
//! gradient of a ReLU + max pool routed back by those records.
//!
//! What it is for: a convolution with a ReLU followed by a max pool
//! ([`crate::conv2d::conv2d_relu_maxpool_forward_routed`]) pools each image of the
//! convolution's output while it is in cache and keeps only the pooled output `y` and these
//! records, a quarter of the output's size in values plus a byte each; the full-size output
//! (33.5 MB for basic3's first layer at batch 128) is never written to memory nor read back
//! in the backward.
//!
//! Math: as [`crate::maxpool2d`]. `arg[b][oy][ox][ch]` is the window position `ky * k + kx`
//! of the first element (row-major window order) equal to the window's maximum, which is the
//! element [`crate::maxpool2d::maxpool2d_backward`] sends the gradient to (its tie rule), or
//! [`NONE`] when no element equals it (a window of NaNs, whose gradient is dropped).
//!
//! Backward, for windows that cannot overlap and an input that is a ReLU's output:
//! `dz = relu_backward(x, maxpool2d_backward(x, dy))` is `0.0 + dy` at each window's recorded
//! winner where the window's maximum is positive, and 0 elsewhere. The winner holds the
//! maximum, so the ReLU's mask `x > 0` there is `y > 0`; and `0.0 + dy` is what adding `dy`
//! to the zeroed gradient gives (`-0.0` becomes `+0.0`): the result is the same bit for bit.
//!
//! Layout: NHWC like the pool; `arg` has `y`'s shape, one `u8` per element. Windows may have
//! at most 255 positions (`k <= 15`).
//!
//! Why the fast versions are fast: per output pixel, the channels are handled 16 at a time,
//! the running maximum and its position held in registers over one pass of the window
//! (compiled for the widest SIMD by `multiversion!`); the backward writes each
//! covered element exactly once (disjoint windows), choosing `dy` or 0 with a bit mask, so it
//! needs neither a zeroing pass nor branches.

use crate::maxpool2d::{zero_uncovered, Pool2dDims};
use crate::padding::window;
use crate::simd::multiversion;

/// Channels per step of the forward: one AVX-512 vector of `f32`.
const LANES: usize = 16;

/// `LANES` values from `src` (`-inf` past `lanes`): a fixed-size copy when all are there,
/// which compiles to a vector load (a copy of run-time length is a call to `memcpy`).
#[inline(always)]
fn load(src: &[f32], lanes: usize) -> [f32; LANES] {
    if lanes == LANES {
        src[..LANES].try_into().expect("LANES floats")
    } else {
        let mut v = [f32::NEG_INFINITY; LANES];
        v[..lanes].copy_from_slice(&src[..lanes]);
        v
    }
}

/// The record of a window none of whose elements equals its maximum (all NaN).
pub const NONE: u8 = u8::MAX;

fn check(d: &Pool2dDims, x: &[f32], y: &[f32], arg: &[u8]) {
    assert!(
        d.k * d.k < NONE as usize,
        "maxpool2d: windows over 254 positions"
    );
    assert_eq!(
        x.len(),
        d.input_len() / d.n.max(1) * d.n,
        "maxpool2d: x.len()"
    );
    assert_eq!(y.len(), arg.len(), "maxpool2d: y and arg differ in length");
}

/// Reference: `y` as [`crate::maxpool2d::maxpool2d_forward_reference`], and each window's
/// first element equal to it in `arg` (see the module).
pub fn maxpool2d_forward_argmax_reference(
    d: &Pool2dDims,
    x: &[f32],
    y: &mut [f32],
    arg: &mut [u8],
) {
    check(d, x, y, arg);
    assert_eq!(y.len(), d.output_len(), "maxpool2d: y.len()");
    crate::maxpool2d::maxpool2d_forward_reference(d, x, y);
    let (h, w, c) = (d.h, d.w, d.c);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ch in 0..c {
                    let at = ((b * d.out_h + oy) * d.out_w + ox) * c + ch;
                    arg[at] = (0..d.k * d.k)
                        .find(|&i| {
                            let (iy, ix) = (d.in_y(oy, i / d.k), d.in_x(ox, i % d.k));
                            matches!((iy, ix), (Some(iy), Some(ix)) if x[((b * h + iy) * w + ix) * c + ch] == y[at])
                        })
                        .map_or(NONE, |i| i as u8);
                }
            }
        }
    }
}

multiversion! {
    /// One image of the pool with records (`x_img` is `h x w x c`; `y_img` and `arg_img`
    /// are `out_h x out_w x c`), the same as [`maxpool2d_forward_argmax_reference`].
    pub fn maxpool2d_forward_argmax_image(d: &Pool2dDims, x_img: &[f32], y_img: &mut [f32], arg_img: &mut [u8]) {
        let one = Pool2dDims { n: 1, ..*d };
        check(&one, x_img, y_img, arg_img);
        assert_eq!(y_img.len(), one.output_len(), "maxpool2d: y is not one image");
        let (h, w, c) = (d.h, d.w, d.c);
        for oy in 0..d.out_h {
            let rows = window(oy, d.stride, d.pad_top, d.k, h);
            for ox in 0..d.out_w {
                let cols = window(ox, d.stride, d.pad_left, d.k, w);
                let out = (oy * d.out_w + ox) * c;
                for c0 in (0..c).step_by(LANES) {
                    let lanes = LANES.min(c - c0);
                    // The running maximum and its position, one vector each, kept in
                    // registers over the window (as slices in memory, each position's masked
                    // store was read back by the next one's load: a failed store-to-load
                    // forward per position, 40% of the pool's time in perf).
                    let mut m = [f32::NEG_INFINITY; LANES];
                    let mut a = [NONE as u32; LANES];
                    for iy in rows.clone() {
                        let ky = iy + d.pad_top - oy * d.stride;
                        for ix in cols.clone() {
                            let pos = (ky * d.k + ix + d.pad_left - ox * d.stride) as u32;
                            let base = (iy * w + ix) * c + c0;
                            let v = load(&x_img[base..], lanes);
                            for l in 0..LANES {
                                // Strictly greater keeps the first of equal values; the
                                // second test takes a first element equal to -inf.
                                let take = v[l] > m[l] || (a[l] == NONE as u32 && v[l] == m[l]);
                                a[l] = if take { pos } else { a[l] };
                                m[l] = if v[l] > m[l] { v[l] } else { m[l] };
                            }
                        }
                    }
                    let a = a.map(|a| a as u8);
                    if lanes == LANES {
                        let y: &mut [f32; LANES] = (&mut y_img[out + c0..][..LANES]).try_into().expect("LANES");
                        *y = m;
                        let arg: &mut [u8; LANES] = (&mut arg_img[out + c0..][..LANES]).try_into().expect("LANES");
                        *arg = a;
                    } else {
                        y_img[out + c0..out + c0 + lanes].copy_from_slice(&m[..lanes]);
                        arg_img[out + c0..out + c0 + lanes].copy_from_slice(&a[..lanes]);
                    }
                }
            }
        }
    }
}

multiversion! {
    /// One image of `relu_backward(x, maxpool2d_backward(x, dy))` for a pool over a ReLU's
    /// output `x`, from the pool's output `y_img`, its records `arg_img` and `dy_img`: input
    /// row `iy` is written at `out[iy * row_stride..][..w * c]` (straight into a padded
    /// image; what lies between the rows is left alone). Windows must not overlap.
    pub fn maxpool2d_relu_backward_routed_image_into(
        d: &Pool2dDims,
        y_img: &[f32],
        arg_img: &[u8],
        dy_img: &[f32],
        out: &mut [f32],
        row_stride: usize,
    ) {
        assert!(d.disjoint(), "maxpool2d: overlapping windows cannot be routed in place");
        let (w, c) = (d.w, d.c);
        let out_img = d.out_h * d.out_w * c;
        assert!(y_img.len() == out_img && arg_img.len() == out_img && dy_img.len() == out_img, "maxpool2d: y, arg and dy must be one image each");
        assert!(row_stride >= w * c, "maxpool2d: rows overlap");
        if d.h > 0 {
            assert!(out.len() >= (d.h - 1) * row_stride + w * c, "maxpool2d: out too short");
        }
        zero_uncovered(d, out, row_stride);
        for oy in 0..d.out_h {
            let rows = window(oy, d.stride, d.pad_top, d.k, d.h);
            for ox in 0..d.out_w {
                let cols = window(ox, d.stride, d.pad_left, d.k, w);
                let at = (oy * d.out_w + ox) * c;
                let (y, a, g) = (&y_img[at..at + c], &arg_img[at..at + c], &dy_img[at..at + c]);
                for iy in rows.clone() {
                    let ky = iy + d.pad_top - oy * d.stride;
                    for ix in cols.clone() {
                        let pos = (ky * d.k + ix + d.pad_left - ox * d.stride) as u8;
                        let dst = &mut out[iy * row_stride + ix * c..][..c];
                        for (((o, &y), &a), &g) in dst.iter_mut().zip(y).zip(a).zip(g) {
                            let keep = ((a == pos) & (y > 0.0)) as u32;
                            *o = 0.0 + f32::from_bits(g.to_bits() & keep.wrapping_neg());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maxpool2d::{maxpool2d_backward_reference, maxpool2d_forward};
    use crate::relu::relu_backward_reference;
    use crate::testutil::random_vec;
    use crate::Padding;

    /// Pools of every kind over images with more than one channel block.
    fn dims(disjoint_only: bool) -> Vec<Pool2dDims> {
        let mut out = Vec::new();
        for &(n, h, w, c) in &[
            (1, 7, 5, 3),
            (2, 6, 6, 7),
            (1, 5, 9, 13),
            (2, 5, 6, 2 * LANES + 3),
        ] {
            for (k, s) in [(2, 2), (3, 3), (2, 3), (3, 2), (2, 1)] {
                for p in [Padding::Same, Padding::Valid] {
                    if let Some(d) = Pool2dDims::new(n, h, w, c, k, s, p) {
                        if d.disjoint() || !disjoint_only {
                            out.push(d);
                        }
                    }
                }
            }
        }
        out
    }

    /// Coarse values (ties), a few -inf and NaN in the general case.
    fn input(len: usize, seed: u64, relu: bool) -> Vec<f32> {
        let v = random_vec(len, seed).into_iter().map(|v| (v * 3.0).round());
        if relu {
            return v.map(|v| v.max(0.0)).collect();
        }
        v.enumerate()
            .map(|(i, v)| match i % 17 {
                3 => f32::NEG_INFINITY,
                11 => f32::NAN,
                _ => v,
            })
            .collect()
    }

    #[test]
    fn forward_records_match_reference() {
        for (s, d) in dims(false).iter().enumerate() {
            let x = input(d.input_len(), 100 + s as u64, false);
            let (mut want_y, mut want_a) =
                (vec![f32::NAN; d.output_len()], vec![0u8; d.output_len()]);
            maxpool2d_forward_argmax_reference(d, &x, &mut want_y, &mut want_a);
            let mut plain = vec![f32::NAN; d.output_len()];
            maxpool2d_forward(d, &x, &mut plain);
            assert_eq!(
                want_y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{d:?}"
            );
            let (img, out) = (d.input_len() / d.n, d.output_len() / d.n);
            for b in 0..d.n {
                let (mut y, mut a) = (vec![f32::NAN; out], vec![0u8; out]);
                maxpool2d_forward_argmax_image(d, &x[b * img..][..img], &mut y, &mut a);
                let want = &want_y[b * out..][..out];
                assert_eq!(
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{d:?} image {b}"
                );
                assert_eq!(a, want_a[b * out..][..out], "{d:?} image {b}");
            }
        }
    }

    #[test]
    fn routed_backward_matches_pool_then_relu_references() {
        let all = dims(true);
        assert!(all.len() > 15);
        for (s, d) in all.iter().enumerate() {
            let x = input(d.input_len(), 200 + s as u64, true);
            let dy = random_vec(d.output_len(), 300 + s as u64);
            let mut routed = vec![f32::NAN; d.input_len()];
            maxpool2d_backward_reference(d, &x, &dy, &mut routed);
            let mut want = vec![f32::NAN; d.input_len()];
            relu_backward_reference(&x, &routed, &mut want);
            let (mut y, mut a) = (vec![0.0; d.output_len()], vec![0u8; d.output_len()]);
            maxpool2d_forward_argmax_reference(d, &x, &mut y, &mut a);
            // Into rows 3 floats further apart than a row, with NaN between them.
            let (row, img, out) = (d.w * d.c, d.h * d.w * d.c, d.output_len() / d.n);
            let stride = row + 3;
            for b in 0..d.n {
                let mut got = vec![f32::NAN; d.h * stride];
                let (yb, ab, gb) = (
                    &y[b * out..][..out],
                    &a[b * out..][..out],
                    &dy[b * out..][..out],
                );
                maxpool2d_relu_backward_routed_image_into(d, yb, ab, gb, &mut got, stride);
                for iy in 0..d.h {
                    let g = &got[iy * stride..][..row];
                    let w = &want[b * img + iy * row..][..row];
                    assert_eq!(
                        g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        w.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{d:?} image {b} row {iy}"
                    );
                    assert!(got[iy * stride + row..][..3].iter().all(|v| v.is_nan()));
                }
            }
        }
    }
}
