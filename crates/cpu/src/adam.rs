//! The Adam optimiser update, as tf.keras computes it.
//!
//! Math, for step `t = 1, 2, ...` with gradient `g`, moments `m`, `v` (both start at 0):
//! ```text
//! lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//! m    = beta1 * m + (1 - beta1) * g
//! v    = beta2 * v + (1 - beta2) * g * g
//! p    = p - lr_t * m / (sqrt(v) + epsilon)
//! ```
//! This is Kingma & Ba's "efficient version" (end of section 2 of the paper): the bias
//! corrections `1 / (1 - beta^t)` are folded into the step size `lr_t` instead of being applied
//! to `m` and `v`, and `epsilon` is added outside the square root. The two forms differ only
//! through `epsilon`, which is why matching Keras means using this one.
//!
//! Order of floating-point operations: Keras (`keras/src/optimizers/adam.py`, and TensorFlow's
//! `ApplyAdam` kernel under tf.keras 2) writes the moment updates as increments,
//! `m += (g - m) * (1 - beta1)` and `v += (g^2 - v) * (1 - beta2)`, and the step as
//! `p -= (m * lr_t) / (sqrt(v) + epsilon)`. That is the same algebra as above; the kernels here
//! use Keras's order so that they also round like Keras.
//!
//! Layout: `param`, `grad`, `m`, `v` are four flat slices of the same length, element `i` of
//! each belonging to the same scalar parameter.
//!
//! Why the fast version is faster: the update is independent per element, so chunks of
//! `CHUNK` elements run on rayon, each as one loop zipped over the four slices (no bounds
//! checks; the square root and division vectorise). It does exactly the reference's operations
//! in the same order, so the results are identical bit for bit.

use rayon::prelude::*;

use crate::simd::multiversion;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl Default for AdamHyper {
    /// The Keras defaults: `lr = 1e-3`, `beta1 = 0.9`, `beta2 = 0.999`, `epsilon = 1e-7`.
    fn default() -> Self {
        AdamHyper {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// The bias-corrected step size `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)` for the
/// 1-based step `t`, with the powers computed in `f64` (`0.999^t` in `f32` drifts after a few
/// thousand steps).
pub fn adam_step_size(h: &AdamHyper, t: u64) -> f32 {
    assert!(t >= 1, "adam: the step t is 1-based");
    // powi takes an i32; beyond i32::MAX steps both powers are 0 anyway.
    let t = t.min(i32::MAX as u64) as i32;
    let b1t = (h.beta1 as f64).powi(t);
    let b2t = (h.beta2 as f64).powi(t);
    (h.lr as f64 * (1.0 - b2t).sqrt() / (1.0 - b1t)) as f32
}

fn check(param: &[f32], grad: &[f32], m: &[f32], v: &[f32]) {
    let n = param.len();
    assert_eq!(grad.len(), n, "adam: grad length differs from param");
    assert_eq!(m.len(), n, "adam: m length differs from param");
    assert_eq!(v.len(), n, "adam: v length differs from param");
}

/// Reference update of every element, with `lr_t` from [`adam_step_size`].
pub fn adam_update_reference(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamHyper,
    lr_t: f32,
) {
    check(param, grad, m, v);
    for i in 0..param.len() {
        let g = grad[i];
        m[i] += (g - m[i]) * (1.0 - h.beta1);
        v[i] += (g * g - v[i]) * (1.0 - h.beta2);
        param[i] -= m[i] * lr_t / (v[i].sqrt() + h.epsilon);
    }
}

/// Fast update, identical to [`adam_update_reference`] bit for bit.
pub fn adam_update(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamHyper,
    lr_t: f32,
) {
    check(param, grad, m, v);
    let one_minus_b1 = 1.0 - h.beta1;
    let one_minus_b2 = 1.0 - h.beta2;
    let eps = h.epsilon;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(move |(((p, g), m), v)| {
            block(p, g, m, v, [one_minus_b1, one_minus_b2, lr_t, eps])
        });
}

multiversion! {
    /// One block of [`adam_update`]; `k` is `[1 - beta1, 1 - beta2, lr_t, epsilon]`.
    fn block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 4]) {
        let [one_minus_b1, one_minus_b2, lr_t, eps] = k;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m += (g - *m) * one_minus_b1;
            *v += (g * g - *v) * one_minus_b2;
            *p -= *m * lr_t / (v.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vec;

    #[test]
    fn defaults_are_keras() {
        let h = AdamHyper::default();
        assert_eq!(
            (h.lr, h.beta1, h.beta2, h.epsilon),
            (1e-3, 0.9, 0.999, 1e-7)
        );
    }

    #[test]
    fn step_size_matches_formula() {
        let h = AdamHyper::default();
        // t = 1: lr * sqrt(1 - beta2) / (1 - beta1), about 1e-3 * sqrt(0.001) / 0.1.
        let (lr, b1, b2) = (h.lr as f64, h.beta1 as f64, h.beta2 as f64);
        let want1 = lr * (1.0 - b2).sqrt() / (1.0 - b1);
        assert!((adam_step_size(&h, 1) as f64 - want1).abs() < 1e-10);
        assert!((want1 - 3.1623e-4).abs() < 1e-7);
        // t = 3.
        let want3 = lr * (1.0 - b2.powi(3)).sqrt() / (1.0 - b1.powi(3));
        assert!((adam_step_size(&h, 3) as f64 - want3).abs() < 1e-10);
        // Large t: both corrections go to 1, so lr_t -> lr.
        assert!((adam_step_size(&h, 100_000) - 1e-3).abs() < 1e-9);
        assert!((adam_step_size(&h, u64::MAX) - 1e-3).abs() < 1e-9);
    }

    /// One parameter, two steps, against the textbook formula evaluated in f64.
    #[test]
    fn two_steps_by_hand() {
        let h = AdamHyper {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        };
        let grads = [0.2f64, -0.1];
        // The same hyper-parameters (their f32 values), in f64.
        let (lr, b1, b2, eps) = (
            h.lr as f64,
            h.beta1 as f64,
            h.beta2 as f64,
            h.epsilon as f64,
        );
        let (mut p, mut m, mut v) = (0.5f64, 0.0f64, 0.0f64);
        let mut expected = Vec::new();
        for (step, g) in grads.iter().enumerate() {
            let t = step as i32 + 1;
            let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            p -= lr_t * m / (v.sqrt() + eps);
            expected.push((p, m, v));
        }
        // Adam's first step moves by about lr in the direction of -g.
        assert!((expected[0].0 - 0.49).abs() < 1e-5, "{}", expected[0].0);

        for fast in [false, true] {
            let (mut p, mut g, mut m, mut v) = ([0.5f32], [0.0f32], [0.0f32], [0.0f32]);
            for (step, &grad) in grads.iter().enumerate() {
                g[0] = grad as f32;
                let lr_t = adam_step_size(&h, step as u64 + 1);
                if fast {
                    adam_update(&mut p, &g, &mut m, &mut v, &h, lr_t);
                } else {
                    adam_update_reference(&mut p, &g, &mut m, &mut v, &h, lr_t);
                }
                let (ep, em, ev) = expected[step];
                assert!(
                    (p[0] as f64 - ep).abs() < 1e-6,
                    "step {step}: p {} vs {ep}",
                    p[0]
                );
                assert!(
                    (m[0] as f64 - em).abs() < 1e-7,
                    "step {step}: m {} vs {em}",
                    m[0]
                );
                assert!(
                    (v[0] as f64 - ev).abs() < 1e-9,
                    "step {step}: v {} vs {ev}",
                    v[0]
                );
            }
        }
    }

    #[test]
    fn fast_matches_reference_exactly() {
        let h = AdamHyper::default();
        for &n in &[1usize, 7, 13, CHUNK + 1, 3 * CHUNK - 5] {
            let mut p_ref = random_vec(n, 1000 + n as u64);
            let mut p = p_ref.clone();
            let (mut m_ref, mut v_ref) = (vec![0.0; n], vec![0.0; n]);
            let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
            for t in 1..=3 {
                let g = random_vec(n, 2000 + t + n as u64);
                let lr_t = adam_step_size(&h, t);
                adam_update_reference(&mut p_ref, &g, &mut m_ref, &mut v_ref, &h, lr_t);
                adam_update(&mut p, &g, &mut m, &mut v, &h, lr_t);
            }
            assert_eq!(p, p_ref, "param, n {n}");
            assert_eq!(m, m_ref, "m, n {n}");
            assert_eq!(v, v_ref, "v, n {n}");
            assert_ne!(
                p,
                random_vec(n, 1000 + n as u64),
                "the update changed nothing"
            );
        }
    }
}
