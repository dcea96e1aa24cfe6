//! [`GpuContext`]: the wgpu device and queue, the adapter's description and limits, and the
//! parts every kernel shares: the pipeline cache (pipeline.rs), the buffer cache (buffer.rs)
//! and the recorder (record.rs). This is the only `impl GpuContext`; it delegates to those
//! three, which know nothing of it.

use crate::buffer::{BufferCache, GpuBuffer};
use crate::error::GpuError;
use crate::pipeline::PipelineCache;
use crate::record::{bind_group, grid, Kernel, Recorder, WORKGROUP};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use wgpu::util::DeviceExt;

/// One GPU: open it once and pass `&GpuContext` to every kernel.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: wgpu::AdapterInfo,
    /// The limits the device was opened with: the adapter's own, not WebGPU's defaults, so
    /// that buffers up to the hardware's binding limit work.
    limits: wgpu::Limits,
    pipelines: PipelineCache,
    buffers: BufferCache,
    /// The largest buffer a shader may bind, in bytes (see [`GpuContext::binding_limit`]).
    binding_limit: u64,
    /// The open command encoder every kernel records into (record.rs).
    recorder: Mutex<Recorder>,
    /// A one-element zero buffer bound where a kernel's optional input is absent (a GEMM
    /// without bias, an update without a guard): wgpu needs every binding filled.
    zero: GpuBuffer,
    /// The most memory a kernel's scratch buffer (conv2d's im2col matrix) may take.
    scratch_budget: AtomicU64,
}

/// Default for [`GpuContext::scratch_budget`]: large enough that a conv chunk is a big GEMM
/// (hundreds of workgroups), small enough not to crowd out activations.
pub const DEFAULT_SCRATCH_BYTES: u64 = 32 << 20;

impl GpuContext {
    /// Open the best adapter of any backend (Vulkan, Metal, DX12, GL), preferring a
    /// high-performance one, with the adapter's own limits.
    pub fn new() -> Result<Self, GpuError> {
        Self::with_binding_limit(u64::MAX)
    }

    /// Like [`GpuContext::new`], but refusing buffers larger than `max_bytes` even where the
    /// adapter allows them (tests use this to reach the `TooLarge` error cheaply).
    pub fn with_binding_limit(max_bytes: u64) -> Result<Self, GpuError> {
        pollster::block_on(Self::open(max_bytes))
    }

    async fn open(max_bytes: u64) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|_| GpuError::NoAdapter)?;
        let adapter_info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("scratchnet"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                GpuError::Device(format!("{} refused a device: {e}", adapter_info.name))
            })?;
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(max_bytes);
        // wgpu zero-initialises new buffers, and nothing ever writes this one.
        let zero = GpuBuffer::new(&device, 1);
        Ok(GpuContext {
            zero,
            scratch_budget: AtomicU64::new(DEFAULT_SCRATCH_BYTES),
            recorder: Mutex::default(),
            device,
            queue,
            adapter_info,
            limits,
            pipelines: PipelineCache::default(),
            buffers: BufferCache::default(),
            binding_limit,
        })
    }

    // ---- the adapter -------------------------------------------------------------------

    /// One line for logs: adapter name, backend and device type.
    pub fn describe(&self) -> String {
        let i = &self.adapter_info;
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
    }

    /// The adapter's name, vendor, backend and device type.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter_info
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// False for software rasterisers such as Mesa lavapipe (device type `Cpu`).
    pub fn is_hardware(&self) -> bool {
        self.adapter_info.device_type != wgpu::DeviceType::Cpu
    }

    /// The largest buffer, in bytes, that one shader binding may see.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// The most bytes a scratch buffer may take (never more than the binding limit).
    pub fn scratch_budget(&self) -> u64 {
        self.scratch_budget
            .load(Ordering::Relaxed)
            .min(self.binding_limit)
    }

    /// Change [`GpuContext::scratch_budget`] (tests use a tiny one to exercise chunking).
    pub fn set_scratch_budget(&self, bytes: u64) {
        self.scratch_budget.store(bytes, Ordering::Relaxed);
    }

    // ---- buffers -----------------------------------------------------------------------

    /// A buffer of `len` f32 with unspecified contents: a cached one of the same size if there
    /// is one, else a new one. `what` names the tensor in the `TooLarge` error.
    pub fn alloc(&self, len: usize, what: &str) -> Result<GpuBuffer, GpuError> {
        let bytes = crate::buffer::byte_size(len);
        let limit = self.binding_limit();
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: format!("{what} ({len} f32)"),
                bytes,
                limit,
            });
        }
        Ok(self.buffers.take(&self.device, len))
    }

    /// Give a buffer back to the cache for reuse by the next request of the same size.
    ///
    /// Safe at any time, even while recorded work still uses it: every later use is recorded
    /// after that work and runs after it (record.rs).
    pub fn release(&self, buf: GpuBuffer) {
        self.buffers.give(buf);
    }

    /// Bytes of GPU memory the buffer cache holds for reuse.
    pub fn cached_bytes(&self) -> u64 {
        self.buffers.cached_bytes()
    }

    /// Give every cached buffer back to the driver.
    pub fn trim_cache(&self) {
        self.buffers.trim();
    }

    /// A one-element buffer holding 0, bound where an optional input is absent. Read-only:
    /// no kernel may be given it as an output.
    pub fn zero(&self) -> &GpuBuffer {
        &self.zero
    }

    /// Copy host data into a new (or cached) GPU buffer (recorded).
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
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut rec = self.recorder.lock().unwrap();
            rec.copy(&self.device, (buf.raw(), 0), (&staging, 0), buf.len());
            rec.submit(&self.queue);
        }
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

    // ---- recording (record.rs) ---------------------------------------------------------

    /// Record one dispatch of `kernel` over `groups` workgroups, with `params` as its uniform
    /// (binding 0) and `buffers` as bindings 1, 2, ...
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        kernel: Kernel,
        params: &P,
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) -> Result<(), GpuError> {
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self
            .pipelines
            .get(&self.device, kernel.shader, kernel.entry)?;
        let bind = bind_group(&self.device, &pipeline, kernel.entry, params, buffers);
        let mut rec = self.recorder.lock().unwrap();
        rec.dispatch(&self.device, &pipeline, &bind, groups);
        Ok(())
    }

    /// Record `kernel` over `threads` invocations of a one-dimensional kernel with
    /// [`WORKGROUP`] threads per group (the shader recovers the flat thread index with the
    /// prelude's `flat`).
    pub fn dispatch_threads<P: bytemuck::Pod>(
        &self,
        kernel: Kernel,
        params: &P,
        buffers: &[&GpuBuffer],
        threads: usize,
    ) -> Result<(), GpuError> {
        if threads == 0 {
            return Ok(());
        }
        let groups = grid((threads as u64).div_ceil(WORKGROUP as u64))?;
        self.dispatch(kernel, params, buffers, groups)
    }

    /// Record a fill of the first `len` elements of `buf` with zeros.
    pub fn record_clear(&self, buf: &GpuBuffer, len: usize) {
        if len == 0 {
            return;
        }
        self.recorder.lock().unwrap().clear(&self.device, buf, len);
    }

    /// Record a copy of `len` elements from `src[src_at..]` to `dst[dst_at..]`.
    pub fn record_copy(
        &self,
        src: &GpuBuffer,
        src_at: usize,
        dst: &GpuBuffer,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        if src_at + len > src.len() || dst_at + len > dst.len() {
            return Err(GpuError::Shape(format!(
                "copy of {len} elements from {src_at} of {} to {dst_at} of {}",
                src.len(),
                dst.len()
            )));
        }
        if len == 0 {
            return Ok(());
        }
        let mut rec = self.recorder.lock().unwrap();
        rec.copy(&self.device, (src.raw(), src_at), (dst.raw(), dst_at), len);
        Ok(())
    }

    /// Record an upload of `data` into `dst` (from a staging buffer filled at creation, so
    /// it is ordered with the other recorded commands).
    pub fn record_write(&self, dst: &GpuBuffer, data: &[f32]) -> Result<(), GpuError> {
        if data.len() > dst.len() {
            return Err(GpuError::Shape(format!(
                "upload of {} elements into a buffer of {}",
                data.len(),
                dst.len()
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        let staging = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("upload"),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        let mut rec = self.recorder.lock().unwrap();
        rec.copy(&self.device, (&staging, 0), (dst.raw(), 0), data.len());
        Ok(())
    }

    /// Submit everything recorded so far (a no-op when nothing is). Does not wait.
    pub fn flush(&self) {
        self.recorder.lock().unwrap().submit(&self.queue);
    }

    /// Commands recorded and not yet submitted.
    pub fn pending(&self) -> usize {
        self.recorder.lock().unwrap().pending()
    }

    /// Submit what is recorded and block until every command has finished.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Device(format!("waiting for the GPU: {e}")))
    }
}
