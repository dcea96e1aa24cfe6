//! The uniform of the pooling kernels and its validation, shared by maxpool2d.rs and
//! avgpool2d.rs as `shaders/window2d.wgsl` is shared by their shaders.

use crate::buffer::GpuBuffer;
use crate::checks::{check_len, check_u32};
use crate::error::GpuError;
use cpu::maxpool2d::Pool2dDims;

/// The uniform the pooling shaders read their sizes from (`Window2d` in window2d.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) c: u32,
    pub(crate) k: u32,
    pub(crate) stride: u32,
    pub(crate) pad_top: u32,
    pub(crate) pad_left: u32,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    pub(crate) total: u32,
    pub(crate) neg_inf: f32,
}

/// Validate a windowed pooling's dims and its image-sized and pooled-sized buffers.
pub(crate) fn params(
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

/// The uniform of the global pool: `hw` travels in `h`, `w` is 1.
pub(crate) fn global_params(
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
