//! The whole stack learns: loss falls on a synthetic task (always) and on real CIFAR-10
//! images (when the subset is present). Accuracy targets belong to the long training run in
//! the README, not here; these only check that learning happens.

mod common;

use nn::optim::Adam;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tensor::Tensor;

/// A training batch whose dropout seed is its step.
fn tb(images: Tensor, labels: &[u32], step: u64) -> nn::step::TrainBatch<'_> {
    nn::step::TrainBatch {
        images,
        labels,
        seed: step as u32,
        step,
    }
}

/// Images whose class is which quadrant holds a bright square: easy, but only for a network
/// whose convolutions, pooling and dense layers all work.
#[test]
fn keras6_learns_a_synthetic_task() {
    let mut model = models::build("keras6", 3).unwrap();
    let mut opt = Adam::default();
    let mut rng = StdRng::seed_from_u64(9);
    let n = 32;
    let batch = |rng: &mut StdRng| {
        let mut x = vec![0.0f32; n * 32 * 32 * 3];
        let mut y = vec![0u32; n];
        for (i, label) in y.iter_mut().enumerate() {
            let q = rng.random_range(0..4u32);
            *label = q;
            let (oy, ox) = ((q / 2) as usize * 16 + 4, (q % 2) as usize * 16 + 4);
            for yy in oy..oy + 8 {
                for xx in ox..ox + 8 {
                    for c in 0..3 {
                        x[((i * 32 + yy) * 32 + xx) * 3 + c] = 1.0;
                    }
                }
            }
        }
        (Tensor::from_vec([n, 32, 32, 3], x).unwrap(), y)
    };
    let mut losses = Vec::new();
    for step in 0..40 {
        let (x, y) = batch(&mut rng);
        let s = nn::step::train_step(&mut model, &mut opt, tb(x, &y, step as u64), 0.0).unwrap();
        losses.push(s.loss);
    }
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[35..].iter().sum::<f32>() / 5.0;
    assert!(
        last < 0.5 * first,
        "loss did not fall: first {first}, last {last}"
    );
    let (x, y) = batch(&mut rng);
    let s = nn::step::evaluate_batch(&model, &x, &y).unwrap();
    assert!(
        s.correct as f32 / n as f32 > 0.8,
        "eval accuracy {}/{n}",
        s.correct
    );
}

/// keras6 on 2,048 real CIFAR-10 training images for two epochs: the loss falls and held-out
/// accuracy beats chance clearly.
#[test]
fn keras6_learns_real_cifar10() {
    let Some(dir) = common::subset_dir() else {
        return;
    };
    let train = data::load_train(&dir).unwrap().slice(0..2048);
    let test = data::load_test(&dir).unwrap();
    let mut model = models::build("keras6", 1).unwrap();
    let mut opt = Adam::default();
    let bs = 64;
    let mut images = vec![0.0f32; bs * 3072];
    let mut labels = vec![0u32; bs];
    let mut epoch_loss = Vec::new();
    let mut step = 0u64;
    for epoch in 0..2 {
        let order = data::shuffled_indices(train.len(), 1, epoch);
        let mut sum = 0.0;
        for idx in order.chunks(bs) {
            data::fill_batch(&train, idx, 1.0 / 255.0, &mut images, &mut labels);
            let x = Tensor::from_slice([bs, 32, 32, 3], &images).unwrap();
            let s = nn::step::train_step(&mut model, &mut opt, tb(x, &labels, step), 0.0).unwrap();
            sum += s.loss;
            step += 1;
        }
        epoch_loss.push(sum / (train.len() / bs) as f32);
    }
    assert!(
        epoch_loss[1] < epoch_loss[0] - 0.05,
        "epoch losses {epoch_loss:?}"
    );
    let mut correct = 0;
    let all: Vec<usize> = (0..test.len()).collect();
    let mut img = vec![0.0f32; 100 * 3072];
    let mut lab = vec![0u32; 100];
    for idx in all.chunks(100) {
        let n = idx.len();
        data::fill_batch(&test, idx, 1.0 / 255.0, &mut img[..n * 3072], &mut lab[..n]);
        let x = Tensor::from_slice([n, 32, 32, 3], &img[..n * 3072]).unwrap();
        correct += nn::step::evaluate_batch(&model, &x, &lab[..n])
            .unwrap()
            .correct;
    }
    let acc = correct as f32 / test.len() as f32;
    eprintln!("held-out accuracy after 2 epochs on 2,048 images: {acc:.3}; losses {epoch_loss:?}");
    assert!(
        acc > 0.2,
        "accuracy {acc} is not clearly above chance (0.1)"
    );
}

/// A diverging run stops with an error naming the problem, and the parameters are kept.
#[test]
fn nan_loss_is_an_error_and_leaves_parameters_untouched() {
    let mut model = models::build("keras6", 1).unwrap();
    // A NaN in the last bias reaches the logits (ReLU would swallow one in the pixels).
    let (id, _) = model.store.iter().last().unwrap();
    model.store.get_mut(id).value.data_mut()[3] = f32::NAN;
    let before: Vec<Vec<f32>> = model.store.iter().map(|(_, p)| p.value.to_vec()).collect();
    let mut opt = Adam::default();
    let x = common::random([2, 32, 32, 3], 1, 0.0, 1.0);
    let err = nn::step::train_step(&mut model, &mut opt, tb(x, &[1, 2], 7), 0.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN") && err.contains("step 7"), "{err}");
    let after: Vec<Vec<f32>> = model.store.iter().map(|(_, p)| p.value.to_vec()).collect();
    // NaN != NaN, so compare bit patterns.
    let bits = |v: &Vec<Vec<f32>>| v.iter().flatten().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&before), bits(&after));
}
