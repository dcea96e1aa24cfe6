//! `gpu::sgd` (`shaders/sgd.wgsl`) against `cpu::sgd` over several steps: plain, momentum and
//! Nesterov.

use super::*;
use cpu::sgd::{sgd_update, SgdHyper};

const SIZES: [usize; 4] = [1, 7, 1000, 4099];

#[test]
fn sgd_plain_momentum_and_nesterov_over_several_steps_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let hypers = [
        SgdHyper {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
        },
        SgdHyper {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
        },
        SgdHyper {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
        },
    ];
    for h in &hypers {
        for &n in &SIZES {
            let mut p = data(n, 2);
            let mut vel = vec![0.0; n];
            let (gp, gvel) = (ctx.upload(&p).unwrap(), ctx.zeros(n).unwrap());
            for t in 1..=4u32 {
                let g = grads(n, t);
                sgd_update(&mut p, &g, &mut vel, h);
                let gg = ctx.upload(&g).unwrap();
                gpu::sgd::sgd_update(ctx, &gp, &gg, Some(&gvel), h, None).unwrap();
                ctx.release(gg);
            }
            let what = format!("n {n} {h:?}");
            close(&ctx.read(&gp).unwrap(), &p, &format!("sgd param {what}"));
            close(
                &ctx.read(&gvel).unwrap(),
                &vel,
                &format!("sgd velocity {what}"),
            );
        }
    }
    // Momentum 0 needs no velocity buffer.
    let gp = ctx.upload(&[1.0, -2.0]).unwrap();
    let gg = ctx.upload(&[0.5, 0.25]).unwrap();
    gpu::sgd::sgd_update(ctx, &gp, &gg, None, &hypers[0], None).unwrap();
    assert_eq!(ctx.read(&gp).unwrap(), [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25]);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b6, b7) = (ctx.zeros(6).unwrap(), ctx.zeros(7).unwrap());
    let h = SgdHyper {
        momentum: 0.9,
        ..SgdHyper::default()
    };
    shape(
        gpu::sgd::sgd_update(ctx, &b6, &b6, None, &h, None),
        "sgd no velocity",
    );
    shape(
        gpu::sgd::sgd_update(ctx, &b6, &b6, Some(&b7), &h, None),
        "sgd velocity 7",
    );
    let empty = ctx.upload(&[]).unwrap();
    shape(
        gpu::sgd::sgd_update(ctx, &b6, &b6, None, &SgdHyper::default(), Some(&empty)),
        "empty guard",
    );
}
