//! 2-D max pooling (square `k x k` window, equal strides) and its gradient.
//!
//! Math: for image `b`, output pixel `(oy, ox)` and channel `ch`,
//! `y[b][oy][ox][ch] = max { x[b][iy][ix][ch] : iy = oy*stride + ky - pad_top,
//! ix = ox*stride + kx - pad_left, 0 <= ky, kx < k, (iy, ix) inside the image }`.
//! Padded positions are not zeros: they are left out, as if they held `-inf`, so they never
//! win. (With TensorFlow's `Same` padding every window still holds at least one real pixel.)
//!
//! Gradient: max is piecewise the identity of one element, so each output's gradient `dy`
//! goes entirely to the element that won its window; all others get 0. Overlapping windows
//! (`stride < k`) can send several gradients to one input element, and they add up.
//! Tie rule: the winner is the FIRST element of the window (row-major window order: smallest
//! `ky`, then smallest `kx`) that equals the window's maximum `y`. Padded positions are not
//! candidates. (Edge cases: comparisons ignore NaN, so a window of only NaNs has maximum
//! `-inf`, no element equals it and its gradient is dropped.) The backward recomputes the
//! maxima from `x` instead of storing an argmax index tensor in the forward.
//!
//! Layout: `x` is NHWC `n x h x w x c`, `y` and `dy` are `n x out_h x out_w x c`, all
//! contiguous, channels last. Output size and padding follow TensorFlow (see
//! [`crate::Padding`]).
//!
//! Why the fast versions are faster:
//! - Forward: each output row `(b, oy)` is an independent rayon task. Because channels are
//!   last, one pixel's `c` channels are contiguous, so the kernel works a whole pixel at a
//!   time: it starts the output pixel at `-inf` and takes an element-wise max with each window
//!   pixel, a zip over two `c`-long slices that vectorises. The window bounds are clipped to
//!   the image once per row / pixel rather than tested per element.
//! - Backward: images are the parallel tasks (windows overlap, so two outputs of the same image
//!   can write to the same `dx` element; giving each task a whole image's `dx` keeps the writes
//!   race-free without atomics). Inside, each output pixel handles its channels in blocks of
//!   up to [`CHANNEL_BLOCK`], in two branch-free passes over the window's pixels, each a zip
//!   over contiguous channel slices: first the maximum per channel into a small stack array
//!   (as in the forward), then, for each window pixel, `dx += dy` where `x == max`, after
//!   which that channel's max is set to NaN so no later element of the window can match it
//!   (this is the "first" of the tie rule). Where there is no match it adds `+0.0` (`dy` ANDed
//!   with a zero bit mask), which leaves `dx` unchanged, so no branch is needed and the loop
//!   vectorises. No heap allocation. When windows cannot overlap (`stride >= k`), each
//!   element gets exactly one write, `0.0 + (dy or +0.0)`, and only the elements outside
//!   every window are zeroed: `dx` is written once rather than zeroed, read and written again
//!   (basic3's first pool, batch 128, 32x32x64, medians of 30: 3.0 -> 2.75 ms, Xeon AVX-512).
//!
//! Both fast versions do the same comparisons and additions in the same order as the
//! references (the backward's extra `+ 0.0`s change nothing: `dx` starts at `+0.0` and can
//! never become `-0.0`), so the results are identical bit for bit.

use crate::padding::{input_coord, window};
use crate::Padding;
use rayon::prelude::*;

use crate::simd::multiversion;

/// Most channels handled together in the fast backward passes of max and average pooling
/// (the size of their stack arrays).
pub const CHANNEL_BLOCK: usize = 64;

/// Shape of a max pooling: input `n x h x w x c`, window `k x k`, `stride`, padding before
/// (`pad_top`, `pad_left`), output `n x out_h x out_w x c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dDims {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Pool2dDims {
    /// The pooling of an `n x h x w x c` input with a `k x k` window. `None` when the window
    /// does not fit (`Valid` with `k > h` or `k > w`), or `k`, `stride`, `h` or `w` is 0.
    pub fn new(
        n: usize,
        h: usize,
        w: usize,
        c: usize,
        k: usize,
        stride: usize,
        padding: Padding,
    ) -> Option<Self> {
        let (out_h, pad_top) = padding.output_and_pad(h, k, stride)?;
        let (out_w, pad_left) = padding.output_and_pad(w, k, stride)?;
        Some(Pool2dDims {
            n,
            h,
            w,
            c,
            k,
            stride,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }

    /// `n * h * w * c`.
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    /// `n * out_h * out_w * c`.
    pub fn output_len(&self) -> usize {
        self.n * self.out_h * self.out_w * self.c
    }

    /// Whether no two windows overlap (`stride >= k`): each input element is in at most one.
    pub fn disjoint(&self) -> bool {
        self.stride >= self.k
    }

    fn check(&self, x: &[f32], y: &[f32]) {
        assert_eq!(x.len(), self.input_len(), "maxpool2d: x.len() != n*h*w*c");
        assert_eq!(
            y.len(),
            self.output_len(),
            "maxpool2d: y/dy len != n*out_h*out_w*c"
        );
    }

    /// The input row that kernel row `ky` of output row `oy` reads, if inside the image.
    #[inline]
    pub(crate) fn in_y(&self, oy: usize, ky: usize) -> Option<usize> {
        input_coord(oy, ky, self.stride, self.pad_top, self.h)
    }

    /// The input column that kernel column `kx` of output column `ox` reads, if inside.
    #[inline]
    pub(crate) fn in_x(&self, ox: usize, kx: usize) -> Option<usize> {
        input_coord(ox, kx, self.stride, self.pad_left, self.w)
    }
}

/// Reference forward: `y` = max over each window (padding excluded).
pub fn maxpool2d_forward_reference(d: &Pool2dDims, x: &[f32], y: &mut [f32]) {
    d.check(x, y);
    let (h, w, c) = (d.h, d.w, d.c);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ch in 0..c {
                    let mut best = f32::NEG_INFINITY;
                    for ky in 0..d.k {
                        for kx in 0..d.k {
                            let iy = d.in_y(oy, ky);
                            let ix = d.in_x(ox, kx);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                let v = x[((b * h + iy) * w + ix) * c + ch];
                                if v > best {
                                    best = v;
                                }
                            }
                        }
                    }
                    y[((b * d.out_h + oy) * d.out_w + ox) * c + ch] = best;
                }
            }
        }
    }
}

/// Fast forward, identical to [`maxpool2d_forward_reference`] bit for bit.
pub fn maxpool2d_forward(d: &Pool2dDims, x: &[f32], y: &mut [f32]) {
    d.check(x, y);
    if y.is_empty() {
        return;
    }
    // One task per output row (b, oy): `out_w` pixels of `c` channels.
    y.par_chunks_mut(d.out_w * d.c)
        .enumerate()
        .for_each(|(row, y_row)| forward_row(d, x, row, y_row));
}

multiversion! {
    /// Output row `row` (image `row / out_h`) of [`maxpool2d_forward`].
    fn forward_row(d: &Pool2dDims, x: &[f32], row: usize, y_row: &mut [f32]) {
        let (h, w, c) = (d.h, d.w, d.c);
        let image_len = h * w * c;
        let (b, oy) = (row / d.out_h, row % d.out_h);
        let x_img = &x[b * image_len..(b + 1) * image_len];
        let rows = window(oy, d.stride, d.pad_top, d.k, h);
        for (ox, y_px) in y_row.chunks_exact_mut(c).enumerate() {
            let cols = window(ox, d.stride, d.pad_left, d.k, w);
            y_px.fill(f32::NEG_INFINITY);
            for iy in rows.clone() {
                // The window's pixels in this input row are contiguous: `cols.len() * c`
                // values, visited in the same (row-major) order as the reference.
                let x_span = &x_img[(iy * w + cols.start) * c..(iy * w + cols.end) * c];
                for x_px in x_span.chunks_exact(c) {
                    for (o, &v) in y_px.iter_mut().zip(x_px) {
                        *o = if v > *o { v } else { *o };
                    }
                }
            }
        }
    }
}

/// Reference backward: `dx` (overwritten) gets each `dy` at the first element of its window
/// equal to the window's maximum; gradients of overlapping windows add up.
pub fn maxpool2d_backward_reference(d: &Pool2dDims, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    d.check(x, dy);
    assert_eq!(dx.len(), x.len(), "maxpool2d backward: dx.len() != x.len()");
    let (h, w, c) = (d.h, d.w, d.c);
    // The input index of window element (ky, kx), or None in the padding.
    let at = |b: usize, oy: usize, ox: usize, ch: usize, ky: usize, kx: usize| {
        let iy = d.in_y(oy, ky)?;
        let ix = d.in_x(ox, kx)?;
        Some(((b * h + iy) * w + ix) * c + ch)
    };
    dx.fill(0.0);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ch in 0..c {
                    // The window's maximum, exactly as in the forward.
                    let mut max = f32::NEG_INFINITY;
                    for ky in 0..d.k {
                        for kx in 0..d.k {
                            if let Some(i) = at(b, oy, ox, ch, ky, kx) {
                                if x[i] > max {
                                    max = x[i];
                                }
                            }
                        }
                    }
                    // The first element equal to it takes the whole gradient.
                    let first = (0..d.k)
                        .flat_map(|ky| (0..d.k).map(move |kx| (ky, kx)))
                        .filter_map(|(ky, kx)| at(b, oy, ox, ch, ky, kx))
                        .find(|&i| x[i] == max);
                    if let Some(i) = first {
                        dx[i] += dy[((b * d.out_h + oy) * d.out_w + ox) * c + ch];
                    }
                }
            }
        }
    }
}

/// Fast backward, identical to [`maxpool2d_backward_reference`] bit for bit.
pub fn maxpool2d_backward(d: &Pool2dDims, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    d.check(x, dy);
    assert_eq!(dx.len(), x.len(), "maxpool2d backward: dx.len() != x.len()");
    if dx.is_empty() || dy.is_empty() {
        dx.fill(0.0);
        return;
    }
    let (h, w, c) = (d.h, d.w, d.c);
    // One task per image: it owns that image's whole `dx`.
    dx.par_chunks_mut(h * w * c)
        .zip(x.par_chunks(h * w * c))
        .zip(dy.par_chunks(d.out_h * d.out_w * c))
        .for_each(|((dx_img, x_img), dy_img)| backward_image(d, x_img, dy_img, dx_img));
}

multiversion! {
    /// One image of [`maxpool2d_backward`] (compiled for the widest SIMD the CPU has).
    fn backward_image(d: &Pool2dDims, x_img: &[f32], dy_img: &[f32], dx_img: &mut [f32]) {
        let (h, w, c) = (d.h, d.w, d.c);
        // Windows that cannot overlap (stride >= k, as in every 2x2 / stride-2 pool) write
        // each element they cover exactly once, so `dx` is written in place instead of
        // zeroed and then added to: one pass over it instead of three. Only the elements no
        // window covers are zeroed here.
        let disjoint = d.disjoint();
        if disjoint {
            zero_uncovered(d, dx_img, w * c);
        } else {
            dx_img.fill(0.0);
        }
        let mut max_buf = [0.0f32; CHANNEL_BLOCK];
        for (oy, dy_row) in dy_img.chunks_exact(d.out_w * c).enumerate() {
            let rows = window(oy, d.stride, d.pad_top, d.k, h);
            for (ox, dy_px) in dy_row.chunks_exact(c).enumerate() {
                let cols = window(ox, d.stride, d.pad_left, d.k, w);
                for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                    let c1 = (c0 + CHANNEL_BLOCK).min(c);
                    let max = &mut max_buf[..c1 - c0];
                    let g = &dy_px[c0..c1];
                    // Pass 1: the maximum of each channel over the window.
                    max.fill(f32::NEG_INFINITY);
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let base = (iy * w + ix) * c;
                            let x_blk = &x_img[base + c0..base + c1];
                            for (m, &v) in max.iter_mut().zip(x_blk) {
                                *m = if v > *m { v } else { *m };
                            }
                        }
                    }
                    // Pass 2: route each gradient to the first element equal to the max.
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let base = (iy * w + ix) * c;
                            let x_blk = &x_img[base + c0..base + c1];
                            let dx_blk = &mut dx_img[base + c0..base + c1];
                            for (((dxe, &v), m), &g) in
                                dx_blk.iter_mut().zip(x_blk).zip(max.iter_mut()).zip(g)
                            {
                                // `hit` is all ones where `v` is the max, else all zeros,
                                // and `g & hit` is `g` or `+0.0`. (Written as a select,
                                // `if v == *m { g } else { 0.0 }`, LLVM turned it into a
                                // branch and this loop ran scalar, about 7x slower.)
                                let hit = ((v == *m) as u32).wrapping_neg();
                                let g = f32::from_bits(g.to_bits() & hit);
                                // Disjoint windows: `0.0 + g` is what adding to the zeroed
                                // `dx` gives (a `-0.0` gradient becomes `+0.0`).
                                *dxe = if disjoint { 0.0 + g } else { *dxe + g };
                                *m = if hit != 0 { f32::NAN } else { *m };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether input coordinate `i` lies in some window of the `out` windows (`k` wide,
/// `stride` apart, the first starting `pad` before the image).
fn covered(i: usize, stride: usize, pad: usize, k: usize, out: usize) -> bool {
    let t = i + pad;
    t % stride < k && t / stride < out
}

/// Zeros the elements of one image's `dx` (input row `iy` at `dx_img[iy * row_stride..]`)
/// that no window covers (none for `Same` padding with `stride == k`; the last rows and
/// columns for `Valid`, the gaps for `stride > k`).
pub(crate) fn zero_uncovered(d: &Pool2dDims, dx_img: &mut [f32], row_stride: usize) {
    for iy in 0..d.h {
        let row = &mut dx_img[iy * row_stride..][..d.w * d.c];
        if !covered(iy, d.stride, d.pad_top, d.k, d.out_h) {
            row.fill(0.0);
            continue;
        }
        for (ix, px) in row.chunks_exact_mut(d.c).enumerate() {
            if !covered(ix, d.stride, d.pad_left, d.k, d.out_w) {
                px.fill(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_grad_matches_fd, distinct_values, random_vec};

    /// Every combination of these images, windows, strides and paddings whose window fits.
    fn all_dims() -> Vec<Pool2dDims> {
        let images = [
            (1, 7, 5, 3),
            (2, 1, 1, 1),
            (3, 6, 6, 7),
            (1, 5, 9, 13),
            (2, 4, 4, 17),
            (2, 5, 6, CHANNEL_BLOCK + 3), // more than one channel block
        ];
        let mut out = Vec::new();
        for &(n, h, w, c) in &images {
            for k in [2, 3] {
                for stride in [1, 2, 3] {
                    for padding in [Padding::Same, Padding::Valid] {
                        if let Some(d) = Pool2dDims::new(n, h, w, c, k, stride, padding) {
                            out.push(d);
                        }
                    }
                }
            }
        }
        out
    }

    fn forward(d: &Pool2dDims, x: &[f32]) -> Vec<f32> {
        let mut y = vec![f32::NAN; d.output_len()];
        maxpool2d_forward(d, x, &mut y);
        y
    }

    fn backward(d: &Pool2dDims, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![f32::NAN; d.input_len()];
        maxpool2d_backward(d, x, dy, &mut dx);
        dx
    }

    #[test]
    fn dims_follow_padding_rules() {
        let d = Pool2dDims::new(2, 7, 5, 3, 3, 2, Padding::Same).unwrap();
        assert_eq!((d.out_h, d.out_w, d.pad_top, d.pad_left), (4, 3, 1, 1));
        assert_eq!(
            (d.input_len(), d.output_len()),
            (2 * 7 * 5 * 3, 2 * 4 * 3 * 3)
        );
        let d = Pool2dDims::new(1, 1, 1, 1, 3, 1, Padding::Same).unwrap();
        assert_eq!((d.out_h, d.out_w, d.pad_top, d.pad_left), (1, 1, 1, 1));
        assert_eq!(Pool2dDims::new(1, 2, 5, 1, 3, 1, Padding::Valid), None);
        assert_eq!(Pool2dDims::new(1, 4, 4, 1, 2, 0, Padding::Same), None);
    }

    #[test]
    fn forward_matches_reference_exactly() {
        let dims = all_dims();
        assert!(dims.len() > 50);
        for (s, d) in dims.iter().enumerate() {
            let x = random_vec(d.input_len(), 3000 + s as u64);
            let mut want = vec![f32::NAN; d.output_len()];
            maxpool2d_forward_reference(d, &x, &mut want);
            assert_eq!(forward(d, &x), want, "{d:?}");
            assert!(
                want.iter().all(|v| v.is_finite()),
                "a window had no real pixel: {d:?}"
            );
        }
    }

    #[test]
    fn backward_matches_reference_exactly() {
        for (s, d) in all_dims().iter().enumerate() {
            // Coarse values so ties happen and exercise the tie rule.
            let x: Vec<f32> = random_vec(d.input_len(), 4000 + s as u64)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            let dy = random_vec(d.output_len(), 5000 + s as u64);
            let mut want = vec![f32::NAN; d.input_len()];
            maxpool2d_backward_reference(d, &x, &dy, &mut want);
            assert_eq!(backward(d, &x, &dy), want, "{d:?}");
            // Every output's gradient lands somewhere: the totals agree.
            let (sum_dx, sum_dy): (f64, f64) = (
                want.iter().map(|&v| v as f64).sum(),
                dy.iter().map(|&v| v as f64).sum(),
            );
            assert!(
                (sum_dx - sum_dy).abs() < 1e-4,
                "{d:?}: {sum_dx} vs {sum_dy}"
            );
        }
    }

    /// 4x4, one channel, k 2, stride 2, valid: four disjoint windows.
    #[test]
    fn known_case_valid() {
        let d = Pool2dDims::new(1, 4, 4, 1, 2, 2, Padding::Valid).unwrap();
        #[rustfmt::skip]
        let x = [
            1.0, 2.0,   5.0, 0.0,
            3.0, 4.0,   6.0, 7.0,

            -1.0, -2.0, 9.0, 9.0,
            -3.0, -4.0, 9.0, 8.0,
        ];
        assert_eq!(forward(&d, &x), [4.0, 7.0, -1.0, 9.0]);
        let dx = backward(&d, &x, &[10.0, 20.0, 30.0, 40.0]);
        #[rustfmt::skip]
        let want = [
            0.0, 0.0,   0.0, 0.0,
            0.0, 10.0,  0.0, 20.0,

            30.0, 0.0,  40.0, 0.0, // tie of three 9s: the first one wins
            0.0, 0.0,   0.0, 0.0,
        ];
        assert_eq!(dx, want);
    }

    /// 3x3, two channels, k 2, stride 1, same: output 3x3, padding (0 before, 1 after), so the
    /// last row and column of windows are clipped. Overlapping windows add their gradients.
    #[test]
    fn known_case_same_overlapping() {
        let d = Pool2dDims::new(1, 3, 3, 2, 2, 1, Padding::Same).unwrap();
        assert_eq!((d.out_h, d.out_w, d.pad_top, d.pad_left), (3, 3, 0, 0));
        // Channel 0 holds 1..9 row-major; channel 1 holds its negation.
        let x: Vec<f32> = (1..=9).flat_map(|v| [v as f32, -(v as f32)]).collect();
        let y = forward(&d, &x);
        let ch0: Vec<f32> = y.iter().step_by(2).cloned().collect();
        let ch1: Vec<f32> = y.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(ch0, [5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
        assert_eq!(ch1, [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0]);
        let dx = backward(&d, &x, &[1.0; 18]);
        let g0: Vec<f32> = dx.iter().step_by(2).cloned().collect();
        let g1: Vec<f32> = dx.iter().skip(1).step_by(2).cloned().collect();
        // Channel 0: how many windows each element wins. Channel 1: each wins its own.
        assert_eq!(g0, [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 4.0]);
        assert_eq!(g1, [1.0; 9]);
    }

    #[test]
    fn one_pixel_image_with_same_padding_is_identity() {
        for k in [2, 3] {
            for stride in [1, 2, 3] {
                let d = Pool2dDims::new(2, 1, 1, 13, k, stride, Padding::Same).unwrap();
                let x = random_vec(d.input_len(), 77);
                assert_eq!(forward(&d, &x), x);
                let dy = random_vec(d.output_len(), 78);
                assert_eq!(backward(&d, &x, &dy), dy);
            }
        }
    }

    /// -inf and NaN inputs: the same answer from both versions, following the documented rule.
    #[test]
    fn non_finite_inputs_follow_the_tie_rule() {
        let d = Pool2dDims::new(1, 2, 2, 1, 2, 2, Padding::Valid).unwrap();
        let inf = f32::INFINITY;
        let nan = f32::NAN;
        let cases: [([f32; 4], f32, [f32; 4]); 4] = [
            ([-inf; 4], -inf, [5.0, 0.0, 0.0, 0.0]),
            ([nan, 1.0, 1.0, nan], 1.0, [0.0, 5.0, 0.0, 0.0]),
            ([nan; 4], -inf, [0.0; 4]),
            ([-1.0, inf, inf, 3.0], inf, [0.0, 5.0, 0.0, 0.0]),
        ];
        for (x, want_y, want_dx) in cases {
            let mut y_ref = [0.0];
            maxpool2d_forward_reference(&d, &x, &mut y_ref);
            assert_eq!(forward(&d, &x), [want_y], "{x:?}");
            assert_eq!(y_ref, [want_y], "{x:?}");
            let mut dx_ref = [f32::NAN; 4];
            maxpool2d_backward_reference(&d, &x, &[5.0], &mut dx_ref);
            assert_eq!(dx_ref, want_dx, "{x:?}");
            assert_eq!(backward(&d, &x, &[5.0]), want_dx, "{x:?}");
        }
    }

    /// `L = sum(maxpool(x) * r)`: the backward with `dy = r` against central differences, on
    /// inputs whose values are distinct and 0.01 apart, so a step of 1e-3 never changes a
    /// window's winner.
    #[test]
    fn backward_matches_finite_differences() {
        let cases = [
            (1, 7, 5, 3, 3, 1, Padding::Same),
            (2, 7, 5, 1, 3, 2, Padding::Same),
            (1, 6, 6, 7, 2, 2, Padding::Valid),
            (1, 5, 5, 2, 3, 3, Padding::Valid),
            (2, 4, 5, 3, 2, 1, Padding::Same),
        ];
        for (s, &(n, h, w, c, k, stride, padding)) in cases.iter().enumerate() {
            let d = Pool2dDims::new(n, h, w, c, k, stride, padding).unwrap();
            let x = distinct_values(d.input_len(), 0.01, 6000 + s as u64);
            let r = random_vec(d.output_len(), 7000 + s as u64);
            let dx = backward(&d, &x, &r);
            let loss = |x: &[f32]| -> f64 {
                forward(&d, x)
                    .iter()
                    .zip(&r)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum()
            };
            assert_grad_matches_fd(&x, &dx, 1e-3, 1e-3, 1e-2, &format!("{d:?}"), loss);
        }
    }
}
