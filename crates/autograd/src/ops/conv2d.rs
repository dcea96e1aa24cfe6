//! conv2d on the tape: `y = conv(x, w) + b`, optionally followed by a fused ReLU.
//!
//! Backward: with ReLU, `dz = dy ⊙ (y > 0)`, else `dz = dy`; then
//! `dx = conv2d_backward_input(dz, w)`, `dw = conv2d_backward_weight(x, dz)`, `db = Σ dz` over
//! every position, each computed only if that input wants a gradient (the first layer's `dx`
//! is never needed). With ReLU the three run as one `conv2d_relu_backward`, which on the CPU
//! applies the mask as it reads `dy` instead of making `dz`.
//!
//! `conv2d_relu_maxpool` records a convolution with a fused ReLU and the max pool after it
//! as one node: its backward routes the pool's gradient into the convolution's gradients
//! without making the pool's input gradient on the CPU (see
//! [`ops::conv2d_relu_maxpool_backward`]).

use tensor::ops::PoolWindow;
use tensor::{ops, Padding, Result, Tensor};

use crate::{Grads, Tape, Var};

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
            let wants = [g.wants(x), g.wants(w), b.is_some_and(|b| g.wants(b))];
            let grads = match &yt {
                // The ReLU's mask is applied where the gradients read dy.
                Some(y) => ops::conv2d_relu_backward(&xt, &wt, y, dy, stride, padding, wants)?,
                None => ops::conv2d_backward(&xt, &wt, dy, stride, padding, wants)?,
            };
            add_grads(g, [Some(x), Some(w), b], grads)
        }))
    }

    /// `maxpool(max(conv(x, w) + b, 0))`: [`Tape::conv2d`] with its ReLU, then
    /// [`Tape::maxpool2d`] with `pool`'s window, as one node (the same values as the two).
    // The convolution's arguments plus the pool's window.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_relu_maxpool(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: Padding,
        pool: PoolWindow,
    ) -> Result<Var> {
        let (xt, wt) = (self.value(x).clone(), self.value(w).clone());
        let (p, saved) =
            ops::conv2d_relu_maxpool(&xt, &wt, b.map(|b| self.value(b)), stride, padding, pool)?;
        let inputs: Vec<Var> = [x, w].into_iter().chain(b).collect();
        Ok(self.push("conv2d_relu_maxpool", p, &inputs, move |dp, g| {
            let wants = [g.wants(x), g.wants(w), b.is_some_and(|b| g.wants(b))];
            let grads = ops::conv2d_relu_maxpool_backward(
                &xt, &wt, &saved, dp, stride, padding, pool, wants,
            )?;
            add_grads(g, [Some(x), Some(w), b], grads)
        }))
    }
}

/// Adds each computed gradient (dx, dw, db) to its input's (x, w and the bias, if any).
fn add_grads(g: &mut Grads, inputs: [Option<Var>; 3], grads: [Option<Tensor>; 3]) -> Result<()> {
    for (v, grad) in inputs.into_iter().zip(grads) {
        if let (Some(v), Some(grad)) = (v, grad) {
            g.add(v, grad)?;
        }
    }
    Ok(())
}
