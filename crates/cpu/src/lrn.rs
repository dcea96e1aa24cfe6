//! Local response normalisation across channels (`tf.nn.lrn`) and its gradient.
//!
//! Math, per pixel (each pixel's `c` channels are normalised independently of other pixels),
//! with radius `r = depth_radius`:
//! - `sqr_sum[d] = sum_{d' = max(0, d - r)}^{min(c - 1, d + r)} x[d']^2`,
//!   `s[d] = bias + alpha * sqr_sum[d]`, `y[d] = x[d] / s[d]^beta`.
//! - gradient: `dx[i] = dy[i] * s_i^-beta -
//!   2 * alpha * beta * x[i] * sum_{j : |i - j| <= r} dy[j] * x[j] * s_j^(-beta - 1)`
//!   (the first term through `x[i]` itself, the second through every `s_j` whose window holds
//!   `x[i]`; the window is symmetric, so "`j`'s window holds `i`" is `|i - j| <= r`).
//!
//! Note TF's `alpha` multiplies the plain sum of squares (not the mean, as in the original
//! AlexNet paper / Caffe), which is why the CIFAR-10 tutorial passes `alpha = 0.001 / 9`.
//!
//! Layout: `x`, `y`, `dy`, `dx` are `pixels x c`, contiguous, channels last: an NHWC
//! `[n, h, w, c]` tensor has `pixels = n * h * w`. Only the channel count matters.
//!
//! Why the fast versions are faster:
//! - Pixels are independent, so blocks of pixels are rayon tasks.
//! - The reference recomputes each window's sum (`2r + 1` terms per channel); the fast
//!   versions keep a running window sum along the channels (add the square that enters, take
//!   away the one that leaves), two operations per channel whatever the radius. The running
//!   sum is kept in `f64`, where the square of an `f32` is exact, so adding and removing terms
//!   drifts by at most about `c * 2^-53` of the largest sum (an `f32` running sum could keep
//!   a visible residue of a large value after it left the window).
//! - `s^-beta` uses square roots instead of `powf` for the common `beta` of 0.5 (TF's
//!   default), 0.75 (the CIFAR-10 tutorial) and 1.
//! - The backward needs, per pixel, `s^-beta` and `dy * x * s^(-beta - 1)` for every channel
//!   before its second running sum; they go in two `c`-long scratch vectors per rayon task
//!   (allocated once per task and reused for all its pixels, not per pixel).
//!
//! The fast versions agree with the references to rounding (about 1e-6 relative), not bit
//! for bit.

use rayon::prelude::*;

/// About how many elements one parallel task touches.
const CHUNK: usize = 1 << 14;

/// The parameters of TensorFlow's `tf.nn.lrn` (`tf.nn.local_response_normalization`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    /// Half-width `r` of the channel window (the window has up to `2r + 1` channels).
    pub depth_radius: usize,
    pub bias: f32,
    pub alpha: f32,
    pub beta: f32,
}

impl Default for LrnParams {
    /// TensorFlow's defaults: `depth_radius 5, bias 1, alpha 1, beta 0.5`.
    fn default() -> Self {
        LrnParams {
            depth_radius: 5,
            bias: 1.0,
            alpha: 1.0,
            beta: 0.5,
        }
    }
}

impl LrnParams {
    /// The TensorFlow CIFAR-10 tutorial's values: `depth_radius 4, bias 1, alpha 0.001 / 9,
    /// beta 0.75`.
    pub fn cifar10_tutorial() -> Self {
        LrnParams {
            depth_radius: 4,
            bias: 1.0,
            alpha: 0.001 / 9.0,
            beta: 0.75,
        }
    }
}

fn check(what: &str, x: &[f32], c: usize, others: &[&[f32]]) {
    assert!(c > 0, "{what}: c is 0");
    assert_eq!(x.len() % c, 0, "{what}: x.len() is not a multiple of c");
    for o in others {
        assert_eq!(o.len(), x.len(), "{what}: slice lengths differ");
    }
}

/// `s[d]` of channel `d` of one pixel, summing its window directly (reference).
fn s_direct(px: &[f32], d: usize, p: &LrnParams) -> f32 {
    let lo = d.saturating_sub(p.depth_radius);
    let hi = d.saturating_add(p.depth_radius).min(px.len() - 1);
    let mut sum = 0.0f64;
    for &v in &px[lo..=hi] {
        sum += v as f64 * v as f64;
    }
    p.bias + p.alpha * sum as f32
}

/// Reference forward: `y[d] = x[d] / (bias + alpha * sqr_sum[d])^beta`, per pixel.
pub fn lrn_forward_reference(x: &[f32], c: usize, p: &LrnParams, y: &mut [f32]) {
    check("lrn", x, c, &[y]);
    for (x_px, y_px) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        for d in 0..c {
            y_px[d] = x_px[d] / s_direct(x_px, d, p).powf(p.beta);
        }
    }
}

/// `s^-beta`, with square roots instead of `powf` for `beta` 0.5, 0.75 and 1.
#[inline(always)]
fn pow_neg(s: f32, beta: f32) -> f32 {
    if beta == 0.5 {
        1.0 / s.sqrt()
    } else if beta == 0.75 {
        let r = s.sqrt();
        1.0 / (r * r.sqrt())
    } else if beta == 1.0 {
        1.0 / s
    } else {
        s.powf(-beta)
    }
}

/// Calls `emit(d, window_sum_d)` for `d = 0..c` in order, where `window_sum_d` is the sum of
/// `val(d')` over `|d' - d| <= r` inside `0..c`, kept as a running sum: each `val(d')` is
/// added once when it enters the window and subtracted once when it leaves.
#[inline(always)]
fn running_window(
    c: usize,
    r: usize,
    val: impl Fn(usize) -> f64,
    mut emit: impl FnMut(usize, f64),
) {
    let mut sum = 0.0f64;
    for d in 0..=r.min(c - 1) {
        sum += val(d);
    }
    for d in 0..c {
        if d > 0 {
            if r < c - d {
                sum += val(d + r);
            }
            if d > r {
                sum -= val(d - r - 1);
            }
        }
        emit(d, sum);
    }
}

/// `bias + alpha * sqr_sum` from a running sum of squares (clamped at 0 against rounding).
#[inline(always)]
fn s_of(sum: f64, p: &LrnParams) -> f32 {
    p.bias + p.alpha * sum.max(0.0) as f32
}

/// Fast forward; agrees with [`lrn_forward_reference`] to rounding.
pub fn lrn_forward(x: &[f32], c: usize, p: &LrnParams, y: &mut [f32]) {
    check("lrn", x, c, &[y]);
    let pixels_per_task = (CHUNK / c).max(1);
    y.par_chunks_mut(pixels_per_task * c)
        .zip(x.par_chunks(pixels_per_task * c))
        .for_each(|(y_blk, x_blk)| {
            for (y_px, x_px) in y_blk.chunks_exact_mut(c).zip(x_blk.chunks_exact(c)) {
                let sq = |d: usize| x_px[d] as f64 * x_px[d] as f64;
                running_window(c, p.depth_radius, sq, |d, sum| {
                    y_px[d] = x_px[d] * pow_neg(s_of(sum, p), p.beta);
                });
            }
        });
}

/// Reference backward (in `f64` from `s`): `dx[i] = dy[i] * s_i^-beta - 2 * alpha * beta *
/// x[i] * sum_{|i-j| <= r} dy[j] * x[j] * s_j^(-beta-1)`, per pixel. Overwrites `dx`.
pub fn lrn_backward_reference(x: &[f32], dy: &[f32], c: usize, p: &LrnParams, dx: &mut [f32]) {
    check("lrn backward", x, c, &[dy, dx]);
    let beta = p.beta as f64;
    let r = p.depth_radius;
    for ((x_px, dy_px), dx_px) in x
        .chunks_exact(c)
        .zip(dy.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
    {
        let s: Vec<f64> = (0..c).map(|d| s_direct(x_px, d, p) as f64).collect();
        for i in 0..c {
            let mut sum = 0.0f64;
            for j in i.saturating_sub(r)..=i.saturating_add(r).min(c - 1) {
                sum += dy_px[j] as f64 * x_px[j] as f64 * s[j].powf(-beta - 1.0);
            }
            dx_px[i] = (dy_px[i] as f64 * s[i].powf(-beta)
                - 2.0 * p.alpha as f64 * beta * x_px[i] as f64 * sum) as f32;
        }
    }
}

/// Fast backward; agrees with [`lrn_backward_reference`] to rounding.
pub fn lrn_backward(x: &[f32], dy: &[f32], c: usize, p: &LrnParams, dx: &mut [f32]) {
    check("lrn backward", x, c, &[dy, dx]);
    let pixels_per_task = (CHUNK / c).max(1);
    let k = 2.0 * p.alpha * p.beta;
    dx.par_chunks_mut(pixels_per_task * c)
        .zip(x.par_chunks(pixels_per_task * c))
        .zip(dy.par_chunks(pixels_per_task * c))
        .for_each_init(
            // Per task: `s^-beta` and `dy * x * s^(-beta-1)` of the current pixel.
            || (vec![0.0f32; c], vec![0.0f64; c]),
            |(pw, t), ((dx_blk, x_blk), dy_blk)| {
                for ((dx_px, x_px), dy_px) in dx_blk
                    .chunks_exact_mut(c)
                    .zip(x_blk.chunks_exact(c))
                    .zip(dy_blk.chunks_exact(c))
                {
                    let sq = |d: usize| x_px[d] as f64 * x_px[d] as f64;
                    running_window(c, p.depth_radius, sq, |d, sum| {
                        let s = s_of(sum, p);
                        let q = pow_neg(s, p.beta);
                        pw[d] = q;
                        t[d] = (dy_px[d] * x_px[d] * (q / s)) as f64;
                    });
                    running_window(
                        c,
                        p.depth_radius,
                        |d| t[d],
                        |i, tsum| {
                            dx_px[i] = dy_px[i] * pw[i] - k * x_px[i] * tsum as f32;
                        },
                    );
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, assert_grad_matches_fd, random_vec};

    fn params(depth_radius: usize, alpha: f32, beta: f32) -> LrnParams {
        LrnParams {
            depth_radius,
            bias: 1.0,
            alpha,
            beta,
        }
    }

    fn forward(x: &[f32], c: usize, p: &LrnParams, fast: bool) -> Vec<f32> {
        let mut y = vec![f32::NAN; x.len()];
        if fast {
            lrn_forward(x, c, p, &mut y);
        } else {
            lrn_forward_reference(x, c, p, &mut y);
        }
        y
    }

    fn backward(x: &[f32], dy: &[f32], c: usize, p: &LrnParams, fast: bool) -> Vec<f32> {
        let mut dx = vec![f32::NAN; x.len()];
        if fast {
            lrn_backward(x, dy, c, p, &mut dx);
        } else {
            lrn_backward_reference(x, dy, c, p, &mut dx);
        }
        dx
    }

    #[test]
    fn defaults_match_tensorflow() {
        assert_eq!(LrnParams::default(), params(5, 1.0, 0.5));
        let t = LrnParams::cifar10_tutorial();
        assert_eq!((t.depth_radius, t.bias, t.beta), (4, 1.0, 0.75));
        assert!((t.alpha - 1.111_111e-4).abs() < 1e-9);
    }

    #[test]
    fn fast_matches_reference() {
        let mut s = 0;
        for c in [1, 3, 10, 17, 64] {
            for r in [0, 2, 5] {
                for (alpha, beta) in [(1.0, 0.5), (0.001 / 9.0, 0.75), (0.1, 1.0), (0.3, 0.6)] {
                    s += 1;
                    let p = params(r, alpha, beta);
                    let what = format!("c {c} r {r} alpha {alpha} beta {beta}");
                    // Enough pixels for several parallel tasks at small c.
                    let pixels = 1 + (3 * CHUNK) / (c * 4);
                    let x: Vec<f32> = random_vec(pixels * c, 100 + s)
                        .iter()
                        .map(|v| v * 3.0)
                        .collect();
                    let want = forward(&x, c, &p, false);
                    assert_close(&forward(&x, c, &p, true), &want, 2e-6, &what);
                    let dy = random_vec(x.len(), 200 + s);
                    let want = backward(&x, &dy, c, &p, false);
                    assert_close(
                        &backward(&x, &dy, c, &p, true),
                        &want,
                        1e-5,
                        &format!("backward {what}"),
                    );
                }
            }
        }
    }

    #[test]
    fn known_cases() {
        // c 3, r 1, bias 1, alpha 1, beta 1, x = [1, 2, 3]: sqr_sum = [1+4, 1+4+9, 4+9].
        let x = [1.0, 2.0, 3.0];
        let p = params(1, 1.0, 1.0);
        let want = [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0];
        for fast in [false, true] {
            assert_close(&forward(&x, 3, &p, fast), &want, 1e-6, "r1");
            // TF defaults (radius 5 covers all 3 channels): s = 1 + 14 = 15, beta 0.5.
            let y = forward(&x, 3, &LrnParams::default(), fast);
            let want: Vec<f32> = x.iter().map(|v| v / 15f32.sqrt()).collect();
            assert_close(&y, &want, 1e-6, "default");
            // Radius 0: each channel alone. Two pixels of one channel.
            let y = forward(&[2.0, -1.0], 1, &params(0, 0.5, 0.75), fast);
            assert_close(
                &y,
                &[2.0 / 3f32.powf(0.75), -1.0 / 1.5f32.powf(0.75)],
                1e-6,
                "r0",
            );
        }
        // Backward by hand, c 2, r 1, bias 1, alpha 1, beta 1, x = [1, 2], dy = [1, 0]:
        // s = 6 for both, y0 = x0 / s: dy0/dx0 = 1/6 - x0 * 2 x0 / 36 = 1/9,
        // dy0/dx1 = -x0 * 2 x1 / 36 = -1/9.
        for fast in [false, true] {
            let dx = backward(&[1.0, 2.0], &[1.0, 0.0], 2, &params(1, 1.0, 1.0), fast);
            assert_close(&dx, &[1.0 / 9.0, -1.0 / 9.0], 1e-6, "backward by hand");
        }
    }

    /// A large value followed by small ones: once it leaves the window, the running sum must
    /// not keep a residue of it.
    #[test]
    fn running_sum_forgets_large_values() {
        let c = 12;
        let mut x = vec![1e-3f32; c];
        x[0] = 3e3;
        x[1] = -2e3;
        let p = params(2, 1.0, 0.5);
        let want = forward(&x, c, &p, false);
        let got = forward(&x, c, &p, true);
        assert_close(&got, &want, 1e-6, "forward");
        // Far from the large values, s = 1 + 5e-6: y ~ x.
        assert!((got[c - 1] - 1e-3).abs() < 1e-8, "{}", got[c - 1]);
        let dy = random_vec(c, 5);
        assert_close(
            &backward(&x, &dy, c, &p, true),
            &backward(&x, &dy, c, &p, false),
            1e-5,
            "bw",
        );
    }

    /// `L = sum(lrn(x) * g)` against the backward with `dy = g`, both versions. `alpha` is
    /// large enough that the normalisation matters (the cross-channel term is not tiny).
    #[test]
    fn backward_matches_finite_differences() {
        for (s, &(c, r, beta)) in [(7, 2, 0.75), (5, 0, 0.5), (9, 5, 1.0), (4, 1, 0.6)]
            .iter()
            .enumerate()
        {
            let p = params(r, 0.1, beta);
            let pixels = 3;
            let x: Vec<f32> = random_vec(pixels * c, 300 + s as u64)
                .iter()
                .map(|v| v * 2.0)
                .collect();
            let g = random_vec(x.len(), 400 + s as u64);
            let loss = |x: &[f32]| -> f64 {
                forward(x, c, &p, false)
                    .iter()
                    .zip(&g)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum()
            };
            for fast in [false, true] {
                let dx = backward(&x, &g, c, &p, fast);
                // The normalisation matters: dx differs clearly from the "constant s" part.
                let naive: f32 = (0..x.len())
                    .map(|i| {
                        (dx[i] - g[i] * pow_neg(s_direct(&x[i / c * c..][..c], i % c, &p), beta))
                            .abs()
                    })
                    .sum();
                assert!(naive > 1e-2, "cross-channel term is negligible: {naive}");
                let what = format!("c {c} r {r} beta {beta} fast {fast}");
                assert_grad_matches_fd(&x, &dx, 1e-2, 1e-3, 1e-2, &what, loss);
            }
        }
    }
}
