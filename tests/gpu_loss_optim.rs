//! CPU-vs-GPU parity for `shaders/softmax_xent.wgsl` (loss, gradient, accuracy count) and
//! `shaders/optim.wgsl` (Adam, SGD, RMSprop over several steps, and the non-finite-loss guard).
//!
//! Without any GPU adapter the tests print why and pass, except under `CI`.

use cpu::adam::{adam_step_size, adam_update, AdamHyper};
use cpu::rmsprop::{rmsprop_step_size, rmsprop_update, RmspropHyper};
use cpu::sgd::{sgd_update, SgdHyper};
use gpu::{optim, softmax_xent as sx, GpuBuffer, GpuContext, GpuError};

mod common;
use common::{data, gpu};

const ROWS: [usize; 4] = [1, 5, 64, 257];
const CLASSES: [usize; 5] = [1, 3, 10, 37, 130];
const SIZES: [usize; 4] = [1, 7, 1000, 4099];

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    common::assert_close(got, want, 1e-4, what)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn nans(ctx: &GpuContext, n: usize) -> GpuBuffer {
    ctx.upload(&vec![f32::NAN; n]).unwrap()
}

/// Labels in `0..classes` from the counter hash, and the same as f32 for the GPU.
fn labels(rows: usize, classes: usize, seed: u32) -> (Vec<u32>, Vec<f32>) {
    let l: Vec<u32> = (0..rows as u32)
        .map(|i| cpu::rng::pcg_hash(i ^ cpu::rng::pcg_hash(seed)) % classes as u32)
        .collect();
    let f = l.iter().map(|&v| v as f32).collect();
    (l, f)
}

#[test]
fn softmax_xent_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (s, &rows) in ROWS.iter().enumerate() {
        for (t, &classes) in CLASSES.iter().enumerate() {
            let seed = (10 * s + t) as u32;
            let what = format!("rows {rows} classes {classes}");
            let logits: Vec<f32> = data(rows * classes, seed).iter().map(|v| v * 8.0).collect();
            let (lab, labf) = labels(rows, classes, seed + 1);
            let mut probs = vec![f32::NAN; rows * classes];
            let loss = cpu::softmax_xent::softmax_xent_forward(&logits, &lab, classes, &mut probs);

            let (gz, gl) = (ctx.upload(&logits).unwrap(), ctx.upload(&labf).unwrap());
            let (gp, gloss) = (nans(ctx, rows * classes), nans(ctx, 3));
            sx::softmax_xent_forward(ctx, &gz, &gl, rows, classes, &gp, &gloss, 1, false).unwrap();
            assert_close(&ctx.read(&gp).unwrap(), &probs, &format!("probs {what}"));
            let got = ctx.read(&gloss).unwrap();
            assert_close(&got[1..2], &[loss], &format!("loss {what}"));
            assert!(
                got[0].is_nan() && got[2].is_nan(),
                "{what}: wrote outside loss_at"
            );
            // Accumulating adds the same mean again.
            sx::softmax_xent_forward(ctx, &gz, &gl, rows, classes, &gp, &gloss, 1, true).unwrap();
            let again = ctx.read(&gloss).unwrap()[1];
            assert_close(&[again], &[2.0 * loss], &format!("accumulated loss {what}"));

            let mut d = vec![f32::NAN; rows * classes];
            cpu::softmax_xent::softmax_xent_backward(&probs, &lab, classes, 0.7, &mut d);
            let gd = nans(ctx, rows * classes);
            let gprobs = ctx.upload(&probs).unwrap();
            sx::softmax_xent_backward(ctx, &gprobs, &gl, rows, classes, 0.7, &gd).unwrap();
            // Values are O(1 / rows): compare relative to the largest.
            let big = d.iter().fold(1e-20f32, |a, &v| a.max(v.abs()));
            let scaled = |v: &[f32]| v.iter().map(|x| x / big).collect::<Vec<_>>();
            let got = ctx.read(&gd).unwrap();
            assert_close(&scaled(&got), &scaled(&d), &format!("dlogits {what}"));
            for b in [gz, gl, gp, gloss, gd, gprobs] {
                ctx.release(b);
            }
        }
    }
}

#[test]
fn huge_logits_give_a_finite_loss_and_a_bad_label_a_nan_one() {
    let Some(ctx) = gpu() else { return };
    let logits = [1e4, -1e4, 0.0, -1e4, 1e4, 1e4];
    let mut p = [0.0f32; 6];
    let want = cpu::softmax_xent::softmax_xent_forward(&logits, &[1, 1], 3, &mut p);
    let (gz, gp, gloss) = (ctx.upload(&logits).unwrap(), nans(ctx, 6), nans(ctx, 1));
    let gl = ctx.upload(&[1.0, 1.0]).unwrap();
    sx::softmax_xent_forward(ctx, &gz, &gl, 2, 3, &gp, &gloss, 0, false).unwrap();
    let got = ctx.read(&gloss).unwrap()[0];
    assert!(
        got.is_finite() && (got - want).abs() <= 1e-4 * want,
        "{got} vs {want}"
    );
    assert_close(&ctx.read(&gp).unwrap(), &p, "probs of huge logits");
    for bad in [3.0, -1.0, 0.5] {
        let gl = ctx.upload(&[1.0, bad]).unwrap();
        sx::softmax_xent_forward(ctx, &gz, &gl, 2, 3, &gp, &gloss, 0, false).unwrap();
        assert!(ctx.read(&gloss).unwrap()[0].is_nan(), "label {bad}");
    }
}

#[test]
fn count_correct_matches_the_cpu_with_ties_and_accumulates() {
    let Some(ctx) = gpu() else { return };
    for (s, &rows) in ROWS.iter().enumerate() {
        for (t, &classes) in CLASSES.iter().enumerate() {
            let seed = (10 * s + t) as u32 + 500;
            // Logits rounded to quarters, so rows often hold tied maxima.
            let mut logits: Vec<f32> = data(rows * classes, seed)
                .iter()
                .map(|v| (v * 4.0).round())
                .collect();
            if rows * classes > 4 {
                logits[3] = f32::NAN;
            }
            let (lab, labf) = labels(rows, classes, seed + 1);
            // Some labels at the row's first maximum, so the count is not ~rows / classes.
            let mut lab = lab;
            let mut labf = labf;
            for r in (0..rows).step_by(2) {
                let a = cpu::argmax::argmax_row(&logits[r * classes..(r + 1) * classes]);
                lab[r] = a as u32;
                labf[r] = a as f32;
            }
            let want = cpu::argmax::count_correct(&logits, &lab, classes) as f32;
            let (gz, gl, out) = (
                ctx.upload(&logits).unwrap(),
                ctx.upload(&labf).unwrap(),
                nans(ctx, 2),
            );
            let what = format!("rows {rows} classes {classes}");
            sx::count_correct(ctx, &gz, &gl, rows, classes, &out, 1, false).unwrap();
            sx::count_correct(ctx, &gz, &gl, rows, classes, &out, 1, true).unwrap();
            let got = ctx.read(&out).unwrap();
            assert!(got[0].is_nan(), "{what}: wrote outside out_at");
            assert_eq!(got[1], 2.0 * want, "{what}: twice the count");
            for b in [gz, gl, out] {
                ctx.release(b);
            }
        }
    }
}

/// Gradients for step `step` of a parameter of length `n`.
fn grads(n: usize, step: u32) -> Vec<f32> {
    data(n, 1000 + step)
}

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
            optim::adam_update(ctx, &gp, &gg, &gm, &gv, &h, lr_t, &ctx.dummy).unwrap();
            ctx.release(gg);
        }
        assert_close(&ctx.read(&gp).unwrap(), &p, &format!("adam param n {n}"));
        assert_close(&ctx.read(&gm).unwrap(), &m, &format!("adam m n {n}"));
        assert_close(&ctx.read(&gv).unwrap(), &v, &format!("adam v n {n}"));
    }
}

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
                optim::sgd_update(ctx, &gp, &gg, Some(&gvel), h, &ctx.dummy).unwrap();
                ctx.release(gg);
            }
            let what = format!("n {n} {h:?}");
            assert_close(&ctx.read(&gp).unwrap(), &p, &format!("sgd param {what}"));
            assert_close(
                &ctx.read(&gvel).unwrap(),
                &vel,
                &format!("sgd velocity {what}"),
            );
        }
    }
    // Momentum 0 needs no velocity buffer.
    let gp = ctx.upload(&[1.0, -2.0]).unwrap();
    let gg = ctx.upload(&[0.5, 0.25]).unwrap();
    optim::sgd_update(ctx, &gp, &gg, None, &hypers[0], &ctx.dummy).unwrap();
    assert_eq!(ctx.read(&gp).unwrap(), [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25]);
}

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
            optim::rmsprop_update(ctx, &gp, &gg, &ga, &h, lr_t, &ctx.dummy).unwrap();
            ctx.release(gg);
        }
        assert_close(&ctx.read(&gp).unwrap(), &p, &format!("rmsprop param n {n}"));
        assert_close(&ctx.read(&ga).unwrap(), &a, &format!("rmsprop accum n {n}"));
    }
}

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
        optim::adam_update(ctx, &gp, &gg, &s1, &s2, &AdamHyper::default(), 1e-3, &guard).unwrap();
        unchanged("adam");
        let h = SgdHyper {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
        };
        optim::sgd_update(ctx, &gp, &gg, Some(&s1), &h, &guard).unwrap();
        optim::sgd_update(ctx, &gp, &gg, None, &SgdHyper::default(), &guard).unwrap();
        unchanged("sgd");
        let h = RmspropHyper::default();
        optim::rmsprop_update(ctx, &gp, &gg, &s1, &h, 1e-3, &guard).unwrap();
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
    optim::sgd_update(ctx, &gp, &gg, None, &SgdHyper::default(), &loss).unwrap();
    assert_ne!(
        ctx.read(&gp).unwrap(),
        p0,
        "a finite guard skipped the step"
    );
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
    let shape = |r: Result<(), GpuError>, what: &str| {
        assert!(matches!(r, Err(GpuError::Shape(_))), "{what}: {r:?}");
    };
    let out = ctx.zeros(1).unwrap();
    shape(
        sx::softmax_xent_forward(ctx, &b7, &b2, 2, 3, &b6, &out, 0, false),
        "logits 7 for 2x3",
    );
    shape(
        sx::softmax_xent_forward(ctx, &b6, &b3, 2, 3, &b7, &out, 0, false),
        "labels 3 for 2 rows",
    );
    shape(
        sx::softmax_xent_forward(ctx, &b6, &b2, 2, 3, &b7, &out, 0, false),
        "probs 7",
    );
    shape(
        sx::softmax_xent_forward(ctx, &b6, &b2, 2, 3, &b7, &out, 1, false),
        "loss_at 1 of 1",
    );
    shape(
        sx::softmax_xent_forward(ctx, &b6, &b2, 2, 0, &b7, &out, 0, false),
        "classes 0",
    );
    shape(
        sx::softmax_xent_backward(ctx, &b6, &b2, 2, 3, 1.0, &b7),
        "dx 7",
    );
    shape(
        sx::count_correct(ctx, &b6, &b2, 3, 2, &out, 0, false),
        "count labels",
    );
    shape(
        sx::count_correct(ctx, &b6, &b2, 2, 3, &out, 2, false),
        "count out_at",
    );
    let h = AdamHyper::default();
    shape(
        optim::adam_update(ctx, &b6, &b7, &b3, &b2, &h, 1e-3, &ctx.dummy),
        "adam grad",
    );
    shape(
        optim::adam_update(ctx, &b6, &b6, &b6, &b6, &h, 1e-3, &ctx.dummy),
        "adam aliasing",
    );
    shape(
        optim::adam_update(ctx, &b2, &b2, &b2, &b3, &h, 1e-3, &ctx.dummy),
        "adam v",
    );
    let h = SgdHyper {
        momentum: 0.9,
        ..SgdHyper::default()
    };
    shape(
        optim::sgd_update(ctx, &b6, &b6, None, &h, &ctx.dummy),
        "sgd no velocity",
    );
    shape(
        optim::sgd_update(ctx, &b6, &b6, Some(&b7), &h, &ctx.dummy),
        "sgd velocity 7",
    );
    let empty = ctx.upload(&[]).unwrap();
    shape(
        optim::sgd_update(ctx, &b6, &b6, None, &SgdHyper::default(), &empty),
        "empty guard",
    );
    let h = RmspropHyper::default();
    shape(
        optim::rmsprop_update(ctx, &b6, &b7, &b6, &h, 1e-3, &ctx.dummy),
        "rmsprop",
    );
    // Zero-length inputs record nothing.
    let pending = ctx.pending();
    let e2 = ctx.upload(&[]).unwrap();
    let e3 = ctx.upload(&[]).unwrap();
    let pending_after_uploads = ctx.pending();
    assert!(pending_after_uploads >= pending);
    optim::rmsprop_update(ctx, &empty, &e2, &e3, &h, 1e-3, &ctx.dummy).unwrap();
    sx::count_correct(ctx, &empty, &e2, 0, 3, &out, 0, true).unwrap();
    assert_eq!(ctx.pending(), pending_after_uploads);
}
