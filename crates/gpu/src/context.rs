//! The wgpu device and queue, with the adapter's description, its limits, and the caches
//! (pipelines, buffers) that every kernel shares.

use crate::buffer::BufferPool;
use crate::error::GpuError;
use crate::pipeline::PipelineCache;
use crate::record::Recorder;
use crate::GpuBuffer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One GPU: open it once and pass `&GpuContext` to every kernel.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    /// The limits the device was opened with: the adapter's own, not WebGPU's defaults, so
    /// that buffers up to the hardware's binding limit work.
    pub limits: wgpu::Limits,
    pub pipelines: PipelineCache,
    pub pool: BufferPool,
    /// The largest buffer a shader may bind, in bytes (see [`GpuContext::binding_limit`]).
    binding_limit: u64,
    /// The open command encoder every kernel records into (record.rs).
    pub(crate) recorder: Mutex<Recorder>,
    /// A one-element buffer bound where a kernel's optional input is absent (a GEMM without
    /// bias): wgpu needs every binding filled.
    pub dummy: GpuBuffer,
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
        let dummy = GpuBuffer::new(&device, 1);
        Ok(GpuContext {
            dummy,
            scratch_budget: AtomicU64::new(DEFAULT_SCRATCH_BYTES),
            recorder: Mutex::default(),
            device,
            queue,
            adapter_info,
            limits,
            pipelines: PipelineCache::default(),
            pool: BufferPool::default(),
            binding_limit,
        })
    }

    /// One line for logs: adapter name, backend and device type.
    pub fn describe(&self) -> String {
        let i = &self.adapter_info;
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
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

    /// Submit what is recorded and block until every command has finished.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Device(format!("waiting for the GPU: {e}")))
    }
}
