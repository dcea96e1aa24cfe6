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
}
