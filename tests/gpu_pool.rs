//! CPU-vs-GPU parity for pooling: max, average and global average pooling of
//! `shaders/pool.wgsl`, forward and backward, against `cpu::maxpool2d` and `cpu::avgpool2d` on
//! awkward shapes, windows, strides and paddings (overlapping windows included).
//!
//! Outputs start as NaN so that an element a kernel forgets to write fails. Tolerance:
//! `|gpu - cpu| <= 1e-4 * max(1, |cpu|)`; max pooling must in fact agree exactly.

use cpu::avgpool2d;
use cpu::maxpool2d::{self, Pool2dDims};
use cpu::Padding;
use gpu::{pool, GpuContext, GpuError};

mod common;
use common::{assert_close, data, gpu};

/// Every combination of these images and (window, stride, padding) whose window fits.
fn all_dims() -> Vec<Pool2dDims> {
    let images = [
        (1, 1, 1, 1),
        (2, 5, 7, 3),
        (1, 9, 13, 10),
        (3, 7, 5, 17),
        (2, 13, 9, 1),
    ];
    let windows = [
        (2, 2, Padding::Valid),
        (2, 2, Padding::Same),
        (3, 2, Padding::Valid),
        (3, 2, Padding::Same),
        (3, 1, Padding::Same),
        (3, 3, Padding::Valid),
        (2, 1, Padding::Valid),
    ];
    let mut out = Vec::new();
    for &(n, h, w, c) in &images {
        for &(k, stride, padding) in &windows {
            if let Some(d) = Pool2dDims::new(n, h, w, c, k, stride, padding) {
                out.push(d);
            }
        }
    }
    out
}

fn nan_buffer(ctx: &GpuContext, len: usize) -> gpu::GpuBuffer {
    ctx.upload(&vec![f32::NAN; len]).unwrap()
}

#[test]
fn maxpool_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let dims = all_dims();
    assert!(dims.len() > 25);
    for (s, d) in dims.iter().enumerate() {
        let mut x = data(d.input_len(), 100 + s as u32);
        // Some ties, so that the "first maximum wins" rule is exercised.
        for v in x.iter_mut().step_by(3) {
            *v = 0.25;
        }
        let dy = data(d.output_len(), 200 + s as u32);
        let mut want_y = vec![f32::NAN; d.output_len()];
        maxpool2d::maxpool2d_forward(d, &x, &mut want_y);
        let mut want_dx = vec![f32::NAN; d.input_len()];
        maxpool2d::maxpool2d_backward(d, &x, &dy, &mut want_dx);

        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
        let (gy, gdx) = (
            nan_buffer(ctx, d.output_len()),
            nan_buffer(ctx, d.input_len()),
        );
        pool::maxpool2d_forward(ctx, d, &gx, &gy).unwrap();
        pool::maxpool2d_backward(ctx, d, &gx, &gdy, &gdx).unwrap();
        let what = format!("{d:?}");
        assert_eq!(ctx.read(&gy).unwrap(), want_y, "forward {what}");
        assert_close(
            &ctx.read(&gdx).unwrap(),
            &want_dx,
            1e-4,
            &format!("backward {what}"),
        );
        for b in [gx, gdy, gy, gdx] {
            ctx.release(b);
        }
    }
}

#[test]
fn avgpool_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (s, d) in all_dims().iter().enumerate() {
        let x = data(d.input_len(), 300 + s as u32);
        let dy = data(d.output_len(), 400 + s as u32);
        let mut want_y = vec![f32::NAN; d.output_len()];
        avgpool2d::avgpool2d_forward(d, &x, &mut want_y);
        let mut want_dx = vec![f32::NAN; d.input_len()];
        avgpool2d::avgpool2d_backward(d, &dy, &mut want_dx);

        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
        let (gy, gdx) = (
            nan_buffer(ctx, d.output_len()),
            nan_buffer(ctx, d.input_len()),
        );
        pool::avgpool2d_forward(ctx, d, &gx, &gy).unwrap();
        pool::avgpool2d_backward(ctx, d, &gdy, &gdx).unwrap();
        let what = format!("{d:?}");
        assert_close(
            &ctx.read(&gy).unwrap(),
            &want_y,
            1e-4,
            &format!("forward {what}"),
        );
        assert_close(
            &ctx.read(&gdx).unwrap(),
            &want_dx,
            1e-4,
            &format!("backward {what}"),
        );
        for b in [gx, gdy, gy, gdx] {
            ctx.release(b);
        }
    }
}

#[test]
fn global_avgpool_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (s, &(n, hw, c)) in [(1, 1, 1), (2, 9, 3), (3, 49, 10), (1, 25, 17), (2, 169, 7)]
        .iter()
        .enumerate()
    {
        let x = data(n * hw * c, 500 + s as u32);
        let dy = data(n * c, 600 + s as u32);
        let mut want_y = vec![f32::NAN; n * c];
        avgpool2d::global_avgpool_forward(&x, n, hw, c, &mut want_y);
        let mut want_dx = vec![f32::NAN; x.len()];
        avgpool2d::global_avgpool_backward(&dy, n, hw, c, &mut want_dx);

        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
        let (gy, gdx) = (nan_buffer(ctx, n * c), nan_buffer(ctx, x.len()));
        pool::global_avgpool_forward(ctx, &gx, n, hw, c, &gy).unwrap();
        pool::global_avgpool_backward(ctx, &gdy, n, hw, c, &gdx).unwrap();
        let what = format!("n {n} hw {hw} c {c}");
        assert_close(
            &ctx.read(&gy).unwrap(),
            &want_y,
            1e-4,
            &format!("forward {what}"),
        );
        assert_close(
            &ctx.read(&gdx).unwrap(),
            &want_dx,
            1e-4,
            &format!("backward {what}"),
        );
    }
}

/// A window holding only -inf and NaN: the CPU's maximum is -inf and the first -inf takes the
/// gradient; a window of NaNs only has no winner and drops its gradient.
#[test]
fn maxpool_follows_the_cpu_on_infinities_and_nans() {
    let Some(ctx) = gpu() else { return };
    let d = Pool2dDims::new(1, 2, 4, 1, 2, 2, Padding::Valid).unwrap();
    let (inf, nan) = (f32::NEG_INFINITY, f32::NAN);
    #[rustfmt::skip]
    let x = [
        nan, inf,   nan, nan,
        inf, 1.0,   nan, nan,
    ];
    let dy = [2.0, 3.0];
    let mut want_y = vec![0.0; 2];
    maxpool2d::maxpool2d_forward(&d, &x, &mut want_y);
    let mut want_dx = vec![0.0; 8];
    maxpool2d::maxpool2d_backward(&d, &x, &dy, &mut want_dx);
    let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
    let (gy, gdx) = (nan_buffer(ctx, 2), nan_buffer(ctx, 8));
    pool::maxpool2d_forward(ctx, &d, &gx, &gy).unwrap();
    pool::maxpool2d_backward(ctx, &d, &gx, &gdy, &gdx).unwrap();
    assert_eq!(ctx.read(&gy).unwrap(), [1.0, inf]);
    assert_eq!(ctx.read(&gdx).unwrap(), want_dx);

    // All of the first window -inf: its first element wins.
    let x2 = [inf, inf, 0.0, 0.0, inf, inf, 0.0, 0.0];
    let mut want_dx = vec![0.0; 8];
    maxpool2d::maxpool2d_backward(&d, &x2, &dy, &mut want_dx);
    assert_eq!(want_dx[0], 2.0);
    let gx2 = ctx.upload(&x2).unwrap();
    pool::maxpool2d_backward(ctx, &d, &gx2, &gdy, &gdx).unwrap();
    assert_eq!(ctx.read(&gdx).unwrap(), want_dx);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let d = Pool2dDims::new(2, 5, 5, 3, 3, 2, Padding::Same).unwrap();
    let x = ctx.zeros(d.input_len()).unwrap();
    let y = ctx.zeros(d.output_len()).unwrap();
    let short = ctx.zeros(d.output_len() - 1).unwrap();
    let dx = ctx.zeros(d.input_len()).unwrap();
    let shape = |r: Result<(), GpuError>| matches!(r, Err(GpuError::Shape(_)));
    assert!(pool::maxpool2d_forward(ctx, &d, &x, &y).is_ok());
    assert!(shape(pool::maxpool2d_forward(ctx, &d, &x, &short)));
    assert!(shape(pool::maxpool2d_backward(ctx, &d, &x, &short, &dx)));
    assert!(shape(pool::maxpool2d_backward(ctx, &d, &x, &y, &y)));
    assert!(shape(pool::avgpool2d_forward(ctx, &d, &short, &y)));
    assert!(shape(pool::avgpool2d_backward(ctx, &d, &y, &short)));
    // Output aliasing the input.
    assert!(shape(pool::maxpool2d_backward(ctx, &d, &x, &y, &x)));
    assert!(shape(pool::global_avgpool_forward(
        ctx, &x, 2, 25, 3, &short
    )));
    assert!(shape(pool::global_avgpool_forward(ctx, &x, 2, 0, 3, &y)));
    assert!(shape(pool::global_avgpool_backward(
        ctx, &y, 2, 25, 3, &short
    )));
    let zero_stride = Pool2dDims { stride: 0, ..d };
    assert!(shape(pool::maxpool2d_forward(ctx, &zero_stride, &x, &y)));
    // Nothing invalid was recorded: the context still works.
    ctx.read(&y).unwrap();
}
