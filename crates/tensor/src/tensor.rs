//! [`Tensor`]: a shape and reference-counted storage on a [`Device`].

use std::sync::Arc;

#[cfg(feature = "gpu")]
use gpu::{GpuBuffer, GpuContext};

use crate::{buffer_cache, Result, Shape, TensorError};

/// Where a tensor's storage lives and so which kernels run on it.
///
/// `Gpu` holds the context (device, queue, caches) its buffers belong to; two GPU devices are
/// equal when they are the same context. Only a build with the `gpu` feature (the default)
/// has it.
#[derive(Clone)]
pub enum Device {
    Cpu,
    #[cfg(feature = "gpu")]
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// Open the best GPU adapter (see [`GpuContext::new`]).
    #[cfg(feature = "gpu")]
    pub fn gpu() -> Result<Device> {
        Ok(Device::Gpu(Arc::new(GpuContext::new()?)))
    }

    /// A build without the `gpu` feature has no GPU backend: always an error saying so.
    #[cfg(not(feature = "gpu"))]
    pub fn gpu() -> Result<Device> {
        Err(TensorError::Gpu(
            "this build has no GPU support (built without the `gpu` feature)".into(),
        ))
    }

    pub fn is_gpu(&self) -> bool {
        match self {
            Device::Cpu => false,
            #[cfg(feature = "gpu")]
            Device::Gpu(_) => true,
        }
    }

    /// One line for logs: `cpu`, or `gpu: <adapter> (<backend>, <type>)`.
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => format!("gpu: {}", ctx.describe()),
        }
    }

    /// Submit the GPU work recorded so far (a no-op on the CPU). Readbacks do this themselves.
    pub fn flush(&self) {
        #[cfg(feature = "gpu")]
        if let Device::Gpu(ctx) = self {
            ctx.flush();
        }
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            #[cfg(feature = "gpu")]
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "gpu")]
            _ => false,
        }
    }
}

impl Eq for Device {}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            #[cfg(feature = "gpu")]
            Device::Gpu(_) => f.write_str("gpu"),
        }
    }
}

/// Host memory from the buffer cache; returns itself to the cache when the last tensor using it drops.
#[derive(Debug)]
pub(crate) struct CpuBuffer(Vec<f32>);

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        buffer_cache::give(std::mem::take(&mut self.0));
    }
}

impl Clone for CpuBuffer {
    fn clone(&self) -> Self {
        let mut v = buffer_cache::take(self.0.len());
        v.copy_from_slice(&self.0);
        CpuBuffer(v)
    }
}

/// A GPU buffer from the context's buffer cache; goes back to it when the last tensor using it
/// drops (safe even while recorded work still reads it: see gpu/src/record.rs).
#[cfg(feature = "gpu")]
pub(crate) struct GpuStorage {
    ctx: Arc<GpuContext>,
    buf: Option<GpuBuffer>,
}

#[cfg(feature = "gpu")]
impl GpuStorage {
    fn buf(&self) -> &GpuBuffer {
        self.buf.as_ref().expect("present until drop")
    }
}

#[cfg(feature = "gpu")]
impl Drop for GpuStorage {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.ctx.release(b);
        }
    }
}

#[cfg(feature = "gpu")]
impl Clone for GpuStorage {
    /// A recorded device-to-device copy. Allocation cannot exceed the binding limit (the
    /// source has the same size), so failing here would mean a lost device.
    fn clone(&self) -> Self {
        let src = self.buf();
        let dst = self
            .ctx
            .alloc(src.len(), "tensor copy")
            .expect("a buffer the size of an existing one");
        self.ctx
            .record_copy(src, 0, &dst, 0, src.len())
            .expect("same sizes");
        GpuStorage {
            ctx: Arc::clone(&self.ctx),
            buf: Some(dst),
        }
    }
}

#[cfg(feature = "gpu")]
impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuStorage({} f32)", self.buf().len())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Storage {
    Cpu(CpuBuffer),
    #[cfg(feature = "gpu")]
    Gpu(GpuStorage),
}

/// An f32 tensor. Cloning shares the storage; writing through [`Tensor::data_mut`] copies it
/// first if it is shared (copy-on-write), so a clone is never changed behind its back.
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Shape,
    storage: Arc<Storage>,
}

impl Tensor {
    /// A tensor owning `data`; its length must match the shape.
    pub fn from_vec(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(TensorError::shape(
                "from_vec",
                format!(
                    "shape {shape} needs {} values, got {}",
                    shape.numel(),
                    data.len()
                ),
            ));
        }
        Ok(Tensor {
            shape,
            storage: Arc::new(Storage::Cpu(CpuBuffer(data))),
        })
    }

    /// A tensor holding a copy of `data`, in a buffer from the buffer cache (no allocation once warm).
    pub fn from_slice(shape: impl Into<Shape>, data: &[f32]) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(TensorError::shape(
                "from_slice",
                format!(
                    "shape {shape} needs {} values, got {}",
                    shape.numel(),
                    data.len()
                ),
            ));
        }
        let mut t = Self::uninit(shape);
        t.data_mut().copy_from_slice(data);
        Ok(t)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Tensor {
        Self::full(shape, 0.0)
    }

    /// A tensor with every element `value`.
    pub fn full(shape: impl Into<Shape>, value: f32) -> Tensor {
        let mut t = Self::uninit(shape);
        t.data_mut().fill(value);
        t
    }

    /// A scalar (rank 0).
    pub fn scalar(value: f32) -> Tensor {
        Self::full(Shape::new(vec![]), value)
    }

    /// A tensor of zeros on `device`.
    pub fn zeros_on(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        match device {
            Device::Cpu => Ok(Self::zeros(shape)),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => {
                let t = Self::uninit_on(shape, device)?;
                ctx.record_clear(t.gpu_buf(), t.numel());
                Ok(t)
            }
        }
    }

    /// A tensor with unspecified contents on `device`, from that device's buffer cache. For kernels
    /// that overwrite every element. Fails only when a GPU buffer would pass the binding limit.
    pub(crate) fn uninit_on(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        match device {
            Device::Cpu => Ok(Self::uninit(shape)),
            #[cfg(feature = "gpu")]
            Device::Gpu(ctx) => {
                let shape = shape.into();
                let buf = ctx.alloc(shape.numel(), &format!("a tensor of shape {shape}"))?;
                Ok(Tensor {
                    shape,
                    storage: Arc::new(Storage::Gpu(GpuStorage {
                        ctx: Arc::clone(ctx),
                        buf: Some(buf),
                    })),
                })
            }
        }
    }

    /// This tensor on `device`: an upload, a readback, or a cheap clone when already there.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        match (&*self.storage, device) {
            (Storage::Cpu(_), Device::Cpu) => Ok(self.clone()),
            #[cfg(feature = "gpu")]
            (Storage::Gpu(g), Device::Gpu(ctx)) if Arc::ptr_eq(&g.ctx, ctx) => Ok(self.clone()),
            #[cfg(feature = "gpu")]
            (_, Device::Cpu) => Tensor::from_vec(self.shape.clone(), self.try_to_vec()?),
            #[cfg(feature = "gpu")]
            (_, Device::Gpu(ctx)) => {
                let host = self.try_to_vec()?;
                let t = Self::uninit_on(self.shape.clone(), device)?;
                ctx.record_write(t.gpu_buf(), &host)?;
                Ok(t)
            }
        }
    }

    /// A CPU tensor with unspecified contents, from the buffer cache. For kernels that
    /// overwrite every element.
    pub(crate) fn uninit(shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        let v = buffer_cache::take(shape.numel());
        Tensor {
            shape,
            storage: Arc::new(Storage::Cpu(CpuBuffer(v))),
        }
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    pub fn device(&self) -> Device {
        match &*self.storage {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "gpu")]
            Storage::Gpu(g) => Device::Gpu(Arc::clone(&g.ctx)),
        }
    }

    pub fn is_gpu(&self) -> bool {
        match &*self.storage {
            Storage::Cpu(_) => false,
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => true,
        }
    }

    /// The elements, row-major, borrowed from host memory.
    ///
    /// # Panics
    /// On a GPU tensor, whose elements are not in host memory: use [`Tensor::to_vec`] or
    /// [`Tensor::to_device`]. Ops never call this before checking the device.
    pub fn as_slice(&self) -> &[f32] {
        match &*self.storage {
            Storage::Cpu(b) => &b.0,
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => panic!("as_slice on a GPU tensor: read it with to_vec"),
        }
    }

    /// The elements as a new `Vec`; on the GPU a readback (which submits the recorded work
    /// and waits for it).
    pub fn try_to_vec(&self) -> Result<Vec<f32>> {
        match &*self.storage {
            Storage::Cpu(b) => Ok(b.0.clone()),
            #[cfg(feature = "gpu")]
            Storage::Gpu(g) => Ok(g.ctx.read(g.buf())?),
        }
    }

    /// [`Tensor::try_to_vec`] for callers that cannot recover from a lost GPU anyway.
    ///
    /// # Panics
    /// When a GPU readback fails (the device was lost).
    pub fn to_vec(&self) -> Vec<f32> {
        self.try_to_vec()
            .unwrap_or_else(|e| panic!("reading a GPU tensor back: {e}"))
    }

    /// The GPU buffer of a GPU tensor (ops call this after checking the device).
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_buf(&self) -> &GpuBuffer {
        match &*self.storage {
            Storage::Gpu(g) => g.buf(),
            Storage::Cpu(_) => panic!("gpu_buf on a CPU tensor"),
        }
    }

    /// The GPU buffer of a GPU tensor, copied first if another tensor shares it, for kernels
    /// that update it in place.
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_buf_mut(&mut self) -> &GpuBuffer {
        match Arc::make_mut(&mut self.storage) {
            Storage::Gpu(g) => g.buf(),
            Storage::Cpu(_) => panic!("gpu_buf_mut on a CPU tensor"),
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(TensorError::shape(
                "item",
                format!("needs one element, tensor has shape {}", self.shape),
            ));
        }
        Ok(self.try_to_vec()?[0])
    }

    /// Mutable access to the elements; copies the storage first if another tensor shares it.
    ///
    /// # Panics
    /// On a GPU tensor (see [`Tensor::as_slice`]).
    /// Whether another tensor shares this one's storage (so [`Tensor::data_mut`] would copy
    /// it first).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.storage) > 1 || Arc::weak_count(&self.storage) > 0
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        match Arc::make_mut(&mut self.storage) {
            Storage::Cpu(b) => &mut b.0,
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => panic!("data_mut on a GPU tensor"),
        }
    }

    /// The same storage seen with another shape of the same number of elements (no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(TensorError::shape(
                "reshape",
                format!("cannot view {} as {shape}", self.shape),
            ));
        }
        Ok(Tensor {
            shape,
            storage: Arc::clone(&self.storage),
        })
    }

    /// Fails unless this tensor has exactly `want` dimensions.
    pub(crate) fn expect_rank(&self, op: &'static str, what: &str, want: usize) -> Result<()> {
        if self.shape.rank() != want {
            return Err(TensorError::shape(
                op,
                format!("{what} must have rank {want}, got shape {}", self.shape),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_is_copy_on_write() {
        let a = Tensor::from_vec([2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(!a.is_shared());
        let mut b = a.clone();
        assert!(a.is_shared() && b.is_shared());
        b.data_mut()[0] = 9.0;
        assert!(
            !a.is_shared() && !b.is_shared(),
            "the write gave b its own copy"
        );
        assert_eq!(a.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(b.as_slice(), &[9.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn wrong_length_and_reshape_are_errors() {
        assert!(Tensor::from_vec([2, 3], vec![0.0; 5]).is_err());
        let t = Tensor::zeros([2, 3]);
        assert_eq!(t.reshape([3, 2]).unwrap().dims(), &[3, 2]);
        let err = t.reshape([4, 2]).unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[4, 2]"), "{err}");
        assert!(Tensor::scalar(3.0).item().unwrap() == 3.0);
        assert!(t.item().is_err());
    }
}
