//! BatchNormalization (Keras semantics): per-channel `gamma * (x - mean) / sqrt(var + eps) +
//! beta`, with the batch's statistics in training (and moving averages updated with
//! `momentum`), and the moving statistics at inference. Keras defaults: momentum 0.99,
//! epsilon 1e-3. gamma/beta are trainable; the moving mean/variance are not.

use autograd::{Tape, Var};

use crate::{Ctx, Layer, NnError, ParamId};

pub struct BatchNorm {
    pub name: String,
    pub gamma: ParamId,
    pub beta: ParamId,
    pub moving_mean: ParamId,
    pub moving_var: ParamId,
    pub momentum: f32,
    pub epsilon: f32,
    pub shape: Vec<usize>,
}

impl Layer for BatchNorm {
    fn kind(&self) -> &'static str {
        "BatchNormalization"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn params(&self) -> Vec<ParamId> {
        vec![self.gamma, self.beta, self.moving_mean, self.moving_var]
    }
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NnError> {
        if ctx.training {
            let (g, b) = (ctx.param(tape, self.gamma), ctx.param(tape, self.beta));
            let (y, mean, var) = tape.batchnorm_train(x, g, b, self.epsilon)?;
            ctx.update_statistic(self.moving_mean, mean, self.momentum);
            ctx.update_statistic(self.moving_var, var, self.momentum);
            Ok(y)
        } else {
            let (g, b) = (ctx.value(self.gamma).clone(), ctx.value(self.beta).clone());
            let (m, v) = (
                ctx.value(self.moving_mean).clone(),
                ctx.value(self.moving_var).clone(),
            );
            Ok(tape.batchnorm_infer(x, &g, &b, &m, &v, self.epsilon)?)
        }
    }
    /// Training only: the normalisation and the ReLU as one node (see
    /// `Tape::batchnorm_relu_train`); inference runs the two as they are.
    fn forward_then_relu(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
    ) -> Option<Result<Var, NnError>> {
        if !ctx.training {
            return None;
        }
        let (g, b) = (ctx.param(tape, self.gamma), ctx.param(tape, self.beta));
        Some(
            tape.batchnorm_relu_train(x, g, b, self.epsilon)
                .map(|(y, mean, var)| {
                    ctx.update_statistic(self.moving_mean, mean, self.momentum);
                    ctx.update_statistic(self.moving_var, var, self.momentum);
                    y
                })
                .map_err(NnError::from),
        )
    }
}
