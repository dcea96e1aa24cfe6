//! `gpu::batchnorm` (`shaders/batchnorm.wgsl`) against `cpu::batchnorm`: training and
//! inference forward, backward and the moving averages, on awkward shapes.
//!
//! The inputs have a per-channel mean near 3 and a standard deviation near 1, where a naive f32
//! `E[x^2] - mean^2` would already be off.

use super::*;
use cpu::batchnorm as cbn;
use gpu::batchnorm;

const EPS: f32 = 1e-3;

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
        let d = cbn::BatchNormDims { rows, c, eps: EPS };
        cbn::batchnorm_forward_train(&d, &x, &gamma, &beta, &mut y, &mut mean, &mut var);
        let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        cbn::batchnorm_backward(&d, &x, &dy, &gamma, &mean, &var, &mut dx, &mut dg, &mut db);
        // Inference with made-up moving statistics (not the batch ones).
        let mm: Vec<f32> = mean.iter().map(|m| m + 0.25).collect();
        let mv: Vec<f32> = var.iter().map(|v| v * 1.5 + 0.1).collect();
        let mut yi = vec![0.0; x.len()];
        cbn::batchnorm_forward_infer(&d, &x, &gamma, &beta, &mm, &mv, &mut yi);

        let up = |v: &[f32]| ctx.upload(v).unwrap();
        let (gx, ggamma, gbeta, gdy, gmm, gmv) =
            (up(&x), up(&gamma), up(&beta), up(&dy), up(&mm), up(&mv));
        let (gy, gmean, gvar) = (nans(ctx, x.len()), nans(ctx, c), nans(ctx, c));
        batchnorm::batchnorm_forward_train(ctx, &d, &gx, &ggamma, &gbeta, &gy, &gmean, &gvar)
            .unwrap();
        assert_close(&read(ctx, &gmean), &mean, 1e-4, &format!("mean {what}"));
        assert_close(&read(ctx, &gvar), &var, 1e-4, &format!("var {what}"));
        assert_close(&read(ctx, &gy), &y, 1e-4, &format!("y {what}"));

        let (gdx, gdg, gdb) = (nans(ctx, x.len()), nans(ctx, c), nans(ctx, c));
        batchnorm::batchnorm_backward(ctx, &d, &gx, &gdy, &ggamma, &gmean, &gvar, &gdx, &gdg, &gdb)
            .unwrap();
        assert_close(&read(ctx, &gdb), &db, 1e-4, &format!("dbeta {what}"));
        assert_close(&read(ctx, &gdg), &dg, 1e-4, &format!("dgamma {what}"));
        assert_close(&read(ctx, &gdx), &dx, 1e-4, &format!("dx {what}"));

        let gyi = nans(ctx, x.len());
        batchnorm::batchnorm_forward_infer(ctx, &d, &gx, &ggamma, &gbeta, &gmm, &gmv, &gyi)
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
    let (mean, var) = (nans(ctx, c), nans(ctx, c));
    let d = cbn::BatchNormDims {
        rows: 0,
        c,
        eps: EPS,
    };
    batchnorm::batchnorm_forward_train(ctx, &d, &x, &ones, &zeros, &y, &mean, &var).unwrap();
    assert_eq!(read(ctx, &mean), [0.0; 3]);
    assert_eq!(read(ctx, &var), [0.0; 3]);
    let (dg, db) = (nans(ctx, c), nans(ctx, c));
    batchnorm::batchnorm_backward(ctx, &d, &x, &y, &ones, &mean, &var, &dx, &dg, &db).unwrap();
    assert_eq!(read(ctx, &dg), [0.0; 3]);
    assert_eq!(read(ctx, &db), [0.0; 3]);
}

#[test]
fn moving_averages_match_the_cpu_and_skip_a_non_finite_guard() {
    let Some(ctx) = gpu() else { return };
    let (moving, batch) = (bn_input(1, 17, 70), data(17, 71));
    let momentum = 0.99;
    let mut want = moving.clone();
    cbn::update_moving_average(momentum, &batch, &mut want);
    let gbatch = ctx.upload(&batch).unwrap();

    // No guard: the context's zero dummy.
    let gm = ctx.upload(&moving).unwrap();
    batchnorm::update_moving_average(ctx, momentum, &gbatch, &gm, None).unwrap();
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
        batchnorm::update_moving_average(ctx, momentum, &gbatch, &gm, Some(&guard)).unwrap();
        let got = read(ctx, &gm);
        if updates {
            assert_close(&got, &want, 1e-6, &format!("guard {g}"));
        } else {
            assert_eq!(got, moving, "guard {g} must leave the moving average alone");
        }
    }
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (rows, c) = (6, 4);
    let x = ctx.zeros(rows * c).unwrap();
    let y = ctx.zeros(rows * c).unwrap();
    let v = |len| ctx.zeros(len).unwrap();
    let (g, b, m, var) = (v(c), v(c), v(c), v(c));
    let short = v(c - 1);

    let d = cbn::BatchNormDims { rows, c, eps: EPS };
    let train = batchnorm::batchnorm_forward_train;
    let infer = batchnorm::batchnorm_forward_infer;
    // A short per-channel vector, x not rows * c, c = 0, aliasing.
    shape(train(ctx, &d, &x, &g, &b, &y, &short, &var), "short mean");
    let five = cbn::BatchNormDims {
        rows,
        c: 5,
        eps: EPS,
    };
    shape(
        train(ctx, &five, &x, &g, &b, &y, &m, &var),
        "x not rows * c",
    );
    let zero_c = cbn::BatchNormDims {
        rows,
        c: 0,
        eps: EPS,
    };
    shape(infer(ctx, &zero_c, &x, &g, &b, &m, &var, &y), "c = 0");
    shape(infer(ctx, &d, &x, &g, &b, &m, &var, &x), "y aliasing x");
    shape(
        batchnorm::batchnorm_backward(ctx, &d, &x, &y, &g, &m, &var, &short, &v(c), &v(c)),
        "short dx",
    );
    shape(
        batchnorm::update_moving_average(ctx, 0.9, &short, &m, None),
        "short batch",
    );
    let empty_guard = ctx.upload(&[]).unwrap();
    shape(
        batchnorm::update_moving_average(ctx, 0.9, &var, &m, Some(&empty_guard)),
        "empty guard",
    );
    // Nothing invalid was recorded: the context still works.
    read(ctx, &y);
}

/// Batch norm + ReLU as one op (`tensor::ops::batchnorm_relu_*`): the GPU runs batch norm's
/// kernels and the ReLU's, the CPU its fused kernels; forward and backward agree.
#[test]
fn fused_batchnorm_relu_matches_the_cpu() {
    use tensor::{Device, Tensor};
    let Some(ctx) = gpu() else { return };
    let dev = Device::Gpu(ctx.clone());
    let (rows, c) = (3 * 5 * 7, 10);
    let x = Tensor::from_vec([3, 5, 7, c], data(rows * c, 70)).unwrap();
    let gamma = Tensor::from_vec([c], data(c, 71).iter().map(|v| 1.0 + v).collect()).unwrap();
    let beta = Tensor::from_vec([c], data(c, 72)).unwrap();
    let dy = Tensor::from_vec([3, 5, 7, c], data(rows * c, 73)).unwrap();
    let on = |t: &Tensor| t.to_device(&dev).unwrap();
    let (y, m, v) = tensor::ops::batchnorm_relu_train(&x, &gamma, &beta, EPS).unwrap();
    let (gy, gm, gv) =
        tensor::ops::batchnorm_relu_train(&on(&x), &on(&gamma), &on(&beta), EPS).unwrap();
    assert!(y.as_slice().contains(&0.0), "no input was clamped");
    close(&gy.to_vec(), y.as_slice(), "y");
    close(&gm.to_vec(), m.as_slice(), "mean");
    close(&gv.to_vec(), v.as_slice(), "var");
    let cpu = tensor::ops::batchnorm_relu_backward(&x, &y, &dy, &gamma, &beta, &m, &v, EPS);
    let g = tensor::ops::batchnorm_relu_backward(
        &on(&x),
        &gy,
        &on(&dy),
        &on(&gamma),
        &on(&beta),
        &gm,
        &gv,
        EPS,
    );
    let ((dx, dg, db), (gdx, gdg, gdb)) = (cpu.unwrap(), g.unwrap());
    close(&gdx.to_vec(), dx.as_slice(), "dx");
    close(&gdg.to_vec(), dg.as_slice(), "dgamma");
    close(&gdb.to_vec(), db.as_slice(), "dbeta");
}
