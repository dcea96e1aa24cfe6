//! SGD with momentum and optional Nesterov momentum, as Keras implements it (Keras 3
//! `keras/src/optimizers/sgd.py`, tf.keras 2 `optimizer_v2/gradient_descent.py`, and Keras 2.2
//! `keras/optimizers.py`, which agree):
//! ```text
//! v = momentum * v - lr * g
//! p = p + v                          (plain)
//! p = p + momentum * v - lr * g      (Nesterov)
//! ```
//! and `p = p - lr * g` with momentum 0, in which case no velocity is kept at all. Defaults are
//! Keras': lr 0.01, momentum 0, no Nesterov. The kernel and the exact order of operations are in
//! `cpu/src/sgd.rs`.

pub use cpu::sgd::SgdHyper;

use tensor::{ops, Tensor};

use super::{Optimizer, OptimizerState};
use crate::{NnError, ParamId, ParamStore};

pub struct Sgd {
    pub hyper: SgdHyper,
    /// Steps taken so far.
    t: u64,
    /// Velocity per parameter, created on first use when momentum is not 0.
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    pub fn new(hyper: SgdHyper) -> Self {
        Sgd {
            hyper,
            t: 0,
            velocity: Vec::new(),
        }
    }
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new(SgdHyper::default())
    }
}

impl Optimizer for Sgd {
    fn step(
        &mut self,
        store: &mut ParamStore,
        grads: Vec<(ParamId, Tensor)>,
        guard: Option<&Tensor>,
    ) -> Result<(), NnError> {
        self.t += 1;
        if self.velocity.len() < store.len() {
            self.velocity.resize(store.len(), None);
        }
        let use_velocity = self.hyper.momentum != 0.0;
        for (id, grad) in grads {
            let param = store.get_mut(id);
            super::check_grad("sgd_update", param, &grad)?;
            if use_velocity && self.velocity[id.0].is_none() {
                let zeros = Tensor::zeros_on(param.value.shape().clone(), &param.value.device())?;
                self.velocity[id.0] = Some(zeros);
            }
            let velocity = self.velocity[id.0].as_mut().filter(|_| use_velocity);
            ops::sgd_update(&mut param.value, &grad, velocity, &self.hyper, guard)?;
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
            "SGD(lr={}, momentum={}, nesterov={})",
            h.lr, h.momentum, h.nesterov
        )
    }
    fn state(&self) -> OptimizerState {
        OptimizerState {
            kind: "sgd".into(),
            steps: self.t,
            buffers: OptimizerState::entries("velocity", self.velocity.iter().map(Option::as_ref))
                .collect(),
        }
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<(), NnError> {
        state.expect_kind("sgd")?;
        self.velocity = state.table("velocity");
        self.t = state.steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamKind;

    fn one_param(p0: f32) -> (ParamStore, ParamId) {
        let mut store = ParamStore::default();
        let id = store.add(
            "x.kernel".into(),
            Tensor::from_vec([1], vec![p0]).unwrap(),
            ParamKind::Kernel,
        );
        (store, id)
    }

    /// Minimises (p - 3)^2 (gradient 2 (p - 3)) from p = 0.
    fn minimise(opt: &mut Sgd, steps: usize) -> f32 {
        let (mut store, id) = one_param(0.0);
        for _ in 0..steps {
            let p = store.get(id).value.as_slice()[0];
            let g = Tensor::from_vec([1], vec![2.0 * (p - 3.0)]).unwrap();
            opt.step(&mut store, vec![(id, g)], None).unwrap();
        }
        assert_eq!(opt.steps(), steps as u64);
        store.get(id).value.as_slice()[0]
    }

    #[test]
    fn converges_on_a_quadratic() {
        for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
            let mut opt = Sgd::new(SgdHyper {
                lr: 0.05,
                momentum,
                nesterov,
            });
            let p = minimise(&mut opt, 200);
            assert!(
                (p - 3.0).abs() < 1e-3,
                "momentum {momentum}, nesterov {nesterov}: p = {p}"
            );
        }
    }

    /// The first step from 0 is -lr * g for plain momentum and -(1 + momentum) lr g for Nesterov.
    #[test]
    fn first_step_matches_keras() {
        for (nesterov, want) in [(false, 0.3f32), (true, 0.3 * 1.9)] {
            let mut opt = Sgd::new(SgdHyper {
                lr: 0.05,
                momentum: 0.9,
                nesterov,
            });
            let p = minimise(&mut opt, 1);
            assert!(
                (p - want).abs() < 1e-6,
                "nesterov {nesterov}: {p} vs {want}"
            );
        }
    }

    #[test]
    fn no_velocity_without_momentum() {
        let mut opt = Sgd::default();
        minimise(&mut opt, 3);
        assert!(opt.velocity.iter().all(|v| v.is_none()));
        let mut opt = Sgd::new(SgdHyper {
            momentum: 0.5,
            ..SgdHyper::default()
        });
        minimise(&mut opt, 3);
        assert!(opt.velocity[0].is_some());
    }

    /// The exported state holds Keras' velocity, a step (`momentum * v - lr * g`), not PyTorch's
    /// gradient sum: after two steps with g = 1, v = 0.9 * (-0.1) - 0.1.
    #[test]
    fn velocity_is_keras_v() {
        let (mut store, id) = one_param(0.0);
        let mut opt = Sgd::new(SgdHyper {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
        });
        assert!(opt.state().buffers.is_empty());
        for _ in 0..2 {
            let g = Tensor::from_vec([1], vec![1.0]).unwrap();
            opt.step(&mut store, vec![(id, g)], None).unwrap();
        }
        let state = opt.state();
        assert_eq!(state.buffers.len(), 1);
        let (name, vid, v) = &state.buffers[0];
        assert_eq!((name.as_str(), *vid), ("velocity", id));
        let v = v.as_slice()[0];
        assert_eq!(v, 0.9f32 * -0.1f32 - 0.1f32);
        assert_eq!(store.get(id).value.as_slice()[0], -0.1f32 + v);
    }

    #[test]
    fn wrong_gradient_shape_is_an_error() {
        let (mut store, id) = one_param(0.0);
        let mut opt = Sgd::default();
        let g = Tensor::zeros([2]);
        let err = opt.step(&mut store, vec![(id, g)], None).unwrap_err();
        assert!(err.to_string().contains("x.kernel"), "{err}");
    }

    #[test]
    fn describe_and_learning_rate() {
        let mut opt = Sgd::new(SgdHyper {
            lr: 0.01,
            momentum: 0.9,
            nesterov: true,
        });
        assert_eq!(opt.describe(), "SGD(lr=0.01, momentum=0.9, nesterov=true)");
        opt.set_learning_rate(0.005);
        assert_eq!(opt.learning_rate(), 0.005);
        assert_eq!(opt.hyper.lr, 0.005);
    }
}
