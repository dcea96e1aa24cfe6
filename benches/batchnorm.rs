//! Batch norm on the CPU at the shapes of resnet20's stages (batch 128, NHWC): the plain-loop
//! reference against the fast kernels, training forward and backward, in GB/s of the
//! activations a pass must touch at least (forward: read x, write y; backward: read x and dy,
//! write dx). Batch norm is memory-bound when its kernels are right, so GB/s against the
//! machine's memory bandwidth is the figure to read. Every fast kernel is checked against
//! the reference before it is timed.
//! Run: `cargo bench --bench batchnorm`.

use cpu::batchnorm::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

mod common;
use common::{assert_close, data};

/// (name, rows = batch * h * w, channels): resnet20's three stages at batch 128.
const SHAPES: [(&str, usize, usize); 3] = [
    ("resnet20_stage1", 128 * 32 * 32, 16),
    ("resnet20_stage2", 128 * 16 * 16, 32),
    ("resnet20_stage3", 128 * 8 * 8, 64),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("batchnorm");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(2));
    g.warm_up_time(std::time::Duration::from_millis(300));
    for (name, rows, ch) in SHAPES {
        let d = BatchNormDims {
            rows,
            c: ch,
            eps: 1e-3,
        };
        let x = data(rows * ch, 1);
        let dy = data(rows * ch, 2);
        let gamma: Vec<f32> = data(ch, 3).iter().map(|v| 1.0 + v).collect();
        let beta = data(ch, 4);
        let (mut mean, mut var) = (vec![0.0; ch], vec![0.0; ch]);
        let (mut y, mut y_ref) = (vec![0.0; rows * ch], vec![0.0; rows * ch]);
        let (mut m_ref, mut v_ref) = (vec![0.0; ch], vec![0.0; ch]);
        batchnorm_forward_train_reference(
            &d, &x, &gamma, &beta, &mut y_ref, &mut m_ref, &mut v_ref,
        );
        batchnorm_forward_train(&d, &x, &gamma, &beta, &mut y, &mut mean, &mut var);
        assert_close(&y, &y_ref, name);
        let (mut dx, mut dg, mut db) = (vec![0.0; rows * ch], vec![0.0; ch], vec![0.0; ch]);
        let (mut dx_ref, mut dg_ref, mut db_ref) = (dx.clone(), dg.clone(), db.clone());
        batchnorm_backward_reference(
            &d,
            &x,
            &dy,
            &gamma,
            &mean,
            &var,
            &mut dx_ref,
            &mut dg_ref,
            &mut db_ref,
        );
        batchnorm_backward(&d, &x, &dy, &gamma, &mean, &var, &mut dx, &mut dg, &mut db);
        assert_close(&dx, &dx_ref, name);
        assert_close(&dg, &dg_ref, name);
        let bytes = (rows * ch * 4) as u64;
        g.throughput(Throughput::Bytes(2 * bytes));
        g.bench_with_input(BenchmarkId::new("forward_train", name), &(), |b, _| {
            b.iter(|| {
                batchnorm_forward_train(
                    &d,
                    &x,
                    &gamma,
                    &beta,
                    black_box(&mut y),
                    &mut mean,
                    &mut var,
                )
            })
        });
        g.throughput(Throughput::Bytes(3 * bytes));
        g.bench_with_input(BenchmarkId::new("backward", name), &(), |b, _| {
            b.iter(|| {
                batchnorm_backward(
                    &d,
                    &x,
                    &dy,
                    &gamma,
                    &mean,
                    &var,
                    black_box(&mut dx),
                    &mut dg,
                    &mut db,
                )
            })
        });
        // Batch norm then ReLU: fused, against the two kernels one after the other.
        let (mut z, mut dz) = (vec![0.0; rows * ch], vec![0.0; rows * ch]);
        g.throughput(Throughput::Bytes(2 * bytes));
        g.bench_with_input(
            BenchmarkId::new("forward_train_relu_fused", name),
            &(),
            |b, _| {
                b.iter(|| {
                    batchnorm_relu_forward_train(
                        &d,
                        &x,
                        &gamma,
                        &beta,
                        black_box(&mut y),
                        &mut mean,
                        &mut var,
                    )
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("forward_train_then_relu", name),
            &(),
            |b, _| {
                b.iter(|| {
                    batchnorm_forward_train(&d, &x, &gamma, &beta, &mut z, &mut mean, &mut var);
                    cpu::relu::relu_forward(&z, black_box(&mut y));
                })
            },
        );
        g.throughput(Throughput::Bytes(3 * bytes));
        g.bench_with_input(
            BenchmarkId::new("backward_relu_fused", name),
            &(),
            |b, _| {
                b.iter(|| {
                    batchnorm_relu_backward(
                        &d,
                        &x,
                        &dy,
                        &gamma,
                        &beta,
                        &mean,
                        &var,
                        black_box(&mut dx),
                        &mut dg,
                        &mut db,
                    )
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("relu_backward_then_backward", name),
            &(),
            |b, _| {
                b.iter(|| {
                    cpu::relu::relu_backward(&y, &dy, &mut dz);
                    batchnorm_backward(
                        &d,
                        &x,
                        &dz,
                        &gamma,
                        &mean,
                        &var,
                        black_box(&mut dx),
                        &mut dg,
                        &mut db,
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
