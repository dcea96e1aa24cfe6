//! Inverted dropout with drop probability `p`.
//!
//! Math: with `u_i = rng::uniform(seed, i)` uniform in `[0, 1)` and `scale = 1 / (1 - p)`,
//! - `mask[i] = scale` if `u_i >= p` (kept, probability `1 - p`), else `0` (dropped);
//! - forward: `y[i] = x[i] * scale` where kept, else `0`;
//! - backward: `dx[i] = dy[i] * mask[i]`.
//!
//! Scaling the kept elements at training time ("inverted" dropout) keeps `E[y] = x`, so at
//! inference dropout is simply the identity. With `p = 0`, `scale` is exactly 1 and every
//! `u_i >= 0`, so the forward is an exact copy and the mask is all ones.
//!
//! Layout: any shape, as one flat contiguous slice; `i` is the flat (global) index. Because the
//! random number of element `i` depends only on `(seed, i)` (a counter-based hash, see
//! [`crate::rng`]), the mask does not depend on how the work is split between threads, and a
//! GPU kernel hashing the same index gives the same mask.
//!
//! Why the fast version is faster: chunks of `CHUNK` elements run in parallel on rayon, each
//! knowing the global index of its first element. Within a chunk, one loop draws the mask (a
//! few integer multiplies, shifts and xors per element, branch-free) and a second, vectorised
//! loop applies it; both are zips over slices, with no bounds checks, and the chunk's mask is
//! still in cache for the second pass. The result is identical to the reference, bit for bit.

use crate::rng::uniform;
use rayon::prelude::*;

use crate::simd::multiversion;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Checks `0 <= p < 1`, that the flat index fits the hash's `u32` counter, and returns the
/// scale `1 / (1 - p)`.
fn check_and_scale(p: f32, len: usize) -> f32 {
    assert!((0.0..1.0).contains(&p), "dropout: p = {p} is not in [0, 1)");
    assert!(
        len as u64 <= 1u64 << 32,
        "dropout: {len} elements do not fit a u32 index"
    );
    1.0 / (1.0 - p)
}

/// Reference forward. Writes `y` and the backward multiplier `mask` (`scale` or `0`).
pub fn dropout_forward_reference(x: &[f32], p: f32, seed: u32, y: &mut [f32], mask: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "dropout: x and y lengths differ");
    assert_eq!(x.len(), mask.len(), "dropout: x and mask lengths differ");
    let scale = check_and_scale(p, x.len());
    for i in 0..x.len() {
        if uniform(seed, i as u32) >= p {
            mask[i] = scale;
            y[i] = x[i] * scale;
        } else {
            mask[i] = 0.0;
            y[i] = 0.0;
        }
    }
}

/// Fast forward, identical to [`dropout_forward_reference`] bit for bit.
pub fn dropout_forward(x: &[f32], p: f32, seed: u32, y: &mut [f32], mask: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "dropout: x and y lengths differ");
    assert_eq!(x.len(), mask.len(), "dropout: x and mask lengths differ");
    let scale = check_and_scale(p, x.len());
    y.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks_mut(CHUNK))
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(move |(chunk, ((y, mask), x))| {
            // The global index of this chunk's first element.
            forward_block(x, p, seed, scale, chunk * CHUNK, y, mask)
        });
}

multiversion! {
    /// One chunk of [`dropout_forward`], its first element at global index `start`.
    /// Compiled for AVX-512 or AVX2 where the CPU has them: the hash's 32-bit multiplies
    /// vectorise there (`vpmulld`), and not in baseline SSE2.
    fn forward_block(
        x: &[f32],
        p: f32,
        seed: u32,
        scale: f32,
        start: usize,
        y: &mut [f32],
        mask: &mut [f32],
    ) {
        // Pass 1: draw the mask. Choosing between two constants compiles to a compare and a
        // bit-and, with no branch to mispredict.
        for (i, m) in mask.iter_mut().enumerate() {
            let keep = uniform(seed, (start + i) as u32) >= p;
            *m = if keep { scale } else { 0.0 };
        }
        // Pass 2: apply it, a vectorised select over contiguous slices (`m` is `scale`
        // exactly where kept). Not simply `x * m`: a dropped inf or NaN must give 0.
        // Doing both in one loop was slower than the reference: the compiler turned the
        // select between `x * scale` and 0 into a branch on a coin flip.
        for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask.iter()) {
            *y = if m != 0.0 { x * m } else { 0.0 };
        }
    }
}

/// Backward: `dx[i] = dy[i] * mask[i]` (overwrites `dx`).
///
/// There is only this one version: the math is a single element-wise multiply, so a plain
/// loop and the fast kernel would be the same zip; the only "fast" ingredient is running
/// chunks in parallel, which does not change the result.
pub fn dropout_backward(dy: &[f32], mask: &[f32], dx: &mut [f32]) {
    assert_eq!(
        dy.len(),
        mask.len(),
        "dropout backward: dy and mask lengths differ"
    );
    assert_eq!(
        dy.len(),
        dx.len(),
        "dropout backward: dy and dx lengths differ"
    );
    dx.par_chunks_mut(CHUNK)
        .zip(dy.par_chunks(CHUNK).zip(mask.par_chunks(CHUNK)))
        .for_each(|(dx, (dy, mask))| {
            for ((dx, &g), &m) in dx.iter_mut().zip(dy).zip(mask) {
                *dx = g * m;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vec;

    fn run(x: &[f32], p: f32, seed: u32) -> (Vec<f32>, Vec<f32>) {
        let mut y = vec![f32::NAN; x.len()];
        let mut mask = vec![f32::NAN; x.len()];
        dropout_forward(x, p, seed, &mut y, &mut mask);
        (y, mask)
    }

    #[test]
    fn fast_matches_reference_exactly() {
        for &n in &[1usize, 7, 13, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 17] {
            for &p in &[0.0f32, 0.1, 0.5, 0.9] {
                let x = random_vec(n, n as u64);
                let (y, mask) = run(&x, p, 42);
                let mut y_ref = vec![f32::NAN; n];
                let mut mask_ref = vec![f32::NAN; n];
                dropout_forward_reference(&x, p, 42, &mut y_ref, &mut mask_ref);
                assert_eq!(y, y_ref, "y, n {n} p {p}");
                assert_eq!(mask, mask_ref, "mask, n {n} p {p}");
            }
        }
    }

    #[test]
    fn dropped_fraction_is_close_to_p_and_kept_are_scaled() {
        let n = 200_000;
        let x = random_vec(n, 1);
        for &p in &[0.1f32, 0.25, 0.5, 0.8] {
            let (y, mask) = run(&x, p, 7);
            let dropped = mask.iter().filter(|&&m| m == 0.0).count();
            let frac = dropped as f64 / n as f64;
            // Binomial standard deviation is sqrt(p(1-p)/n) <= 0.0012; allow ~4 of them.
            assert!((frac - p as f64).abs() < 0.005, "p {p}: dropped {frac}");
            let scale = 1.0 / (1.0 - p);
            for i in 0..n {
                if mask[i] == 0.0 {
                    assert_eq!(y[i], 0.0);
                } else {
                    assert_eq!(mask[i], scale);
                    assert_eq!(y[i], x[i] * scale);
                }
            }
        }
    }

    #[test]
    fn same_seed_same_mask_different_seed_different_mask() {
        let x = random_vec(10_000, 2);
        let (y1, m1) = run(&x, 0.5, 123);
        let (y2, m2) = run(&x, 0.5, 123);
        assert_eq!(m1, m2);
        assert_eq!(y1, y2);
        let (_, m3) = run(&x, 0.5, 124);
        let differ = m1.iter().zip(&m3).filter(|(a, b)| a != b).count();
        // Independent masks with p = 0.5 differ in about half the places.
        assert!(differ > 4_000, "only {differ} of 10000 differ");
    }

    #[test]
    fn p_zero_is_identity() {
        let mut x = random_vec(CHUNK + 5, 3);
        x[0] = f32::INFINITY;
        x[1] = -0.0;
        let (y, mask) = run(&x, 0.0, 99);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&x));
        assert!(mask.iter().all(|&m| m == 1.0));
    }

    #[test]
    fn backward_is_dy_times_mask() {
        let n = 2 * CHUNK + 3;
        let x = random_vec(n, 4);
        let dy = random_vec(n, 5);
        let (_, mask) = run(&x, 0.3, 11);
        let mut dx = vec![f32::NAN; n];
        dropout_backward(&dy, &mask, &mut dx);
        for i in 0..n {
            assert_eq!(dx[i], dy[i] * mask[i]);
        }
        assert!(dx.contains(&0.0) && dx.iter().any(|&g| g != 0.0));
    }

    #[test]
    #[should_panic(expected = "not in [0, 1)")]
    fn p_one_panics() {
        run(&[1.0, 2.0], 1.0, 0);
    }

    #[test]
    #[should_panic(expected = "not in [0, 1)")]
    fn negative_p_panics() {
        run(&[1.0, 2.0], -0.1, 0);
    }
}
