//! GEMM on the GPU: `C = op(A) · op(B)`, the kernels of `shaders/gemm.wgsl` and their dispatch.
//!
//! The math and the strided layout are those of `cpu::gemm` (element `(i, j)` of a view at
//! `i * rs + j * cs`), with `beta = 0`: C is overwritten. The shader file explains each
//! numbered variant; [`GemmVariant::RegisterBlocked`] is meant for real GPUs and
//! [`GemmVariant::LaneColumns`] is the fastest on lavapipe.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::{grid, Kernel};

/// The WGSL source of the GEMM family.
pub const SHADER: Shader = Shader {
    name: "gemm",
    source: include_str!("../../../shaders/gemm.wgsl"),
    trusted: true,
};

/// The GEMM kernels, in order of difficulty (and speed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmVariant {
    /// `gemm_1_naive`: one thread per element of C.
    Naive,
    /// `gemm_2_tiled`: 16x16 tiles of A and B in workgroup memory.
    Tiled,
    /// `gemm_3_register_blocked`: 64x64 tiles, a 4x4 block of C per thread in registers.
    RegisterBlocked,
    /// `gemm_4_register_global`: 32x32 tiles, a 4x4 block per thread read straight from global
    /// memory, no workgroup memory or barriers (faster than kernel 3 on lavapipe).
    RegisterGlobal,
    /// `gemm_5_lane_columns`: 32x64 tiles, each thread 4 rows by 8 columns strided by 8, so
    /// neighbouring threads read neighbouring columns of B (vector loads on lavapipe,
    /// coalesced loads on a GPU); interior tiles skip bounds checks.
    LaneColumns,
}

impl GemmVariant {
    pub const ALL: [GemmVariant; 5] = [
        GemmVariant::Naive,
        GemmVariant::Tiled,
        GemmVariant::RegisterBlocked,
        GemmVariant::RegisterGlobal,
        GemmVariant::LaneColumns,
    ];

    /// The shader entry point.
    pub fn entry_point(self) -> &'static str {
        match self {
            GemmVariant::Naive => "gemm_1_naive",
            GemmVariant::Tiled => "gemm_2_tiled",
            GemmVariant::RegisterBlocked => "gemm_3_register_blocked",
            GemmVariant::RegisterGlobal => "gemm_4_register_global",
            GemmVariant::LaneColumns => "gemm_5_lane_columns",
        }
    }

    /// The variant to use on this adapter: register blocking with workgroup memory on a GPU,
    /// lane-contiguous register blocking on a CPU adapter such as lavapipe, where it measured
    /// 2.3x kernel 4 (see each kernel's comment in gemm.wgsl). Not yet measured on a GPU.
    pub fn best_for(ctx: &GpuContext) -> Self {
        if ctx.is_hardware() {
            GemmVariant::RegisterBlocked
        } else {
            GemmVariant::LaneColumns
        }
    }

    /// Rows and columns of C computed by one workgroup.
    fn tile(self) -> (usize, usize) {
        match self {
            GemmVariant::Naive | GemmVariant::Tiled => (16, 16),
            GemmVariant::RegisterBlocked => (64, 64),
            GemmVariant::RegisterGlobal => (32, 32),
            GemmVariant::LaneColumns => (32, 64),
        }
    }
}

/// The uniform the shader reads its sizes from (`Dims` in gemm.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    k: u32,
    n: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    flags: u32,
}

const ACCUMULATE: u32 = 1;
const BIAS: u32 = 2;
const RELU: u32 = 4;

/// A matrix operand: element `(i, j)` is `buf[offset + i * rs + j * cs]`, as in `cpu::Mat`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub buf: &'a GpuBuffer,
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns at the start of `buf`.
    pub fn row_major(buf: &'a GpuBuffer, cols: usize) -> Self {
        View {
            buf,
            offset: 0,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose (swapped strides; no data moves).
    pub fn t(self) -> Self {
        View {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    /// The same view starting `offset` elements into the buffer.
    pub fn at(self, offset: usize) -> Self {
        View { offset, ..self }
    }
}

/// What happens as each element of C is stored, in this order: add the old value
/// (`accumulate`, i.e. beta = 1), add `bias[j]`, clamp at zero (`relu`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub accumulate: bool,
    pub bias: Option<&'a GpuBuffer>,
    pub relu: bool,
}

fn check_view(v: &View, rows: usize, cols: usize, name: &str) -> Result<(), GpuError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = v.offset + (rows - 1) * v.rs + (cols - 1) * v.cs;
    if last >= v.buf.len() {
        return Err(GpuError::Shape(format!(
            "gemm: {name} is {rows}x{cols} ({} elements) but its buffer holds {}",
            rows * cols,
            v.buf.len()
        )));
    }
    if last > u32::MAX as usize {
        return Err(GpuError::Shape(format!(
            "gemm: {name} reaches element {last}, past u32 indexing"
        )));
    }
    Ok(())
}

/// `C = op(A) · op(B)` for an `m x k` op(A) and a `k x n` op(B), recorded into the context's
/// encoder (it runs at the next readback or [`GpuContext::flush`]).
///
/// `a` holds A row-major (`m x k`), or with `trans_a` its transpose row-major (`k x m`); the
/// same for `b` (`k x n`, or `n x k` with `trans_b`). `c` receives the row-major `m x n` result.
// BLAS's argument list (sizes, operands with their transposes, output) plus the context and
// the variant: the form every GEMM reader knows.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    ctx: &GpuContext,
    v: GemmVariant,
    m: usize,
    k: usize,
    n: usize,
    a: &GpuBuffer,
    trans_a: bool,
    b: &GpuBuffer,
    trans_b: bool,
    c: &GpuBuffer,
) -> Result<(), GpuError> {
    let a = if trans_a {
        View::row_major(a, m).t()
    } else {
        View::row_major(a, k)
    };
    let b = if trans_b {
        View::row_major(b, k).t()
    } else {
        View::row_major(b, n)
    };
    gemm_view(ctx, v, m, k, n, a, b, c, 0, Epilogue::default())
}

/// The general form of [`gemm`]: strided views with offsets for A and B, C row-major at
/// element `c_off` of `c`, and an epilogue.
// BLAS's argument list with views in place of (buffer, transpose) pairs, plus the context,
// the variant and the epilogue.
#[allow(clippy::too_many_arguments)]
pub fn gemm_view(
    ctx: &GpuContext,
    v: GemmVariant,
    m: usize,
    k: usize,
    n: usize,
    a: View,
    b: View,
    c: &GpuBuffer,
    c_off: usize,
    epi: Epilogue,
) -> Result<(), GpuError> {
    check_view(&a, m, k, "A")?;
    check_view(&b, k, n, "B")?;
    check_view(&View::row_major(c, n).at(c_off), m, n, "C")?;
    if let Some(bias) = epi.bias {
        if bias.len() < n {
            return Err(GpuError::Shape(format!(
                "gemm: bias holds {} values for {n} columns",
                bias.len()
            )));
        }
    }
    if c.same_buffer(a.buf) || c.same_buffer(b.buf) {
        return Err(GpuError::Shape(
            "gemm: C must not share a buffer with A or B".into(),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let flags = if epi.accumulate { ACCUMULATE } else { 0 }
        | if epi.bias.is_some() { BIAS } else { 0 }
        | if epi.relu { RELU } else { 0 };
    // With k = 0 the kernels' k loops run no times (C = 0 through the epilogue), but A or B
    // may then be empty buffers, which cannot be bound: bind the context's dummy instead.
    let (a_buf, b_buf) = if k == 0 {
        (ctx.zero(), ctx.zero())
    } else {
        (a.buf, b.buf)
    };
    let dims = Dims {
        m: m as u32,
        k: k as u32,
        n: n as u32,
        a_rs: a.rs as u32,
        a_cs: a.cs as u32,
        b_rs: b.rs as u32,
        b_cs: b.cs as u32,
        a_off: a.offset as u32,
        b_off: b.offset as u32,
        c_off: c_off as u32,
        flags,
    };
    let (tm, tn) = v.tile();
    let groups = grid((m.div_ceil(tm) * n.div_ceil(tn)) as u64)?;
    let bias = epi.bias.unwrap_or(ctx.zero());
    ctx.dispatch(
        Kernel {
            shader: SHADER,
            entry: v.entry_point(),
        },
        &dims,
        &[a_buf, b_buf, c, bias],
        groups,
    )
}

crate::uniform_matches!(
    SHADER,
    "Dims",
    Dims {
        m,
        k,
        n,
        a_rs,
        a_cs,
        b_rs,
        b_cs,
        a_off,
        b_off,
        c_off,
        flags
    }
);
