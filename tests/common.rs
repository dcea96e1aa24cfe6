//! Shared helpers for the cross-crate tests.
#![allow(dead_code)]

use std::path::PathBuf;

use rand::{rngs::StdRng, Rng, SeedableRng};
use tensor::{Shape, Tensor};

/// A tensor of uniform values in `[lo, hi)` from a fixed seed.
pub fn random(shape: impl Into<Shape>, seed: u64, lo: f32, hi: f32) -> Tensor {
    let shape = shape.into();
    let mut rng = StdRng::seed_from_u64(seed);
    let v = (0..shape.numel())
        .map(|_| rng.random_range(lo..hi))
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// The real CIFAR-10 subset beside the checkout, or `None` with a printed reason.
pub fn subset_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SCRATCHNET_CIFAR_SUBSET")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/cifar10-subset")
        });
    if dir.join("data_batch_1.bin").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: the CIFAR-10 subset is not at {} (set SCRATCHNET_CIFAR_SUBSET)",
            dir.display()
        );
        None
    }
}

/// The GPU shared by a test binary (so each pipeline compiles once per binary), or `None` with
/// the reason on stderr when there is no adapter. Under `CI`, where lavapipe is installed, a
/// missing adapter is a failure instead: the GPU tests must run there.
pub fn gpu() -> Option<&'static std::sync::Arc<gpu::GpuContext>> {
    use std::sync::{Arc, OnceLock};
    static CTX: OnceLock<Result<Arc<gpu::GpuContext>, String>> = OnceLock::new();
    match CTX.get_or_init(|| {
        gpu::GpuContext::new()
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }) {
        Ok(ctx) => Some(ctx),
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so the GPU tests must run, but: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

/// `len` values uniform in [-0.5, 0.5) from the counter hash the dropout kernels share.
pub fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| cpu::rng::uniform(seed, i) - 0.5)
        .collect()
}

/// Fails unless every `|got - want| <= tol * max(1, |want|)`, naming the first bad element.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: element {idx} is {g}, the CPU reference says {w}"
        );
    }
}
