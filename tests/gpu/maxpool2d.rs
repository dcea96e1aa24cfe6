//! `gpu::maxpool2d` (`shaders/maxpool2d.wgsl`) against `cpu::maxpool2d`, forward and backward,
//! on awkward shapes, windows, strides and paddings (overlapping windows included); max pooling
//! must agree exactly, infinities and NaNs included.

use super::*;
use cpu::maxpool2d::{self, Pool2dDims};
use cpu::Padding;

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
        let (gy, gdx) = (nans(ctx, d.output_len()), nans(ctx, d.input_len()));
        gpu::maxpool2d::maxpool2d_forward(ctx, d, &gx, &gy).unwrap();
        gpu::maxpool2d::maxpool2d_backward(ctx, d, &gx, &gdy, &gdx).unwrap();
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
    let (gy, gdx) = (nans(ctx, 2), nans(ctx, 8));
    gpu::maxpool2d::maxpool2d_forward(ctx, &d, &gx, &gy).unwrap();
    gpu::maxpool2d::maxpool2d_backward(ctx, &d, &gx, &gdy, &gdx).unwrap();
    assert_eq!(ctx.read(&gy).unwrap(), [1.0, inf]);
    assert_eq!(ctx.read(&gdx).unwrap(), want_dx);

    // All of the first window -inf: its first element wins.
    let x2 = [inf, inf, 0.0, 0.0, inf, inf, 0.0, 0.0];
    let mut want_dx = vec![0.0; 8];
    maxpool2d::maxpool2d_backward(&d, &x2, &dy, &mut want_dx);
    assert_eq!(want_dx[0], 2.0);
    let gx2 = ctx.upload(&x2).unwrap();
    gpu::maxpool2d::maxpool2d_backward(ctx, &d, &gx2, &gdy, &gdx).unwrap();
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
    assert!(gpu::maxpool2d::maxpool2d_forward(ctx, &d, &x, &y).is_ok());
    shape(
        gpu::maxpool2d::maxpool2d_forward(ctx, &d, &x, &short),
        "short y",
    );
    shape(
        gpu::maxpool2d::maxpool2d_backward(ctx, &d, &x, &short, &dx),
        "short dy",
    );
    shape(
        gpu::maxpool2d::maxpool2d_backward(ctx, &d, &x, &y, &y),
        "dx aliasing dy",
    );
    shape(
        gpu::maxpool2d::maxpool2d_backward(ctx, &d, &x, &y, &x),
        "dx aliasing x",
    );
    let zero_stride = Pool2dDims { stride: 0, ..d };
    shape(
        gpu::maxpool2d::maxpool2d_forward(ctx, &zero_stride, &x, &y),
        "stride 0",
    );
    // Nothing invalid was recorded: the context still works.
    ctx.read(&y).unwrap();
}
