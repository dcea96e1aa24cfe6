//! Local response normalisation across channels (tf.nn.lrn), as NIN's variant uses it.

use autograd::{Tape, Var};
use tensor::ops::LrnParams;

use crate::{Ctx, Layer, NnError};

/// tf.nn.lrn across channels (AlexNet's local response normalisation).
pub struct Lrn {
    pub name: String,
    pub params: LrnParams,
    pub shape: Vec<usize>,
}

impl Layer for Lrn {
    fn kind(&self) -> &'static str {
        "LRN"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NnError> {
        Ok(tape.lrn(x, self.params)?)
    }
}
