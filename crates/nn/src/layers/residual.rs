//! A residual block (He et al., "Deep Residual Learning for Image Recognition", 2016):
//! `y = activation(main(x) + shortcut(x))`.
//!
//! The shortcut is the identity when shapes match; when the block halves the size and
//! doubles the channels it is either option A (subsample and zero-pad the channels: no
//! parameters, what the paper used on CIFAR-10) or option B (a 1x1 strided convolution and
//! batch norm: a projection).

use autograd::{Tape, Var};

use cpu::conv2d::Conv2dDims;

use crate::{Activation, Ctx, Layer, NnError, ParamId, ParamStore};

pub enum Shortcut {
    Identity,
    /// Option A: keep every `stride`-th pixel, add `before`/`after` zero channels.
    ZeroPad {
        stride: usize,
        before: usize,
        after: usize,
    },
    /// Option B: these layers (a 1x1 conv, usually followed by batch norm).
    Projection(Vec<Box<dyn Layer>>),
}

pub struct Residual {
    pub name: String,
    pub main: Vec<Box<dyn Layer>>,
    pub shortcut: Shortcut,
    pub activation: Activation,
    pub shape: Vec<usize>,
}

impl Layer for Residual {
    fn kind(&self) -> &'static str {
        "ResidualBlock"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn params(&self) -> Vec<ParamId> {
        let mut p: Vec<ParamId> = self.main.iter().flat_map(|l| l.params()).collect();
        if let Shortcut::Projection(layers) = &self.shortcut {
            p.extend(layers.iter().flat_map(|l| l.params()));
        }
        p
    }
    fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NnError> {
        let h = super::forward_layers(&self.main, tape, x, ctx)?;
        let s = match &self.shortcut {
            Shortcut::Identity => x,
            Shortcut::ZeroPad {
                stride,
                before,
                after,
            } => tape.subsample_pad(x, *stride, *before, *after)?,
            Shortcut::Projection(layers) => super::forward_layers(layers, tape, x, ctx)?,
        };
        if matches!(self.activation, Activation::Relu) {
            // The sum and its ReLU in one pass (and one mask backward).
            return Ok(tape.add_relu(h, s)?);
        }
        let y = tape.add(h, s)?;
        self.activation.apply(tape, y)
    }
    fn convolutions(&self, store: &ParamStore, n: usize, input: &[usize]) -> Vec<Conv2dDims> {
        let mut out = Vec::new();
        let mut walk = |layers: &[Box<dyn Layer>]| {
            let mut shape = input.to_vec();
            for layer in layers {
                out.extend(layer.convolutions(store, n, &shape));
                shape = layer.output_shape().to_vec();
            }
        };
        walk(&self.main);
        if let Shortcut::Projection(layers) = &self.shortcut {
            walk(layers);
        }
        out
    }
}
