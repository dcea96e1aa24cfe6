//! Element-wise sums over flat slices: `y = a + b` (a residual join), `y += x` (gradient
//! accumulation) and `y += alpha * x` (the L2 penalty's gradient).
//!
//! Math: per element, `y[i] = a[i] + b[i]`, `y[i] += x[i]`, `y[i] += alpha * x[i]`; one
//! rounding each, so the fast versions equal the references bit for bit.
//!
//! Layout: any shape, as one flat contiguous slice.
//!
//! Why the fast versions are faster: these ops are memory-bound (one add per 8-12 bytes
//! moved), so what counts is touching each byte once and keeping every core's memory stream
//! busy. Slices longer than `CHUNK` (64 KiB of f32) are cut into blocks that rayon runs on all
//! cores, each a plain `zip` the compiler vectorises; [`add`] writes the sum straight into its
//! output in one pass, where "copy `a`, then add `b`" would read and write the output twice.
//! Short slices (bias and per-channel gradients) stay on the calling thread.

use rayon::prelude::*;

use crate::simd::multiversion;

/// Elements per parallel task (64 KiB of f32): large enough that scheduling is free next to
/// the work, small enough that a few-million-element activation keeps every core busy.
const CHUNK: usize = 1 << 14;

/// Reference `y[i] = a[i] + b[i]`.
pub fn add_reference(a: &[f32], b: &[f32], y: &mut [f32]) {
    check(a.len(), b.len(), y.len(), "add");
    for i in 0..y.len() {
        y[i] = a[i] + b[i];
    }
}

/// Fast `y = a + b`; equals [`add_reference`] bit for bit.
pub fn add(a: &[f32], b: &[f32], y: &mut [f32]) {
    check(a.len(), b.len(), y.len(), "add");
    multiversion! {
        fn add_block(a: &[f32], b: &[f32], y: &mut [f32]) {
            for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                *y = a + b;
            }
        }
    }
    par_binary(a, b, y, add_block);
}

/// Runs `block` on matching chunks of `a`, `b` and `y` (lengths checked by the caller), on
/// the rayon pool when `y` is longer than one chunk.
fn par_binary(a: &[f32], b: &[f32], y: &mut [f32], block: fn(&[f32], &[f32], &mut [f32])) {
    if y.len() <= CHUNK {
        block(a, b, y);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(y, (a, b))| block(a, b, y));
    }
}

/// Reference `y[i] = max(a[i] + b[i], 0)`: a residual block's sum and its ReLU (the ReLU's
/// `0` for a sum that is not `> 0`, as [`crate::relu`]).
pub fn add_relu_reference(a: &[f32], b: &[f32], y: &mut [f32]) {
    check(a.len(), b.len(), y.len(), "add_relu");
    for i in 0..y.len() {
        let s = a[i] + b[i];
        y[i] = if s > 0.0 { s } else { 0.0 };
    }
}

/// Fast `y = max(a + b, 0)` in one pass (the sum is never stored); equals
/// [`add_relu_reference`] bit for bit.
pub fn add_relu(a: &[f32], b: &[f32], y: &mut [f32]) {
    check(a.len(), b.len(), y.len(), "add_relu");
    multiversion! {
        fn add_relu_block(a: &[f32], b: &[f32], y: &mut [f32]) {
            for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                let s = a + b;
                *y = if s > 0.0 { s } else { 0.0 };
            }
        }
    }
    par_binary(a, b, y, add_relu_block);
}

/// Reference `y[i] += alpha * x[i]`.
pub fn axpy_reference(alpha: f32, x: &[f32], y: &mut [f32]) {
    check(x.len(), x.len(), y.len(), "axpy");
    for i in 0..y.len() {
        y[i] += alpha * x[i];
    }
}

/// Fast `y += alpha * x`; equals [`axpy_reference`] bit for bit (a multiply, then an add:
/// Rust does not contract them into a fused multiply-add).
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    check(x.len(), x.len(), y.len(), "axpy");
    multiversion! {
        fn axpy_block(alpha: f32, x: &[f32], y: &mut [f32]) {
            for (y, &x) in y.iter_mut().zip(x) {
                *y += alpha * x;
            }
        }
    }
    let block = |(y, x): (&mut [f32], &[f32])| axpy_block(alpha, x, y);
    if y.len() <= CHUNK {
        block((y, x));
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(block);
    }
}

/// Reference `y[i] += x[i]`.
pub fn add_assign_reference(y: &mut [f32], x: &[f32]) {
    check(x.len(), x.len(), y.len(), "add_assign");
    for i in 0..y.len() {
        y[i] += x[i];
    }
}

/// Fast `y += x`; equals [`add_assign_reference`] bit for bit.
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    check(x.len(), x.len(), y.len(), "add_assign");
    multiversion! {
        fn add_assign_block(y: &mut [f32], x: &[f32]) {
            for (y, &x) in y.iter_mut().zip(x) {
                *y += x;
            }
        }
    }
    let block = |(y, x): (&mut [f32], &[f32])| add_assign_block(y, x);
    if y.len() <= CHUNK {
        block((y, x));
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(block);
    }
}

fn check(a: usize, b: usize, y: usize, what: &str) {
    assert!(a == y && b == y, "{what}: lengths differ ({a}, {b}, {y})");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vec;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Lengths below, at and past one chunk, and several chunks with a ragged end.
    const LENS: [usize; 6] = [0, 1, 7, CHUNK, CHUNK + 1, 3 * CHUNK + 1001];

    #[test]
    fn fast_versions_equal_the_references_bit_for_bit() {
        for (s, &n) in LENS.iter().enumerate() {
            let (a, b) = (random_vec(n, s as u64), random_vec(n, 100 + s as u64));
            let (mut want, mut got) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            add_reference(&a, &b, &mut want);
            add(&a, &b, &mut got);
            assert_eq!(bits(&got), bits(&want), "add n {n}");

            let (mut want, mut got) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            add_relu_reference(&a, &b, &mut want);
            add_relu(&a, &b, &mut got);
            assert_eq!(bits(&got), bits(&want), "add_relu n {n}");

            let (mut want, mut got) = (b.clone(), b.clone());
            add_assign_reference(&mut want, &a);
            add_assign(&mut got, &a);
            assert_eq!(bits(&got), bits(&want), "add_assign n {n}");

            let (mut want, mut got) = (b.clone(), b.clone());
            axpy_reference(-0.37, &a, &mut want);
            axpy(-0.37, &a, &mut got);
            assert_eq!(bits(&got), bits(&want), "axpy n {n}");
        }
    }

    #[test]
    fn the_references_compute_what_they_say() {
        let (a, b) = ([1.0, -2.0, 0.5], [3.0, 4.0, -0.5]);
        let mut y = [0.0; 3];
        add_reference(&a, &b, &mut y);
        assert_eq!(y, [4.0, 2.0, 0.0]);
        add_assign_reference(&mut y, &a);
        assert_eq!(y, [5.0, 0.0, 0.5]);
        axpy_reference(2.0, &a, &mut y);
        assert_eq!(y, [7.0, -4.0, 1.5]);
        add_relu_reference(&a, &b, &mut y);
        assert_eq!(y, [4.0, 2.0, 0.0]);
        add_relu_reference(&[-1.0, f32::NAN, 1.0], &[0.5, 1.0, -1.0], &mut y);
        assert_eq!(bits(&y), bits(&[0.0, 0.0, 0.0]), "not > 0 gives +0");
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn different_lengths_panic() {
        add(&[1.0; 3], &[1.0; 2], &mut [0.0; 3]);
    }
}
