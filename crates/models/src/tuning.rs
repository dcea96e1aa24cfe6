//! Article 004 (`docs/models.md` section E): from 69% to 91.5% step by step — a three-conv
//! network and its recipe stages, deeper plain networks, and He et al.'s CIFAR ResNets.
//!
//! The article does not give its weight decay or its epoch count ("5000 rounds"); the recipes
//! here use wd 1e-4 and enough epochs to pass every learning-rate change of the schedule.

use nn::schedule::Schedule;
use nn::Activation::{Linear, Relu};
use nn::Init::{self, GlorotUniform as Glorot, HeNormal};
use nn::Padding::{Same, Valid};
use nn::{NnError, Sequential, SequentialBuilder};
use tensor::ops::LrnParams;

use crate::{Augmentation, Optim, Preprocess, Recipe, Validation};

/// The article's initialiser for basic3: N(0, 0.001), biases 0.
const TINY: Init = Init::Normal {
    mean: 0.0,
    std: 0.001,
};

/// Which stage of the basic3 series.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    /// 69.36%: three conv+pool layers, 32x32 raw pixels.
    Basic,
    /// 80.42%: 24x24 random crops, flips, per-image whitening.
    Augment,
    /// 85.72%: plus L2 weight decay, dropout, BN after each conv, LRN after the pools.
    Regularise,
    /// 86.24%: plus the step learning-rate schedule.
    LrSchedule,
}

pub fn basic3_net(name: &str, seed: u64, stage: Stage) -> Result<Sequential, NnError> {
    let side = if stage == Stage::Basic { 32 } else { 24 };
    let regular = matches!(stage, Stage::Regularise | Stage::LrSchedule);
    let mut b = SequentialBuilder::new(name, &[side, side, 3], seed);
    for filters in [64, 128, 256] {
        if regular {
            b.conv2d(filters, 3, 1, Same, Linear, TINY)?
                .batchnorm()
                .activation(Relu);
            b.maxpool2d(2, 2, Valid)?.lrn(LrnParams::cifar10_tutorial());
        } else {
            b.conv2d(filters, 3, 1, Same, Relu, TINY)?
                .maxpool2d(2, 2, Valid)?;
        }
    }
    b.flatten().dense(1024, Relu, TINY)?;
    if regular {
        b.dropout(0.5)?;
    }
    b.dense(10, Linear, TINY)?;
    Ok(b.build())
}

pub fn basic3(seed: u64) -> Result<Sequential, NnError> {
    basic3_net("basic3", seed, Stage::Basic)
}
pub fn basic3_augment(seed: u64) -> Result<Sequential, NnError> {
    basic3_net("basic3_augment", seed, Stage::Augment)
}
pub fn basic3_regularise(seed: u64) -> Result<Sequential, NnError> {
    basic3_net("basic3_regularise", seed, Stage::Regularise)
}
pub fn basic3_lr_schedule(seed: u64) -> Result<Sequential, NnError> {
    basic3_net("basic3_lr_schedule", seed, Stage::LrSchedule)
}

fn series_recipe(
    expected: &str,
    epochs: usize,
    schedule: Schedule,
    augment: bool,
    wd: f32,
) -> Recipe {
    Recipe {
        source: "article 004 (step-by-step tuning)".into(),
        expected: expected.into(),
        epochs,
        batch_size: 128,
        optimizer: Optim::Adam,
        schedule,
        weight_decay: wd,
        preprocess: if augment {
            Preprocess::PerImage
        } else {
            Preprocess::Raw
        },
        augment: if augment {
            Augmentation {
                flip: true,
                shift: None,
                crop: Some((4, 24)),
            }
        } else {
            Augmentation::default()
        },
        validation: Validation::SplitLast(0.1),
    }
}

pub fn basic3_recipe() -> Recipe {
    series_recipe(
        "69.36% test accuracy",
        30,
        Schedule::Constant(1e-3),
        false,
        0.0,
    )
}
pub fn basic3_augment_recipe() -> Recipe {
    series_recipe(
        "80.42% test accuracy",
        60,
        Schedule::Constant(1e-3),
        true,
        0.0,
    )
}
pub fn basic3_regularise_recipe() -> Recipe {
    series_recipe(
        "85.72% test accuracy",
        60,
        Schedule::Constant(1e-3),
        true,
        1e-4,
    )
}
pub fn basic3_lr_schedule_recipe() -> Recipe {
    // 0.01, then 0.001 after 10,000 batches, 0.0005 after 20,000: 80 epochs of 352 steps.
    series_recipe(
        "86.24% test accuracy",
        80,
        Schedule::tuning_series(),
        true,
        1e-4,
    )
}

/// `Conv(16,3)+BN+ReLU` then `n` more 16s; `n` 32s (the first with stride 2); `n` 64s (the
/// first with stride 2); GAP; Dense(10). These layer counts are the ones that give the
/// parameter totals the project must match (plain8 27,066 ... plain32 222,842).
pub fn plain_net(depth: usize, seed: u64) -> Result<Sequential, NnError> {
    let n = (depth - 2) / 6;
    let mut b = SequentialBuilder::new(&format!("plain{depth}"), &[32, 32, 3], seed);
    let layer = |b: &mut SequentialBuilder, f: usize, s: usize| -> Result<(), NnError> {
        b.conv2d(f, 3, s, Same, Linear, HeNormal)?
            .batchnorm()
            .activation(Relu);
        Ok(())
    };
    for _ in 0..=n {
        layer(&mut b, 16, 1)?;
    }
    for f in [32, 64] {
        for i in 0..n {
            layer(&mut b, f, if i == 0 { 2 } else { 1 })?;
        }
    }
    b.global_avgpool()?.dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// He et al. (2016) CIFAR ResNet-(6n+2) with option-A (zero-padding) shortcuts.
pub fn resnet_net(depth: usize, seed: u64) -> Result<Sequential, NnError> {
    let n = (depth - 2) / 6;
    let mut b = SequentialBuilder::new(&format!("resnet{depth}"), &[32, 32, 3], seed);
    b.conv2d(16, 3, 1, Same, Linear, HeNormal)?
        .batchnorm()
        .activation(Relu);
    for (stage, f) in [16, 32, 64].into_iter().enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            b.residual_block(f, stride, false, HeNormal)?;
        }
    }
    b.global_avgpool()?.dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// He et al.'s recipe: SGD momentum 0.9, wd 1e-4, batch 128, lr 0.1 divided by 10 at 32k and
/// 48k steps, 64k steps (182 epochs of 352 steps on 45k images), pad-4 random 32x32 crops and
/// flips, per-channel normalisation.
pub fn deep_recipe(expected: &str) -> Recipe {
    Recipe {
        source: "article 004 (deeper networks; He et al. 2016 recipe)".into(),
        expected: expected.into(),
        epochs: 182,
        batch_size: 128,
        optimizer: Optim::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        schedule: Schedule::he2016(),
        weight_decay: 1e-4,
        preprocess: Preprocess::PerChannel {
            mean: data::augment::NIN_MEAN,
            std: data::augment::NIN_STD,
        },
        augment: Augmentation {
            flip: true,
            shift: None,
            crop: Some((4, 32)),
        },
        validation: Validation::SplitLast(0.1),
    }
}
