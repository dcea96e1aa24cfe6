//! f32 storage buffers, the pool that recycles them, and host <-> device copies.
//!
//! A training step allocates the same activation and gradient sizes every time, so freed
//! buffers go back to a [`BufferPool`] keyed by their exact byte size and the next request of
//! that size takes one instead of asking the driver for new memory (a design rule: buffers are
//! pooled and reused across steps).

use crate::context::GpuContext;
use crate::error::GpuError;
use std::collections::HashMap;
use std::sync::Mutex;

/// The usages every pooled buffer has: bound as storage by kernels, and a copy source and
/// destination for uploads, clears and readbacks.
const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A flat array of `len` f32 values in GPU memory.
///
/// The wgpu buffer is at least 4 bytes even when `len` is 0 (wgpu cannot bind an empty buffer).
#[derive(Debug)]
pub struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    len: usize,
}

impl GpuBuffer {
    /// A new (unpooled) buffer of `len` f32.
    pub(crate) fn new(device: &wgpu::Device, len: usize) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("storage"),
            size: byte_size(len),
            usage: STORAGE_USAGE,
            mapped_at_creation: false,
        });
        GpuBuffer { buffer, len }
    }

    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Byte size of the wgpu buffer that holds `len` f32 values.
fn byte_size(len: usize) -> u64 {
    4 * len.max(1) as u64
}

/// Freed storage buffers, by exact byte size.
#[derive(Default)]
pub struct BufferPool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl BufferPool {
    fn take(&self, bytes: u64) -> Option<wgpu::Buffer> {
        self.free.lock().unwrap().get_mut(&bytes)?.pop()
    }

    fn give(&self, buffer: wgpu::Buffer) {
        let mut free = self.free.lock().unwrap();
        free.entry(buffer.size()).or_default().push(buffer);
    }

    /// Number of buffers waiting to be reused.
    pub fn free_count(&self) -> usize {
        self.free.lock().unwrap().values().map(Vec::len).sum()
    }

    /// Drop every free buffer, giving its memory back to the driver.
    pub fn clear(&self) {
        self.free.lock().unwrap().clear();
    }
}

impl GpuContext {
    /// A buffer of `len` f32 with unspecified contents: a pooled one of the same size if there
    /// is one, else a new one. `what` names the tensor in the `TooLarge` error.
    pub fn alloc(&self, len: usize, what: &str) -> Result<GpuBuffer, GpuError> {
        let bytes = byte_size(len);
        let limit = self.binding_limit();
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: format!("{what} ({len} f32)"),
                bytes,
                limit,
            });
        }
        Ok(match self.pool.take(bytes) {
            Some(buffer) => GpuBuffer { buffer, len },
            None => GpuBuffer::new(&self.device, len),
        })
    }

    /// Give a buffer back to the pool for reuse by the next request of the same size.
    ///
    /// Safe at any time, even while recorded work still uses it: every later use is recorded
    /// after that work and runs after it (record.rs).
    pub fn release(&self, buf: GpuBuffer) {
        self.pool.give(buf.buffer);
    }

    /// Copy host data into a new (or pooled) GPU buffer (recorded; see record.rs).
    pub fn upload(&self, data: &[f32]) -> Result<GpuBuffer, GpuError> {
        let buf = self.alloc(data.len(), "uploaded tensor")?;
        self.record_write(&buf, data)?;
        Ok(buf)
    }

    /// A GPU buffer of `len` zeros (recorded).
    pub fn zeros(&self, len: usize) -> Result<GpuBuffer, GpuError> {
        let buf = self.alloc(len, "zero tensor")?;
        self.record_clear(&buf, len);
        Ok(buf)
    }

    /// Copy a GPU buffer back to the host: submits everything recorded, then waits for it.
    pub fn read(&self, buf: &GpuBuffer) -> Result<Vec<f32>, GpuError> {
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = 4 * buf.len() as u64;
        let staging = self.record_readback(buf);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| GpuError::Readback(format!("map callback never ran: {e}")))?
            .map_err(|e| GpuError::Readback(format!("mapping {bytes} bytes: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(format!("mapped range: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}
