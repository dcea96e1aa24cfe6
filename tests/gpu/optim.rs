//! What the three GPU optimiser updates share (`gpu::optim`, `shaders/optim.wgsl`): a step whose
//! loss is not finite changes nothing.

use super::*;
use cpu::adam::AdamHyper;
use cpu::rmsprop::RmspropHyper;
use cpu::sgd::SgdHyper;
use gpu::softmax_xent as sx;

#[test]
fn a_non_finite_loss_in_the_guard_leaves_everything_unchanged() {
    let Some(ctx) = gpu() else { return };
    let n = 1000;
    let (p0, g, s0) = (
        data(n, 4),
        data(n, 5),
        data(n, 6).iter().map(|v| v.abs()).collect::<Vec<_>>(),
    );
    let gg = ctx.upload(&g).unwrap();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
        let guard = ctx.upload(&[bad]).unwrap();
        let (gp, s1, s2) = (
            ctx.upload(&p0).unwrap(),
            ctx.upload(&s0).unwrap(),
            ctx.upload(&s0).unwrap(),
        );
        let unchanged = |what: &str| {
            assert_eq!(
                bits(&ctx.read(&gp).unwrap()),
                bits(&p0),
                "{what} param, guard {bad}"
            );
            assert_eq!(
                bits(&ctx.read(&s1).unwrap()),
                bits(&s0),
                "{what} state, guard {bad}"
            );
            assert_eq!(
                bits(&ctx.read(&s2).unwrap()),
                bits(&s0),
                "{what} v, guard {bad}"
            );
        };
        gpu::adam::adam_update(
            ctx,
            &gp,
            &gg,
            &s1,
            &s2,
            &AdamHyper::default(),
            1e-3,
            Some(&guard),
        )
        .unwrap();
        unchanged("adam");
        let h = SgdHyper {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
        };
        gpu::sgd::sgd_update(ctx, &gp, &gg, Some(&s1), &h, Some(&guard)).unwrap();
        gpu::sgd::sgd_update(ctx, &gp, &gg, None, &SgdHyper::default(), Some(&guard)).unwrap();
        unchanged("sgd");
        let h = RmspropHyper::default();
        gpu::rmsprop::rmsprop_update(ctx, &gp, &gg, &s1, &h, 1e-3, Some(&guard)).unwrap();
        unchanged("rmsprop");
    }
    // A finite loss (the softmax forward's output, as in a training step) lets the step run.
    let (gz, gl, gprobs, loss) = (
        ctx.upload(&[0.5, -0.5]).unwrap(),
        ctx.upload(&[0.0]).unwrap(),
        ctx.zeros(2).unwrap(),
        ctx.zeros(1).unwrap(),
    );
    sx::softmax_xent_forward(ctx, &gz, &gl, 1, 2, &gprobs, &loss, 0, false).unwrap();
    let gp = ctx.upload(&p0).unwrap();
    gpu::sgd::sgd_update(ctx, &gp, &gg, None, &SgdHyper::default(), Some(&loss)).unwrap();
    assert_ne!(
        ctx.read(&gp).unwrap(),
        p0,
        "a finite guard skipped the step"
    );
}
