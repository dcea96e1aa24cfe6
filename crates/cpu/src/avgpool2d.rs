//! 2-D average pooling (square `k x k` window, equal strides), global average pooling, and
//! their gradients.
//!
//! Math (windowed): for image `b`, output pixel `(oy, ox)` and channel `ch`, let `W` be the
//! window's positions that lie INSIDE the image: `iy = oy*stride + ky - pad_top`,
//! `ix = ox*stride + kx - pad_left`, `0 <= ky, kx < k`, `0 <= iy < h`, `0 <= ix < w`. Then
//! `y[b][oy][ox][ch] = (sum_{(iy, ix) in W} x[b][iy][ix][ch]) / |W|`. As in TensorFlow's
//! `avg_pool` (and Keras `AveragePooling2D`), padded positions are left out of both the sum
//! and the count: with `Same` padding a corner window of a 3x3 pool may average only 4
//! pixels. (With TensorFlow's padding every window holds at least one real pixel.)
//!
//! Gradient: `y` is linear in `x`, so each output's `dy` is spread evenly over its window:
//! every in-image element of the window gets `dy / |W|`; overlapping windows (`stride < k`)
//! add up.
//!
//! Global average pooling: `[n, h, w, c] -> [n, c]`, `y[b][ch] = (1/hw) sum_p x[b][p][ch]`
//! over the `hw = h * w` pixels (summed in `f64`); its gradient is `dx[b][p][ch] = dy[b][ch] / hw`.
//!
//! Layout: `x` is NHWC `n x h x w x c`, `y` and `dy` are `n x out_h x out_w x c` (or `n x c`
//! for the global pool), all contiguous, channels last. Output size and padding follow
//! TensorFlow (see [`crate::Padding`]); the shape struct is max pooling's
//! [`Pool2dDims`](crate::maxpool2d::Pool2dDims), named [`AvgPool2dDims`] here.
//!
//! Why the fast versions are faster:
//! - Forward: each output row `(b, oy)` is an independent rayon task. Channels are last, so a
//!   pixel's `c` channels are contiguous and the kernel adds whole pixels (a vectorised zip of
//!   two `c`-long slices) over the window, whose bounds are clipped to the image once per row /
//!   pixel instead of tested per element; then one division per channel.
//! - Backward: images are the parallel tasks (overlapping windows of one image write to the
//!   same `dx` elements; a task per image keeps that race-free without atomics). Each output
//!   pixel divides its `dy` by the count once, into a stack array of up to [`CHANNEL_BLOCK`]
//!   channels, and adds that to each window pixel's contiguous channels. No heap allocation.
//! - Global: one task per image, adding whole pixels into a per-task `f64` accumulator of `c`
//!   values (reused across the images a thread runs); the backward writes `dy / hw` once per
//!   image and copies it to every pixel.
//!
//! All fast versions do the same additions in the same order, and the same divisions, as the
//! references, so the results are identical bit for bit.

use crate::maxpool2d::CHANNEL_BLOCK;
use crate::padding::window;
use rayon::prelude::*;

/// The shape of a 2-D average pooling: the same struct as max pooling's (input
/// `n x h x w x c`, window `k x k`, `stride`, padding before, output `n x out_h x out_w x c`),
/// built with `AvgPool2dDims::new(n, h, w, c, k, stride, padding)`.
pub type AvgPool2dDims = crate::maxpool2d::Pool2dDims;

fn check(d: &AvgPool2dDims, x: &[f32], y: &[f32]) {
    assert_eq!(x.len(), d.input_len(), "avgpool2d: x/dx len != n*h*w*c");
    assert_eq!(
        y.len(),
        d.output_len(),
        "avgpool2d: y/dy len != n*out_h*out_w*c"
    );
}

/// Reference forward: `y` = mean over the in-image elements of each window.
pub fn avgpool2d_forward_reference(d: &AvgPool2dDims, x: &[f32], y: &mut [f32]) {
    check(d, x, y);
    let (h, w, c) = (d.h, d.w, d.c);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ch in 0..c {
                    let mut sum = 0.0f32;
                    let mut count = 0usize;
                    for ky in 0..d.k {
                        for kx in 0..d.k {
                            let iy = d.in_y(oy, ky);
                            let ix = d.in_x(ox, kx);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                sum += x[((b * h + iy) * w + ix) * c + ch];
                                count += 1;
                            }
                        }
                    }
                    y[((b * d.out_h + oy) * d.out_w + ox) * c + ch] = sum / count as f32;
                }
            }
        }
    }
}

/// Fast forward, identical to [`avgpool2d_forward_reference`] bit for bit.
pub fn avgpool2d_forward(d: &AvgPool2dDims, x: &[f32], y: &mut [f32]) {
    check(d, x, y);
    if y.is_empty() {
        return;
    }
    let (h, w, c) = (d.h, d.w, d.c);
    let image_len = h * w * c;
    // One task per output row (b, oy): `out_w` pixels of `c` channels.
    y.par_chunks_mut(d.out_w * c)
        .enumerate()
        .for_each(|(row, y_row)| {
            let (b, oy) = (row / d.out_h, row % d.out_h);
            let x_img = &x[b * image_len..(b + 1) * image_len];
            let rows = window(oy, d.stride, d.pad_top, d.k, h);
            for (ox, y_px) in y_row.chunks_exact_mut(c).enumerate() {
                let cols = window(ox, d.stride, d.pad_left, d.k, w);
                let count = (rows.len() * cols.len()) as f32;
                y_px.fill(0.0);
                for iy in rows.clone() {
                    // The window's pixels in this input row are contiguous, visited in the
                    // reference's (row-major) order.
                    let x_span = &x_img[(iy * w + cols.start) * c..(iy * w + cols.end) * c];
                    for x_px in x_span.chunks_exact(c) {
                        for (o, &v) in y_px.iter_mut().zip(x_px) {
                            *o += v;
                        }
                    }
                }
                for o in y_px.iter_mut() {
                    *o /= count;
                }
            }
        });
}

/// Reference backward: `dx` (overwritten) gets `dy / count` at every in-image element of each
/// output's window; overlapping windows add up.
pub fn avgpool2d_backward_reference(d: &AvgPool2dDims, dy: &[f32], dx: &mut [f32]) {
    check(d, dx, dy);
    let (h, w, c) = (d.h, d.w, d.c);
    dx.fill(0.0);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ch in 0..c {
                    // The window's in-image elements.
                    let mut elems = Vec::new();
                    for ky in 0..d.k {
                        for kx in 0..d.k {
                            let iy = d.in_y(oy, ky);
                            let ix = d.in_x(ox, kx);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                elems.push(((b * h + iy) * w + ix) * c + ch);
                            }
                        }
                    }
                    let g = dy[((b * d.out_h + oy) * d.out_w + ox) * c + ch] / elems.len() as f32;
                    for i in elems {
                        dx[i] += g;
                    }
                }
            }
        }
    }
}

/// Fast backward, identical to [`avgpool2d_backward_reference`] bit for bit.
pub fn avgpool2d_backward(d: &AvgPool2dDims, dy: &[f32], dx: &mut [f32]) {
    check(d, dx, dy);
    if dx.is_empty() || dy.is_empty() {
        dx.fill(0.0);
        return;
    }
    let (h, w, c) = (d.h, d.w, d.c);
    // One task per image: it owns that image's whole `dx`.
    dx.par_chunks_mut(h * w * c)
        .zip(dy.par_chunks(d.out_h * d.out_w * c))
        .for_each(|(dx_img, dy_img)| {
            dx_img.fill(0.0);
            let mut g_buf = [0.0f32; CHANNEL_BLOCK];
            for (oy, dy_row) in dy_img.chunks_exact(d.out_w * c).enumerate() {
                let rows = window(oy, d.stride, d.pad_top, d.k, h);
                for (ox, dy_px) in dy_row.chunks_exact(c).enumerate() {
                    let cols = window(ox, d.stride, d.pad_left, d.k, w);
                    let count = (rows.len() * cols.len()) as f32;
                    for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                        let c1 = (c0 + CHANNEL_BLOCK).min(c);
                        let g = &mut g_buf[..c1 - c0];
                        for (g, &v) in g.iter_mut().zip(&dy_px[c0..c1]) {
                            *g = v / count;
                        }
                        for iy in rows.clone() {
                            for ix in cols.clone() {
                                let base = (iy * w + ix) * c;
                                for (o, &v) in dx_img[base + c0..base + c1].iter_mut().zip(&*g) {
                                    *o += v;
                                }
                            }
                        }
                    }
                }
            }
        });
}

fn check_global(x: &[f32], n: usize, hw: usize, c: usize, y: &[f32]) {
    assert!(hw > 0, "global_avgpool: hw is 0");
    assert_eq!(x.len(), n * hw * c, "global_avgpool: x/dx len != n*hw*c");
    assert_eq!(y.len(), n * c, "global_avgpool: y/dy len != n*c");
}

/// Reference global average pooling: `y[b][ch] = (sum_p x[b][p][ch]) / hw`, summed in `f64`.
pub fn global_avgpool_forward_reference(x: &[f32], n: usize, hw: usize, c: usize, y: &mut [f32]) {
    check_global(x, n, hw, c, y);
    for b in 0..n {
        for ch in 0..c {
            let mut sum = 0.0f64;
            for p in 0..hw {
                sum += x[(b * hw + p) * c + ch] as f64;
            }
            y[b * c + ch] = (sum / hw as f64) as f32;
        }
    }
}

/// Fast global average pooling, identical to [`global_avgpool_forward_reference`] bit for bit.
pub fn global_avgpool_forward(x: &[f32], n: usize, hw: usize, c: usize, y: &mut [f32]) {
    check_global(x, n, hw, c, y);
    if y.is_empty() {
        return;
    }
    y.par_chunks_mut(c).zip(x.par_chunks(hw * c)).for_each_init(
        || vec![0.0f64; c],
        |acc, (y_img, x_img)| {
            acc.fill(0.0);
            for x_px in x_img.chunks_exact(c) {
                for (a, &v) in acc.iter_mut().zip(x_px) {
                    *a += v as f64;
                }
            }
            for (o, &a) in y_img.iter_mut().zip(acc.iter()) {
                *o = (a / hw as f64) as f32;
            }
        },
    );
}

/// Reference gradient of the global average pooling: `dx[b][p][ch] = dy[b][ch] / hw`
/// (overwrites `dx`).
pub fn global_avgpool_backward_reference(
    dy: &[f32],
    n: usize,
    hw: usize,
    c: usize,
    dx: &mut [f32],
) {
    check_global(dx, n, hw, c, dy);
    for b in 0..n {
        for p in 0..hw {
            for ch in 0..c {
                dx[(b * hw + p) * c + ch] = dy[b * c + ch] / hw as f32;
            }
        }
    }
}

/// Fast gradient of the global average pooling, identical to
/// [`global_avgpool_backward_reference`] bit for bit.
pub fn global_avgpool_backward(dy: &[f32], n: usize, hw: usize, c: usize, dx: &mut [f32]) {
    check_global(dx, n, hw, c, dy);
    if dx.is_empty() {
        return;
    }
    dx.par_chunks_mut(hw * c)
        .zip(dy.par_chunks(c))
        .for_each(|(dx_img, dy_img)| {
            let (first, rest) = dx_img.split_at_mut(c);
            for (o, &g) in first.iter_mut().zip(dy_img) {
                *o = g / hw as f32;
            }
            for px in rest.chunks_exact_mut(c) {
                px.copy_from_slice(first);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, assert_grad_matches_fd, random_vec};
    use crate::Padding;

    /// Every combination of these images, windows, strides and paddings whose window fits.
    fn all_dims() -> Vec<AvgPool2dDims> {
        let images = [
            (1, 7, 5, 3),
            (2, 1, 1, 1),
            (3, 6, 6, 7),
            (1, 5, 9, 1),
            (2, 4, 4, 17),
            (2, 5, 6, CHANNEL_BLOCK + 3), // more than one channel block
        ];
        let mut out = Vec::new();
        for &(n, h, w, c) in &images {
            for k in [2, 3] {
                for stride in [1, 2, 3] {
                    for padding in [Padding::Same, Padding::Valid] {
                        if let Some(d) = AvgPool2dDims::new(n, h, w, c, k, stride, padding) {
                            out.push(d);
                        }
                    }
                }
            }
        }
        out
    }

    fn forward(d: &AvgPool2dDims, x: &[f32]) -> Vec<f32> {
        let mut y = vec![f32::NAN; d.output_len()];
        avgpool2d_forward(d, x, &mut y);
        y
    }

    fn backward(d: &AvgPool2dDims, dy: &[f32]) -> Vec<f32> {
        let mut dx = vec![f32::NAN; d.input_len()];
        avgpool2d_backward(d, dy, &mut dx);
        dx
    }

    #[test]
    fn forward_matches_reference_exactly() {
        let dims = all_dims();
        assert!(dims.len() > 50);
        for (s, d) in dims.iter().enumerate() {
            let x = random_vec(d.input_len(), 3000 + s as u64);
            let mut want = vec![f32::NAN; d.output_len()];
            avgpool2d_forward_reference(d, &x, &mut want);
            assert_eq!(forward(d, &x), want, "{d:?}");
            // An average lies within the input's range.
            assert!(want.iter().all(|v| v.abs() <= 1.0), "{d:?}");
        }
    }

    #[test]
    fn backward_matches_reference_exactly() {
        for (s, d) in all_dims().iter().enumerate() {
            let dy = random_vec(d.output_len(), 5000 + s as u64);
            let mut want = vec![f32::NAN; d.input_len()];
            avgpool2d_backward_reference(d, &dy, &mut want);
            assert_eq!(backward(d, &dy), want, "{d:?}");
            // Each output's gradient is spread over its window without loss: totals agree.
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

    /// 4x4, one channel, k 2, stride 2, valid: four disjoint windows of four.
    #[test]
    fn known_case_valid() {
        let d = AvgPool2dDims::new(1, 4, 4, 1, 2, 2, Padding::Valid).unwrap();
        #[rustfmt::skip]
        let x = [
            1.0, 2.0,   5.0, 0.0,
            3.0, 4.0,   6.0, 7.0,

            -1.0, -2.0, 9.0, 9.0,
            -3.0, -4.0, 9.0, 8.0,
        ];
        assert_eq!(forward(&d, &x), [2.5, 4.5, -2.5, 8.75]);
        let dx = backward(&d, &[4.0, 8.0, -4.0, 2.0]);
        #[rustfmt::skip]
        let want = [
            1.0, 1.0,   2.0, 2.0,
            1.0, 1.0,   2.0, 2.0,

            -1.0, -1.0, 0.5, 0.5,
            -1.0, -1.0, 0.5, 0.5,
        ];
        assert_eq!(dx, want);
    }

    /// 3x3, two channels, k 3, stride 1, same: padding 1 all round, so the corner windows hold
    /// 4 real pixels, the edge ones 6, the centre 9; padding is not counted.
    #[test]
    fn known_case_same_excludes_padding() {
        let d = AvgPool2dDims::new(1, 3, 3, 2, 3, 1, Padding::Same).unwrap();
        assert_eq!((d.out_h, d.out_w, d.pad_top, d.pad_left), (3, 3, 1, 1));
        // Channel 0 holds 1..9 row-major; channel 1 is all 2s.
        let x: Vec<f32> = (1..=9).flat_map(|v| [v as f32, 2.0]).collect();
        for reference in [false, true] {
            let mut y = vec![f32::NAN; d.output_len()];
            if reference {
                avgpool2d_forward_reference(&d, &x, &mut y);
            } else {
                avgpool2d_forward(&d, &x, &mut y);
            }
            let ch0: Vec<f32> = y.iter().step_by(2).cloned().collect();
            let ch1: Vec<f32> = y.iter().skip(1).step_by(2).cloned().collect();
            // Top-left: (1+2+4+5)/4 = 3; top edge: (1+2+3+4+5+6)/6 = 3.5; centre: 45/9 = 5.
            let want0 = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0];
            assert_close(&ch0, &want0, 1e-6, "same ch0");
            assert_eq!(
                ch1, [2.0; 9],
                "a constant stays constant (padding not averaged in)"
            );
        }
        // Backward with dy = 1: element (0,0) is in windows (0,0), (0,1), (1,0), (1,1) with
        // counts 4, 6, 6, 9.
        let dx = backward(&d, &[1.0; 18]);
        let want00 = 1.0 / 4.0 + 2.0 / 6.0 + 1.0 / 9.0;
        assert!((dx[0] - want00).abs() < 1e-6, "{} vs {want00}", dx[0]);
        // The centre is in all nine windows: 4 corners, 4 edges, 1 centre.
        let want_c = 4.0 / 4.0 + 4.0 / 6.0 + 1.0 / 9.0;
        assert!((dx[8] - want_c).abs() < 1e-6, "{} vs {want_c}", dx[8]);
    }

    #[test]
    fn global_matches_reference_and_known_case() {
        for (s, &(n, hw, c)) in [(1, 1, 1), (2, 9, 3), (3, 64, 17), (1, 25, 7), (4, 7, 64)]
            .iter()
            .enumerate()
        {
            let x = random_vec(n * hw * c, 8000 + s as u64);
            let mut want = vec![f32::NAN; n * c];
            let mut got = vec![f32::NAN; n * c];
            global_avgpool_forward_reference(&x, n, hw, c, &mut want);
            global_avgpool_forward(&x, n, hw, c, &mut got);
            assert_eq!(got, want, "n {n} hw {hw} c {c}");
            let dy = random_vec(n * c, 9000 + s as u64);
            let mut want = vec![f32::NAN; x.len()];
            let mut got = vec![f32::NAN; x.len()];
            global_avgpool_backward_reference(&dy, n, hw, c, &mut want);
            global_avgpool_backward(&dy, n, hw, c, &mut got);
            assert_eq!(got, want, "backward n {n} hw {hw} c {c}");
            assert_eq!(want[(n * hw - 1) * c], dy[(n - 1) * c] / hw as f32);
        }
        // Two images of 2 pixels x 2 channels.
        let x = [1.0, 10.0, 3.0, 20.0, -1.0, 0.0, -2.0, 5.0];
        let mut y = [0.0; 4];
        global_avgpool_forward(&x, 2, 2, 2, &mut y);
        assert_eq!(y, [2.0, 15.0, -1.5, 2.5]);
        let mut dx = [0.0; 8];
        global_avgpool_backward(&[2.0, 4.0, 6.0, 8.0], 2, 2, 2, &mut dx);
        assert_eq!(dx, [1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]);
    }

    /// `L = sum(avgpool(x) * r)` against the backward with `dy = r`. Linear, so central
    /// differences are exact up to rounding.
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
            let d = AvgPool2dDims::new(n, h, w, c, k, stride, padding).unwrap();
            let x = random_vec(d.input_len(), 6000 + s as u64);
            let r = random_vec(d.output_len(), 7000 + s as u64);
            let dx = backward(&d, &r);
            let loss = |x: &[f32]| -> f64 {
                forward(&d, x)
                    .iter()
                    .zip(&r)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum()
            };
            assert_grad_matches_fd(&x, &dx, 1e-2, 1e-4, 1e-3, &format!("{d:?}"), loss);
        }
    }

    #[test]
    fn global_backward_matches_finite_differences() {
        let (n, hw, c) = (2, 6, 5);
        let x = random_vec(n * hw * c, 10);
        let r = random_vec(n * c, 11);
        let mut dx = vec![0.0; x.len()];
        global_avgpool_backward(&r, n, hw, c, &mut dx);
        let loss = |x: &[f32]| -> f64 {
            let mut y = vec![0.0; n * c];
            global_avgpool_forward(x, n, hw, c, &mut y);
            y.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum()
        };
        assert_grad_matches_fd(&x, &dx, 1e-2, 1e-4, 1e-3, "global", loss);
    }
}
