//! Weights files: a round trip gives the same predictions; wrong or damaged files are errors
//! that leave the model untouched.

mod common;

use common::{random, temp_dir};

#[test]
fn save_then_load_reproduces_predictions() {
    let a = models::build("keras6", 1).unwrap();
    let mut b = models::build("keras6", 2).unwrap();
    let x = random([3, 32, 32, 3], 5, 0.0, 1.0);
    let pa = a.predict(&x).unwrap().to_vec();
    assert_ne!(
        pa,
        b.predict(&x).unwrap().to_vec(),
        "different seeds, different weights"
    );
    let scratch = temp_dir("ckpt");
    let path = scratch.join("roundtrip.safetensors");
    nn::checkpoint::save(&a, &path).unwrap();
    nn::checkpoint::load(&mut b, &path).unwrap();
    assert_eq!(pa, b.predict(&x).unwrap().to_vec());
}

#[test]
fn bad_weights_files_are_clear_errors_and_change_nothing() {
    let other = models::build("keras6_v3", 1).unwrap();
    let scratch = temp_dir("ckpt");
    let path = scratch.join("other.safetensors");
    nn::checkpoint::save(&other, &path).unwrap();
    let mut m = models::build("keras6", 1).unwrap();
    let before: Vec<Vec<f32>> = m.store.iter().map(|(_, p)| p.value.to_vec()).collect();

    let err = nn::checkpoint::load(&mut m, &path).unwrap_err().to_string();
    assert!(
        err.contains("keras6_v3") && err.contains("other.safetensors"),
        "{err}"
    );

    let scratch = temp_dir("ckpt");
    let corrupt = scratch.join("corrupt.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = nn::checkpoint::load(&mut m, &corrupt)
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupt.safetensors"), "{err}");

    let scratch = temp_dir("ckpt");
    let garbage = scratch.join("garbage.bin");
    std::fs::write(&garbage, b"definitely not weights").unwrap();
    let err = nn::checkpoint::load(&mut m, &garbage)
        .unwrap_err()
        .to_string();
    assert!(err.contains("garbage.bin"), "{err}");

    let err = nn::checkpoint::load(&mut m, &temp_dir("ckpt").join("missing.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.safetensors"), "{err}");

    let after: Vec<Vec<f32>> = m.store.iter().map(|(_, p)| p.value.to_vec()).collect();
    assert_eq!(before, after, "a failed load must not change the model");
}

/// Weights with a NaN or an infinity (a diverged run's) are refused, naming the tensor.
#[test]
fn non_finite_weights_are_refused_by_name() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut poisoned = models::build("keras6", 1).unwrap();
        let (id, name) = poisoned
            .store
            .iter()
            .nth(2)
            .map(|(id, p)| (id, p.name.clone()))
            .unwrap();
        poisoned.store.get_mut(id).value.data_mut()[7] = bad;
        let scratch = temp_dir("ckpt");
        let path = scratch.join("poisoned.safetensors");
        nn::checkpoint::save(&poisoned, &path).unwrap();
        let mut m = models::build("keras6", 2).unwrap();
        let before: Vec<Vec<f32>> = m.store.iter().map(|(_, p)| p.value.to_vec()).collect();
        let err = nn::checkpoint::load(&mut m, &path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{name}`")) && err.contains(&bad.to_string()),
            "{err}"
        );
        let after: Vec<Vec<f32>> = m.store.iter().map(|(_, p)| p.value.to_vec()).collect();
        assert_eq!(before, after);
    }
}

/// A resumable checkpoint restores the optimiser: Adam continued from a checkpoint takes the
/// same next step as the Adam that wrote it; a checkpoint of another optimiser is refused.
#[test]
fn training_checkpoints_restore_the_optimiser() {
    use nn::optim::{Adam, Optimizer, Sgd, SgdHyper};
    let mut a = models::build("keras6", 1).unwrap();
    let mut opt_a = Adam::default();
    let x = random([4, 32, 32, 3], 5, 0.0, 1.0);
    let labels = [1u32, 2, 3, 4];
    let step = |m: &mut nn::Sequential, opt: &mut dyn Optimizer, n: u64| {
        let mut metrics = nn::step::Metrics::new(&m.device()).unwrap();
        let batch = nn::step::TrainBatch {
            images: x.clone(),
            labels: &labels,
            seed: 9,
            step: n,
        };
        nn::step::record_train_step(m, opt, batch, 0.0, &mut metrics).unwrap();
    };
    for n in 0..3 {
        step(&mut a, &mut opt_a, n);
    }
    let scratch = temp_dir("ckpt");
    let path = scratch.join("training.safetensors");
    nn::checkpoint::save_training(&a, &opt_a, "{\"at\": 3}", &path).unwrap();
    // The checkpoint is also a plain weights file.
    let mut plain = models::build("keras6", 7).unwrap();
    nn::checkpoint::load(&mut plain, &path).unwrap();

    let mut b = models::build("keras6", 2).unwrap();
    let mut opt_b = Adam::default();
    let state = nn::checkpoint::load_training(&mut b, &mut opt_b, &path).unwrap();
    assert_eq!(state, "{\"at\": 3}");
    assert_eq!(opt_b.steps(), 3);
    step(&mut a, &mut opt_a, 3);
    step(&mut b, &mut opt_b, 3);
    let (pa, pb): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (
        a.store.iter().map(|(_, p)| p.value.to_vec()).collect(),
        b.store.iter().map(|(_, p)| p.value.to_vec()).collect(),
    );
    assert_eq!(pa, pb, "the step after loading differs");

    let mut sgd = Sgd::new(SgdHyper {
        lr: 0.1,
        momentum: 0.9,
        nesterov: false,
    });
    let err = nn::checkpoint::load_training(&mut b, &mut sgd, &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("adam") && err.contains("sgd"), "{err}");
    // A weights file is not a training checkpoint.
    let scratch = temp_dir("ckpt");
    let weights = scratch.join("weights-only.safetensors");
    nn::checkpoint::save(&a, &weights).unwrap();
    let err = nn::checkpoint::load_training(&mut b, &mut opt_b, &weights)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a resumable checkpoint"), "{err}");
}

/// A device or a folder given as a weights file is refused at once (/dev/zero would be read
/// until memory runs out).
#[test]
fn devices_and_folders_are_not_weights_files() {
    let mut m = models::build("keras6", 1).unwrap();
    let err = nn::checkpoint::load(&mut m, std::path::Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let dir = std::env::temp_dir();
    let err = nn::checkpoint::load(&mut m, &dir).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    assert!(!nn::checkpoint::is_native(std::path::Path::new(
        "/dev/zero"
    )));
}
