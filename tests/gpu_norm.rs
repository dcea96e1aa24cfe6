//! CPU-vs-GPU parity for the normalisation and shortcut kernels: batch normalisation
//! (`shaders/batchnorm.wgsl`), LRN (`shaders/lrn.wgsl`) and the option-A shortcut
//! (`shaders/shortcut.wgsl`), forward and backward, against `cpu::batchnorm`, `cpu::lrn` and
//! `cpu::shortcut` on awkward shapes.
//!
//! Outputs start as NaN so that an element a kernel forgets to write fails. Tolerance:
//! `|gpu - cpu| <= 1e-4 * max(1, |cpu|)`. The batch-norm inputs have a per-channel mean near 3
//! and a standard deviation near 1, where a naive f32 `E[x^2] - mean^2` would already be off.

use cpu::batchnorm as cbn;
use cpu::lrn::{self as clrn, LrnParams};
use cpu::shortcut::{self as csc, ShortcutDims};
use gpu::{batchnorm, lrn, shortcut, GpuBuffer, GpuContext, GpuError};

mod common;
use common::{assert_close, data, gpu};

const EPS: f32 = 1e-3;

fn nan_buffer(ctx: &GpuContext, len: usize) -> GpuBuffer {
    ctx.upload(&vec![f32::NAN; len]).unwrap()
}

fn read(ctx: &GpuContext, b: &GpuBuffer) -> Vec<f32> {
    ctx.read(b).unwrap()
}

/// `rows x c` values with mean about `3 + 0.1 j` and standard deviation about 1 per channel.
fn bn_input(rows: usize, c: usize, seed: u32) -> Vec<f32> {
    data(rows * c, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| 3.0 + 0.1 * (i % c) as f32 + 3.5 * v)
        .collect()
}

#[test]
fn batchnorm_train_infer_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    // [n, h, w, c] activations and dense [n, c] ones; 676 rows exercise the strided loop.
    let shapes = [
        [3, 5, 7, 10],
        [2, 1, 1, 17],
        [1, 1, 1, 3],
        [4, 13, 13, 3],
        [2, 9, 9, 1],
        [5, 1, 1, 7],
    ];
    for (s, sh) in shapes.iter().enumerate() {
        let (rows, c) = (sh[0] * sh[1] * sh[2], sh[3]);
        let seed = 10 * s as u32;
        let x = bn_input(rows, c, seed);
        let gamma: Vec<f32> = data(c, seed + 1).iter().map(|v| 1.0 + v).collect();
        let beta = data(c, seed + 2);
        let dy = data(rows * c, seed + 3);
        let what = format!("{sh:?}");

        let (mut y, mut mean, mut var) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        cbn::batchnorm_forward_train(&x, c, &gamma, &beta, EPS, &mut y, &mut mean, &mut var);
        let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        cbn::batchnorm_backward(
            &x, &dy, c, &gamma, &mean, &var, EPS, &mut dx, &mut dg, &mut db,
        );
        // Inference with made-up moving statistics (not the batch ones).
        let mm: Vec<f32> = mean.iter().map(|m| m + 0.25).collect();
        let mv: Vec<f32> = var.iter().map(|v| v * 1.5 + 0.1).collect();
        let mut yi = vec![0.0; x.len()];
        cbn::batchnorm_forward_infer(&x, c, &gamma, &beta, &mm, &mv, EPS, &mut yi);

        let up = |v: &[f32]| ctx.upload(v).unwrap();
        let (gx, ggamma, gbeta, gdy, gmm, gmv) =
            (up(&x), up(&gamma), up(&beta), up(&dy), up(&mm), up(&mv));
        let (gy, gmean, gvar) = (
            nan_buffer(ctx, x.len()),
            nan_buffer(ctx, c),
            nan_buffer(ctx, c),
        );
        batchnorm::batchnorm_forward_train(ctx, &gx, c, &ggamma, &gbeta, EPS, &gy, &gmean, &gvar)
            .unwrap();
        assert_close(&read(ctx, &gmean), &mean, 1e-4, &format!("mean {what}"));
        assert_close(&read(ctx, &gvar), &var, 1e-4, &format!("var {what}"));
        assert_close(&read(ctx, &gy), &y, 1e-4, &format!("y {what}"));

        let (gdx, gdg, gdb) = (
            nan_buffer(ctx, x.len()),
            nan_buffer(ctx, c),
            nan_buffer(ctx, c),
        );
        batchnorm::batchnorm_backward(
            ctx, &gx, &gdy, c, &ggamma, &gmean, &gvar, EPS, &gdx, &gdg, &gdb,
        )
        .unwrap();
        assert_close(&read(ctx, &gdb), &db, 1e-4, &format!("dbeta {what}"));
        assert_close(&read(ctx, &gdg), &dg, 1e-4, &format!("dgamma {what}"));
        assert_close(&read(ctx, &gdx), &dx, 1e-4, &format!("dx {what}"));

        let gyi = nan_buffer(ctx, x.len());
        batchnorm::batchnorm_forward_infer(ctx, &gx, c, &ggamma, &gbeta, &gmm, &gmv, EPS, &gyi)
            .unwrap();
        assert_close(&read(ctx, &gyi), &yi, 1e-4, &format!("inference {what}"));
    }
}

#[test]
fn batchnorm_with_no_rows_gives_zero_statistics_and_gradients() {
    let Some(ctx) = gpu() else { return };
    let c = 3;
    let (x, dx, y) = (
        ctx.upload(&[]).unwrap(),
        ctx.upload(&[]).unwrap(),
        ctx.upload(&[]).unwrap(),
    );
    let ones = ctx.upload(&[1.0; 3]).unwrap();
    let zeros = ctx.upload(&[0.0; 3]).unwrap();
    let (mean, var) = (nan_buffer(ctx, c), nan_buffer(ctx, c));
    batchnorm::batchnorm_forward_train(ctx, &x, c, &ones, &zeros, EPS, &y, &mean, &var).unwrap();
    assert_eq!(read(ctx, &mean), [0.0; 3]);
    assert_eq!(read(ctx, &var), [0.0; 3]);
    let (dg, db) = (nan_buffer(ctx, c), nan_buffer(ctx, c));
    batchnorm::batchnorm_backward(ctx, &x, &y, c, &ones, &mean, &var, EPS, &dx, &dg, &db).unwrap();
    assert_eq!(read(ctx, &dg), [0.0; 3]);
    assert_eq!(read(ctx, &db), [0.0; 3]);
}

#[test]
fn moving_averages_match_the_cpu_and_skip_a_non_finite_guard() {
    let Some(ctx) = gpu() else { return };
    let (moving, batch) = (bn_input(1, 17, 70), data(17, 71));
    let momentum = 0.99;
    let mut want = moving.clone();
    cbn::update_moving_average(&mut want, &batch, momentum);
    let gbatch = ctx.upload(&batch).unwrap();

    // No guard: the context's zero dummy.
    let gm = ctx.upload(&moving).unwrap();
    batchnorm::update_moving_average(ctx, &gm, &gbatch, momentum, &ctx.dummy).unwrap();
    assert_close(&read(ctx, &gm), &want, 1e-6, "unguarded");

    for (g, updates) in [
        (1.5, true),
        (-0.0, true),
        (f32::MAX, true),
        (f32::NAN, false),
        (f32::INFINITY, false),
        (f32::NEG_INFINITY, false),
    ] {
        let guard = ctx.upload(&[g]).unwrap();
        let gm = ctx.upload(&moving).unwrap();
        batchnorm::update_moving_average(ctx, &gm, &gbatch, momentum, &guard).unwrap();
        let got = read(ctx, &gm);
        if updates {
            assert_close(&got, &want, 1e-6, &format!("guard {g}"));
        } else {
            assert_eq!(got, moving, "guard {g} must leave the moving average alone");
        }
    }
}

#[test]
fn lrn_forward_and_backward_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut s = 0;
    for c in [1, 3, 10, 17] {
        for r in [0, 2, 5] {
            for (alpha, beta) in [(1.0, 0.5), (0.001 / 9.0, 0.75), (0.1, 1.0), (0.3, 0.6)] {
                s += 1;
                let p = LrnParams {
                    depth_radius: r,
                    bias: 1.0,
                    alpha,
                    beta,
                };
                let pixels = 2 * 5 * 7;
                let x: Vec<f32> = data(pixels * c, 100 + s).iter().map(|v| 6.0 * v).collect();
                let dy = data(x.len(), 200 + s);
                let mut y = vec![0.0; x.len()];
                clrn::lrn_forward(&x, c, &p, &mut y);
                let mut dx = vec![0.0; x.len()];
                clrn::lrn_backward(&x, &dy, c, &p, &mut dx);

                let (gx, gdy) = (ctx.upload(&x).unwrap(), ctx.upload(&dy).unwrap());
                let (gy, gdx) = (nan_buffer(ctx, x.len()), nan_buffer(ctx, x.len()));
                lrn::lrn_forward(ctx, &gx, c, &p, &gy).unwrap();
                lrn::lrn_backward(ctx, &gx, &gdy, c, &p, &gdx).unwrap();
                let what = format!("c {c} r {r} alpha {alpha} beta {beta}");
                assert_close(&read(ctx, &gy), &y, 1e-4, &format!("forward {what}"));
                assert_close(&read(ctx, &gdx), &dx, 1e-4, &format!("backward {what}"));
                for b in [gx, gdy, gy, gdx] {
                    ctx.release(b);
                }
            }
        }
    }
}

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
        let (gy, gdx) = (
            nan_buffer(ctx, d.output_len()),
            nan_buffer(ctx, d.input_len()),
        );
        shortcut::subsample_pad(ctx, &d, &gx, &gy).unwrap();
        shortcut::subsample_pad_backward(ctx, &d, &gdy, &gdx).unwrap();
        assert_eq!(read(ctx, &gy), y, "forward {d:?}");
        assert_eq!(read(ctx, &gdx), dx, "backward {d:?}");
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let shape = |r: Result<(), GpuError>| matches!(r, Err(GpuError::Shape(_)));
    let (rows, c) = (6, 4);
    let x = ctx.zeros(rows * c).unwrap();
    let y = ctx.zeros(rows * c).unwrap();
    let dx = ctx.zeros(rows * c).unwrap();
    let v = |len| ctx.zeros(len).unwrap();
    let (g, b, m, var) = (v(c), v(c), v(c), v(c));
    let short = v(c - 1);

    // Batch norm: a short per-channel vector, x not a multiple of c, c = 0, aliasing.
    assert!(shape(batchnorm::batchnorm_forward_train(
        ctx, &x, c, &g, &b, EPS, &y, &short, &var
    )));
    assert!(shape(batchnorm::batchnorm_forward_train(
        ctx, &x, 5, &g, &b, EPS, &y, &m, &var
    )));
    assert!(shape(batchnorm::batchnorm_forward_infer(
        ctx, &x, 0, &g, &b, &m, &var, EPS, &y
    )));
    assert!(shape(batchnorm::batchnorm_forward_infer(
        ctx, &x, c, &g, &b, &m, &var, EPS, &x
    )));
    assert!(shape(batchnorm::batchnorm_backward(
        ctx,
        &x,
        &y,
        c,
        &g,
        &m,
        &var,
        EPS,
        &short,
        &v(c),
        &v(c)
    )));
    assert!(shape(batchnorm::update_moving_average(
        ctx, &m, &short, 0.9, &ctx.dummy
    )));
    assert!(shape(batchnorm::update_moving_average(
        ctx,
        &m,
        &var,
        0.9,
        &ctx.upload(&[]).unwrap()
    )));

    // LRN.
    let p = LrnParams::default();
    assert!(shape(lrn::lrn_forward(ctx, &x, c, &p, &short)));
    assert!(shape(lrn::lrn_forward(ctx, &x, 5, &p, &y)));
    assert!(shape(lrn::lrn_backward(ctx, &x, &short, c, &p, &dx)));
    assert!(shape(lrn::lrn_backward(ctx, &x, &y, c, &p, &y)));

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
    assert!(shape(shortcut::subsample_pad(ctx, &d, &x, &short)));
    assert!(shape(shortcut::subsample_pad_backward(
        ctx, &d, &out, &short
    )));
    let zero_stride = ShortcutDims { stride: 0, ..d };
    assert!(shape(shortcut::subsample_pad(ctx, &zero_stride, &x, &out)));
    // Nothing invalid was recorded: the context still works.
    read(ctx, &out);
}
