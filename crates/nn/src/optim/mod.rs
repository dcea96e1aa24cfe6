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
