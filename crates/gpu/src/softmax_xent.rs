//! Softmax cross-entropy and accuracy counting on the GPU (`shaders/softmax_xent.wgsl`), the
//! twins of `cpu::softmax_xent` and `cpu::argmax::count_correct`.
//!
//! Labels live on the GPU as an f32 buffer of class indices (one per row), so a training step
//! never reads back to compute its loss. The scalar results (mean loss, number correct) are
//! written to one element of a caller's buffer, or added to it (`accumulate`), so metrics can
//! be summed over many steps on the GPU and read back now and then. Both are deterministic:
//! per-row values go to a scratch buffer that one workgroup reduces in a fixed order.
//!
//! A label that is not an integer in `[0, classes)` cannot stop a kernel: its row's loss is NaN
//! (so the mean is NaN and the optimisers' loss guard skips the step), it counts as incorrect,
//! and its gradient row has no one-hot term.

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::elementwise::{count, distinct, same_len};
use crate::error::GpuError;
use crate::pipeline::Shader;
use crate::record::Kernel;

/// The WGSL source of the softmax cross-entropy family.
pub const SHADER: Shader = Shader {
    name: "softmax_xent",
    source: include_str!("../../../shaders/softmax_xent.wgsl"),
    trusted: false,
};

/// `Params` in softmax_xent.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    classes: u32,
    at: u32,
    flags: u32,
    factor: f32,
    divisor: f32,
}

const ACCUMULATE: u32 = 1;

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

/// Checks a `rows x classes` matrix, its labels and the scalar output slot.
fn check(
    what: &str,
    matrix: &GpuBuffer,
    labels: &GpuBuffer,
    rows: usize,
    classes: usize,
    out: Option<(&GpuBuffer, usize)>,
) -> Result<(), GpuError> {
    if classes == 0 {
        return Err(GpuError::Shape(format!("{what}: classes is 0")));
    }
    let n = rows
        .checked_mul(classes)
        .ok_or_else(|| GpuError::Shape(format!("{what}: {rows} x {classes} overflows")))?;
    count(n, what)?;
    same_len(matrix, n, &format!("{what}: the {rows} x {classes} matrix"))?;
    same_len(labels, rows, &format!("{what}: labels"))?;
    if let Some((out, at)) = out {
        if at >= out.len() {
            return Err(GpuError::Shape(format!(
                "{what}: output element {at} of a buffer of {}",
                out.len()
            )));
        }
        distinct(out, &[matrix, labels], what)?;
    }
    Ok(())
}

/// Record the one-workgroup reduction `out[at] (= or +=) sum(values[..rows]) / divisor`.
fn reduce_rows(
    ctx: &GpuContext,
    values: &GpuBuffer,
    rows: usize,
    divisor: f32,
    out: &GpuBuffer,
    at: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    let params = Params {
        rows: rows as u32,
        at: at as u32,
        flags: if accumulate { ACCUMULATE } else { 0 },
        divisor,
        ..Params::default()
    };
    ctx.dispatch(kernel("reduce_rows"), &params, &[values, out], [1, 1, 1])
}

/// Softmax cross-entropy forward over a row-major `rows x classes` matrix of `logits` with one
/// f32 class index per row in `labels`: writes `probs` (`rows x classes`) and the MEAN loss over
/// the rows to `loss_out[loss_at]`, or adds it there when `accumulate` (the rest of `loss_out`
/// is untouched). As `cpu::softmax_xent::softmax_xent_forward`, which returns the mean.
///
/// `rows = 0` records nothing (the CPU rejects it; here the loss slot is left as it is).
// The CPU twin's arguments plus the context and where the loss goes (slot, accumulate): a
// struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent_forward(
    ctx: &GpuContext,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
    rows: usize,
    classes: usize,
    probs: &GpuBuffer,
    loss_out: &GpuBuffer,
    loss_at: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    let what = "softmax_xent_forward";
    check(
        what,
        logits,
        labels,
        rows,
        classes,
        Some((loss_out, loss_at)),
    )?;
    same_len(probs, rows * classes, "softmax_xent_forward: probs")?;
    distinct(probs, &[logits, labels, loss_out], what)?;
    if rows == 0 {
        return Ok(());
    }
    let row_loss = ctx.alloc(rows, "per-row losses")?;
    let params = Params {
        rows: rows as u32,
        classes: classes as u32,
        ..Params::default()
    };
    let result = ctx
        .dispatch_threads(
            kernel("softmax_xent_rows"),
            &params,
            &[logits, labels, probs, &row_loss],
            rows,
        )
        .and_then(|()| {
            reduce_rows(
                ctx,
                &row_loss,
                rows,
                rows as f32,
                loss_out,
                loss_at,
                accumulate,
            )
        });
    // Safe while the recorded kernels still use it: later uses are ordered after them.
    ctx.release(row_loss);
    result
}

/// Softmax cross-entropy backward: `dx = (probs - onehot(labels)) * (scale / rows)`, overwriting
/// `dx` (as `cpu::softmax_xent::softmax_xent_backward`, with `scale` the upstream gradient of
/// the mean loss).
pub fn softmax_xent_backward(
    ctx: &GpuContext,
    probs: &GpuBuffer,
    labels: &GpuBuffer,
    rows: usize,
    classes: usize,
    scale: f32,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    let what = "softmax_xent_backward";
    check(what, probs, labels, rows, classes, None)?;
    same_len(dx, rows * classes, "softmax_xent_backward: dx")?;
    distinct(dx, &[probs, labels], what)?;
    if rows == 0 {
        return Ok(());
    }
    let params = Params {
        rows: rows as u32,
        classes: classes as u32,
        // The CPU's fast backward multiplies by this same f32.
        factor: scale / rows as f32,
        ..Params::default()
    };
    ctx.dispatch_threads(
        kernel("softmax_xent_backward"),
        &params,
        &[probs, labels, dx],
        rows * classes,
    )
}

/// The number of rows of the `rows x classes` matrix `logits` whose FIRST largest value is at
/// the row's label (ties go to the lower index, a NaN never wins, as
/// `cpu::argmax::count_correct`), written as an f32 to `out[out_at]`, or added to it when
/// `accumulate`. Exact while the total stays below 2^24.
///
/// `rows = 0` records nothing (the slot is left as it is).
// As softmax_xent_forward: the CPU twin's arguments plus the output slot and accumulate flag.
#[allow(clippy::too_many_arguments)]
pub fn count_correct(
    ctx: &GpuContext,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
    rows: usize,
    classes: usize,
    out: &GpuBuffer,
    out_at: usize,
    accumulate: bool,
) -> Result<(), GpuError> {
    let what = "count_correct";
    check(what, logits, labels, rows, classes, Some((out, out_at)))?;
    if rows == 0 {
        return Ok(());
    }
    let hits = ctx.alloc(rows, "per-row hits")?;
    let params = Params {
        rows: rows as u32,
        classes: classes as u32,
        ..Params::default()
    };
    let result = ctx
        .dispatch_threads(
            kernel("correct_rows"),
            &params,
            &[logits, labels, &hits],
            rows,
        )
        .and_then(|()| reduce_rows(ctx, &hits, rows, 1.0, out, out_at, accumulate));
    ctx.release(hits);
    result
}

crate::uniform_matches!(
    SHADER,
    "Params",
    Params {
        rows,
        classes,
        at,
        flags,
        factor,
        divisor
    }
);
