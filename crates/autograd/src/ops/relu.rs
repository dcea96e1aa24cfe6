//! relu on the tape. Backward keeps the output `y` and passes `dy` where `y > 0`.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        let y = ops::relu(self.value(x))?;
        let yt = y.clone();
        Ok(self.push("relu", y, &[x], move |dy, g| {
            g.add(x, ops::relu_backward(&yt, dy)?)
        }))
    }
}
