//! Pooling on the GPU: max and average pooling over square windows, global average pooling,
//! and their gradients; the kernels of `shaders/pool.wgsl` and their dispatch.
//!
//! The math, the NHWC layout, TensorFlow's padding and the max-pool tie rule are those of
//! `cpu::maxpool2d` and `cpu::avgpool2d`, whose [`Pool2dDims`] the functions here take. Every
//! kernel is one thread per element it writes; the backward passes are gathers (one thread per
//! `dx` element summing the windows that hold it), so overlapping windows need no atomics and
//! `dx` needs no zeroing first.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;
use cpu::maxpool2d::Pool2dDims;

/// The WGSL source of the pooling family.
pub const SHADER: Shader = Shader {
    name: "pool",
    source: include_str!("../../../shaders/pool.wgsl"),
    trusted: false,
};

/// The uniform the shader reads its sizes from (`Pool` in pool.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
    total: u32,
    neg_inf: f32,
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// `Err(Shape)` unless `buf` holds exactly `want` elements. (This and the two checks below are
/// shared with the batchnorm, lrn and shortcut wrappers.)
pub(crate) fn check_len(
    what: &str,
    name: &str,
    buf: &GpuBuffer,
    want: usize,
) -> Result<(), GpuError> {
    if buf.len() != want {
        return Err(GpuError::Shape(format!(
            "{what}: {name} holds {} elements, expected {want}",
            buf.len()
        )));
    }
    Ok(())
}

/// `Err(Shape)` when two of `bufs` are the same GPU buffer (wgpu refuses a buffer bound twice
/// when one binding writes it).
pub(crate) fn check_distinct(what: &str, bufs: &[&GpuBuffer]) -> Result<(), GpuError> {
    for (i, a) in bufs.iter().enumerate() {
        if bufs[i + 1..].iter().any(|b| b.buffer == a.buffer) {
            return Err(GpuError::Shape(format!(
                "{what}: the same buffer is passed twice"
            )));
        }
    }
    Ok(())
}

/// `Err(Shape)` when `len` elements cannot be indexed with u32 in the shader.
pub(crate) fn check_u32(what: &str, len: usize) -> Result<(), GpuError> {
    if len > u32::MAX as usize {
        return Err(GpuError::Shape(format!(
            "{what}: {len} elements do not fit u32 indexing"
        )));
    }
    Ok(())
}

/// Validate a windowed pooling's dims and its image-sized and pooled-sized buffers.
fn params(
    what: &str,
    d: &Pool2dDims,
    input: (&str, &GpuBuffer),
    output: (&str, &GpuBuffer),
) -> Result<Params, GpuError> {
    if d.k == 0 || d.stride == 0 {
        return Err(GpuError::Shape(format!(
            "{what}: window {} and stride {} must be at least 1",
            d.k, d.stride
        )));
    }
    check_len(what, input.0, input.1, d.input_len())?;
    check_len(what, output.0, output.1, d.output_len())?;
    check_u32(what, d.input_len().max(d.output_len()))?;
    check_u32(
        what,
        (d.out_h.max(d.h) + d.pad_top.max(d.pad_left)) * d.stride + d.k,
    )?;
    check_u32(
        what,
        (d.out_w.max(d.w) + d.pad_top.max(d.pad_left)) * d.stride + d.k,
    )?;
    Ok(Params {
        n: d.n as u32,
        h: d.h as u32,
        w: d.w as u32,
        c: d.c as u32,
        k: d.k as u32,
        stride: d.stride as u32,
        pad_top: d.pad_top as u32,
        pad_left: d.pad_left as u32,
        out_h: d.out_h as u32,
        out_w: d.out_w as u32,
        total: 0,
        neg_inf: f32::NEG_INFINITY,
    })
}

/// Max pooling forward: `y` (`n x out_h x out_w x c`) gets the maximum of each window of `x`
/// (`n x h x w x c`), padded positions left out. Matches `cpu::maxpool2d::maxpool2d_forward`
/// bit for bit.
pub fn maxpool2d_forward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "maxpool2d forward";
    let mut p = params(WHAT, d, ("x", x), ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("maxpool_forward"), &p, &[x, y], y.len())
}

/// Max pooling backward: `dx` (overwritten, `x`'s shape) gets each `dy` at the first element
/// (row-major within the window) equal to its window's maximum; gradients of overlapping
/// windows add up. Matches `cpu::maxpool2d::maxpool2d_backward` (same tie rule, same order of
/// addition) bit for bit.
pub fn maxpool2d_backward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "maxpool2d backward";
    let mut p = params(WHAT, d, ("x", x), ("dy", dy))?;
    check_len(WHAT, "dx", dx, d.input_len())?;
    check_distinct(WHAT, &[x, dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    if dy.is_empty() {
        ctx.record_clear(dx, dx.len());
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("maxpool_backward"), &p, &[x, dy, dx], dx.len())
}

/// Average pooling forward: `y` gets the mean of each window's in-image elements (padding is
/// left out of the sum and the count, as in TensorFlow). Matches
/// `cpu::avgpool2d::avgpool2d_forward` to rounding.
pub fn avgpool2d_forward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    x: &GpuBuffer,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "avgpool2d forward";
    let mut p = params(WHAT, d, ("x", x), ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("avgpool_forward"), &p, &[x, y], y.len())
}

/// Average pooling backward: `dx` (overwritten, `n x h x w x c`) gets `dy / count` from every
/// window holding each element; overlapping windows add up. Matches
/// `cpu::avgpool2d::avgpool2d_backward` to rounding.
pub fn avgpool2d_backward(
    ctx: &GpuContext,
    d: &Pool2dDims,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "avgpool2d backward";
    let mut p = params(WHAT, d, ("dx", dx), ("dy", dy))?;
    check_distinct(WHAT, &[dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    if dy.is_empty() {
        ctx.record_clear(dx, dx.len());
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("avgpool_backward"), &p, &[dy, dx], dx.len())
}

/// The uniform of the global pool: `hw` travels in `h`, `w` is 1.
fn global_params(
    what: &str,
    image: (&str, &GpuBuffer),
    n: usize,
    hw: usize,
    c: usize,
    pooled: (&str, &GpuBuffer),
) -> Result<Params, GpuError> {
    if hw == 0 {
        return Err(GpuError::Shape(format!("{what}: hw is 0")));
    }
    check_len(what, image.0, image.1, n * hw * c)?;
    check_len(what, pooled.0, pooled.1, n * c)?;
    check_u32(what, n * hw * c)?;
    Ok(Params {
        n: n as u32,
        h: hw as u32,
        w: 1,
        c: c as u32,
        k: 1,
        stride: 1,
        pad_top: 0,
        pad_left: 0,
        out_h: 1,
        out_w: 1,
        total: 0,
        neg_inf: f32::NEG_INFINITY,
    })
}

/// Global average pooling `[n, hw, c] -> [n, c]`: `y[b][ch] = (sum_p x[b][p][ch]) / hw`.
/// Sums in f32 (the CPU's `cpu::avgpool2d::global_avgpool_forward` uses f64), so they agree
/// to rounding. `hw` must be at least 1.
pub fn global_avgpool_forward(
    ctx: &GpuContext,
    x: &GpuBuffer,
    n: usize,
    hw: usize,
    c: usize,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "global_avgpool forward";
    let mut p = global_params(WHAT, ("x", x), n, hw, c, ("y", y))?;
    check_distinct(WHAT, &[x, y])?;
    if y.is_empty() {
        return Ok(());
    }
    p.total = y.len() as u32;
    ctx.dispatch_threads(kernel("global_avgpool_forward"), &p, &[x, y], y.len())
}

/// Gradient of the global average pooling: `dx[b][p][ch] = dy[b][ch] / hw` (overwrites `dx`).
/// Matches `cpu::avgpool2d::global_avgpool_backward` to rounding.
pub fn global_avgpool_backward(
    ctx: &GpuContext,
    dy: &GpuBuffer,
    n: usize,
    hw: usize,
    c: usize,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    const WHAT: &str = "global_avgpool backward";
    let mut p = global_params(WHAT, ("dx", dx), n, hw, c, ("dy", dy))?;
    check_distinct(WHAT, &[dy, dx])?;
    if dx.is_empty() {
        return Ok(());
    }
    p.total = dx.len() as u32;
    ctx.dispatch_threads(kernel("global_avgpool_backward"), &p, &[dy, dx], dx.len())
}
