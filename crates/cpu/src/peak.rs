//! The machine's FMA peak, measured: every thread of the rayon pool runs a loop of fused
//! multiply-adds on registers only (no memory traffic), with enough independent accumulators
//! to cover the FMA latency (4 cycles x 2 FMA ports = 8 in flight; 12 are used). The rate is
//! the best a kernel on this CPU could reach, so `bench` reports every GFLOP/s figure as a
//! percentage of it.
//!
//! Math: each `fmadd` of a `W`-lane vector is `2 W` floating-point operations; a thread runs
//! `12 * iterations` of them.

use std::time::Instant;

/// Accumulators per thread.
const CHAINS: usize = 12;

/// Measured FMA throughput of all threads together, in GFLOP/s, and the instruction set used
/// (`"AVX-512"`, `"AVX2"` or `"scalar"`): the best of five runs (on a shared machine a run
/// can lose its core for a while; the best one is the closest to what the CPU can do). Takes
/// about `millis` milliseconds.
pub fn fma_peak_gflops(millis: u64) -> (f64, &'static str) {
    let isa = isa();
    // Calibrate the iteration count on one thread, then run it on all threads at once.
    let mut iterations = 1u64 << 16;
    loop {
        let t = Instant::now();
        std::hint::black_box(run(isa, iterations));
        if t.elapsed().as_millis() as u64 * 5 >= millis || iterations >= 1 << 40 {
            break;
        }
        iterations *= 2;
    }
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            let flops: Vec<f64> = rayon::broadcast(|_| {
                std::hint::black_box(run(isa, iterations));
                (iterations * CHAINS as u64 * 2 * lanes(isa)) as f64
            });
            flops.iter().sum::<f64>() / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max);
    (best, isa)
}

fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2";
        }
    }
    "scalar"
}

fn lanes(isa: &str) -> u64 {
    match isa {
        "AVX-512" => 16,
        "AVX2" => 8,
        _ => 1,
    }
}

/// Runs the loop; returns a value that depends on every accumulator (so none is optimised
/// away).
fn run(isa: &str, iterations: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each function runs only when `isa()` found its instruction set.
        match isa {
            "AVX-512" => return unsafe { x86::avx512(iterations) },
            "AVX2" => return unsafe { x86::avx2(iterations) },
            _ => {}
        }
    }
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iterations: u64) -> f32 {
        let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, m, c);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iterations: u64) -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, m, c);
            }
        }
        let mut out = [0.0f32; 8];
        let mut sum = 0.0;
        for a in acc {
            _mm256_storeu_ps(out.as_mut_ptr(), a);
            sum += out.iter().sum::<f32>();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop computes what its scalar twin computes (so the timed work is the work counted).
    #[test]
    fn the_vector_loops_compute_the_scalar_recurrence() {
        let n = 1000;
        let mut a = 1.0f32;
        for _ in 0..n {
            a = a.mul_add(0.999_999, 1e-7);
        }
        let want = a * CHAINS as f32 * lanes(isa()) as f32;
        let got = run(isa(), n);
        assert!(
            (got - want).abs() <= 1e-3 * want,
            "{got} vs {want} ({})",
            isa()
        );
        let (gflops, _) = fma_peak_gflops(20);
        assert!(gflops.is_finite() && gflops > 0.0);
    }
}
