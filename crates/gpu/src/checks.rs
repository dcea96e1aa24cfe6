//! The argument checks every kernel wrapper runs before recording a dispatch, so a wrong
//! length, an aliased buffer or an index past u32 is an error value instead of a wgpu
//! validation panic or a silent out-of-range read.

use crate::buffer::GpuBuffer;
use crate::error::GpuError;

/// `Err(Shape)` unless `buf` holds exactly `want` elements.
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
        if bufs[i + 1..].iter().any(|b| b.same_buffer(a)) {
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
