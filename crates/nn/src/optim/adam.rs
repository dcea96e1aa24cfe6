//! Adam (Kingma & Ba, 2015) as tf.keras implements it: epsilon outside the square root, bias
//! correction folded into the step size. Defaults are Keras': lr 1e-3, beta1 0.9,
//! beta2 0.999, epsilon 1e-7.

use tensor::ops::{self, AdamHyper};
use tensor::Tensor;

use super::{Optimizer, OptimizerState};
use crate::{NnError, ParamId, ParamStore};

pub struct Adam {
    pub hyper: AdamHyper,
    /// Steps taken so far (t in the paper).
    t: u64,
    /// First and second moment per parameter, created on first use.
    moments: Vec<Option<(Tensor, Tensor)>>,
}

impl Adam {
    pub fn new(hyper: AdamHyper) -> Self {
        Adam {
            hyper,
            t: 0,
            moments: Vec::new(),
        }
    }
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new(AdamHyper::default())
    }
}

impl Optimizer for Adam {
    fn step(
        &mut self,
        store: &mut ParamStore,
        grads: Vec<(ParamId, Tensor)>,
        guard: Option<&Tensor>,
    ) -> Result<(), NnError> {
        self.t += 1;
        let lr_t = ops::adam_step_size(&self.hyper, self.t);
        if self.moments.len() < store.len() {
            self.moments.resize(store.len(), None);
        }
        for (id, grad) in grads {
            let param = store.get_mut(id);
            if self.moments[id.0].is_none() {
                let zeros = || Tensor::zeros_on(param.value.shape().clone(), &param.value.device());
                self.moments[id.0] = Some((zeros()?, zeros()?));
            }
            let (m, v) = self.moments[id.0].as_mut().expect("just set");
            ops::adam_update(&mut param.value, &grad, m, v, &self.hyper, lr_t, guard)?;
        }
        Ok(())
    }
    fn learning_rate(&self) -> f32 {
        self.hyper.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.hyper.lr = lr;
    }
    fn describe(&self) -> String {
        let h = &self.hyper;
        format!(
            "Adam(lr={}, beta_1={}, beta_2={}, epsilon={:e})",
            h.lr, h.beta1, h.beta2, h.epsilon
        )
    }
    fn state(&self) -> OptimizerState {
        let m = self.moments.iter().map(|mv| mv.as_ref().map(|(m, _)| m));
        let v = self.moments.iter().map(|mv| mv.as_ref().map(|(_, v)| v));
        OptimizerState {
            kind: "adam".into(),
            steps: self.t,
            buffers: OptimizerState::entries("m", m)
                .chain(OptimizerState::entries("v", v))
                .collect(),
        }
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<(), NnError> {
        state.expect_kind("adam")?;
        let (m, v) = (state.table("m"), state.table("v"));
        let n = m.len().max(v.len());
        let mut moments = Vec::with_capacity(n);
        for i in 0..n {
            let pair = match (m.get(i).cloned().flatten(), v.get(i).cloned().flatten()) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) => None,
                _ => {
                    return Err(NnError::OptimizerState(format!(
                        "Adam's saved state has only one of the two moments of parameter {i}"
                    )))
                }
            };
            moments.push(pair);
        }
        self.moments = moments;
        self.t = state.steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamKind;

    /// After one step with g = 2 from zero moments: m = (1 - beta1) g, v = (1 - beta2) g^2
    /// (Keras' increments `m += (g - m)(1 - beta1)`, `v += (g^2 - v)(1 - beta2)`), and the
    /// parameter moved by lr_1 m / (sqrt(v) + eps), i.e. about lr.
    #[test]
    fn moments_after_one_step() {
        let mut store = ParamStore::default();
        let id = store.add(
            "x.kernel".into(),
            Tensor::from_vec([1], vec![1.0]).unwrap(),
            ParamKind::Kernel,
        );
        let mut opt = Adam::default();
        assert!(opt.state().buffers.is_empty());
        let g = Tensor::from_vec([1], vec![2.0]).unwrap();
        opt.step(&mut store, vec![(id, g)], None).unwrap();
        let state = opt.state();
        let buffer = |name: &str| {
            let (_, bid, t) = state.buffers.iter().find(|b| b.0 == name).unwrap();
            assert_eq!(*bid, id);
            t.as_slice()[0]
        };
        let (m, v) = (buffer("m"), buffer("v"));
        assert_eq!(state.steps, 1);
        assert_eq!(m, 2.0 * (1.0 - 0.9f32));
        assert_eq!(v, 4.0 * (1.0 - 0.999f32));
        let p = store.get(id).value.as_slice()[0];
        assert!((1.0 - p - 1e-3).abs() < 1e-6, "moved by {}", 1.0 - p);
    }
}
