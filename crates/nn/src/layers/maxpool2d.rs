//! MaxPooling2D: the maximum over each `size x size` window, moved by `stride`.

use autograd::{Tape, Var};
use tensor::ops::PoolWindow;
use tensor::Padding;

use crate::{Ctx, Layer, NnError};

pub struct MaxPool2d {
    pub name: String,
    pub size: usize,
    pub stride: usize,
    pub padding: Padding,
    pub shape: Vec<usize>,
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "MaxPooling2D"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn forward(&self, tape: &mut Tape, x: Var, _ctx: &mut Ctx) -> Result<Var, NnError> {
        Ok(tape.maxpool2d(x, self.size, self.stride, self.padding)?)
    }
    fn max_pool_window(&self) -> Option<PoolWindow> {
        Some(PoolWindow {
            size: self.size,
            stride: self.stride,
            padding: self.padding,
        })
    }
}
