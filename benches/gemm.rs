//! GEMM: reference triple loop vs matrixmultiply on one thread vs split across the rayon pool,
//! in GFLOP/s (criterion's "elements/s" here count floating-point operations).
//!
//! The `gemm_gpu` group times the WGSL kernels of `shaders/gemm.wgsl` on the first wgpu
//! adapter (lavapipe where there is no hardware GPU), waiting for the GPU inside the timed region.
//!
//! Every variant is checked against the reference before it is timed.
//! Run: `cargo bench --bench gemm` (or `-- gemm_gpu` for the GPU group alone; a build without
//! the `gpu` feature has only the CPU groups).

use cpu::gemm::{gemm, gemm_flops, gemm_reference, gemm_serial, Mat};
use cpu::gemm_packed::{gemm_packed_with, Kernel};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
#[cfg(feature = "gpu")]
use gpu::{GemmVariant, GpuContext};
use std::hint::black_box;
#[cfg(feature = "gpu")]
use std::time::{Duration, Instant};

mod common;
use common::{assert_close, data};

/// Checks the top-left `corner` (rows of `rn` values) of a row-major product `c` with `n`
/// columns against the reference.
fn check_corner(c: &[f32], n: usize, corner: &[f32], rn: usize, what: &str) {
    let got: Vec<f32> = (0..corner.len() / rn)
        .flat_map(|i| c[i * n..i * n + rn].iter().copied())
        .collect();
    assert_close(&got, corner, &format!("{what} (top-left corner)"));
}

fn check(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) {
    let (am, bm) = (Mat::row_major(a, k), Mat::row_major(b, n));
    let mut want = vec![0.0; m * n];
    let (rm, rk, rn) = (m.min(96), k, n.min(96));
    // The reference on a corner of the product keeps validation quick at 1024^3.
    let mut corner = vec![0.0; rm * rn];
    gemm_reference(rm, rk, rn, am, bm, 0.0, &mut corner);
    for variant in 0..2 {
        if variant == 0 {
            gemm_serial(m, k, n, am, bm, 0.0, &mut want);
        } else {
            gemm(m, k, n, am, bm, 0.0, &mut want);
        }
        check_corner(&want, n, &corner, rn, &format!("gemm {m}x{k}x{n}"));
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(2));
    g.warm_up_time(std::time::Duration::from_millis(500));
    // Square sizes, then the shapes keras6 runs: per-image im2col GEMMs of its conv layers
    // and its dense layer at batch 64.
    let shapes = [
        (256, 256, 256),
        (1024, 1024, 1024),
        (1024, 288, 32),
        (256, 576, 64),
        (256, 1152, 128),
        (64, 2048, 10),
    ];
    for (m, k, n) in shapes {
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        check(m, k, n, &a, &b);
        let (am, bm) = (Mat::row_major(&a, k), Mat::row_major(&b, n));
        let mut out = vec![0.0; m * n];
        g.throughput(Throughput::Elements(gemm_flops(m, k, n)));
        let size = format!("{m}x{k}x{n}");
        if m * k * n <= 1 << 24 {
            g.bench_with_input(BenchmarkId::new("1_reference", &size), &(), |bch, _| {
                bch.iter(|| gemm_reference(m, k, n, am, bm, 0.0, black_box(&mut out)))
            });
        }
        g.bench_with_input(
            BenchmarkId::new("2_matrixmultiply_1thread", &size),
            &(),
            |bch, _| bch.iter(|| gemm_serial(m, k, n, am, bm, 0.0, black_box(&mut out))),
        );
        g.bench_with_input(
            BenchmarkId::new("3_matrixmultiply_rayon", &size),
            &(),
            |bch, _| bch.iter(|| gemm(m, k, n, am, bm, 0.0, black_box(&mut out))),
        );
        // Version 4, one thread, B packed once outside the timed loop (as conv2d packs its
        // kernel matrix once per layer call), with each micro-kernel this CPU runs. Each is
        // validated on the same corner first.
        for kernel in [Kernel::Avx512, Kernel::Avx2Fma] {
            if !kernel.supported() {
                eprintln!("skipped: version 4 {}: not on this CPU", kernel.name());
                continue;
            }
            let mut pb = cpu::gemm_packed::PackedB::default();
            pb.pack(&b, k, n, n, 1);
            let mut corner = vec![0.0; m.min(96) * n.min(96)];
            gemm_reference(m.min(96), k, n.min(96), am, bm, 0.0, &mut corner);
            gemm_packed_with(kernel, m, am, &pb, 0.0, &mut out, n);
            let what = format!("v4 {} {m}x{k}x{n}", kernel.name());
            check_corner(&out, n, &corner, n.min(96), &what);
            let id = format!("4_packed_{}_1thread", kernel.name());
            g.bench_with_input(BenchmarkId::new(id, &size), &(), |bch, _| {
                bch.iter(|| gemm_packed_with(kernel, m, am, &pb, 0.0, black_box(&mut out), n))
            });
        }
    }
    g.finish();
}

/// The GPU kernels at 256^3 and 1024^3. Each timed batch of iterations is recorded into one
/// command encoder (as a training step will be) and submitted once, and the clock stops only
/// after the GPU has finished, so the rate includes dispatch and submit overheads.
#[cfg(feature = "gpu")]
fn bench_gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            println!("gemm_gpu skipped: {e}");
            return;
        }
    };
    println!("gemm_gpu on {}", ctx.describe());
    let mut g = c.benchmark_group("gemm_gpu");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_millis(500));
    for (m, k, n) in [(256, 256, 256), (1024, 1024, 1024)] {
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let mut want = vec![0.0; m * n];
        gemm(
            m,
            k,
            n,
            Mat::row_major(&a, k),
            Mat::row_major(&b, n),
            0.0,
            &mut want,
        );
        let (ga, gb) = (ctx.upload(&a).unwrap(), ctx.upload(&b).unwrap());
        let gc = ctx.zeros(m * n).unwrap();
        g.throughput(Throughput::Elements(gemm_flops(m, k, n)));
        let size = format!("{m}x{k}x{n}");
        for (idx, v) in GemmVariant::ALL.into_iter().enumerate() {
            let run = || gpu::gemm(&ctx, v, m, k, n, &ga, false, &gb, false, &gc).unwrap();
            // Validate against the CPU (this first call also compiles the pipeline).
            run();
            let got = ctx.read(&gc).unwrap();
            assert_close(&got, &want, &format!("gpu {v:?} {size}"));
            let start = Instant::now();
            run();
            ctx.wait().unwrap();
            let once = start.elapsed();
            if once > Duration::from_secs(2) {
                println!("gemm_gpu {v:?} {size} skipped: {once:?} per iteration");
                continue;
            }
            let name = format!(
                "{}_{}",
                idx + 1,
                v.entry_point()
                    .split('_')
                    .skip(2)
                    .collect::<Vec<_>>()
                    .join("_")
            );
            g.bench_with_input(BenchmarkId::new(name, &size), &(), |bch, _| {
                bch.iter_custom(|iters| {
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
    g.finish();
}

#[cfg(feature = "gpu")]
criterion_group!(benches, bench, bench_gpu);
#[cfg(not(feature = "gpu"))]
criterion_group!(benches, bench);
criterion_main!(benches);
