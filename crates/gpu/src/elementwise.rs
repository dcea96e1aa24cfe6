//! Elementwise kernels and small reductions on the GPU (`shaders/elementwise.wgsl`): bias add
//! and gradient, ReLU forward and backward, and the vector helpers of a training step (add,
//! add-assign, axpy, scale, sum of squares).
//!
//! Each function has the name and argument order of its CPU twin in `cpu::bias` / `cpu::relu`
//! (with `ctx` first and GPU buffers for slices) and is recorded into the context's open
//! encoder: it runs at the next readback or [`GpuContext::flush`]. Lengths are checked up front
//! and a mismatch is a [`GpuError::Shape`], never a panic; zero-length inputs record nothing.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::{grid, Kernel};

/// The WGSL source of the elementwise family.
pub const SHADER: Shader = Shader {
    name: "elementwise",
    source: include_str!("../../../shaders/elementwise.wgsl"),
    trusted: false,
};

/// Elements one workgroup of `sum_squares_blocks` reduces (`BLOCK` in the shader).
const SUM_BLOCK: usize = 4096;

/// The uniform of every kernel in the file (`Params` in elementwise.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    w: u32,
    at: u32,
    alpha: f32,
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// `n` as the shader's u32 element count, or a shape error past u32 indexing.
pub(crate) fn count(n: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(n).map_err(|_| GpuError::Shape(format!("{what}: {n} elements exceed u32")))
}

/// Fails unless `buf` holds exactly `n` elements.
pub(crate) fn same_len(buf: &GpuBuffer, n: usize, what: &str) -> Result<(), GpuError> {
    if buf.len() != n {
        return Err(GpuError::Shape(format!(
            "{what}: {} elements where {n} are expected",
            buf.len()
        )));
    }
    Ok(())
}

/// Fails when the output `out` is one of `inputs`: wgpu rejects a dispatch that binds one
/// buffer both as read-only and as read-write storage.
pub(crate) fn distinct(out: &GpuBuffer, inputs: &[&GpuBuffer], what: &str) -> Result<(), GpuError> {
    if inputs.iter().any(|b| b.same_buffer(out)) {
        return Err(GpuError::Shape(format!(
            "{what}: the output must be a different buffer from the inputs"
        )));
    }
    Ok(())
}

/// Record a one-thread-per-element kernel over `n` elements.
fn elementwise(
    ctx: &GpuContext,
    entry: &'static str,
    n: usize,
    alpha: f32,
    buffers: &[&GpuBuffer],
) -> Result<(), GpuError> {
    let params = Params {
        n: count(n, entry)?,
        alpha,
        ..Params::default()
    };
    ctx.dispatch_threads(kernel(entry), &params, buffers, n)
}

/// `y[r * c + j] += bias[j]` in place, `c = bias.len()` (as `cpu::bias::bias_add`).
///
/// `bias` must not be empty and `y.len()` must be a multiple of it.
pub fn bias_add(ctx: &GpuContext, y: &GpuBuffer, bias: &GpuBuffer) -> Result<(), GpuError> {
    let c = bias.len();
    if c == 0 || !y.len().is_multiple_of(c) {
        return Err(GpuError::Shape(format!(
            "bias_add: y holds {} elements, not a multiple of the {c} biases",
            y.len()
        )));
    }
    distinct(y, &[bias], "bias_add")?;
    if y.is_empty() {
        return Ok(());
    }
    let params = Params {
        n: count(y.len(), "bias_add")?,
        c: c as u32,
        ..Params::default()
    };
    ctx.dispatch_threads(kernel("bias_add"), &params, &[y, bias], y.len())
}

/// `db[j] = sum_r dy[r * c + j]` over the rows of the row-major `rows x c` matrix `dy`,
/// overwriting `db` (as `cpu::bias::bias_grad`; zero rows give zeros).
///
/// Deterministic: each workgroup sums a tile of up to 64 columns with a fixed split of the rows
/// between its threads and a fixed tree (see the shader), in `f32`.
pub fn bias_grad(
    ctx: &GpuContext,
    dy: &GpuBuffer,
    c: usize,
    db: &GpuBuffer,
) -> Result<(), GpuError> {
    if c == 0 || db.len() != c || !dy.len().is_multiple_of(c) {
        return Err(GpuError::Shape(format!(
            "bias_grad: dy holds {} elements and db {} for {c} columns",
            dy.len(),
            db.len()
        )));
    }
    distinct(db, &[dy], "bias_grad")?;
    if dy.is_empty() {
        ctx.record_clear(db, c);
        return Ok(());
    }
    let w = c.next_power_of_two().min(64);
    let params = Params {
        n: count(dy.len(), "bias_grad")?,
        c: c as u32,
        w: w as u32,
        ..Params::default()
    };
    let groups = grid(c.div_ceil(w) as u64)?;
    ctx.dispatch(kernel("bias_grad"), &params, &[dy, db], groups)
}

/// `y[i] = max(x[i], 0)`, with `-0.0` and NaN giving `+0.0` (as `cpu::relu::relu_forward`).
pub fn relu_forward(ctx: &GpuContext, x: &GpuBuffer, y: &GpuBuffer) -> Result<(), GpuError> {
    same_len(y, x.len(), "relu_forward: y")?;
    distinct(y, &[x], "relu_forward")?;
    elementwise(ctx, "relu_forward", x.len(), 0.0, &[x, y])
}

/// `y[i] = max(y[i], 0)` in place (as `cpu::relu::relu_forward_inplace`).
pub fn relu_forward_inplace(ctx: &GpuContext, y: &GpuBuffer) -> Result<(), GpuError> {
    elementwise(ctx, "relu_forward_inplace", y.len(), 0.0, &[y])
}

/// `dx[i] = dy[i]` where the forward output `y[i] > 0`, else 0, overwriting `dx` (as
/// `cpu::relu::relu_backward`).
pub fn relu_backward(
    ctx: &GpuContext,
    y: &GpuBuffer,
    dy: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    same_len(dy, y.len(), "relu_backward: dy")?;
    same_len(dx, y.len(), "relu_backward: dx")?;
    distinct(dx, &[y, dy], "relu_backward")?;
    elementwise(ctx, "relu_backward", y.len(), 0.0, &[y, dy, dx])
}

/// `y[i] = a[i] + b[i]`; `y` must be a third buffer (not `a` or `b`: use [`add_assign`]).
pub fn add(ctx: &GpuContext, a: &GpuBuffer, b: &GpuBuffer, y: &GpuBuffer) -> Result<(), GpuError> {
    same_len(b, a.len(), "add: b")?;
    same_len(y, a.len(), "add: y")?;
    distinct(y, &[a, b], "add")?;
    elementwise(ctx, "add", a.len(), 0.0, &[a, b, y])
}

/// `y[i] += a[i]` in place.
pub fn add_assign(ctx: &GpuContext, y: &GpuBuffer, a: &GpuBuffer) -> Result<(), GpuError> {
    same_len(a, y.len(), "add_assign: a")?;
    distinct(y, &[a], "add_assign")?;
    elementwise(ctx, "add_assign", y.len(), 0.0, &[y, a])
}

/// `y[i] += alpha * x[i]` in place (BLAS axpy; the L2 term of a gradient).
pub fn axpy(ctx: &GpuContext, alpha: f32, x: &GpuBuffer, y: &GpuBuffer) -> Result<(), GpuError> {
    same_len(y, x.len(), "axpy: y")?;
    distinct(y, &[x], "axpy")?;
    elementwise(ctx, "axpy", x.len(), alpha, &[x, y])
}

/// `y[i] = alpha * x[i]`; `y` must not be `x`.
pub fn scale(ctx: &GpuContext, alpha: f32, x: &GpuBuffer, y: &GpuBuffer) -> Result<(), GpuError> {
    same_len(y, x.len(), "scale: y")?;
    distinct(y, &[x], "scale")?;
    elementwise(ctx, "scale", x.len(), alpha, &[x, y])
}

/// `out[at] = sum_i x[i]^2` (overwrites that one element; the rest of `out` is untouched).
///
/// Deterministic, in `f32`: blocks of 4096 elements are each reduced by one workgroup in a fixed
/// tree, then one workgroup adds the block sums the same way (inputs of at most 4096 elements
/// go straight to the second pass). An empty `x` writes 0.
pub fn sum_squares(
    ctx: &GpuContext,
    x: &GpuBuffer,
    out: &GpuBuffer,
    at: usize,
) -> Result<(), GpuError> {
    if at >= out.len() {
        return Err(GpuError::Shape(format!(
            "sum_squares: element {at} of a buffer of {}",
            out.len()
        )));
    }
    distinct(out, &[x], "sum_squares")?;
    let n = count(x.len(), "sum_squares")?;
    let last = |input: &GpuBuffer, n: u32, square: bool| {
        let params = Params {
            n,
            w: square as u32,
            at: at as u32,
            ..Params::default()
        };
        ctx.dispatch(kernel("sum_one_group"), &params, &[input, out], [1, 1, 1])
    };
    if x.len() <= SUM_BLOCK {
        // An empty x still binds a (1-element) buffer; the kernel reads none of it.
        return last(x, n, true);
    }
    let blocks = x.len().div_ceil(SUM_BLOCK);
    let partials = ctx.alloc(blocks, "sum_squares partials")?;
    let params = Params {
        n,
        ..Params::default()
    };
    let result = ctx
        .dispatch(
            kernel("sum_squares_blocks"),
            &params,
            &[x, &partials],
            grid(blocks as u64)?,
        )
        .and_then(|()| last(&partials, blocks as u32, false));
    // Safe while the recorded passes still use it: later uses are ordered after them.
    ctx.release(partials);
    result
}

crate::uniform_matches!(SHADER, "Params", Params { n, c, w, at, alpha });
