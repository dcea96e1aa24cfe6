//! CPU-vs-GPU parity for GEMM: every WGSL variant of `shaders/gemm.wgsl` against
//! `cpu::gemm::gemm_reference` on awkward shapes with all four transpose combinations, plus the
//! plumbing around it (binding limit, buffer cache, shape errors, batched recording).
//!
//! Without any GPU adapter the tests print why and pass, except under `CI`, where lavapipe is
//! installed and a missing adapter is a failure.
//!
//! Tolerance: |gpu - ref| <= 1e-4 * max(1, |ref|). Inputs are uniform in [-0.5, 0.5) and k is
//! at most 129 here, so the rounding difference between orders of summation (and fma against
//! multiply-then-add) stays near k * 2^-24 * 0.25 ~ 2e-6; no sqrt(k) scaling is needed.

use super::*;
use cpu::gemm::{gemm_reference, Mat};
use gpu::{gemm, gemm_view, Epilogue, GemmVariant, View};

/// The reference product of stored A and B (each row-major, possibly as the transpose).
// BLAS's argument list, as the kernel under test takes it.
#[allow(clippy::too_many_arguments)]
fn reference(m: usize, k: usize, n: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
    let am = if ta {
        Mat::row_major(a, m).t()
    } else {
        Mat::row_major(a, k)
    };
    let bm = if tb {
        Mat::row_major(b, k).t()
    } else {
        Mat::row_major(b, n)
    };
    let mut c = vec![0.0; m * n];
    gemm_reference(m, k, n, am, bm, 0.0, &mut c);
    c
}

#[test]
fn every_variant_matches_the_cpu_reference_on_awkward_shapes_and_transposes() {
    let Some(ctx) = gpu() else { return };
    eprintln!("GPU: {}", ctx.describe());
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 13, 9),
        (64, 27, 32),
        (33, 65, 31),
        (100, 3, 129),
        (128, 96, 80),
        (257, 33, 10),
    ];
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let (a, b) = (data(m * k, 2 * s as u32), data(k * n, 2 * s as u32 + 1));
        let (ga, gb) = (ctx.upload(&a).unwrap(), ctx.upload(&b).unwrap());
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let want = reference(m, k, n, &a, ta, &b, tb);
            for v in GemmVariant::ALL {
                // Start from NaN so that an element the kernel forgets to write fails.
                let gc = ctx.upload(&vec![f32::NAN; m * n]).unwrap();
                gemm(ctx, v, m, k, n, &ga, ta, &gb, tb, &gc).unwrap();
                let got = ctx.read(&gc).unwrap();
                close(&got, &want, &format!("{v:?} {m}x{k}x{n} ta={ta} tb={tb}"));
                ctx.release(gc);
            }
        }
        ctx.release(ga);
        ctx.release(gb);
    }
}

#[test]
fn grids_past_65535_workgroups_spill_into_the_second_dimension() {
    let Some(ctx) = gpu() else { return };
    // 65,537 tiles of 64 columns for the register-blocked kernel, 4x that for the others.
    let (m, k, n) = (1, 2, 65_536 * 64 + 1);
    let (a, b) = (data(m * k, 7), data(k * n, 8));
    let want = reference(m, k, n, &a, false, &b, false);
    let (ga, gb) = (ctx.upload(&a).unwrap(), ctx.upload(&b).unwrap());
    for v in GemmVariant::ALL {
        let gc = ctx.upload(&vec![f32::NAN; m * n]).unwrap();
        gemm(ctx, v, m, k, n, &ga, false, &gb, false, &gc).unwrap();
        close(&ctx.read(&gc).unwrap(), &want, &format!("{v:?} 1x2x{n}"));
        ctx.release(gc);
    }
}

#[test]
fn gemms_recorded_into_one_encoder_keep_their_own_shapes_and_order() {
    if gpu().is_none() {
        return;
    }
    // A context of its own: a test reading back from the shared one at the same time would
    // submit the open encoder between the two recordings (seen as a rare failure of the
    // `pending` assertion below).
    let ctx = &GpuContext::new().unwrap();
    let (a1, b1) = (data(5 * 3, 11), data(3 * 4, 12));
    let (a2, b2) = (data(2 * 6, 13), data(6 * 9, 14));
    let (ga1, gb1, gc1) = (
        ctx.upload(&a1).unwrap(),
        ctx.upload(&b1).unwrap(),
        ctx.zeros(5 * 4).unwrap(),
    );
    let (ga2, gb2, gc2) = (
        ctx.upload(&a2).unwrap(),
        ctx.upload(&b2).unwrap(),
        ctx.zeros(2 * 9).unwrap(),
    );
    let v = GemmVariant::RegisterBlocked;
    gemm(ctx, v, 5, 3, 4, &ga1, false, &gb1, false, &gc1).unwrap();
    gemm(ctx, v, 2, 6, 9, &ga2, false, &gb2, false, &gc2).unwrap();
    // Nothing was submitted yet: both are recorded into the context's one open encoder.
    assert!(ctx.pending() >= 2, "{} commands pending", ctx.pending());
    let want1 = reference(5, 3, 4, &a1, false, &b1, false);
    let want2 = reference(2, 6, 9, &a2, false, &b2, false);
    close(&ctx.read(&gc1).unwrap(), &want1, "first of two");
    close(&ctx.read(&gc2).unwrap(), &want2, "second of two");
}

#[test]
fn k_zero_gives_a_zero_matrix() {
    let Some(ctx) = gpu() else { return };
    let (ga, gb) = (ctx.upload(&[]).unwrap(), ctx.upload(&[]).unwrap());
    let gc = ctx.upload(&[f32::NAN; 6]).unwrap();
    gemm(
        ctx,
        GemmVariant::Tiled,
        2,
        0,
        3,
        &ga,
        false,
        &gb,
        false,
        &gc,
    )
    .unwrap();
    assert_eq!(ctx.read(&gc).unwrap(), vec![0.0; 6]);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let a = ctx.zeros(6).unwrap();
    let b = ctx.zeros(12).unwrap();
    let c = ctx.zeros(8).unwrap();
    let v = GemmVariant::Naive;
    // A is 2x3 = 6 but B should be 3x4 = 12 and C 2x4 = 8: all fine.
    assert!(gemm(ctx, v, 2, 3, 4, &a, false, &b, false, &c).is_ok());
    // k = 4 needs 8 elements of A.
    let err = gemm(ctx, v, 2, 4, 3, &a, false, &b, false, &c).unwrap_err();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
    assert!(err.to_string().contains("A is 2x4"), "{err}");
    // C may not alias an input.
    let err = gemm(ctx, v, 2, 3, 2, &a, false, &b, false, &a).unwrap_err();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
}

#[test]
fn a_buffer_past_the_binding_limit_is_too_large() {
    let Some(ctx) = gpu() else { return };
    // The real limit: refused before anything is allocated.
    let limit = ctx.binding_limit();
    let err = ctx.zeros((limit / 4 + 1) as usize).unwrap_err();
    assert!(
        matches!(err, GpuError::TooLarge { bytes, limit: l, .. } if bytes > l && l == limit),
        "{err}"
    );
    // A small fake limit, to test uploads without a 128 MiB host vector.
    let small = GpuContext::with_binding_limit(1024).unwrap();
    assert!(small.upload(&[1.0; 256]).is_ok());
    let err = small.upload(&[1.0; 257]).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::TooLarge {
                bytes: 1028,
                limit: 1024,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("binding limit"), "{err}");
}

#[test]
fn a_released_buffer_of_the_same_size_is_reused() {
    let Some(ctx) = gpu() else { return };
    // A size no other test uses, so parallel tests cannot take it from the cache.
    let len = 12_345;
    let first = ctx.zeros(len).unwrap();
    let handle = first.raw().clone();
    ctx.release(first);
    let other_size = ctx.zeros(len + 1).unwrap();
    assert_ne!(
        *other_size.raw(),
        handle,
        "a different size must not be reused"
    );
    let again = ctx.upload(&vec![3.0; len]).unwrap();
    assert_eq!(*again.raw(), handle, "the freed buffer should come back");
    assert_eq!(ctx.read(&again).unwrap(), vec![3.0; len]);
}

#[test]
fn offsets_accumulate_bias_and_relu_epilogue_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    // C[2.., :] += A[1.., :] . B[3.., :]^T + bias, then ReLU, on parts of larger buffers.
    let (m, k, n) = (19, 23, 13);
    let (a, b) = (data((m + 1) * k, 21), data((n + 3) * k, 22));
    let c0 = data((m + 2) * n, 23);
    let bias = data(n, 24);
    let prod = reference(m, k, n, &a[k..], false, &b[3 * k..], true);
    let (ga, gb, gbias) = (
        ctx.upload(&a).unwrap(),
        ctx.upload(&b).unwrap(),
        ctx.upload(&bias).unwrap(),
    );
    for v in GemmVariant::ALL {
        let gc = ctx.upload(&c0).unwrap();
        let epi = Epilogue {
            accumulate: true,
            bias: Some(&gbias),
            relu: true,
        };
        let av = View::row_major(&ga, k).at(k);
        let bv = View::row_major(&gb, k).at(3 * k).t();
        gemm_view(ctx, v, m, k, n, av, bv, &gc, 2 * n, epi).unwrap();
        let got = ctx.read(&gc).unwrap();
        assert_eq!(&got[..2 * n], &c0[..2 * n], "{v:?}: rows before the offset");
        let want: Vec<f32> = (0..m * n)
            .map(|e| (c0[2 * n + e] + prod[e] + bias[e % n]).max(0.0))
            .collect();
        close(&got[2 * n..], &want, &format!("{v:?} epilogue"));
        ctx.release(gc);
    }
}
