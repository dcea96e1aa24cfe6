//! AveragePooling2D and GlobalAveragePooling2D.

use autograd::{Tape, Var};
use tensor::Padding;

use crate::{Ctx, Layer, NnError};

pub struct AvgPool2d {
    pub name: String,
    pub size: usize,
    pub stride: usize,
    pub padding: Padding,
    pub shape: Vec<usize>,
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "AveragePooling2D"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NnError> {
        Ok(tape.avgpool2d(x, self.size, self.stride, self.padding)?)
    }
}

/// `[n, h, w, c] -> [n, c]`: the mean of each channel.
pub struct GlobalAvgPool {
    pub name: String,
    pub shape: Vec<usize>,
}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NnError> {
        Ok(tape.global_avgpool(x)?)
    }
}
