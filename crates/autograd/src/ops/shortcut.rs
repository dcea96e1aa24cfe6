//! He et al.'s option-A shortcut on the tape: stride-subsample, then zero-pad the channels.
//! Backward: `dy`'s unpadded channels, scattered back to the subsampled positions.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    /// The parameter-free shortcut of a residual block that changes width and resolution.
    pub fn subsample_pad(
        &mut self,
        x: Var,
        stride: usize,
        pad_before: usize,
        pad_after: usize,
    ) -> Result<Var> {
        let x_dims = self.value(x).dims().to_vec();
        let y = ops::subsample_pad(self.value(x), stride, pad_before, pad_after)?;
        Ok(self.push("subsample_pad", y, &[x], move |dy, g| {
            g.add(
                x,
                ops::subsample_pad_backward(dy, &x_dims, stride, pad_before)?,
            )
        }))
    }
}
