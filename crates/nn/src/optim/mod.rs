//! Optimisers: update trainable parameters from their gradients.

mod adam;
mod rmsprop;
mod sgd;

pub use adam::Adam;
pub use rmsprop::{Rmsprop, RmspropHyper};
pub use sgd::{Sgd, SgdHyper};

use tensor::Tensor;

use crate::{NnError, ParamId, ParamStore};

pub trait Optimizer {
    /// Applies one update. `grads` holds the gradient of every trainable parameter that the
    /// step used; frozen parameters never appear. With a `guard` (a one-element tensor, the
    /// loss) that is not finite, nothing changes: on the GPU the kernels decide this on the
    /// device, so a diverged step is harmless without a readback every step.
    fn step(
        &mut self,
        store: &mut ParamStore,
        grads: Vec<(ParamId, Tensor)>,
        guard: Option<&Tensor>,
    ) -> Result<(), NnError>;
    fn learning_rate(&self) -> f32;
    /// For schedules: the rate for the following steps.
    fn set_learning_rate(&mut self, lr: f32);
    /// Keras' name and settings, for the printed recipe.
    fn describe(&self) -> String;
    /// Everything a resumed run needs to continue exactly where this one stands: the step
    /// count and every per-parameter buffer (the learning rate comes from the schedule).
    fn state(&self) -> OptimizerState;
    /// Restores a [`Optimizer::state`]. A state of another kind of optimiser is an error and
    /// changes nothing.
    fn load_state(&mut self, state: OptimizerState) -> Result<(), NnError>;
}

/// An optimiser's state, as checkpoints store it.
#[derive(Clone)]
pub struct OptimizerState {
    /// `adam`, `sgd` or `rmsprop`: a state loads only into the same kind.
    pub kind: String,
    /// Updates done so far (Adam's `t`, RMSprop's `iterations`).
    pub steps: u64,
    /// `(buffer, parameter, value)`: Adam's `m` and `v`, SGD's `velocity`, RMSprop's `accum`.
    /// A parameter that has not been updated yet has no buffers.
    pub buffers: Vec<(String, ParamId, Tensor)>,
}

impl OptimizerState {
    /// An error unless this state is for an optimiser of `kind`.
    fn expect_kind(&self, kind: &str) -> Result<(), NnError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(NnError::OptimizerState(format!(
                "the saved optimiser state is {}'s, but this run uses {kind}",
                self.kind
            )))
        }
    }

    /// The buffers named `buffer`, as a table indexed by parameter id (the layout the
    /// optimisers keep them in).
    fn table(&self, buffer: &str) -> Vec<Option<Tensor>> {
        let mut table = Vec::new();
        for (name, id, t) in &self.buffers {
            if name == buffer {
                if table.len() <= id.0 {
                    table.resize(id.0 + 1, None);
                }
                table[id.0] = Some(t.clone());
            }
        }
        table
    }

    /// A table of buffers (indexed by parameter id) as `(buffer, parameter, value)` entries.
    fn entries<'a>(
        buffer: &'a str,
        table: impl IntoIterator<Item = Option<&'a Tensor>> + 'a,
    ) -> impl Iterator<Item = (String, ParamId, Tensor)> + 'a {
        table
            .into_iter()
            .enumerate()
            .filter_map(move |(i, t)| t.map(|t| (buffer.to_string(), ParamId(i), t.clone())))
    }
}

/// An error unless `grad` has the shape of `param` (named in the message, with the `op`).
pub(crate) fn check_grad(
    op: &'static str,
    param: &crate::Param,
    grad: &Tensor,
) -> Result<(), NnError> {
    if grad.shape() != param.value.shape() {
        return Err(tensor::TensorError::shape(
            op,
            format!(
                "gradient of `{}` has shape {}, the parameter {}",
                param.name,
                grad.shape(),
                param.value.shape()
            ),
        )
        .into());
    }
    Ok(())
}
