//! Inverted dropout on the GPU (`shaders/dropout.wgsl`), bit-identical to `cpu::dropout`:
//! the shader hashes `(seed, i)` with the same counter hash as `cpu::rng::uniform`, so the GPU
//! mask and output equal the CPU's exactly, whatever the split of the work.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::elementwise::{count, distinct, same_len};
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;

/// The WGSL source of the dropout kernels.
pub const SHADER: Shader = Shader {
    name: "dropout",
    source: include_str!("../../../shaders/dropout.wgsl"),
    trusted: false,
};

/// `Params` in dropout.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    seed: u32,
    p: f32,
    scale: f32,
}

/// Dropout forward with drop probability `p` in `[0, 1)`: `mask[i] = 1 / (1 - p)` where
/// `cpu::rng::uniform(seed, i) >= p`, else 0, and `y[i] = x[i] * mask[i]` where kept, else 0
/// (as `cpu::dropout::dropout_forward`, bit for bit). `y` and `mask` must be distinct buffers of
/// `x.len()` elements.
pub fn dropout_forward(
    ctx: &GpuContext,
    x: &GpuBuffer,
    p: f32,
    seed: u32,
    y: &GpuBuffer,
    mask: &GpuBuffer,
) -> Result<(), GpuError> {
    if !(0.0..1.0).contains(&p) {
        return Err(GpuError::Shape(format!(
            "dropout: p = {p} is not in [0, 1)"
        )));
    }
    same_len(y, x.len(), "dropout_forward: y")?;
    same_len(mask, x.len(), "dropout_forward: mask")?;
    distinct(y, &[x, mask], "dropout_forward: y")?;
    distinct(mask, &[x], "dropout_forward: mask")?;
    let params = Params {
        n: count(x.len(), "dropout_forward")?,
        seed,
        p,
        // The CPU's scale, computed the same way in f32.
        scale: 1.0 / (1.0 - p),
    };
    let k = Kernel {
        shader: SHADER,
        entry: "dropout_forward",
    };
    ctx.dispatch_threads(k, &params, &[x, y, mask], x.len())
}

/// Dropout backward: `dx[i] = dy[i] * mask[i]`, overwriting `dx` (as
/// `cpu::dropout::dropout_backward`).
pub fn dropout_backward(
    ctx: &GpuContext,
    dy: &GpuBuffer,
    mask: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    same_len(mask, dy.len(), "dropout_backward: mask")?;
    same_len(dx, dy.len(), "dropout_backward: dx")?;
    distinct(dx, &[dy, mask], "dropout_backward")?;
    let params = Params {
        n: count(dy.len(), "dropout_backward")?,
        seed: 0,
        p: 0.0,
        scale: 0.0,
    };
    let k = Kernel {
        shader: SHADER,
        entry: "dropout_backward",
    };
    ctx.dispatch_threads(k, &params, &[dy, mask, dx], dy.len())
}

crate::uniform_matches!(SHADER, "Params", Params { n, seed, p, scale });
