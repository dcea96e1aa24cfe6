//! CPU-vs-GPU parity for conv2d: the WGSL forward (direct, and im2col + each GEMM variant, with
//! bias and ReLU fused), input gradient and weight gradient against the plain reference loops
//! of `cpu::conv2d`, on awkward shapes, strides and paddings, including batches split into
//! one-image chunks (forced by a small binding limit).

use super::*;
use cpu::conv2d::{self as reference, Conv2dDims};
use cpu::Padding;
use gpu::conv2d::{self as g, ConvVariant};
use gpu::GemmVariant;

/// (n, h, w, c_in, kh, kw, c_out, stride, padding)
type Shape = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    Padding,
);

const SHAPES: [Shape; 7] = [
    (2, 5, 7, 3, 3, 3, 4, 1, Padding::Same),
    (3, 9, 6, 2, 3, 3, 5, 2, Padding::Same),
    (1, 8, 8, 5, 5, 5, 3, 1, Padding::Valid),
    (2, 7, 7, 4, 1, 1, 6, 1, Padding::Same),
    (2, 7, 9, 3, 1, 1, 4, 2, Padding::Valid),
    (1, 1, 1, 7, 3, 3, 2, 1, Padding::Same),
    (3, 11, 10, 6, 3, 2, 9, 3, Padding::Valid),
];

fn dims(
    s: &(
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        Padding,
    ),
) -> Conv2dDims {
    let &(n, h, w, ci, kh, kw, co, st, pad) = s;
    Conv2dDims::new(n, h, w, ci, kh, kw, co, st, pad).unwrap()
}

fn check_all(ctx: &GpuContext, label: &str) {
    for (si, s) in SHAPES.iter().enumerate() {
        let d = dims(s);
        let seed = 10 * si as u32;
        let (x, w, b, dy) = (
            data(d.input_len(), seed),
            data(d.weight_len(), seed + 1),
            data(d.c_out, seed + 2),
            data(d.output_len(), seed + 3),
        );
        let mut want_y = vec![0.0; d.output_len()];
        reference::conv2d_forward_reference(&d, &x, &w, Some(&b), &mut want_y);
        let want_relu: Vec<f32> = want_y.iter().map(|v| v.max(0.0)).collect();
        let mut want_dx = vec![0.0; d.input_len()];
        reference::conv2d_backward_input_reference(&d, &dy, &w, &mut want_dx);
        let mut want_dw = vec![0.0; d.weight_len()];
        reference::conv2d_backward_weight_reference(&d, &x, &dy, &mut want_dw);

        let (gx, gw, gb, gdy) = (
            ctx.upload(&x).unwrap(),
            ctx.upload(&w).unwrap(),
            ctx.upload(&b).unwrap(),
            ctx.upload(&dy).unwrap(),
        );
        let mut variants = vec![ConvVariant::Direct];
        variants.extend(GemmVariant::ALL.map(ConvVariant::Im2colGemm));
        for v in variants {
            for relu in [false, true] {
                let gy = ctx.upload(&vec![f32::NAN; d.output_len()]).unwrap();
                g::conv2d_forward(ctx, v, &d, &gx, &gw, Some(&gb), relu, &gy).unwrap();
                let want = if relu { &want_relu } else { &want_y };
                let what = format!("{label} forward {v:?} relu={relu} {d:?}");
                assert_close(&ctx.read(&gy).unwrap(), want, 1e-4, &what);
                ctx.release(gy);
            }
        }
        for gv in GemmVariant::ALL {
            let gdx = ctx.upload(&vec![f32::NAN; d.input_len()]).unwrap();
            g::conv2d_backward_input(ctx, gv, &d, &gdy, &gw, &gdx).unwrap();
            let what = format!("{label} input gradient {gv:?} {d:?}");
            assert_close(&ctx.read(&gdx).unwrap(), &want_dx, 1e-4, &what);
            let gdw = ctx.upload(&vec![f32::NAN; d.weight_len()]).unwrap();
            g::conv2d_backward_weight(ctx, gv, &d, &gx, &gdy, &gdw).unwrap();
            let what = format!("{label} weight gradient {gv:?} {d:?}");
            assert_close(&ctx.read(&gdw).unwrap(), &want_dw, 1e-4, &what);
            ctx.release(gdx);
            ctx.release(gdw);
        }
    }
}

#[test]
fn every_conv_pass_matches_the_reference_loops() {
    let Some(ctx) = gpu() else { return };
    check_all(ctx, "whole batch");
}

#[test]
fn batches_split_into_image_chunks_give_the_same_result() {
    if gpu().is_none() {
        return;
    }
    // A scratch budget of one byte: every chunk is a single image.
    let small = GpuContext::new().unwrap();
    small.set_scratch_budget(1);
    check_all(&small, "one-image chunks");
}

#[test]
fn wrong_buffer_sizes_are_errors() {
    let Some(ctx) = gpu() else { return };
    let d = dims(&SHAPES[0]);
    let x = ctx.zeros(d.input_len()).unwrap();
    let w = ctx.zeros(d.weight_len() + 1).unwrap();
    let y = ctx.zeros(d.output_len()).unwrap();
    let v = ConvVariant::Im2colGemm(GemmVariant::Naive);
    let err = g::conv2d_forward(ctx, v, &d, &x, &w, None, false, &y).unwrap_err();
    assert!(err.to_string().contains("kernel"), "{err}");
    let err = g::conv2d_backward_weight(ctx, GemmVariant::Naive, &d, &x, &y, &w).unwrap_err();
    assert!(err.to_string().contains("conv2d"), "{err}");
}
