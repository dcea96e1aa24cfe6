//! Activation functions, fused into Conv2D / Dense (Keras' `activation=`) or as a layer.

use autograd::{Tape, Var};

use crate::{Ctx, Layer, NnError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
}

impl Activation {
    pub fn apply(self, tape: &mut Tape, x: Var) -> Result<Var, NnError> {
        Ok(match self {
            Activation::Linear => x,
            Activation::Relu => tape.relu(x)?,
        })
    }
}

/// A stand-alone activation layer (Keras' `Activation('relu')`).
pub struct ActivationLayer {
    pub name: String,
    pub activation: Activation,
    pub shape: Vec<usize>,
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        "Activation"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NnError> {
        self.activation.apply(tape, x)
    }
    fn is_relu(&self) -> bool {
        self.activation == Activation::Relu
    }
}
