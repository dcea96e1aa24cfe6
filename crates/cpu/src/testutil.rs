//! Helpers shared by the kernel tests: seeded random inputs and tolerant comparisons.

use rand::{rngs::StdRng, Rng, SeedableRng};

/// `len` uniform numbers in `[-1, 1)` from a fixed seed.
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Asserts `|a - b| <= tol * max(1, |b|)` element-wise, naming the first bad index.
pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let scale = y.abs().max(1.0);
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i} differs: {x} vs reference {y}"
        );
    }
}

/// A random permutation of `len` distinct values spaced `spacing` apart, centred on 0. For
/// gradient checks of max-like ops: with a finite-difference step below `spacing / 2`, no
/// perturbation changes which element is the maximum.
pub fn distinct_values(len: usize, spacing: f32, seed: u64) -> Vec<f32> {
    use rand::seq::SliceRandom;
    let mut rng = StdRng::seed_from_u64(seed);
    let half = len as f32 / 2.0;
    let mut v: Vec<f32> = (0..len).map(|i| (i as f32 - half) * spacing).collect();
    v.shuffle(&mut rng);
    v
}

/// Checks an analytic gradient `grad` of `loss` at `x` against central differences
/// `(loss(x + eps e_i) - loss(x - eps e_i)) / (2 eps)` at every element `i`, asserting
/// `|fd - grad| <= atol + rtol * |fd|`.
pub fn assert_grad_matches_fd(
    x: &[f32],
    grad: &[f32],
    eps: f32,
    atol: f64,
    rtol: f64,
    what: &str,
    loss: impl Fn(&[f32]) -> f64,
) {
    assert_eq!(
        x.len(),
        grad.len(),
        "{what}: gradient length differs from x"
    );
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let (hi, lo) = (x[i] + eps, x[i] - eps);
        xp[i] = hi;
        let up = loss(&xp);
        xp[i] = lo;
        let down = loss(&xp);
        xp[i] = x[i];
        // Divide by the step actually taken (x +- eps rounds in f32).
        let fd = (up - down) / (hi as f64 - lo as f64);
        let g = grad[i] as f64;
        assert!(
            (fd - g).abs() <= atol + rtol * fd.abs(),
            "{what}: element {i}: finite difference {fd} vs gradient {g}"
        );
    }
}

/// The GEMM version-4 micro-kernels this CPU runs; the others are named as skipped.
pub fn v4_kernels() -> Vec<crate::gemm_packed::Kernel> {
    use crate::gemm_packed::Kernel;
    [Kernel::Avx512, Kernel::Avx2Fma]
        .into_iter()
        .filter(|k| {
            let ok = k.supported();
            if !ok {
                eprintln!("skipped: this CPU cannot run the {} kernel", k.name());
            }
            ok
        })
        .collect()
}
