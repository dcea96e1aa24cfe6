//! Average pooling and global average pooling on the tape.

use tensor::ops;
use tensor::{Padding, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn avgpool2d(
        &mut self,
        x: Var,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<Var> {
        let x_shape = self.value(x).shape().clone();
        let y = ops::avgpool2d(self.value(x), size, stride, padding)?;
        Ok(self.push("avgpool2d", y, &[x], move |dy, g| {
            g.add(
                x,
                ops::avgpool2d_backward(&x_shape, dy, size, stride, padding)?,
            )
        }))
    }

    /// `[n, h, w, c] -> [n, c]`.
    pub fn global_avgpool(&mut self, x: Var) -> Result<Var> {
        let x_shape = self.value(x).shape().clone();
        let y = ops::global_avgpool(self.value(x))?;
        Ok(self.push("global_avgpool", y, &[x], move |dy, g| {
            g.add(x, ops::global_avgpool_backward(&x_shape, dy)?)
        }))
    }
}
