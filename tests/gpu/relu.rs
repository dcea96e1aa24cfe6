//! `gpu::elementwise::{relu_forward, relu_forward_inplace, relu_backward}` against `cpu::relu`, bit
//! for bit.

use super::*;
use gpu::elementwise as ew;

const SIZES: [usize; 5] = [1, 7, 256, 1000, 4099];

#[test]
fn relu_forward_inplace_and_backward_match_the_cpu_bit_for_bit() {
    let Some(ctx) = gpu() else { return };
    for (s, &n) in SIZES.iter().enumerate() {
        let x = spiky(n, s as u32);
        let mut want = vec![0.0; n];
        cpu::relu::relu_forward(&x, &mut want);
        let (gx, gy) = (ctx.upload(&x).unwrap(), nans(ctx, n));
        ew::relu_forward(ctx, &gx, &gy).unwrap();
        assert_eq!(bits(&ctx.read(&gy).unwrap()), bits(&want), "relu n {n}");
        ew::relu_forward_inplace(ctx, &gx).unwrap();
        assert_eq!(bits(&ctx.read(&gx).unwrap()), bits(&want), "inplace n {n}");

        let dy = data(n, 50 + s as u32);
        let mut dx = vec![0.0; n];
        cpu::relu::relu_backward(&want, &dy, &mut dx);
        let (gdy, gdx) = (ctx.upload(&dy).unwrap(), nans(ctx, n));
        ew::relu_backward(ctx, &gy, &gdy, &gdx).unwrap();
        assert_eq!(bits(&ctx.read(&gdx).unwrap()), bits(&dx), "backward n {n}");
        for b in [gx, gy, gdy, gdx] {
            ctx.release(b);
        }
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b4, b5) = (ctx.zeros(4).unwrap(), ctx.zeros(5).unwrap());
    shape(ew::relu_forward(ctx, &b4, &b5), "relu_forward");
    shape(ew::relu_backward(ctx, &b4, &b4, &b5), "relu_backward");
    // Zero-length inputs record nothing.
    let empty = ctx.upload(&[]).unwrap();
    let pending = ctx.pending();
    ew::relu_forward_inplace(ctx, &empty).unwrap();
    assert_eq!(ctx.pending(), pending);
}
