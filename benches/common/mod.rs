//! What both benches share: their inputs, and the check every variant passes before it is
//! timed (a wrong kernel must not produce a fast number).

/// `len` values uniform in [-0.5, 0.5) from the counter hash (reproducible, no rand state).
pub fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| cpu::rng::uniform(seed, i) - 0.5)
        .collect()
}

/// Panics unless every `|got - want| <= 1e-3 * max(1, |want|)`, naming `what` and the element.
pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (x, y)) in got.iter().zip(want).enumerate() {
        assert!(
            (x - y).abs() <= 1e-3 * y.abs().max(1.0),
            "{what}: mismatch at {i}: {x} vs {y}"
        );
    }
}
