//! CPU-vs-GPU parity for `shaders/elementwise.wgsl` and `shaders/dropout.wgsl`: bias add and
//! gradient, ReLU, add / add-assign / axpy / scale, sum of squares, and dropout (whose mask and
//! output must equal the CPU's bit for bit), on awkward sizes, with outputs pre-filled with NaN
//! so an element a kernel forgets to write fails.
//!
//! Without any GPU adapter the tests print why and pass, except under `CI`.

use gpu::{dropout, elementwise as ew, GpuBuffer, GpuContext, GpuError};

mod common;
use common::{data, gpu};

const SIZES: [usize; 5] = [1, 7, 256, 1000, 4099];
const ROWS: [usize; 4] = [1, 5, 64, 257];
const COLS: [usize; 5] = [1, 3, 10, 37, 130];

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    common::assert_close(got, want, 1e-4, what)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn nans(ctx: &GpuContext, n: usize) -> GpuBuffer {
    ctx.upload(&vec![f32::NAN; n]).unwrap()
}

/// Data with a few special values (-0.0, NaN, +-inf, exact zeros) when long enough.
fn spiky(n: usize, seed: u32) -> Vec<f32> {
    let mut v = data(n, seed);
    let specials = [-0.0, f32::NAN, 0.0, f32::INFINITY, f32::NEG_INFINITY];
    for (k, s) in specials.iter().enumerate() {
        if n > 2 * k + 1 {
            v[2 * k + 1] = *s;
        }
    }
    v
}

#[test]
fn bias_add_and_grad_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (s, &rows) in ROWS.iter().enumerate() {
        for (t, &c) in COLS.iter().enumerate() {
            let seed = (10 * s + t) as u32;
            let what = format!("rows {rows} c {c}");
            let (y0, bias) = (data(rows * c, seed), data(c, seed + 100));
            let mut want = y0.clone();
            cpu::bias::bias_add(&mut want, &bias);
            let (gy, gb) = (ctx.upload(&y0).unwrap(), ctx.upload(&bias).unwrap());
            ew::bias_add(ctx, &gy, &gb).unwrap();
            assert_eq!(
                bits(&ctx.read(&gy).unwrap()),
                bits(&want),
                "bias_add {what}"
            );

            let dy = data(rows * c, seed + 200);
            let mut want = vec![0.0; c];
            cpu::bias::bias_grad(&dy, c, &mut want);
            let (gdy, gdb) = (ctx.upload(&dy).unwrap(), nans(ctx, c));
            ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
            assert_close(
                &ctx.read(&gdb).unwrap(),
                &want,
                &format!("bias_grad {what}"),
            );
            for b in [gy, gb, gdy, gdb] {
                ctx.release(b);
            }
        }
    }
}

#[test]
fn bias_grad_over_many_rows_is_accurate_and_deterministic() {
    let Some(ctx) = gpu() else { return };
    let (rows, c) = (20_000, 3);
    let dy = data(rows * c, 5);
    let mut want = vec![0.0; c];
    cpu::bias::bias_grad(&dy, c, &mut want);
    let (gdy, gdb) = (ctx.upload(&dy).unwrap(), nans(ctx, c));
    ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
    let first = ctx.read(&gdb).unwrap();
    // Sums of ~6,700 values of either sign: the absolute error, not the relative one, is small.
    common::assert_close(&first, &want, 1e-3, "bias_grad 20000 rows");
    ew::bias_grad(ctx, &gdy, c, &gdb).unwrap();
    assert_eq!(bits(&ctx.read(&gdb).unwrap()), bits(&first), "run to run");
    // Zero rows: zeros, as on the CPU.
    let empty = ctx.upload(&[]).unwrap();
    ew::bias_grad(ctx, &empty, c, &gdb).unwrap();
    assert_eq!(ctx.read(&gdb).unwrap(), vec![0.0; c]);
}

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
fn add_add_assign_axpy_and_scale_match_the_host() {
    let Some(ctx) = gpu() else { return };
    for (s, &n) in SIZES.iter().enumerate() {
        let (a, b) = (data(n, 60 + s as u32), data(n, 70 + s as u32));
        let (ga, gb) = (ctx.upload(&a).unwrap(), ctx.upload(&b).unwrap());
        let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();

        let gy = nans(ctx, n);
        ew::add(ctx, &ga, &gb, &gy).unwrap();
        assert_eq!(bits(&ctx.read(&gy).unwrap()), bits(&sum), "add n {n}");

        let gy = ctx.upload(&a).unwrap();
        ew::add_assign(ctx, &gy, &gb).unwrap();
        assert_eq!(
            bits(&ctx.read(&gy).unwrap()),
            bits(&sum),
            "add_assign n {n}"
        );

        let alpha = -0.37f32;
        let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| y + alpha * x).collect();
        let gy = ctx.upload(&b).unwrap();
        ew::axpy(ctx, alpha, &ga, &gy).unwrap();
        assert_close(&ctx.read(&gy).unwrap(), &want, &format!("axpy n {n}"));

        let want: Vec<f32> = a.iter().map(|x| alpha * x).collect();
        let gy = nans(ctx, n);
        ew::scale(ctx, alpha, &ga, &gy).unwrap();
        assert_eq!(bits(&ctx.read(&gy).unwrap()), bits(&want), "scale n {n}");
    }
}

#[test]
fn sum_squares_matches_an_f64_sum_and_writes_only_its_element() {
    let Some(ctx) = gpu() else { return };
    for (s, &n) in [0usize, 1, 7, 1000, 4096, 4097, 4099, 50_000]
        .iter()
        .enumerate()
    {
        let x = data(n, 80 + s as u32);
        let want = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32;
        let gx = ctx.upload(&x).unwrap();
        let out = nans(ctx, 3);
        ew::sum_squares(ctx, &gx, &out, 1).unwrap();
        let got = ctx.read(&out).unwrap();
        assert_close(&got[1..2], &[want], &format!("sum_squares n {n}"));
        assert!(
            got[0].is_nan() && got[2].is_nan(),
            "n {n}: wrote outside `at`"
        );
        ew::sum_squares(ctx, &gx, &out, 1).unwrap();
        assert_eq!(
            ctx.read(&out).unwrap()[1].to_bits(),
            got[1].to_bits(),
            "run to run"
        );
    }
}

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
    let shape = |r: Result<(), GpuError>, what: &str| {
        assert!(matches!(r, Err(GpuError::Shape(_))), "{what}: {r:?}");
    };
    shape(ew::bias_add(ctx, &b5, &b4), "bias_add 5 % 4");
    shape(ew::bias_grad(ctx, &b6, 3, &b4), "bias_grad db length");
    shape(ew::bias_grad(ctx, &b6, 0, &b4), "bias_grad c = 0");
    shape(ew::relu_forward(ctx, &b4, &b5), "relu_forward");
    shape(ew::relu_backward(ctx, &b4, &b4, &b5), "relu_backward");
    shape(ew::add(ctx, &b4, &b5, &b4), "add");
    shape(ew::add_assign(ctx, &b4, &b5), "add_assign");
    shape(ew::axpy(ctx, 1.0, &b4, &b5), "axpy");
    shape(ew::scale(ctx, 1.0, &b4, &b5), "scale");
    shape(ew::sum_squares(ctx, &b4, &b5, 5), "sum_squares at");
    shape(ew::sum_squares(ctx, &b4, &b4, 0), "sum_squares in place");
    shape(ew::add(ctx, &b4, &b4, &b4), "add in place");
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
    // Zero-length inputs record nothing.
    let empty = ctx.upload(&[]).unwrap();
    let pending = ctx.pending();
    ew::relu_forward_inplace(ctx, &empty).unwrap();
    let empty2 = ctx.upload(&[]).unwrap();
    ew::add_assign(ctx, &empty, &empty2).unwrap();
    assert_eq!(ctx.pending(), pending);
}
