//! conv2d on the tape: `y = conv(x, w) + b`, optionally followed by a fused ReLU.
//!
//! Backward: with ReLU, first `dz = dy ⊙ (y > 0)`, else `dz = dy`; then
//! `dx = conv2d_backward_input(dz, w)`, `dw = conv2d_backward_weight(x, dz)`, `db = Σ dz` over
//! every position, each computed only if that input wants a gradient (the first layer's `dx`
//! is never needed).

use tensor::{ops, Padding, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn conv2d(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: Padding,
        relu: bool,
    ) -> Result<Var> {
        let (xt, wt) = (self.value(x).clone(), self.value(w).clone());
        let y = ops::conv2d(&xt, &wt, b.map(|b| self.value(b)), stride, padding, relu)?;
        let inputs: Vec<Var> = [x, w].into_iter().chain(b).collect();
        let yt = relu.then(|| y.clone());
        Ok(self.push("conv2d", y, &inputs, move |dy, g| {
            let masked;
            let dy = match &yt {
                Some(y) => {
                    masked = ops::relu_backward(y, dy)?;
                    &masked
                }
                None => dy,
            };
            if g.wants(x) {
                g.add(
                    x,
                    ops::conv2d_backward_input(dy, &wt, xt.shape(), stride, padding)?,
                )?;
            }
            if g.wants(w) {
                g.add(
                    w,
                    ops::conv2d_backward_weight(&xt, dy, wt.shape(), stride, padding)?,
                )?;
            }
            if let Some(b) = b.filter(|&b| g.wants(b)) {
                g.add(b, ops::bias_grad(dy)?)?;
            }
            Ok(())
        }))
    }
}
