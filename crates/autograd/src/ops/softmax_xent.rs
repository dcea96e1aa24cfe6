//! Softmax + cross-entropy on the tape: the mean loss over a batch of logits, as a scalar.
//!
//! Backward: `dlogits = (softmax(logits) - onehot(label)) / batch`, from the saved
//! probabilities, times the incoming scalar gradient.

use tensor::{ops, Result};

use crate::{Tape, Var};

impl Tape {
    pub fn softmax_cross_entropy(&mut self, logits: Var, labels: &[u32]) -> Result<Var> {
        let (loss, probs) = ops::softmax_xent(self.value(logits), labels)?;
        let labels = labels.to_vec();
        // The upstream gradient `dl` of a loss is the CPU seed 1.0 from `backward`, so reading
        // it is free even when the logits live on the GPU.
        Ok(self.push("softmax_xent", loss, &[logits], move |dl, g| {
            g.add(
                logits,
                ops::softmax_xent_backward(&probs, &labels, dl.item()?)?,
            )
        }))
    }
}
