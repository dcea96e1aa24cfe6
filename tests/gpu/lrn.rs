//! `gpu::lrn` (`shaders/lrn.wgsl`) against `cpu::lrn`, forward and backward.

use super::*;
use cpu::lrn::{self as clrn, LrnParams};
use gpu::lrn;

#[test]
fn lrn_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut s = 0;
    for c in [1, 3, 10, 17] {
        for r in [0, 2, 5] {
            for (alpha, beta) in [(1.0, 0.5), (0.001 / 9.0, 0.75), (0.1, 1.0), (0.3, 0.6)] {
                s += 1;
                let p = LrnParams {
                    depth_radius: r,
                    bias: 1.0,
                    alpha,
                    beta,
                };
                let pixels = 2 * 5 * 7;
                let x: Vec<f32> = data(pixels * c, 100 + s).iter().map(|v| 6.0 * v).collect();
                let dy = data(x.len(), 200 + s);
                let mut y = vec![0.0; x.len()];
                clrn::lrn_forward(&x, c, &p, &mut y);
                let mut dx = vec![0.0; x.len()];
                clrn::lrn_backward(&x, &dy, c, &p, &mut dx);

                let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
                let (gy, gdx) = (nans(ctx, x.len()), nans(ctx, x.len()));
                lrn::lrn_forward(ctx, &gx, c, &p, &gy).unwrap();
                lrn::lrn_backward(ctx, &gx, &gdy, c, &p, &gdx).unwrap();
                let what = format!("c {c} r {r} alpha {alpha} beta {beta}");
                assert_close(&read(ctx, &gy), &y, 1e-4, &format!("forward {what}"));
                assert_close(&read(ctx, &gdx), &dx, 1e-4, &format!("backward {what}"));
                for b in [gx, gdy, gy, gdx] {
                    ctx.release(b);
                }
            }
        }
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (rows, c) = (6, 4);
    let x = ctx.zeros(rows * c).unwrap();
    let y = ctx.zeros(rows * c).unwrap();
    let dx = ctx.zeros(rows * c).unwrap();
    let short = ctx.zeros(c - 1).unwrap();

    // LRN.
    let p = LrnParams::default();
    assert!(is_shape(lrn::lrn_forward(ctx, &x, c, &p, &short)));
    assert!(is_shape(lrn::lrn_forward(ctx, &x, 5, &p, &y)));
    assert!(is_shape(lrn::lrn_backward(ctx, &x, &short, c, &p, &dx)));
    assert!(is_shape(lrn::lrn_backward(ctx, &x, &y, c, &p, &y)));
    // Nothing invalid was recorded: the context still works.
    read(ctx, &y);
}
