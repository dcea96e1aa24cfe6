//! `gpu::dropout` (`shaders/dropout.wgsl`): mask and output equal to `cpu::dropout`, bit for bit.

use super::*;
use gpu::dropout;

#[test]
fn dropout_mask_and_output_equal_the_cpu_exactly() {
    let Some(ctx) = gpu() else { return };
    for &n in &[1usize, 7, 255, 1000, 4099] {
        for (&p, seed) in [0.0f32, 0.1, 0.5, 0.9]
            .iter()
            .zip([0u32, 42, 0xdead_beef, u32::MAX])
        {
            let x = spiky(n, n as u32);
            let (mut y, mut mask) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            cpu::dropout::dropout_forward(&x, p, seed, &mut y, &mut mask);
            let (gx, gy, gm) = (ctx.upload(&x).unwrap(), nans(ctx, n), nans(ctx, n));
            dropout::dropout_forward(ctx, &gx, p, seed, &gy, &gm).unwrap();
            let what = format!("n {n} p {p} seed {seed}");
            assert_eq!(bits(&ctx.read(&gm).unwrap()), bits(&mask), "mask {what}");
            assert_eq!(bits(&ctx.read(&gy).unwrap()), bits(&y), "y {what}");

            let dy = data(n, 90);
            let mut dx = vec![f32::NAN; n];
            cpu::dropout::dropout_backward(&dy, &mask, &mut dx);
            let (gdy, gdx) = (ctx.upload(&dy).unwrap(), nans(ctx, n));
            dropout::dropout_backward(ctx, &gdy, &gm, &gdx).unwrap();
            assert_eq!(bits(&ctx.read(&gdx).unwrap()), bits(&dx), "dx {what}");
            for b in [gx, gy, gm, gdy, gdx] {
                ctx.release(b);
            }
        }
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b4, b5, b6) = (
        ctx.zeros(4).unwrap(),
        ctx.zeros(5).unwrap(),
        ctx.zeros(6).unwrap(),
    );
    shape(
        dropout::dropout_forward(ctx, &b4, 0.5, 1, &b5, &b4),
        "dropout y",
    );
    shape(
        dropout::dropout_forward(ctx, &b4, 1.0, 1, &b4, &b6),
        "dropout p = 1",
    );
    shape(
        dropout::dropout_backward(ctx, &b4, &b5, &b4),
        "dropout backward",
    );
}
