//! Element-wise sum of two values (a residual connection's join).
//! Backward of `a + b`: both inputs receive `dy`.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        let y = ops::add(self.value(a), self.value(b))?;
        Ok(self.push("add", y, &[a, b], move |dy, g| {
            g.add(a, dy.clone())?;
            g.add(b, dy.clone())
        }))
    }

    /// `y = max(a + b, 0)` (a residual block's sum and ReLU) as one op: one pass forward, and
    /// backward one `dz = dy ⊙ (y > 0)` that both inputs receive.
    pub fn add_relu(&mut self, a: Var, b: Var) -> Result<Var> {
        let y = ops::add_relu(self.value(a), self.value(b))?;
        let yt = y.clone();
        Ok(self.push("add_relu", y, &[a, b], move |dy, g| {
            let dz = ops::relu_backward(&yt, dy)?;
            g.add(a, dz.clone())?;
            g.add(b, dz)
        }))
    }
}
