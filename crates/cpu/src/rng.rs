//! Counter-based random numbers: `uniform(seed, i)` depends only on the seed and the index.
//!
//! Dropout masks and other per-element noise use this instead of a sequential generator, so the
//! result does not depend on how work is split across threads, and a WGSL shader computing the
//! same hash (PCG's output permutation, O'Neill 2014, as in Jarzynski & Olano, "Hash Functions
//! for GPU Rendering", JCGT 2020) produces bit-identical masks on the GPU.

/// PCG-RXS-M-XS 32-bit hash.
#[inline]
pub fn pcg_hash(input: u32) -> u32 {
    let state = input.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28).wrapping_add(4))) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// A uniform number in `[0, 1)` with 24 bits of resolution, for element `i` under `seed`.
#[inline(always)]
pub fn uniform(seed: u32, i: u32) -> f32 {
    let h = pcg_hash(i ^ pcg_hash(seed));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_in_range_and_roughly_uniform() {
        let n = 100_000u32;
        let mut sum = 0.0f64;
        let mut below_quarter = 0;
        for i in 0..n {
            let u = uniform(7, i);
            assert!((0.0..1.0).contains(&u));
            sum += u as f64;
            if u < 0.25 {
                below_quarter += 1;
            }
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let frac = below_quarter as f64 / n as f64;
        assert!((frac - 0.25).abs() < 0.01, "fraction below 0.25: {frac}");
        // Different seeds give different streams.
        assert_ne!(uniform(1, 0), uniform(2, 0));
    }
}
