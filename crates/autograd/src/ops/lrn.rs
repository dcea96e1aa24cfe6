//! Local response normalisation (across channels) on the tape.

use tensor::ops::{self, LrnParams};
use tensor::Result;

use crate::{Tape, Var};

impl Tape {
    pub fn lrn(&mut self, x: Var, p: LrnParams) -> Result<Var> {
        let xt = self.value(x).clone();
        let y = ops::lrn(&xt, &p)?;
        Ok(self.push("lrn", y, &[x], move |dy, g| {
            g.add(x, ops::lrn_backward(&xt, dy, &p)?)
        }))
    }
}
