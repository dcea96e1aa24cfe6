//! ReLU: `y = max(x, 0)` element-wise, and its gradient.
//!
//! Math:
//! - forward: `y[i] = x[i]` if `x[i] > 0`, else `0`.
//! - backward: `dx[i] = dy[i]` if `y[i] > 0`, else `0`. The backward takes the forward
//!   *output* `y` (not `x`): `y > 0` exactly when `x > 0`, and keeping `y` lets the forward run
//!   in place and the input buffer be freed. The derivative at `x = 0` is taken as 0.
//!
//! Layout: any shape, as one flat contiguous slice; the op does not care about dimensions.
//!
//! Why the fast version is faster: the work is split into chunks of `CHUNK` elements that
//! rayon runs on all cores, and each chunk is a branch-free `zip` over slices (compare and
//! select), which the compiler turns into SIMD instructions with no bounds checks. NaN inputs
//! give 0 in both versions (`NaN > 0` is false).

use rayon::prelude::*;

use crate::simd::multiversion;

/// Elements per parallel task: big enough that scheduling costs nothing next to the work,
/// small enough that a few-million-element activation keeps every core busy.
const CHUNK: usize = 1 << 14;

/// `max(v, 0)` written as a compare and select, so that `-0.0` and NaN both give `+0.0`
/// (unlike `f32::max`, whose result for `-0.0` vs `0.0` is unspecified).
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// Reference forward: `y[i] = max(x[i], 0)`.
pub fn relu_forward_reference(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "relu: x and y lengths differ");
    for i in 0..x.len() {
        y[i] = if x[i] > 0.0 { x[i] } else { 0.0 };
    }
}

/// Fast forward, same result as [`relu_forward_reference`] bit for bit.
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "relu: x and y lengths differ");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| forward_block(x, y));
}

multiversion! {
    /// One block of [`relu_forward`].
    fn forward_block(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = relu(x);
        }
    }
}

/// Fast forward in place: `y[i] = max(y[i], 0)`.
pub fn relu_forward_inplace(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(|y| {
        for v in y {
            *v = relu(*v);
        }
    });
}

/// Reference backward: `dx[i] = dy[i]` where the forward output `y[i] > 0`, else 0
/// (overwrites `dx`).
pub fn relu_backward_reference(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(y.len(), dy.len(), "relu backward: y and dy lengths differ");
    assert_eq!(y.len(), dx.len(), "relu backward: y and dx lengths differ");
    for i in 0..y.len() {
        dx[i] = if y[i] > 0.0 { dy[i] } else { 0.0 };
    }
}

/// Fast backward, same result as [`relu_backward_reference`] bit for bit.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(y.len(), dy.len(), "relu backward: y and dy lengths differ");
    assert_eq!(y.len(), dx.len(), "relu backward: y and dx lengths differ");
    dx.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (y, dy))| backward_block(y, dy, dx));
}

multiversion! {
    /// One block of [`relu_backward`] (also where a convolution applies the mask as it reads
    /// `dy`: [`crate::gemm_packed::PackedB::pack_relu_masked`], the direct input gradient).
    pub(crate) fn backward_block(y: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = if y > 0.0 { dy } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_grad_matches_fd, random_vec};

    /// Sizes around the chunk boundary and odd small ones.
    const SIZES: [usize; 7] = [0, 1, 7, 13, 1000, CHUNK + 3, 3 * CHUNK - 1];

    #[test]
    fn forward_matches_reference_exactly() {
        for (s, &n) in SIZES.iter().enumerate() {
            let mut x = random_vec(n, 10 + s as u64);
            if n > 2 {
                x[0] = -0.0;
                x[1] = f32::NAN;
            }
            let mut want = vec![7.0; n];
            let mut got = vec![7.0; n];
            relu_forward_reference(&x, &mut want);
            relu_forward(&x, &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "n = {n}");
            assert!(want.iter().all(|&v| v >= 0.0));
            // Some positives survive unchanged, negatives become 0.
            for (&a, &b) in x.iter().zip(&want) {
                if a > 0.0 {
                    assert_eq!(a, b);
                } else {
                    assert_eq!(b.to_bits(), 0.0f32.to_bits());
                }
            }
            let mut inplace = x.clone();
            relu_forward_inplace(&mut inplace);
            assert_eq!(bits(&inplace), bits(&want), "in place, n = {n}");
        }
    }

    #[test]
    fn backward_matches_reference_exactly() {
        for (s, &n) in SIZES.iter().enumerate() {
            let x = random_vec(n, 20 + s as u64);
            let dy = random_vec(n, 30 + s as u64);
            let mut y = vec![0.0; n];
            relu_forward_reference(&x, &mut y);
            let mut want = vec![7.0; n];
            let mut got = vec![7.0; n];
            relu_backward_reference(&y, &dy, &mut want);
            relu_backward(&y, &dy, &mut got);
            assert_eq!(got, want, "n = {n}");
            for i in 0..n {
                assert_eq!(want[i], if x[i] > 0.0 { dy[i] } else { 0.0 });
            }
        }
    }

    /// Central differences of `L = sum(relu(x) * r)` against the backward with `dy = r`.
    /// Inputs are kept at least 0.1 away from the kink at 0, so the FD step never crosses it.
    #[test]
    fn backward_matches_finite_differences() {
        let n = 37;
        let x: Vec<f32> = random_vec(n, 40)
            .iter()
            .map(|&v| if v >= 0.0 { v + 0.1 } else { v - 0.1 })
            .collect();
        let r = random_vec(n, 41);
        let loss = |x: &[f32]| -> f64 {
            let mut y = vec![0.0; x.len()];
            relu_forward(x, &mut y);
            y.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum()
        };
        let mut y = vec![0.0; n];
        relu_forward(&x, &mut y);
        let mut dx = vec![0.0; n];
        relu_backward(&y, &r, &mut dx);
        assert_grad_matches_fd(&x, &dx, 1e-2, 1e-4, 1e-3, "relu", loss);
        // The check is not vacuous: some gradients are 0 and some are not.
        assert!(dx.contains(&0.0) && dx.iter().any(|&g| g != 0.0));
    }
}
