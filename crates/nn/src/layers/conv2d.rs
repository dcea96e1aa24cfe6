//! Conv2D: `activation(conv(x, kernel) + bias)`, kernel HWIO `[k, k, c_in, filters]`.

use autograd::{Tape, Var};
use tensor::ops::PoolWindow;
use tensor::Padding;

use cpu::conv2d::Conv2dDims;

use crate::{Activation, Ctx, Layer, NnError, ParamId, ParamStore};

pub struct Conv2d {
    pub name: String,
    pub kernel: ParamId,
    pub bias: Option<ParamId>,
    pub stride: usize,
    pub padding: Padding,
    pub activation: Activation,
    pub shape: Vec<usize>,
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2D"
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
        let b = self.bias.map(|b| ctx.param(tape, b));
        // ReLU is fused into the convolution kernel; other activations follow it.
        let relu = self.activation == Activation::Relu;
        let y = tape.conv2d(x, w, b, self.stride, self.padding, relu)?;
        if relu {
            return Ok(y);
        }
        self.activation.apply(tape, y)
    }
    fn forward_then_max_pool(
        &self,
        tape: &mut Tape,
        x: Var,
        ctx: &mut Ctx,
        window: PoolWindow,
    ) -> Option<Result<Var, NnError>> {
        if self.activation != Activation::Relu {
            return None;
        }
        let w = ctx.param(tape, self.kernel);
        let b = self.bias.map(|b| ctx.param(tape, b));
        let (stride, padding) = (self.stride, self.padding);
        Some(
            tape.conv2d_relu_maxpool(x, w, b, stride, padding, window)
                .map_err(NnError::from),
        )
    }
    fn convolutions(&self, store: &ParamStore, n: usize, input: &[usize]) -> Vec<Conv2dDims> {
        let mut x = vec![n];
        x.extend_from_slice(input);
        let w = store.get(self.kernel).value.shape();
        tensor::ops::conv2d_dims(&tensor::Shape::new(x), w, self.stride, self.padding)
            .into_iter()
            .collect()
    }
}
