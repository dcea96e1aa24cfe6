//! RMSprop as standalone Keras 2.2 implements it (`keras/optimizers.py`, class `RMSprop`), the
//! version the articles ran:
//! ```text
//! lr_t = lr / (1 + decay * iterations)     (iterations = updates already done, 0 at first)
//! a    = rho * a + (1 - rho) * g * g
//! p    = p - lr_t * g / (sqrt(a) + epsilon)
//! ```
//! Defaults are Keras 2.2's: lr 1e-3, rho 0.9, epsilon 1e-7, decay 0. The learning rate the
//! [`Optimizer`] trait reads and sets is the base `lr`; the time-based decay applies on top of
//! it (so a schedule and `decay` compose, as in Keras). The kernel and the exact order of
//! operations are in `cpu/src/rmsprop.rs`.

pub use cpu::rmsprop::RmspropHyper;

use tensor::{ops, Tensor};

use super::{Optimizer, OptimizerState};
use crate::{NnError, ParamId, ParamStore};

pub struct Rmsprop {
    pub hyper: RmspropHyper,
    /// Updates done so far (Keras' `iterations`).
    iterations: u64,
    /// Running mean of the squared gradient per parameter, created on first use.
    accum: Vec<Option<Tensor>>,
}

impl Rmsprop {
    pub fn new(hyper: RmspropHyper) -> Self {
        Rmsprop {
            hyper,
            iterations: 0,
            accum: Vec::new(),
        }
    }
    /// Updates done so far.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }
    /// The decayed rate the next step will use.
    pub fn current_step_size(&self) -> f32 {
        cpu::rmsprop::rmsprop_step_size(&self.hyper, self.iterations)
    }
}

impl Default for Rmsprop {
    fn default() -> Self {
        Rmsprop::new(RmspropHyper::default())
    }
}

impl Optimizer for Rmsprop {
    fn step(
        &mut self,
        store: &mut ParamStore,
        grads: Vec<(ParamId, Tensor)>,
        guard: Option<&Tensor>,
    ) -> Result<(), NnError> {
        let lr_t = self.current_step_size();
        self.iterations += 1;
        if self.accum.len() < store.len() {
            self.accum.resize(store.len(), None);
        }
        for (id, grad) in grads {
            let param = store.get_mut(id);
            super::check_grad("rmsprop_update", param, &grad)?;
            if self.accum[id.0].is_none() {
                let zeros = Tensor::zeros_on(param.value.shape().clone(), &param.value.device())?;
                self.accum[id.0] = Some(zeros);
            }
            let a = self.accum[id.0].as_mut().expect("just set");
            ops::rmsprop_update(&mut param.value, &grad, a, &self.hyper, lr_t, guard)?;
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
            "RMSprop(lr={}, rho={}, epsilon={:e}, decay={})",
            h.lr, h.rho, h.epsilon, h.decay
        )
    }
    fn state(&self) -> OptimizerState {
        OptimizerState {
            kind: "rmsprop".into(),
            steps: self.iterations,
            buffers: OptimizerState::entries("accum", self.accum.iter().map(Option::as_ref))
                .collect(),
        }
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<(), NnError> {
        state.expect_kind("rmsprop")?;
        self.accum = state.table("accum");
        self.iterations = state.steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamKind;

    /// Minimises (p - 3)^2 (gradient 2 (p - 3)) from p = 0; returns p.
    fn minimise(opt: &mut Rmsprop, steps: usize) -> f32 {
        let mut store = ParamStore::default();
        let id = store.add(
            "x.kernel".into(),
            Tensor::from_vec([1], vec![0.0]).unwrap(),
            ParamKind::Kernel,
        );
        for _ in 0..steps {
            let p = store.get(id).value.as_slice()[0];
            let g = Tensor::from_vec([1], vec![2.0 * (p - 3.0)]).unwrap();
            opt.step(&mut store, vec![(id, g)], None).unwrap();
        }
        store.get(id).value.as_slice()[0]
    }

    #[test]
    fn converges_on_a_quadratic() {
        let mut opt = Rmsprop::new(RmspropHyper {
            lr: 0.01,
            ..RmspropHyper::default()
        });
        let p = minimise(&mut opt, 2000);
        assert_eq!(opt.iterations(), 2000);
        // RMSprop's steps are about lr in size near the optimum, so it ends within a few lr.
        assert!((p - 3.0).abs() < 0.05, "p = {p}");
        // And it did travel: after 100 steps it is well on its way but not there yet.
        let mut opt = Rmsprop::new(RmspropHyper {
            lr: 0.01,
            ..RmspropHyper::default()
        });
        let p100 = minimise(&mut opt, 100);
        assert!(p100 > 0.5 && p100 < 2.9, "p after 100 steps = {p100}");
    }

    /// The first step uses lr itself, the second lr / (1 + decay); the first step of RMSprop
    /// from a = 0 is lr * g / (sqrt(0.1 g^2)) = lr * sqrt(10) in the direction of -g.
    #[test]
    fn decay_applies_from_the_second_step() {
        let mut opt = Rmsprop::new(RmspropHyper {
            lr: 0.01,
            decay: 1.0,
            ..RmspropHyper::default()
        });
        assert_eq!(opt.current_step_size(), 0.01);
        let p = minimise(&mut opt, 1);
        assert!((p - 0.01 * 10f32.sqrt()).abs() < 1e-6, "p = {p}");
        assert_eq!(opt.current_step_size(), 0.005);
        // set_learning_rate changes the base rate; the decay still applies.
        opt.set_learning_rate(0.02);
        assert_eq!(opt.learning_rate(), 0.02);
        assert_eq!(opt.current_step_size(), 0.01);
    }

    #[test]
    fn describe_names_keras_settings() {
        let opt = Rmsprop::new(RmspropHyper {
            lr: 1e-4,
            decay: 1e-6,
            ..RmspropHyper::default()
        });
        assert_eq!(
            opt.describe(),
            "RMSprop(lr=0.0001, rho=0.9, epsilon=1e-7, decay=0.000001)"
        );
    }
}
