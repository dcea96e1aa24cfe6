//! Batch normalisation on the tape.
//!
//! Training: normalise with the batch's own mean and variance; the backward accounts for the
//! statistics depending on every input (`tensor::ops::batchnorm_backward`). Inference uses the
//! moving statistics, which are constants, so it is an affine map per channel.

use tensor::{ops, Result, Tensor};

use crate::{Tape, Var};

impl Tape {
    /// Returns `(y, batch mean, batch variance)`; the statistics feed the moving averages.
    pub fn batchnorm_train(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<(Var, Tensor, Tensor)> {
        let (xt, gt) = (self.value(x).clone(), self.value(gamma).clone());
        let (y, mean, var) = ops::batchnorm_train(&xt, &gt, self.value(beta), eps)?;
        let (m, v) = (mean.clone(), var.clone());
        let out = self.push("batchnorm", y, &[x, gamma, beta], move |dy, g| {
            let (dx, dgamma, dbeta) = ops::batchnorm_backward(&xt, dy, &gt, &m, &v, eps)?;
            g.add(x, dx)?;
            g.add(gamma, dgamma)?;
            g.add(beta, dbeta)
        });
        Ok((out, mean, var))
    }
}

impl Tape {
    /// Batch norm followed by ReLU as one node, `y = max(0, batchnorm(x))`: on the CPU the
    /// ReLU costs no pass of its own, forward or backward (`tensor::ops::batchnorm_relu_*`).
    /// Returns `(y, batch mean, batch variance)`, as [`Tape::batchnorm_train`].
    pub fn batchnorm_relu_train(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> Result<(Var, Tensor, Tensor)> {
        let (xt, gt, bt) = (
            self.value(x).clone(),
            self.value(gamma).clone(),
            self.value(beta).clone(),
        );
        let (y, mean, var) = ops::batchnorm_relu_train(&xt, &gt, &bt, eps)?;
        let (m, v, yt) = (mean.clone(), var.clone(), y.clone());
        let out = self.push("batchnorm_relu", y, &[x, gamma, beta], move |dy, g| {
            let (dx, dgamma, dbeta) =
                ops::batchnorm_relu_backward(&xt, &yt, dy, &gt, &bt, &m, &v, eps)?;
            g.add(x, dx)?;
            g.add(gamma, dgamma)?;
            g.add(beta, dbeta)
        });
        Ok((out, mean, var))
    }
}

impl Tape {
    /// Inference with moving statistics. It has no backward: use it only for evaluation.
    pub fn batchnorm_infer(
        &mut self,
        x: Var,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
    ) -> Result<Var> {
        let y = ops::batchnorm_infer(self.value(x), gamma, beta, mean, var, eps)?;
        Ok(self.push("batchnorm_infer", y, &[x], |_, _| {
            Err(tensor::TensorError::argument(
                "batchnorm_infer",
                "inference-mode batch normalisation has no backward; train in training mode",
            ))
        }))
    }
}
