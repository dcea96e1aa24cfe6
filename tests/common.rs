//! Shared helpers for the cross-crate tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
#[cfg(feature = "gpu")]
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

/// Runs the `scratchnet` binary with `args` (2 rayon threads, so results do not depend on the
/// machine's core count).
pub fn scratchnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scratchnet"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run scratchnet")
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fresh, empty folder for one test, removed with everything in it when the value is dropped
/// (a test's folders hold fake CIFAR-10 batches, runs and weights: hundreds of MB that would
/// otherwise pile up in the temporary directory, run after run). Use it as a `Path`.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh, empty folder named after the test (`scratchnet-<name>-XXXXXX`).
pub fn temp_dir(name: &str) -> Scratch {
    Scratch(
        tempfile::Builder::new()
            .prefix(&format!("scratchnet-{name}-"))
            .tempdir()
            .expect("create a temporary folder"),
    )
}

/// A CIFAR-10 binary folder with `records` random images per batch file.
pub fn tiny_cifar(name: &str, records: usize) -> Scratch {
    let d = temp_dir(name);
    let mut state = 12345u32;
    let mut next = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    for file in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ] {
        let mut bytes = Vec::with_capacity(records * 3073);
        for _ in 0..records {
            bytes.push(next() % 10);
            bytes.extend((0..3072).map(|_| next()));
        }
        std::fs::write(d.join(format!("{file}.bin")), bytes).unwrap();
    }
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
