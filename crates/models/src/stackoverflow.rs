//! Article 001 (`docs/models.md` section B): "train accuracy rises, test stays at 40%" — a Stack
//! Overflow question whose bug was feeding unscaled pixels, its answer, and the official
//! Keras cifar10_cnn example the answer points to.

use nn::Activation::{Linear, Relu};
use nn::Init::{GlorotUniform as Glorot, HeNormal};
use nn::Padding::{Same, Valid};
use nn::{NnError, Sequential, SequentialBuilder};

use crate::{Augmentation, Optim, Preprocess, Recipe};

const INPUT: [usize; 3] = [32, 32, 3];

/// The question's network; trained on raw 0..255 pixels it reproduces the failure.
pub fn so_original(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("so_original", &INPUT, seed);
    b.conv2d(256, 3, 1, Valid, Relu, Glorot)?
        .maxpool2d(2, 2, Valid)?
        .conv2d(128, 2, 1, Valid, Relu, Glorot)?
        .maxpool2d(2, 2, Valid)?
        .flatten()
        .dense(1024, Relu, Glorot)?
        .dropout(0.5)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

pub fn so_original_recipe() -> Recipe {
    Recipe::simple(
        "article 001 (Stack Overflow question: unscaled pixels)",
        "train accuracy rises while test accuracy stays near 40%",
        5,
        1000,
        Optim::Adam,
        1e-3,
        Preprocess::Raw,
    )
}

/// The accepted answer's network, with he_normal convolutions.
pub fn so_answer(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("so_answer", &INPUT, seed);
    b.conv2d(64, 3, 1, Valid, Relu, HeNormal)?
        .maxpool2d(2, 2, Valid)?
        .conv2d(256, 2, 1, Valid, Relu, HeNormal)?
        .maxpool2d(2, 2, Valid)?
        .flatten()
        .dense(1024, Relu, Glorot)?
        .dropout(0.4)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

pub fn so_answer_recipe() -> Recipe {
    Recipe::simple(
        "article 001 (the accepted answer: pixels / 255)",
        "71.26% test accuracy after 5 epochs",
        5,
        500,
        Optim::Adam,
        1e-3,
        Preprocess::Unit,
    )
}

/// Keras' examples/cifar10_cnn.py.
pub fn keras_example(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("keras_example", &INPUT, seed);
    b.conv2d(32, 3, 1, Same, Relu, Glorot)?
        .conv2d(32, 3, 1, Valid, Relu, Glorot)?
        .maxpool2d(2, 2, Valid)?
        .dropout(0.25)?
        .conv2d(64, 3, 1, Same, Relu, Glorot)?
        .conv2d(64, 3, 1, Valid, Relu, Glorot)?
        .maxpool2d(2, 2, Valid)?
        .dropout(0.25)?
        .flatten()
        .dense(512, Relu, Glorot)?
        .dropout(0.5)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// RMSprop(lr 1e-4, decay 1e-6), batch 32, shift 0.1 and horizontal flips; 100 epochs as in
/// the Keras example itself (the article gives no epoch count; `docs/models.md` B.3).
pub fn keras_example_recipe() -> Recipe {
    let mut r = Recipe::simple(
        "article 001 (the official Keras cifar10_cnn example)",
        "about 75-79% after 50-100 epochs (the Keras example's README figure)",
        100,
        32,
        Optim::Rmsprop { decay: 1e-6 },
        1e-4,
        Preprocess::Unit,
    );
    r.augment = Augmentation {
        flip: true,
        shift: Some(0.1),
        crop: None,
    };
    r
}
