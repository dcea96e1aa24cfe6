//! One learning test per article family (B–E; A is in learning.rs): each model trains a few
//! epochs with its article's recipe (preprocessing, augmentation, optimiser, schedule, weight
//! decay) through the same `train` the command line runs, on the first images of each real
//! training batch, and its training loss falls.
//!
//! `vgg16_finetune` is the exception: its frozen blocks would hold ImageNet weights, which no
//! test can download, so with random frozen features it checks instead that the trainable
//! head fits a fixed batch of real images.

mod common;

use std::path::Path;

/// A CIFAR-10 folder with the first `per_batch` records of each subset file.
fn small_subset(subset: &Path, per_batch: usize, name: &str) -> common::Scratch {
    let dir = common::temp_dir(&format!("learn-{name}"));
    for f in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ] {
        let bytes = std::fs::read(subset.join(format!("{f}.bin"))).unwrap();
        std::fs::write(dir.join(format!("{f}.bin")), &bytes[..per_batch * 3073]).unwrap();
    }
    dir
}

fn losses(model: &str, per_batch: usize, epochs: usize, batch: Option<usize>) -> Option<Vec<f32>> {
    let subset = common::subset_dir()?;
    let data = small_subset(&subset, per_batch, model);
    let args = cli::TrainArgs {
        model: Some(model.into()),
        data: Some(data.to_path_buf()),
        epochs: Some(epochs),
        batch_size: batch,
        seed: Some(1),
        run_dir: Some(data.join("run")),
        device: Some(cli::DeviceFlag::Cpu),
        ..Default::default()
    };
    let out = cli::train(&args).unwrap_or_else(|e| panic!("{model}: {e:#}"));
    let l: Vec<f32> = out.history.iter().map(|r| r.loss).collect();
    assert!(l.iter().all(|v| v.is_finite()), "{model}: {l:?}");
    eprintln!(
        "{model}: epoch losses {l:?}, val_acc {:?}",
        out.history.iter().map(|r| r.val_acc).collect::<Vec<_>>()
    );
    Some(l)
}

fn assert_falls(model: &str, l: &[f32]) {
    let (first, last) = (l[0], l[l.len() - 1]);
    assert!(last < first - 0.05, "{model}: loss did not fall: {l:?}");
}

#[test]
fn stackoverflow_answer_learns() {
    if let Some(l) = losses("so_answer", 128, 3, Some(64)) {
        assert_falls("so_answer", &l);
    }
}

#[test]
fn nin_bn_learns() {
    if let Some(l) = losses("nin_bn", 64, 2, Some(32)) {
        assert_falls("nin_bn", &l);
    }
}

#[test]
fn resnet20_learns() {
    if let Some(l) = losses("resnet20", 64, 3, Some(32)) {
        assert_falls("resnet20", &l);
    }
}

#[test]
fn vgg16_finetune_head_fits_a_real_batch() {
    use nn::optim::{Optimizer, Rmsprop, RmspropHyper};
    let Some(subset) = common::subset_dir() else {
        return;
    };
    let train = data::load_train(&subset).unwrap().slice(0..16);
    let mut images = vec![0.0f32; 16 * 3072];
    let mut labels = vec![0u32; 16];
    let idx: Vec<usize> = (0..16).collect();
    data::fill_batch(&train, &idx, 1.0 / 255.0, &mut images, &mut labels);
    let mut model = models::build("vgg16_finetune", 1).unwrap();
    let mut opt = Rmsprop::new(RmspropHyper {
        lr: 1e-4,
        ..RmspropHyper::default()
    });
    let mut losses = Vec::new();
    for step in 0..12 {
        let x = tensor::Tensor::from_slice([16, 32, 32, 3], &images).unwrap();
        let batch = nn::step::TrainBatch {
            images: x,
            labels: &labels,
            seed: step as u32,
            step,
        };
        let s = nn::step::train_step(&mut model, &mut opt, batch, 0.0).unwrap();
        losses.push(s.loss);
    }
    eprintln!(
        "vgg16_finetune fixed-batch losses {losses:?} ({})",
        opt.describe()
    );
    assert!(losses[11] < losses[0] - 0.15, "{losses:?}");
}
