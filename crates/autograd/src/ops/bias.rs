//! bias_add on the tape: `y = x + b` along the last dimension. Backward: `dx = dy`,
//! `db = Σ dy` over all other dimensions.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn bias_add(&mut self, x: Var, b: Var) -> Result<Var> {
        let y = ops::bias_add(self.value(x), self.value(b))?;
        Ok(self.push("bias_add", y, &[x, b], move |dy, g| {
            if g.wants(x) {
                g.add(x, dy.clone())?;
            }
            if g.wants(b) {
                g.add(b, ops::bias_grad(dy)?)?;
            }
            Ok(())
        }))
    }
}
