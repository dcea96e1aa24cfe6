//! `gpu::adam` (`shaders/adam.wgsl`) against `cpu::adam` over several steps.

use super::*;
use cpu::adam::{adam_step_size, adam_update, AdamHyper};

const SIZES: [usize; 4] = [1, 7, 1000, 4099];

#[test]
fn adam_over_several_steps_matches_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let h = AdamHyper {
        lr: 0.01,
        ..AdamHyper::default()
    };
    for &n in &SIZES {
        let mut p = data(n, 1);
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let (gp, gm, gv) = (
            ctx.upload(&p).unwrap(),
            ctx.zeros(n).unwrap(),
            ctx.zeros(n).unwrap(),
        );
        for t in 1..=4u32 {
            let g = grads(n, t);
            let lr_t = adam_step_size(&h, t as u64);
            adam_update(&mut p, &g, &mut m, &mut v, &h, lr_t);
            let gg = ctx.upload(&g).unwrap();
            gpu::adam::adam_update(ctx, &gp, &gg, &gm, &gv, &h, lr_t, None).unwrap();
            ctx.release(gg);
        }
        close(&ctx.read(&gp).unwrap(), &p, &format!("adam param n {n}"));
        close(&ctx.read(&gm).unwrap(), &m, &format!("adam m n {n}"));
        close(&ctx.read(&gv).unwrap(), &v, &format!("adam v n {n}"));
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b2, b3, b6, b7) = (
        ctx.zeros(2).unwrap(),
        ctx.zeros(3).unwrap(),
        ctx.zeros(6).unwrap(),
        ctx.zeros(7).unwrap(),
    );
    let h = AdamHyper::default();
    shape(
        gpu::adam::adam_update(ctx, &b6, &b7, &b3, &b2, &h, 1e-3, None),
        "adam grad",
    );
    shape(
        gpu::adam::adam_update(ctx, &b6, &b6, &b6, &b6, &h, 1e-3, None),
        "adam aliasing",
    );
    shape(
        gpu::adam::adam_update(ctx, &b2, &b2, &b2, &b3, &h, 1e-3, None),
        "adam v",
    );
}
