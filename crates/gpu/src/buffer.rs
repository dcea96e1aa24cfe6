//! f32 storage buffers and the cache that recycles them.
//!
//! A training step allocates the same activation and gradient sizes every time, so freed
//! buffers go to a [`BufferCache`] keyed by their exact byte size and the next request of that
//! size takes one instead of asking the driver for new memory. [`crate::GpuContext`] owns the
//! cache; this file knows nothing of the context.

use std::collections::HashMap;
use std::sync::Mutex;

/// The usages every buffer has: bound as storage by kernels, and a copy source and destination
/// for uploads, clears and readbacks.
const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A flat array of `len` f32 values in GPU memory.
///
/// The wgpu buffer is at least 4 bytes even when `len` is 0 (wgpu cannot bind an empty buffer).
#[derive(Debug)]
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    len: usize,
}

impl GpuBuffer {
    /// A new (uncached) buffer of `len` f32.
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

    /// Whether two handles name the same GPU memory (wgpu refuses a buffer bound twice when one
    /// binding writes it; the cache test checks that memory comes back).
    pub fn same_buffer(&self, other: &GpuBuffer) -> bool {
        self.buffer == other.buffer
    }

    /// The wgpu buffer, for binding and copies (and for tests that check which memory a
    /// buffer got).
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// Byte size of the wgpu buffer that holds `len` f32 values.
pub(crate) fn byte_size(len: usize) -> u64 {
    4 * len.max(1) as u64
}

/// Freed storage buffers, by exact byte size.
#[derive(Default)]
pub struct BufferCache {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl BufferCache {
    /// A buffer of `len` f32: a cached one of the same byte size if there is one, else new.
    pub(crate) fn take(&self, device: &wgpu::Device, len: usize) -> GpuBuffer {
        let cached = (self.free.lock().unwrap())
            .get_mut(&byte_size(len))
            .and_then(Vec::pop);
        match cached {
            Some(buffer) => GpuBuffer { buffer, len },
            None => GpuBuffer::new(device, len),
        }
    }

    /// Keep `buf` for the next request of its size.
    pub(crate) fn give(&self, buf: GpuBuffer) {
        let mut free = self.free.lock().unwrap();
        free.entry(buf.buffer.size()).or_default().push(buf.buffer);
    }

    /// Bytes of GPU memory held for reuse.
    pub fn cached_bytes(&self) -> u64 {
        let free = self.free.lock().unwrap();
        free.iter().map(|(bytes, v)| bytes * v.len() as u64).sum()
    }

    /// Drop every cached buffer, giving its memory back to the driver.
    pub fn trim(&self) {
        self.free.lock().unwrap().clear();
    }
}
