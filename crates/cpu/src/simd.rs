//! Run-time choice of the widest SIMD the CPU has, for the kernels the compiler vectorises.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so that one binary runs on every x86-64
//! CPU; the GEMM micro-kernels opt into AVX-512 or AVX2 with `#[target_feature]` and are
//! chosen at run time (`gemm_packed`). Everything else (batch norm, ReLU, the element-wise
//! kernels, the Winograd transforms) is plain Rust over slices that LLVM vectorises, and
//! without this module it vectorises to 4-lane SSE. [`multiversion!`] compiles such a
//! function's body three times, for AVX-512F, for AVX2 + FMA and for the baseline, and calls
//! the widest one this CPU runs (`is_x86_feature_detected!` caches its answer, so the check
//! costs a load and a branch per call). The body is the same source: the reference of
//! each kernel is unchanged, and only the instructions chosen for it differ.
//!
//! Measured (`cargo bench --bench batchnorm`, Intel Xeon, 2 threads, resnet20's first stage):
//! batch norm's forward 13.4 -> 22.2 GiB/s, its backward 18.3 -> 22.9, the fused batch norm +
//! ReLU backward 14.3 -> 21.5; dropout's forward at keras6's first 1.11 -> 0.46 ms (`bench`).

/// Defines `fn $name(args) -> ret { body }` that runs `body` compiled for the widest of
/// AVX-512F, AVX2 + FMA and baseline x86-64 that this CPU has (one version elsewhere).
///
/// The body should be the inner loop of a kernel (what runs inside one rayon task), not a
/// function that hands closures to rayon: a closure called from another thread is compiled
/// on its own, for the baseline.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: this CPU has AVX-512F, the only feature `avx512` was compiled
                    // for beyond the baseline.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: this CPU has AVX2 and FMA, the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    multiversion! {
        /// A dot product, compiled three ways.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn the_dispatched_body_computes_what_it_says() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
        #[cfg(target_arch = "x86_64")]
        for (feature, has) in [
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ] {
            if !has {
                eprintln!("skipped: this CPU has no {feature}; the baseline body ran");
            }
        }
    }
}
