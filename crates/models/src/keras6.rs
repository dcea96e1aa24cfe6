//! Article 000 (`docs/models.md` section A): a Keras CNN deepened step by step to 80%.
//!
//! Recipe: pixels / 255, Adam (lr 1e-3), categorical cross-entropy, batch 64, 50 epochs,
//! validation on the 10,000 test images. ReLU after every conv and hidden dense layer; the
//! final Dense(10) gives logits (the softmax is fused into the loss).
//!
//! This should reach about 80% validation accuracy (the article: "steadily above 80% after 12
//! epochs" for `keras6`).

use nn::Activation::{Linear, Relu};
use nn::Init::GlorotUniform as Glorot;
use nn::Padding::{Same, Valid};
use nn::{NnError, Sequential, SequentialBuilder};

use crate::{Optim, Preprocess, Recipe};

const INPUT: [usize; 3] = [32, 32, 3];

pub fn recipe() -> Recipe {
    Recipe::simple(
        "article 000 (Keras CNN deepened to 80%)",
        "about 80% validation accuracy (keras6: above 80% after 12 epochs)",
        50,
        64,
        Optim::Adam,
        1e-3,
        Preprocess::Unit,
    )
}

/// Two same-padded 3x3 conv + ReLU layers of `filters`.
fn conv_pair(b: &mut SequentialBuilder, filters: usize) -> Result<(), NnError> {
    b.conv2d(filters, 3, 1, Same, Relu, Glorot)?
        .conv2d(filters, 3, 1, Same, Relu, Glorot)?;
    Ok(())
}

/// v1: three conv pairs, pools after the first two, dropout only around Dense(512).
pub fn keras6_v1(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("keras6_v1", &INPUT, seed);
    conv_pair(&mut b, 32)?;
    b.maxpool2d(2, 2, Valid)?;
    conv_pair(&mut b, 64)?;
    b.maxpool2d(2, 2, Valid)?;
    conv_pair(&mut b, 128)?;
    b.flatten()
        .dropout(0.5)?
        .dense(512, Relu, Glorot)?
        .dropout(0.5)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// v2: v1 with dropout 0.2 / 0.3 after the pools and 0.4 after Flatten.
pub fn keras6_v2(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("keras6_v2", &INPUT, seed);
    conv_pair(&mut b, 32)?;
    b.maxpool2d(2, 2, Valid)?.dropout(0.2)?;
    conv_pair(&mut b, 64)?;
    b.maxpool2d(2, 2, Valid)?.dropout(0.3)?;
    conv_pair(&mut b, 128)?;
    b.flatten()
        .dropout(0.4)?
        .dense(512, Relu, Glorot)?
        .dropout(0.5)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// The three pooled blocks shared by v3 and the final model.
fn three_blocks(b: &mut SequentialBuilder) -> Result<(), NnError> {
    for (filters, rate) in [(32, 0.2), (64, 0.3), (128, 0.4)] {
        conv_pair(b, filters)?;
        b.maxpool2d(2, 2, Valid)?.dropout(rate)?;
    }
    Ok(())
}

/// v3: a pool and dropout after every block, then Dense(512).
pub fn keras6_v3(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("keras6_v3", &INPUT, seed);
    three_blocks(&mut b)?;
    b.flatten()
        .dense(512, Relu, Glorot)?
        .dropout(0.5)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// The final model: v3 without Dense(512) / Dropout(0.5). 307,498 parameters.
pub fn keras6(seed: u64) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new("keras6", &INPUT, seed);
    three_blocks(&mut b)?;
    b.flatten().dense(10, Linear, Glorot)?;
    Ok(b.build())
}
