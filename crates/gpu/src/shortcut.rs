//! The "option A" residual shortcut on the GPU (subsample with a stride, zero-pad the
//! channels): the kernels of `shaders/shortcut.wgsl`, with `cpu::shortcut`'s math, NHWC layout
//! and [`ShortcutDims`]. Pure copies, so the results equal the CPU's exactly.

use crate::buffer::GpuBuffer;
use crate::checks::{check_distinct, check_len, check_u32};
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::shortcut::ShortcutDims;

/// The WGSL source of the shortcut family.
pub const SHADER: Shader = Shader {
    name: "shortcut",
    source: include_str!("../../../shaders/shortcut.wgsl"),
    trusted: false,
};

/// The uniform the shader reads its sizes from (`Shortcut` in shortcut.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    stride: u32,
    pad_before: u32,
    out_h: u32,
    out_w: u32,
    c_out: u32,
    total: u32,
}

/// Validate the dims and the image-sized and shortcut-sized buffers.
fn params(
    what: &str,
    d: &ShortcutDims,
    image: (&str, &GpuBuffer),
    out: (&str, &GpuBuffer),
) -> Result<Params, GpuError> {
    if d.stride == 0 {
        return Err(GpuError::Shape(format!(
            "{what}: stride must be at least 1"
        )));
    }
    check_len(what, image.0, image.1, d.input_len())?;
    check_len(what, out.0, out.1, d.output_len())?;
    check_u32(what, d.input_len().max(d.output_len()))?;
    Ok(Params {
        n: d.n as u32,
        h: d.h as u32,
        w: d.w as u32,
        c: d.c as u32,
        stride: d.stride as u32,
        pad_before: d.pad_before as u32,
        out_h: d.out_h() as u32,
        out_w: d.out_w() as u32,
        c_out: d.c_out() as u32,
        total: 0,
    })
}

/// Forward: `y[b, i, j, pad_before + ch] = x[b, i*stride, j*stride, ch]`, the other channels
/// 0 (`y` is overwritten). Matches `cpu::shortcut::subsample_pad` exactly.
pub fn subsample_pad(
    ctx: &GpuContext,
    d: &ShortcutDims,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "subsample_pad";
    let mut p = params(WHAT, d, ("x", x), ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    let k = Kernel {
        shader: SHADER,
        entry: "subsample_pad",
    };
    ctx.dispatch_threads(k, &p, &[x, y], y.len())
}

/// Backward: `dx[b, i*stride, j*stride, ch] = dy[b, i, j, pad_before + ch]`, 0 at the pixels
/// the stride skips (`dx` is overwritten). Matches `cpu::shortcut::subsample_pad_backward`
/// exactly.
pub fn subsample_pad_backward(
    ctx: &GpuContext,
    d: &ShortcutDims,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "subsample_pad backward";
    let mut p = params(WHAT, d, ("dx", dx), ("dy", dy))?;
    check_distinct(WHAT, &[dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    p.total = dx.len() as u32;
    let k = Kernel {
        shader: SHADER,
        entry: "subsample_pad_backward",
    };
    ctx.dispatch_threads(k, &p, &[dy, dx], dx.len())
}

crate::uniform_matches!(
    SHADER,
    "Shortcut",
    Params {
        n,
        h,
        w,
        c,
        stride,
        pad_before,
        out_h,
        out_w,
        c_out,
        total
    }
);
