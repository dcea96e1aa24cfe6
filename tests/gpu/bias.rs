//! `gpu::elementwise::{bias_add, bias_grad}` (`shaders/elementwise.wgsl`) against `cpu::bias`.

use super::*;
use gpu::elementwise as ew;

const ROWS: [usize; 4] = [1, 5, 64, 257];
const COLS: [usize; 5] = [1, 3, 10, 37, 130];

#[test]
fn bias_add_and_grad_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (s, &rows) in ROWS.iter().enumerate() {
        for (t, &c) in COLS.iter().enumerate() {
            let seed = (10 * s + t) as u32;
            let what = format!("rows {rows} c {c}");
            let (y0, bias) = (data(rows * c, seed), data(c, seed + 100));
            let mut want = y0.clone();
            cpu::bias::bias_add(&mut want, &bias);
            let (gy, gb) = (ctx.upload(&y0).unwrap(), ctx.upload(&bias).unwrap());
            ew::bias_add(ctx, &gy, &gb).unwrap();
            assert_eq!(
                bits(&ctx.read(&gy).unwrap()),
                bits(&want),
                "bias_add {what}"
            );

            let dy = data(rows * c, seed + 200);
            let mut want = vec![0.0; c];
            cpu::bias::bias_grad(&dy, c, &mut want);
            let (gdy, gdb) = (ctx.upload(&dy).unwrap(), nans(ctx, c));
            ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
            close(
                &ctx.read(&gdb).unwrap(),
                &want,
                &format!("bias_grad {what}"),
            );
            for b in [gy, gb, gdy, gdb] {
                ctx.release(b);
            }
        }
    }
}

#[test]
fn bias_grad_over_many_rows_is_accurate_and_deterministic() {
    let Some(ctx) = gpu() else { return };
    let (rows, c) = (20_000, 3);
    let dy = data(rows * c, 5);
    let mut want = vec![0.0; c];
    cpu::bias::bias_grad(&dy, c, &mut want);
    let (gdy, gdb) = (ctx.upload(&dy).unwrap(), nans(ctx, c));
    ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
    let first = ctx.read(&gdb).unwrap();
    // Sums of ~6,700 values of either sign: the absolute error, not the relative one, is small.
    common::assert_close(&first, &want, 1e-3, "bias_grad 20000 rows");
    ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
    assert_eq!(bits(&ctx.read(&gdb).unwrap()), bits(&first), "run to run");
    // Zero rows: zeros, as on the CPU.
    let empty = ctx.upload(&[]).unwrap();
    ew::bias_grad(ctx, &empty, c, &gdb).unwrap();
    assert_eq!(ctx.read(&gdb).unwrap(), vec![0.0; c]);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b4, b5, b6) = (
        ctx.zeros(4).unwrap(),
        ctx.zeros(5).unwrap(),
        ctx.zeros(6).unwrap(),
    );
    shape(ew::bias_add(ctx, &b5, &b4), "bias_add 5 % 4");
    shape(ew::bias_grad(ctx, &b6, 3, &b4), "bias_grad db length");
    shape(ew::bias_grad(ctx, &b6, 0, &b4), "bias_grad c = 0");
}
