//! reshape (and flatten) on the tape: a view with another shape; the gradient is reshaped back.

use tensor::{Result, Shape};

use crate::{Tape, Var};

impl Tape {
    pub fn reshape(&mut self, x: Var, shape: impl Into<Shape>) -> Result<Var> {
        let x_shape = self.value(x).shape().clone();
        let y = self.value(x).reshape(shape)?;
        Ok(self.push("reshape", y, &[x], move |dy, g| {
            g.add(x, dy.reshape(x_shape)?)
        }))
    }

    /// `[n, d1, d2, ...] -> [n, d1 * d2 * ...]`; NHWC order, as Keras' `Flatten`.
    pub fn flatten(&mut self, x: Var) -> Result<Var> {
        let s = self.value(x).shape();
        let n = s.batch();
        let rest = s.numel() / n.max(1);
        self.reshape(x, [n, rest])
    }
}
