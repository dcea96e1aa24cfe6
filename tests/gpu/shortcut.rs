//! `gpu::shortcut` (`shaders/shortcut.wgsl`) against `cpu::shortcut`, exactly.

use super::*;
use cpu::shortcut::{self as csc, ShortcutDims};
use gpu::shortcut;

#[test]
fn shortcut_forward_and_backward_match_the_cpu_exactly() {
    let Some(ctx) = gpu() else { return };
    for (s, &(n, h, w, c, stride, pad_before, pad_after)) in [
        (1, 1, 1, 1, 1, 0, 0),
        (2, 5, 7, 3, 2, 1, 2),
        (1, 9, 13, 10, 2, 5, 5),
        (3, 7, 5, 17, 1, 0, 0),
        (1, 7, 4, 5, 3, 0, 3),
        (2, 8, 8, 16, 2, 8, 8),
    ]
    .iter()
    .enumerate()
    {
        let d = ShortcutDims {
            n,
            h,
            w,
            c,
            stride,
            pad_before,
            pad_after,
        };
        let x = data(d.input_len(), 300 + s as u32);
        let dy = data(d.output_len(), 400 + s as u32);
        let mut y = vec![0.0; d.output_len()];
        csc::subsample_pad(&d, &x, &mut y);
        let mut dx = vec![0.0; d.input_len()];
        csc::subsample_pad_backward(&d, &dy, &mut dx);

        let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
        let (gy, gdx) = (nans(ctx, d.output_len()), nans(ctx, d.input_len()));
        shortcut::subsample_pad(ctx, &d, &gx, &gy).unwrap();
        shortcut::subsample_pad_backward(ctx, &d, &gdy, &gdx).unwrap();
        assert_eq!(read(ctx, &gy), y, "forward {d:?}");
        assert_eq!(read(ctx, &gdx), dx, "backward {d:?}");
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (rows, c) = (6, 4);
    let x = ctx.zeros(rows * c).unwrap();
    let v = |len| ctx.zeros(len).unwrap();
    let short = v(c - 1);

    // Shortcut.
    let d = ShortcutDims {
        n: 1,
        h: 3,
        w: 2,
        c: 4,
        stride: 2,
        pad_before: 1,
        pad_after: 1,
    };
    assert_eq!(d.input_len(), rows * c);
    let out = v(d.output_len());
    assert!(shortcut::subsample_pad(ctx, &d, &x, &out).is_ok());
    assert!(is_shape(shortcut::subsample_pad(ctx, &d, &x, &short)));
    assert!(is_shape(shortcut::subsample_pad_backward(
        ctx, &d, &out, &short
    )));
    let zero_stride = ShortcutDims { stride: 0, ..d };
    assert!(is_shape(shortcut::subsample_pad(
        ctx,
        &zero_stride,
        &x,
        &out
    )));
    // Nothing invalid was recorded: the context still works.
    read(ctx, &out);
}
