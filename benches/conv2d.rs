//! conv2d forward and both backward passes at the shapes of keras6's and resnet20's layers:
//! the plain-loop reference vs im2col + GEMM on the CPU, and the WGSL variants on the first
//! GPU adapter (group `conv2d_gpu`), in GFLOP/s. Every variant is checked against another
//! before it is timed.
//!
//! CPU, by [`ConvVariant`]: 1, the reference at batch 8 (too slow for 64 to be pleasant);
//! then at the training batch of 64, 2, im2col + GEMM with each GEMM under it (version 2,
//! matrixmultiply, and version 4 with each micro-kernel this CPU runs), 3, direct, and 4,
//! Winograd (F(2x2, 3x3) forward and input gradient, F(3x3, 2x2) weight gradient; strided
//! layers run direct), each on every version-4 micro-kernel. Kernels this CPU cannot run are skipped, with a line saying so.
//! Each is validated against the reference at batch 8 first. GPU: batch 8 on a software adapter (lavapipe),
//! 64 on a hardware one; each timed batch of iterations is recorded into one encoder and the
//! clock stops when the GPU has finished.
//! Run: `cargo bench --bench conv2d` (or `-- conv2d_gpu` for the GPU group alone; a build
//! without the `gpu` feature has only the CPU groups).

use cpu::conv2d::*;
use cpu::gemm_packed::{self, Kernel};
use cpu::Padding;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

mod common;
use common::{assert_close as close, data};

/// (name, h, c_in, c_out, stride): keras6's six 3x3 same convolutions, then resnet20's
/// distinct 3x3 same convolutions (stem, the three stages, the two strided stage entries).
const LAYERS: [(&str, usize, usize, usize, usize); 11] = [
    ("keras6_conv2d", 32, 3, 32, 1),
    ("keras6_conv2d_1", 32, 32, 32, 1),
    ("keras6_conv2d_2", 16, 32, 64, 1),
    ("keras6_conv2d_3", 16, 64, 64, 1),
    ("keras6_conv2d_4", 8, 64, 128, 1),
    ("keras6_conv2d_5", 8, 128, 128, 1),
    ("resnet20_stem", 32, 3, 16, 1),
    ("resnet20_stage1", 32, 16, 16, 1),
    ("resnet20_stage2_entry", 32, 16, 32, 2),
    ("resnet20_stage2", 16, 32, 32, 1),
    ("resnet20_stage3_entry", 16, 32, 64, 2),
];

fn bench(c: &mut Criterion) {
    for pass in ["forward", "backward_input", "backward_weight"] {
        let mut g = c.benchmark_group(format!("conv2d_{pass}"));
        g.sample_size(10);
        g.measurement_time(std::time::Duration::from_secs(2));
        g.warm_up_time(std::time::Duration::from_millis(300));
        for (name, h, ci, co, stride) in LAYERS {
            // The reference at batch 8 (it is slow), then im2col + each GEMM under it at 64.
            let (v4_512, v4_avx2) = (Some(Kernel::Avx512), Some(Kernel::Avx2Fma));
            for (variant, n, gemm, conv) in [
                ("1_reference", 8, None, ConvVariant::Reference),
                ("2_im2col_matrixmultiply", 64, None, ConvVariant::Im2col),
                ("2_im2col_avx512", 64, v4_512, ConvVariant::Im2col),
                ("2_im2col_avx2", 64, v4_avx2, ConvVariant::Im2col),
                ("3_direct_avx512", 64, v4_512, ConvVariant::Direct),
                ("3_direct_avx2", 64, v4_avx2, ConvVariant::Direct),
                ("4_winograd_avx512", 64, v4_512, ConvVariant::Winograd),
                ("4_winograd_avx2", 64, v4_avx2, ConvVariant::Winograd),
            ] {
                let chosen =
                    gemm_packed::choose(Some(gemm)).and_then(|()| choose_variant(Some(conv)));
                if let Err(e) = chosen {
                    eprintln!("skipped: {variant}: {e}");
                    continue;
                }
                let d = Conv2dDims::new(n, h, h, ci, 3, 3, co, stride, Padding::Same).unwrap();
                let x = data(d.input_len(), 1);
                let w = data(d.weight_len(), 2);
                let dy = data(d.output_len(), 3);
                let mut out = vec![0.0; d.input_len().max(d.output_len()).max(d.weight_len())];
                let fast = conv != ConvVariant::Reference;
                // Validate the fast variant, with its GEMM, against the reference at batch 8
                // on this layer's shape before timing it.
                if fast {
                    let d = Conv2dDims::new(8, h, h, ci, 3, 3, co, stride, Padding::Same).unwrap();
                    let x = &x[..d.input_len()];
                    let dy = &dy[..d.output_len()];
                    let (mut r, mut f) = (vec![0.0; d.output_len()], vec![0.0; d.output_len()]);
                    conv2d_forward_reference(&d, x, &w, None, &mut r);
                    conv2d_forward(&d, x, &w, None, false, &mut f);
                    close(&f, &r, name);
                    let (mut r, mut f) = (vec![0.0; d.input_len()], vec![0.0; d.input_len()]);
                    conv2d_backward_input_reference(&d, dy, &w, &mut r);
                    conv2d_backward_input(&d, dy, &w, &mut f);
                    close(&f, &r, name);
                    let (mut r, mut f) = (vec![0.0; d.weight_len()], vec![0.0; d.weight_len()]);
                    conv2d_backward_weight_reference(&d, x, dy, &mut r);
                    conv2d_backward_weight(&d, x, dy, &mut f);
                    close(&f, &r, name);
                }
                g.throughput(Throughput::Elements(d.flops()));
                let id = BenchmarkId::new(variant, format!("{name}_b{n}"));
                g.bench_with_input(id, &(), |b, _| {
                    b.iter(|| match (pass, fast) {
                        ("forward", false) => conv2d_forward_reference(
                            &d,
                            &x,
                            &w,
                            None,
                            black_box(&mut out[..d.output_len()]),
                        ),
                        ("forward", true) => conv2d_forward(
                            &d,
                            &x,
                            &w,
                            None,
                            false,
                            black_box(&mut out[..d.output_len()]),
                        ),
                        ("backward_input", false) => conv2d_backward_input_reference(
                            &d,
                            &dy,
                            &w,
                            black_box(&mut out[..d.input_len()]),
                        ),
                        ("backward_input", true) => {
                            conv2d_backward_input(&d, &dy, &w, black_box(&mut out[..d.input_len()]))
                        }
                        (_, false) => conv2d_backward_weight_reference(
                            &d,
                            &x,
                            &dy,
                            black_box(&mut out[..d.weight_len()]),
                        ),
                        (_, true) => conv2d_backward_weight(
                            &d,
                            &x,
                            &dy,
                            black_box(&mut out[..d.weight_len()]),
                        ),
                    })
                });
            }
        }
        g.finish();
    }
    gemm_packed::choose(None).expect("the default is always available");
    choose_variant(None).expect("the default is always available");
}

/// The WGSL variants: the direct kernel (forward only) and im2col + each GEMM kernel.
#[cfg(feature = "gpu")]
fn bench_gpu(c: &mut Criterion) {
    use gpu::conv2d::{self as g, ConvVariant};
    use gpu::{GemmVariant, GpuContext};
    use std::time::{Duration, Instant};
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            println!("conv2d_gpu skipped: {e}");
            return;
        }
    };
    println!("conv2d_gpu on {}", ctx.describe());
    let n = if ctx.is_hardware() { 64 } else { 8 };
    for pass in ["forward", "backward_input", "backward_weight"] {
        let mut group = c.benchmark_group(format!("conv2d_gpu_{pass}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(2));
        group.warm_up_time(Duration::from_millis(300));
        for (name, h, ci, co, stride) in LAYERS {
            let d = Conv2dDims::new(n, h, h, ci, 3, 3, co, stride, Padding::Same).unwrap();
            let (x, w, dy) = (
                data(d.input_len(), 1),
                data(d.weight_len(), 2),
                data(d.output_len(), 3),
            );
            let (gx, gw, gdy) = (
                ctx.upload(&x).unwrap(),
                ctx.upload(&w).unwrap(),
                ctx.upload(&dy).unwrap(),
            );
            let (want, len) = match pass {
                "forward" => {
                    let mut y = vec![0.0; d.output_len()];
                    conv2d_forward(&d, &x, &w, None, false, &mut y);
                    (y, d.output_len())
                }
                "backward_input" => {
                    let mut dx = vec![0.0; d.input_len()];
                    conv2d_backward_input(&d, &dy, &w, &mut dx);
                    (dx, d.input_len())
                }
                _ => {
                    let mut dw = vec![0.0; d.weight_len()];
                    conv2d_backward_weight(&d, &x, &dy, &mut dw);
                    (dw, d.weight_len())
                }
            };
            let out = ctx.zeros(len).unwrap();
            let mut variants = vec![];
            if pass == "forward" {
                variants.push(("1_direct".to_string(), ConvVariant::Direct));
            }
            for (i, gv) in GemmVariant::ALL.into_iter().enumerate() {
                let label = format!("{}_im2col_{}", i + 2, gv.entry_point());
                variants.push((label, ConvVariant::Im2colGemm(gv)));
            }
            for (label, v) in variants {
                let gv = match v {
                    ConvVariant::Im2colGemm(gv) => gv,
                    ConvVariant::Direct => GemmVariant::Naive,
                };
                let run = || {
                    match pass {
                        "forward" => g::conv2d_forward(&ctx, v, &d, &gx, &gw, None, false, &out),
                        "backward_input" => g::conv2d_backward_input(&ctx, gv, &d, &gdy, &gw, &out),
                        _ => g::conv2d_backward_weight(&ctx, gv, &d, &gx, &gdy, &out),
                    }
                    .unwrap()
                };
                run();
                close(&ctx.read(&out).unwrap(), &want, &format!("{label} {name}"));
                let start = Instant::now();
                run();
                ctx.wait().unwrap();
                if start.elapsed() > Duration::from_secs(1) {
                    println!(
                        "conv2d_gpu {label} {name} skipped: {:?} per call",
                        start.elapsed()
                    );
                    continue;
                }
                group.throughput(Throughput::Elements(d.flops()));
                let id = BenchmarkId::new(label, format!("{name}_b{n}"));
                group.bench_with_input(id, &(), |b, _| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            run();
                        }
                        ctx.wait().unwrap();
                        start.elapsed()
                    })
                });
            }
        }
        group.finish();
    }
}

#[cfg(feature = "gpu")]
criterion_group!(benches, bench, bench_gpu);
#[cfg(not(feature = "gpu"))]
criterion_group!(benches, bench);
criterion_main!(benches);
