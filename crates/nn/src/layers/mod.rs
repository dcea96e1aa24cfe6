//! Layers: each records its forward pass on the tape (autograd supplies the backward).
//!
//! A layer knows its parameters by [`ParamId`]; the [`Ctx`] of a forward pass turns each into
//! a tape variable once (trainable ones as gradient-requiring leaves, frozen ones as inputs).

mod activation;
mod avgpool2d;
mod batchnorm;
mod conv2d;
mod dense;
mod dropout;
mod flatten;
mod lrn;
mod maxpool2d;
mod residual;

pub use activation::{Activation, ActivationLayer};
pub use avgpool2d::{AvgPool2d, GlobalAvgPool};
pub use batchnorm::BatchNorm;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use lrn::Lrn;
pub use maxpool2d::MaxPool2d;
pub use residual::{Residual, Shortcut};

use autograd::{Tape, Var};

use crate::{NnError, ParamId, ParamStore};

pub trait Layer: Send + Sync {
    /// Keras' class name, for summaries: `Conv2D`, `Dense`, ...
    fn kind(&self) -> &'static str;
    /// Unique name within the model (`conv2d_1`), also the checkpoint key prefix.
    fn name(&self) -> &str;
    /// Output shape of one example (no batch dimension).
    fn output_shape(&self) -> &[usize];
    /// Parameters this layer owns.
    fn params(&self) -> Vec<ParamId> {
        Vec::new()
    }
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NnError>;
    /// The convolutions this layer runs on `n` examples of shape `input` (no batch
    /// dimension), in order, with its kernels' shapes from `store`: for `bench`'s profile,
    /// which names the CPU variant each one runs. None by default.
    fn convolutions(
        &self,
        _store: &ParamStore,
        _n: usize,
        _input: &[usize],
    ) -> Vec<cpu::conv2d::Conv2dDims> {
        Vec::new()
    }
}

/// State of one forward pass: parameter variables, train/eval mode and the dropout seed.
pub struct Ctx<'a> {
    store: &'a ParamStore,
    vars: Vec<Option<Var>>,
    /// Training mode: dropout is active. In eval mode it is the identity.
    pub training: bool,
    seed: u32,
    draws: u32,
    /// Moving averages to update after the step: `(statistic, batch value, momentum)`.
    updates: Vec<(ParamId, tensor::Tensor, f32)>,
}

impl<'a> Ctx<'a> {
    /// `seed` should differ per step so each step draws fresh dropout masks.
    pub fn new(store: &'a ParamStore, training: bool, seed: u32) -> Self {
        Ctx {
            store,
            vars: vec![None; store.len()],
            training,
            seed,
            draws: 0,
            updates: Vec::new(),
        }
    }

    /// The tape variable of parameter `id`, recorded on first use in this pass.
    pub fn param(&mut self, tape: &mut Tape, id: ParamId) -> Var {
        if let Some(v) = self.vars[id.0] {
            return v;
        }
        let p = self.store.get(id);
        let v = if p.trainable && self.training {
            tape.param(p.value.clone())
        } else {
            tape.input(p.value.clone())
        };
        self.vars[id.0] = Some(v);
        v
    }

    /// Uses `var` for parameter `id` in this pass instead of recording the stored value (for
    /// gradient checks that perturb parameters).
    pub fn bind(&mut self, id: ParamId, var: Var) {
        self.vars[id.0] = Some(var);
    }

    /// The stored value of a parameter, as a constant (moving statistics at inference).
    pub fn value(&self, id: ParamId) -> &tensor::Tensor {
        &self.store.get(id).value
    }

    /// Schedules `stat = momentum * stat + (1 - momentum) * batch` for after the step.
    pub fn update_statistic(&mut self, id: ParamId, batch: tensor::Tensor, momentum: f32) {
        self.updates.push((id, batch, momentum));
    }

    /// The moving-average updates recorded during this pass.
    pub fn take_updates(&mut self) -> Vec<(ParamId, tensor::Tensor, f32)> {
        std::mem::take(&mut self.updates)
    }

    /// A fresh seed for the next random op of this pass.
    pub fn next_seed(&mut self) -> u32 {
        self.draws += 1;
        cpu::rng::pcg_hash(self.seed ^ cpu::rng::pcg_hash(self.draws))
    }

    /// The parameters used in this pass with their variables.
    pub fn param_vars(&self) -> impl Iterator<Item = (ParamId, Var)> + '_ {
        self.vars
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (ParamId(i), v)))
    }
}
