//! Recording: every kernel, clear, upload and copy goes into one open command encoder, which
//! is submitted only when the host needs a result (a readback) or calls
//! [`crate::GpuContext::flush`].
//!
//! Why: on lavapipe one submit costs 0.25-0.6 ms and one dispatch inside a compute pass
//! 20-75 us, and on a real GPU every submit is a round trip through the driver. A training step
//! is ~100 dispatches, so recording them all and submitting once per step (or less) keeps the
//! GPU fed instead of waiting on the host.
//!
//! Ordering is the recording order, for everything: uploads are copies recorded into the same
//! encoder (from a staging buffer filled at creation), never `queue.write_buffer` (which would
//! land before the whole pending encoder runs). So a buffer may go back to the cache and be
//! reused at once, even while the encoder that last used it is still open: later commands are
//! ordered after earlier ones, and wgpu inserts the barriers between dispatches.
//!
//! `Recorder` takes the device and queue as arguments; [`crate::GpuContext`] owns it behind a
//! mutex and is the only caller.

use crate::buffer::GpuBuffer;
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
/// 256 is a multiple of every vendor's SIMD width (32 NVIDIA, 64 AMD, 8-16 on CPUs). The
/// shaders see it as `WORKGROUP` (the prelude, generated from this constant).
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

/// The bind group of one dispatch: `params` as a uniform at binding 0 (padded to the 16 bytes
/// uniforms are bound in), `buffers` at bindings 1, 2, ...
pub(crate) fn bind_group<P: bytemuck::Pod>(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    params: &P,
    buffers: &[&GpuBuffer],
) -> wgpu::BindGroup {
    let mut bytes = bytemuck::bytes_of(params).to_vec();
    bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
    let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
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
            resource: b.raw().as_entire_binding(),
        });
    }
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// The open encoder and, inside it, the open compute pass (kept open across dispatches: a
/// pass per dispatch would cost a begin and an end each).
#[derive(Default)]
pub(crate) struct Recorder {
    // Field order matters: the pass must drop before the encoder it was begun on.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Commands recorded since the last submit.
    pending: usize,
}

impl Recorder {
    /// The open encoder (closing the compute pass, since copies cannot go inside one).
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            })
        })
    }

    /// The open compute pass, begun on the open encoder if there is none.
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

    pub(crate) fn dispatch(
        &mut self,
        device: &wgpu::Device,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        groups: [u32; 3],
    ) {
        self.pending += 1;
        let pass = self.pass(device);
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    pub(crate) fn clear(&mut self, device: &wgpu::Device, buf: &GpuBuffer, len: usize) {
        self.pending += 1;
        self.encoder(device)
            .clear_buffer(buf.raw(), 0, Some(4 * len as u64));
    }

    /// A copy of `len` elements between buffers, in elements (checked by the caller).
    pub(crate) fn copy(
        &mut self,
        device: &wgpu::Device,
        (src, src_at): (&wgpu::Buffer, usize),
        (dst, dst_at): (&wgpu::Buffer, usize),
        len: usize,
    ) {
        self.pending += 1;
        self.encoder(device).copy_buffer_to_buffer(
            src,
            4 * src_at as u64,
            dst,
            4 * dst_at as u64,
            4 * len as u64,
        );
    }

    /// Submit the open encoder, if any. Called with the recorder's lock held, so another
    /// thread's encoder, recorded after this one, cannot reach the queue first (it may reuse a
    /// buffer this one released, and then run before the work that read it).
    pub(crate) fn submit(&mut self, queue: &wgpu::Queue) {
        self.pass = None;
        if let Some(enc) = self.encoder.take() {
            self.pending = 0;
            queue.submit([enc.finish()]);
        }
    }

    /// Commands recorded and not yet submitted.
    pub(crate) fn pending(&self) -> usize {
        self.pending
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
