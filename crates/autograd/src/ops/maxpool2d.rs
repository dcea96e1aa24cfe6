//! maxpool2d on the tape. Backward routes each window's gradient to its maximum, found again
//! in the saved input.

use tensor::{ops, Padding, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn maxpool2d(
        &mut self,
        x: Var,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<Var> {
        let xt = self.value(x).clone();
        let y = ops::maxpool2d(&xt, size, stride, padding)?;
        Ok(self.push("maxpool2d", y, &[x], move |dy, g| {
            g.add(x, ops::maxpool2d_backward(&xt, dy, size, stride, padding)?)
        }))
    }
}
