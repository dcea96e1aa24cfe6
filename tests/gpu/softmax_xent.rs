//! `gpu::softmax_xent` (`shaders/softmax_xent.wgsl`) against `cpu::softmax_xent` and
//! `cpu::argmax`: the loss, its gradient, and the count of correct predictions.

use super::*;
use gpu::softmax_xent as sx;

const ROWS: [usize; 4] = [1, 5, 64, 257];
const CLASSES: [usize; 5] = [1, 3, 10, 37, 130];

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
            close(&ctx.read(&gp).unwrap(), &probs, &format!("probs {what}"));
            let got = ctx.read(&gloss).unwrap();
            close(&got[1..2], &[loss], &format!("loss {what}"));
            assert!(
                got[0].is_nan() && got[2].is_nan(),
                "{what}: wrote outside loss_at"
            );
            // Accumulating adds the same mean again.
            sx::softmax_xent_forward(ctx, &gz, &gl, rows, classes, &gp, &gloss, 1, true).unwrap();
            let again = ctx.read(&gloss).unwrap()[1];
            close(&[again], &[2.0 * loss], &format!("accumulated loss {what}"));

            let mut d = vec![f32::NAN; rows * classes];
            cpu::softmax_xent::softmax_xent_backward(&probs, &lab, classes, 0.7, &mut d);
            let gd = nans(ctx, rows * classes);
            let gprobs = ctx.upload(&probs).unwrap();
            sx::softmax_xent_backward(ctx, &gprobs, &gl, rows, classes, 0.7, &gd).unwrap();
            // Values are O(1 / rows): compare relative to the largest.
            let big = d.iter().fold(1e-20f32, |a, &v| a.max(v.abs()));
            let scaled = |v: &[f32]| v.iter().map(|x| x / big).collect::<Vec<_>>();
            let got = ctx.read(&gd).unwrap();
            close(&scaled(&got), &scaled(&d), &format!("dlogits {what}"));
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
    close(&ctx.read(&gp).unwrap(), &p, "probs of huge logits");
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

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b2, b3, b6, b7) = (
        ctx.zeros(2).unwrap(),
        ctx.zeros(3).unwrap(),
        ctx.zeros(6).unwrap(),
        ctx.zeros(7).unwrap(),
    );
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
}
