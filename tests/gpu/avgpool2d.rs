//! `gpu::avgpool2d` (`shaders/avgpool2d.wgsl`) against `cpu::avgpool2d`: average and global
//! average pooling, forward and backward, on awkward shapes, windows, strides and paddings.

use super::*;
use cpu::avgpool2d;
use cpu::maxpool2d::Pool2dDims;
use cpu::Padding;

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
        let (gy, gdx) = (nans(ctx, d.output_len()), nans(ctx, d.input_len()));
        gpu::avgpool2d::avgpool2d_forward(ctx, d, &gx, &gy).unwrap();
        gpu::avgpool2d::avgpool2d_backward(ctx, d, &gdy, &gdx).unwrap();
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
        let (gy, gdx) = (nans(ctx, n * c), nans(ctx, x.len()));
        gpu::avgpool2d::global_avgpool_forward(ctx, &gx, n, hw, c, &gy).unwrap();
        gpu::avgpool2d::global_avgpool_backward(ctx, &gdy, n, hw, c, &gdx).unwrap();
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

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let d = Pool2dDims::new(2, 5, 5, 3, 3, 2, Padding::Same).unwrap();
    let x = ctx.zeros(d.input_len()).unwrap();
    let y = ctx.zeros(d.output_len()).unwrap();
    let short = ctx.zeros(d.output_len() - 1).unwrap();
    let g = gpu::avgpool2d::global_avgpool_forward;
    shape(
        gpu::avgpool2d::avgpool2d_forward(ctx, &d, &short, &y),
        "short x",
    );
    shape(
        gpu::avgpool2d::avgpool2d_backward(ctx, &d, &y, &short),
        "short dx",
    );
    shape(g(ctx, &x, 2, 25, 3, &short), "global: short y");
    shape(g(ctx, &x, 2, 0, 3, &y), "global: hw 0");
    shape(
        gpu::avgpool2d::global_avgpool_backward(ctx, &y, 2, 25, 3, &short),
        "global: short dx",
    );
    // Nothing invalid was recorded: the context still works.
    ctx.read(&y).unwrap();
}
