//! `--device auto|cpu|gpu`, and the line every run starts with: which device and kernels run.

#[cfg(feature = "gpu")]
use std::sync::Arc;

use tensor::Device;

#[derive(
    clap::ValueEnum,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceFlag {
    /// A hardware GPU when there is one, else the CPU kernels (a software adapter such as
    /// Mesa lavapipe is slower than the CPU kernels, so auto never picks it).
    #[default]
    Auto,
    Cpu,
    /// The first GPU adapter wgpu finds, software ones included; an error when there is none.
    Gpu,
}

/// The device for `flag`, and the first line of the run naming it (and the adapter).
#[cfg(feature = "gpu")]
pub fn select(flag: DeviceFlag) -> anyhow::Result<(Device, String)> {
    match flag {
        DeviceFlag::Cpu => Ok((Device::Cpu, describe_cpu())),
        DeviceFlag::Gpu => {
            let ctx = gpu::GpuContext::new().map_err(|e| anyhow::anyhow!("--device gpu: {e}"))?;
            let line = format!("device: gpu: {}", ctx.describe());
            Ok((Device::Gpu(Arc::new(ctx)), line))
        }
        DeviceFlag::Auto => match gpu::GpuContext::new() {
            Ok(ctx) if ctx.is_hardware() => {
                let line = format!("device: gpu: {} (--device auto)", ctx.describe());
                Ok((Device::Gpu(Arc::new(ctx)), line))
            }
            Ok(ctx) => {
                let line = format!(
                    "{} (--device auto: the only GPU adapter, {}, is a software one; --device gpu uses it anyway)",
                    describe_cpu(),
                    ctx.describe()
                );
                Ok((Device::Cpu, line))
            }
            Err(_) => Ok((
                Device::Cpu,
                format!("{} (--device auto: no GPU adapter)", describe_cpu()),
            )),
        },
    }
}

/// [`select`] in a build without the `gpu` feature: `--device gpu` is an error saying so, and
/// `--device auto` is the CPU.
#[cfg(not(feature = "gpu"))]
pub fn select(flag: DeviceFlag) -> anyhow::Result<(Device, String)> {
    match flag {
        DeviceFlag::Cpu => Ok((Device::Cpu, describe_cpu())),
        DeviceFlag::Gpu => {
            // Always fails here, with the reason: this build has no GPU support.
            let device = Device::gpu().map_err(|e| anyhow::anyhow!("--device gpu: {e}"))?;
            let line = format!("device: {}", device.describe());
            Ok((device, line))
        }
        DeviceFlag::Auto => Ok((
            Device::Cpu,
            format!(
                "{} (--device auto: built without the `gpu` feature)",
                describe_cpu()
            ),
        )),
    }
}

/// e.g. `device: cpu (2 threads, AVX-512 FMA)`.
pub fn describe_cpu() -> String {
    let n = rayon::current_num_threads();
    format!(
        "device: cpu ({n} thread{}, {})",
        if n == 1 { "" } else { "s" },
        simd_level()
    )
}

/// `--threads N`: the CPU kernels' thread count (rayon's global pool). Without it rayon uses
/// `RAYON_NUM_THREADS`, or one thread per core.
pub fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(n) = threads else {
        return Ok(());
    };
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))
}

fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512 FMA";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "AVX2 FMA";
        }
        "SSE2"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "portable SIMD"
    }
}
