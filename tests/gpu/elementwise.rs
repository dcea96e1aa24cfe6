//! `gpu::elementwise` add / add-assign / axpy / scale and the sum of squares
//! (`shaders/elementwise.wgsl`) against the host.

use super::*;
use gpu::elementwise as ew;

const SIZES: [usize; 5] = [1, 7, 256, 1000, 4099];

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
        close(&ctx.read(&gy).unwrap(), &want, &format!("axpy n {n}"));

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
        close(&got[1..2], &[want], &format!("sum_squares n {n}"));
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
fn bad_lengths_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let (b4, b5) = (ctx.zeros(4).unwrap(), ctx.zeros(5).unwrap());
    shape(ew::add(ctx, &b4, &b5, &b4), "add");
    shape(ew::add_assign(ctx, &b4, &b5), "add_assign");
    shape(ew::axpy(ctx, 1.0, &b4, &b5), "axpy");
    shape(ew::scale(ctx, 1.0, &b4, &b5), "scale");
    shape(ew::sum_squares(ctx, &b4, &b5, 5), "sum_squares at");
    shape(ew::sum_squares(ctx, &b4, &b4, 0), "sum_squares in place");
    shape(ew::add(ctx, &b4, &b4, &b4), "add in place");
    // Zero-length inputs record nothing.
    let (empty, empty2) = (ctx.upload(&[]).unwrap(), ctx.upload(&[]).unwrap());
    let pending = ctx.pending();
    ew::add_assign(ctx, &empty, &empty2).unwrap();
    assert_eq!(ctx.pending(), pending);
}
