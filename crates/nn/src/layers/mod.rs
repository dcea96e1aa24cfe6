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
    /// Whether this layer is a ReLU and nothing else (an `Activation('relu')` layer): the
    /// layer before it may then fuse it ([`Layer::forward_then_relu`]).
    fn is_relu(&self) -> bool {
        false
    }
    /// This layer followed by a ReLU, as one fused computation, when this layer has one for
    /// `ctx`'s mode (batch norm in training: `Tape::batchnorm_relu_train`); `None` otherwise,
    /// and the two run one after the other. [`forward_layers`] asks for it.
    fn forward_then_relu(
        &self,
        _tape: &mut Tape,
        _x: Var,
        _ctx: &mut Ctx,
    ) -> Option<Result<Var, NnError>> {
        None
    }
    /// This layer's window when it is a max pool (a `MaxPooling2D` layer): the layer before
    /// it may then fuse it ([`Layer::forward_then_max_pool`]).
    fn max_pool_window(&self) -> Option<tensor::ops::PoolWindow> {
        None
    }
    /// This layer followed by a max pool with `window`, as one fused computation, when this
    /// layer has one (a convolution with a ReLU: `Tape::conv2d_relu_maxpool`); `None`
    /// otherwise, and the two run one after the other.
    fn forward_then_max_pool(
        &self,
        _tape: &mut Tape,
        _x: Var,
        _ctx: &mut Ctx,
        _window: tensor::ops::PoolWindow,
    ) -> Option<Result<Var, NnError>> {
        None
    }
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

/// Records `layers` in order on `tape`, starting from `x`: what `Sequential` and a residual
/// block's branches run. A layer followed by a ReLU layer, or by a max pool, runs fused with
/// it where the layer offers that ([`Layer::forward_then_relu`],
/// [`Layer::forward_then_max_pool`]); the result is the same as running the two.
pub fn forward_layers(
    layers: &[Box<dyn Layer>],
    tape: &mut Tape,
    x: Var,
    ctx: &mut Ctx,
) -> Result<Var, NnError> {
    let mut h = x;
    let mut i = 0;
    while i < layers.len() {
        let (h2, used) = forward_step(layers, i, tape, h, ctx)?;
        h = h2;
        i += used;
    }
    Ok(h)
}

/// Records layer `i` (and the ReLU or max pool layer after it, when the two fuse) and returns
/// the output and how many layers it consumed: 1 or 2.
pub fn forward_step(
    layers: &[Box<dyn Layer>],
    i: usize,
    tape: &mut Tape,
    x: Var,
    ctx: &mut Ctx,
) -> Result<(Var, usize), NnError> {
    if layers.get(i + 1).is_some_and(|next| next.is_relu()) {
        if let Some(y) = layers[i].forward_then_relu(tape, x, ctx) {
            return Ok((y?, 2));
        }
    }
    if let Some(window) = layers.get(i + 1).and_then(|next| next.max_pool_window()) {
        if let Some(y) = layers[i].forward_then_max_pool(tape, x, ctx, window) {
            return Ok((y?, 2));
        }
    }
    Ok((layers[i].forward(tape, x, ctx)?, 1))
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
