//! Dense: `activation(x · kernel + bias)`, kernel `[in, units]` as in Keras.

use autograd::{Tape, Var};

use crate::{Activation, Ctx, Layer, NnError, ParamId};

pub struct Dense {
    pub name: String,
    pub kernel: ParamId,
    pub bias: Option<ParamId>,
    pub activation: Activation,
    pub shape: Vec<usize>,
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "Dense"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn params(&self) -> Vec<ParamId> {
        std::iter::once(self.kernel).chain(self.bias).collect()
    }
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NnError> {
        let w = ctx.param(tape, self.kernel);
        let mut y = tape.gemm(x, w)?;
        if let Some(b) = self.bias {
            let b = ctx.param(tape, b);
            y = tape.bias_add(y, b)?;
        }
        self.activation.apply(tape, y)
    }
}
