//! Article 002 (`docs/models.md` section C): fine-tuning ImageNet VGG16 on 32x32 CIFAR-10.
//!
//! The VGG16 convolutional base (Simonyan & Zisserman, 2015): five blocks of 3x3 same
//! convolutions (64,64 | 128,128 | 256x3 | 512x3 | 512x3), each ending in a 2x2 max-pool, so a
//! 32x32 input leaves block 5 as 1x1x512; then Flatten, Dense(512), Dense(10). In
//! `vgg16_finetune` blocks 1-4 are frozen (only block 5 and the head train); `vgg16` trains
//! everything from scratch. The article reports heavy overfitting.

use nn::Activation::{Linear, Relu};
use nn::Init::GlorotUniform as Glorot;
use nn::Padding::{Same, Valid};
use nn::{NnError, Sequential, SequentialBuilder};

use crate::{Optim, Preprocess, Recipe};

fn vgg16_net(name: &str, seed: u64, freeze_first_four: bool) -> Result<Sequential, NnError> {
    let mut b = SequentialBuilder::new(name, &[32, 32, 3], seed);
    for (block, (filters, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for _ in 0..convs {
            b.conv2d(filters, 3, 1, Same, Relu, Glorot)?;
        }
        b.maxpool2d(2, 2, Valid)?;
        if freeze_first_four && block == 3 {
            b.freeze();
        }
    }
    b.flatten()
        .dense(512, Relu, Glorot)?
        .dense(10, Linear, Glorot)?;
    Ok(b.build())
}

/// Blocks 1-4 frozen: 14,982,474 parameters, 7,347,210 trainable.
pub fn vgg16_finetune(seed: u64) -> Result<Sequential, NnError> {
    vgg16_net("vgg16_finetune", seed, true)
}

/// The same network with every layer trainable, for training from scratch.
pub fn vgg16(seed: u64) -> Result<Sequential, NnError> {
    vgg16_net("vgg16", seed, false)
}

pub fn recipe() -> Recipe {
    Recipe::simple(
        "article 002 (VGG16 fine-tuning)",
        "heavy overfitting: training accuracy far above validation accuracy",
        25,
        64,
        Optim::Rmsprop { decay: 0.0 },
        1e-3,
        Preprocess::Unit,
    )
}

/// How Keras names VGG16's convolutions (`block1_conv1` ... `block5_conv3`), mapped onto this
/// model's parameters (`conv2d`, `conv2d_1`, ...), for importing ImageNet weights exported from
/// `tf.keras.applications.VGG16(include_top=False)`: see the README for the export.
pub fn keras_mapping() -> Vec<(String, String)> {
    let mut map = Vec::new();
    let mut i = 0;
    for (block, convs) in [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)] {
        for c in 1..=convs {
            let ours = if i == 0 {
                "conv2d".to_string()
            } else {
                format!("conv2d_{i}")
            };
            for w in ["kernel", "bias"] {
                map.push((format!("{ours}.{w}"), format!("block{block}_conv{c}.{w}")));
            }
            i += 1;
        }
    }
    map
}
