//! `gpu::rmsprop` (`shaders/rmsprop.wgsl`) against `cpu::rmsprop` over several steps.

use super::*;
use cpu::rmsprop::{rmsprop_step_size, rmsprop_update, RmspropHyper};

const SIZES: [usize; 4] = [1, 7, 1000, 4099];

#[test]
fn rmsprop_over_several_steps_matches_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let h = RmspropHyper {
        lr: 0.01,
        decay: 0.1,
        ..RmspropHyper::default()
    };
    for &n in &SIZES {
        let mut p = data(n, 3);
        let mut a = vec![0.0; n];
        let (gp, ga) = (ctx.upload(&p).unwrap(), ctx.zeros(n).unwrap());
        for it in 0..4u32 {
            let g = grads(n, it);
            let lr_t = rmsprop_step_size(&h, it as u64);
            rmsprop_update(&mut p, &g, &mut a, &h, lr_t);
            let gg = ctx.upload(&g).unwrap();
            gpu::rmsprop::rmsprop_update(ctx, &gp, &gg, &ga, &h, lr_t, None).unwrap();
            ctx.release(gg);
        }
        close(&ctx.read(&gp).unwrap(), &p, &format!("rmsprop param n {n}"));
        close(&ctx.read(&ga).unwrap(), &a, &format!("rmsprop accum n {n}"));
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b6, b7) = (ctx.zeros(6).unwrap(), ctx.zeros(7).unwrap());
    let h = RmspropHyper::default();
    shape(
        gpu::rmsprop::rmsprop_update(ctx, &b6, &b7, &b6, &h, 1e-3, None),
        "rmsprop",
    );
    // Zero-length inputs record nothing.
    let (e1, e2, e3) = (
        ctx.upload(&[]).unwrap(),
        ctx.upload(&[]).unwrap(),
        ctx.upload(&[]).unwrap(),
    );
    let pending = ctx.pending();
    gpu::rmsprop::rmsprop_update(ctx, &e1, &e2, &e3, &h, 1e-3, None).unwrap();
    assert_eq!(ctx.pending(), pending);
}
