//! Inverted dropout on the tape. Backward multiplies by the saved mask.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    /// Drops each element with probability `p` (mask from `seed`) and scales the rest by
    /// `1/(1-p)`. Use only in training; at inference dropout is the identity.
    pub fn dropout(&mut self, x: Var, p: f32, seed: u32) -> Result<Var> {
        let (y, mask) = ops::dropout(self.value(x), p, seed)?;
        Ok(self.push("dropout", y, &[x], move |dy, g| {
            g.add(x, ops::dropout_backward(dy, &mask)?)
        }))
    }
}
