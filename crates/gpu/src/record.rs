//! Recording: every kernel, clear, upload and copy goes into one open command encoder, which
//! is submitted only when the host needs a result (a readback) or calls [`GpuContext::flush`].
//!
//! Why: on lavapipe one submit costs 0.25-0.6 ms and one dispatch inside a compute pass
//! 20-75 us, and on a real GPU every submit is a round trip through the driver. A training step
//! is ~100 dispatches, so recording them all and submitting once per step (or less) keeps the
//! GPU fed instead of waiting on the host.
//!
//! Ordering is the recording order, for everything: uploads are copies recorded into the same
//! encoder (from a staging buffer filled at creation), never `queue.write_buffer` (which would
//! land before the whole pending encoder runs). So a buffer may go back to the pool and be
//! reused at once, even while the encoder that last used it is still open: later commands are
//! ordered after earlier ones, and wgpu inserts the barriers between dispatches.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use wgpu::util::DeviceExt;

/// One compute kernel: an entry point of a WGSL file.
///
/// Convention for every kernel in `shaders/`: binding 0 is a uniform holding the sizes
/// (`params`), bindings 1.. are the storage buffers in the order the Rust wrapper passes them.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
}

/// Threads per workgroup of the one-dimensional kernels (elementwise ops, reductions by row).
/// 256 is a multiple of every vendor's SIMD width (32 NVIDIA, 64 AMD, 8-16 on CPUs).
pub const WORKGROUP: u32 = 256;

/// Workgroups per dispatch dimension that every wgpu backend accepts.
pub const MAX_GROUPS_PER_DIM: u64 = 65_535;

/// The workgroup grid for `groups` workgroups: at most 65,535 along x, the rest along y. The
/// shader turns `(x, y)` back into a flat index as `x + y * num_workgroups.x`.
pub fn grid(groups: u64) -> Result<[u32; 3], GpuError> {
    let x = groups.clamp(1, MAX_GROUPS_PER_DIM);
    let y = groups.div_ceil(MAX_GROUPS_PER_DIM).max(1);
    if y > MAX_GROUPS_PER_DIM {
        return Err(GpuError::Shape(format!(
            "{groups} workgroups do not fit one dispatch"
        )));
    }
    Ok([x as u32, y as u32, 1])
}

/// The open encoder and, inside it, the open compute pass (kept open across dispatches: a
/// pass per dispatch would cost a begin and an end each).
#[derive(Default)]
pub(crate) struct Recorder {
    // Field order matters: the pass must drop before the encoder it was begun on.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Commands recorded since the last submit.
    pub(crate) pending: usize,
}

impl Recorder {
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            })
        })
    }

    fn pass(&mut self, device: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let pass = self
                .encoder(device)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("kernels"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        self.pass.as_mut().expect("just opened")
    }
}

impl GpuContext {
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
        // Uniform buffers are bound in multiples of 16 bytes.
        let mut bytes = bytemuck::bytes_of(params).to_vec();
        bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(kernel.entry),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.buffer.as_entire_binding(),
            });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut rec = self.recorder.lock().unwrap();
        rec.pending += 1;
        let pass = rec.pass(&self.device);
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        Ok(())
    }

    /// Record `kernel` over `threads` invocations of a one-dimensional kernel with
    /// [`WORKGROUP`] threads per group (the shader recovers the flat thread index as
    /// `gid.x + gid.y * num_workgroups.x * WORKGROUP`).
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
        let mut rec = self.recorder.lock().unwrap();
        rec.pending += 1;
        rec.encoder(&self.device)
            .clear_buffer(&buf.buffer, 0, Some(4 * len as u64));
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
        rec.pending += 1;
        rec.encoder(&self.device).copy_buffer_to_buffer(
            &src.buffer,
            4 * src_at as u64,
            &dst.buffer,
            4 * dst_at as u64,
            4 * len as u64,
        );
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
        rec.pending += 1;
        rec.encoder(&self.device).copy_buffer_to_buffer(
            &staging,
            0,
            &dst.buffer,
            0,
            4 * data.len() as u64,
        );
        Ok(())
    }

    /// Submit everything recorded so far (a no-op when nothing is). Does not wait.
    pub fn flush(&self) {
        let mut rec = self.recorder.lock().unwrap();
        rec.pass = None;
        if let Some(enc) = rec.encoder.take() {
            rec.pending = 0;
            // Submit while still holding the lock: another thread's encoder, recorded after
            // this one, must not reach the queue first (it may reuse a buffer this one
            // released, and then run before the work that read it).
            self.queue.submit([enc.finish()]);
        }
    }

    /// Commands recorded and not yet submitted.
    pub fn pending(&self) -> usize {
        self.recorder.lock().unwrap().pending
    }

    /// Record a copy of `buf` into a mappable staging buffer, submit, wait, and return it.
    pub(crate) fn record_readback(&self, buf: &GpuBuffer) -> wgpu::Buffer {
        let bytes = 4 * buf.len() as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut rec = self.recorder.lock().unwrap();
            rec.encoder(&self.device)
                .copy_buffer_to_buffer(&buf.buffer, 0, &staging, 0, bytes);
        }
        self.flush();
        staging
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_spills_into_y_past_the_per_dimension_limit() {
        assert_eq!(grid(1).unwrap(), [1, 1, 1]);
        assert_eq!(grid(65_535).unwrap(), [65_535, 1, 1]);
        assert_eq!(grid(65_536).unwrap(), [65_535, 2, 1]);
        assert!(grid(65_535 * 65_535 + 1).is_err());
    }
}
