//! L2 weight decay as Keras' `kernel_regularizer=l2(wd)` (`keras/regularizers.py`, class
//! `L1L2`: `regularization += K.sum(self.l2 * K.square(x))`), which adds to the loss
//! ```text
//! penalty = wd * sum over every trainable kernel w of sum(w^2)
//! d penalty / d w = 2 * wd * w
//! ```
//! Biases get no penalty (Keras' `bias_regularizer` defaults to None, and the articles set
//! only `kernel_regularizer`), nor do frozen parameters: their layers' losses still enter
//! Keras' total, but nothing can change them, so they only shift the reported loss by a
//! constant. Here the penalty covers trainable kernels only. Note that Keras' `wd` multiplies
//! `sum(w^2)` directly, not `sum(w^2) / 2` as in the papers' "weight decay" (Krogh & Hertz): the
//! gradient is `2 * wd * w`.
//!
//! Layout: parameters are flat `f32` tensors in a [`ParamStore`]; the penalty is summed in
//! `f64` so that a million-weight model does not lose the small terms. The gradient is added
//! in place to the gradients the backward pass produced, before the optimiser step, with
//! `(2 * wd) * w`, which rounds exactly like TensorFlow's `wd * (2 * w)` (scaling by 2 is exact).

use tensor::{ops, Device, Tensor};

use crate::{NnError, ParamId, ParamKind, ParamStore};

/// Whether L2 applies to `param`: a trainable kernel.
fn decays(param: &crate::Param) -> bool {
    param.trainable && param.kind == ParamKind::Kernel
}

/// `wd * sum(w^2)` over every trainable kernel of `store`, accumulated in `f64`.
pub fn l2_penalty(store: &ParamStore, wd: f32) -> f32 {
    if wd == 0.0 {
        return 0.0;
    }
    let sum: f64 = store
        .iter()
        .filter(|(_, p)| decays(p))
        .map(|(_, p)| {
            p.value
                .as_slice()
                .iter()
                .map(|&w| (w as f64) * (w as f64))
                .sum::<f64>()
        })
        .sum();
    (wd as f64 * sum) as f32
}

/// The penalty as a one-element tensor on the parameters' device: on the CPU exactly
/// [`l2_penalty`]; on the GPU a sum of per-kernel sums of squares, without a readback.
pub fn l2_penalty_tensor(store: &ParamStore, wd: f32) -> Result<Tensor, NnError> {
    let device = store
        .iter()
        .next()
        .map_or(Device::Cpu, |(_, p)| p.value.device());
    if !device.is_gpu() {
        return Ok(Tensor::scalar(l2_penalty(store, wd)));
    }
    let mut total = Tensor::zeros_on(tensor::Shape::new(vec![]), &device)?;
    for (_, p) in store.iter().filter(|(_, p)| decays(p)) {
        ops::axpy(wd, &ops::sum_squares(&p.value)?, &mut total)?;
    }
    Ok(total)
}

/// Adds the penalty's gradient `2 * wd * w` to the gradient of every trainable kernel in
/// `grads`, in place. Biases and frozen parameters are left as they are; `wd = 0` does nothing.
///
/// A gradient whose shape differs from its parameter's is an error.
pub fn add_l2_gradients(
    store: &ParamStore,
    wd: f32,
    grads: &mut [(ParamId, Tensor)],
) -> Result<(), NnError> {
    if wd == 0.0 {
        return Ok(());
    }
    let coef = 2.0 * wd;
    for (id, grad) in grads.iter_mut() {
        let param = store.get(*id);
        if !decays(param) {
            continue;
        }
        crate::optim::check_grad("add_l2_gradients", param, grad)?;
        ops::axpy(coef, &param.value, grad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel [2, 2], a bias [2], and a frozen kernel [3].
    fn tiny_store() -> (ParamStore, [ParamId; 3]) {
        let mut s = ParamStore::default();
        let k = s.add(
            "dense.kernel".into(),
            Tensor::from_vec([2, 2], vec![1.0, -2.0, 0.5, 3.0]).unwrap(),
            ParamKind::Kernel,
        );
        let b = s.add(
            "dense.bias".into(),
            Tensor::from_vec([2], vec![10.0, -10.0]).unwrap(),
            ParamKind::Bias,
        );
        let f = s.add(
            "frozen.kernel".into(),
            Tensor::from_vec([3], vec![4.0, 5.0, 6.0]).unwrap(),
            ParamKind::Kernel,
        );
        s.get_mut(f).trainable = false;
        (s, [k, b, f])
    }

    #[test]
    fn penalty_by_hand() {
        let (s, _) = tiny_store();
        // Only the trainable kernel: 1 + 4 + 0.25 + 9 = 14.25; times 1e-2.
        assert!((l2_penalty(&s, 0.01) - 0.1425).abs() < 1e-7);
        assert_eq!(l2_penalty(&s, 0.0), 0.0);
        // Unfreezing the frozen kernel adds 16 + 25 + 36 = 77.
        let mut s2 = s.clone();
        s2.get_mut(ParamId(2)).trainable = true;
        assert!((l2_penalty(&s2, 0.01) - 0.9125).abs() < 1e-6);
    }

    #[test]
    fn gradient_matches_finite_difference() {
        let (s, [k, _, _]) = tiny_store();
        let wd = 0.05;
        let mut grads = vec![(k, Tensor::zeros([2, 2]))];
        add_l2_gradients(&s, wd, &mut grads).unwrap();
        let analytic = grads[0].1.to_vec();
        let w0 = s.get(k).value.to_vec();
        let eps = 1e-2f32;
        for i in 0..w0.len() {
            let penalty_at = |x: f32| {
                let mut s = s.clone();
                s.get_mut(k).value.data_mut()[i] = x;
                l2_penalty(&s, wd) as f64
            };
            let (hi, lo) = (w0[i] + eps, w0[i] - eps);
            let fd = (penalty_at(hi) - penalty_at(lo)) / (hi as f64 - lo as f64);
            assert!(
                (fd - analytic[i] as f64).abs() < 1e-4 * fd.abs().max(1.0),
                "element {i}: finite difference {fd} vs gradient {}",
                analytic[i]
            );
            assert_eq!(analytic[i], 2.0 * wd * w0[i]);
        }
    }

    #[test]
    fn adds_to_existing_gradients_and_skips_biases_and_frozen() {
        let (s, [k, b, f]) = tiny_store();
        // The frozen kernel would never have a gradient; pass one to check it is left alone.
        let mut grads = vec![
            (k, Tensor::full([2, 2], 1.0)),
            (b, Tensor::full([2], 1.0)),
            (f, Tensor::full([3], 1.0)),
        ];
        add_l2_gradients(&s, 0.5, &mut grads).unwrap();
        // 1 + 2 * 0.5 * w = 1 + w.
        assert_eq!(grads[0].1.to_vec(), vec![2.0, -1.0, 1.5, 4.0]);
        assert_eq!(grads[1].1.to_vec(), vec![1.0, 1.0]);
        assert_eq!(grads[2].1.to_vec(), vec![1.0, 1.0, 1.0]);
        // wd = 0 is a no-op.
        add_l2_gradients(&s, 0.0, &mut grads).unwrap();
        assert_eq!(grads[0].1.to_vec(), vec![2.0, -1.0, 1.5, 4.0]);
    }
}
