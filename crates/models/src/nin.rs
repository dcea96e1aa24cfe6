//! Article 003 (`docs/models.md` section D): Network in Network (Lin et al., 2014) in Keras,
//! with and without batch normalisation, and the article's four orders of BN / activation /
//! dropout / max-pool at the ends of the first two blocks.
//!
//! Layers (all convs `same`, he/glorot init as Keras' default): Conv(192,5), Conv(160,1),
//! Conv(96,1), MaxPool(3,s2,same), Drop(0.5), Conv(192,5), Conv(192,1), Conv(192,1),
//! MaxPool(3,s2,same), Drop(0.5), Conv(192,3), Conv(192,1), Conv(10,1), GAP, softmax.
//! Recipe: per-channel mean/std, flips and shifts of up to 0.125 (fill 0), SGD momentum 0.9
//! Nesterov, wd 1e-4 on every conv, batch 128, 200 epochs.

use nn::schedule::Schedule;
use nn::Activation::{Linear, Relu};
use nn::Init::GlorotUniform as Glorot;
use nn::Padding::Same;
use nn::{NnError, Sequential, SequentialBuilder};

use crate::{Augmentation, Optim, Preprocess, Recipe, Validation};

/// Where batch norm, the activation, dropout and max-pool sit at a block's end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Order {
    /// No batch norm: conv+ReLU, max-pool, dropout.
    Plain,
    /// conv, BN, act, max-pool, dropout (the article's choice).
    Bamd,
    /// conv, BN, act, dropout, max-pool.
    Badm,
    /// conv, dropout, BN, act, max-pool.
    Dbam,
    /// conv, BN, dropout, act, max-pool.
    Bdam,
}

/// A conv followed by ReLU, or by BN then ReLU.
fn conv(b: &mut SequentialBuilder, filters: usize, k: usize, bn: bool) -> Result<(), NnError> {
    if bn {
        b.conv2d(filters, k, 1, Same, Linear, Glorot)?
            .batchnorm()
            .activation(Relu);
    } else {
        b.conv2d(filters, k, 1, Same, Relu, Glorot)?;
    }
    Ok(())
}

/// The last conv of blocks 1 and 2 with its BN / activation / dropout / pool in `order`.
fn block_end(b: &mut SequentialBuilder, filters: usize, order: Order) -> Result<(), NnError> {
    let pool = |b: &mut SequentialBuilder| b.maxpool2d(3, 2, Same).map(|_| ());
    match order {
        Order::Plain => {
            b.conv2d(filters, 1, 1, Same, Relu, Glorot)?;
            pool(b)?;
            b.dropout(0.5)?;
        }
        Order::Bamd => {
            b.conv2d(filters, 1, 1, Same, Linear, Glorot)?
                .batchnorm()
                .activation(Relu);
            pool(b)?;
            b.dropout(0.5)?;
        }
        Order::Badm => {
            b.conv2d(filters, 1, 1, Same, Linear, Glorot)?
                .batchnorm()
                .activation(Relu)
                .dropout(0.5)?;
            pool(b)?;
        }
        Order::Dbam => {
            b.conv2d(filters, 1, 1, Same, Linear, Glorot)?
                .dropout(0.5)?
                .batchnorm()
                .activation(Relu);
            pool(b)?;
        }
        Order::Bdam => {
            b.conv2d(filters, 1, 1, Same, Linear, Glorot)?
                .batchnorm()
                .dropout(0.5)?
                .activation(Relu);
            pool(b)?;
        }
    }
    Ok(())
}

pub fn nin_net(name: &str, seed: u64, order: Order) -> Result<Sequential, NnError> {
    let bn = order != Order::Plain;
    let mut b = SequentialBuilder::new(name, &[32, 32, 3], seed);
    conv(&mut b, 192, 5, bn)?;
    conv(&mut b, 160, 1, bn)?;
    block_end(&mut b, 96, order)?;
    conv(&mut b, 192, 5, bn)?;
    conv(&mut b, 192, 1, bn)?;
    block_end(&mut b, 192, order)?;
    conv(&mut b, 192, 3, bn)?;
    conv(&mut b, 192, 1, bn)?;
    conv(&mut b, 10, 1, bn)?;
    // GAP gives the 10 logits; the softmax is fused into the loss.
    b.global_avgpool()?;
    Ok(b.build())
}

pub fn nin(seed: u64) -> Result<Sequential, NnError> {
    nin_net("nin", seed, Order::Plain)
}
pub fn nin_bn(seed: u64) -> Result<Sequential, NnError> {
    nin_net("nin_bn", seed, Order::Bamd)
}
pub fn nin_bn_badm(seed: u64) -> Result<Sequential, NnError> {
    nin_net("nin_bn_badm", seed, Order::Badm)
}
pub fn nin_bn_dbam(seed: u64) -> Result<Sequential, NnError> {
    nin_net("nin_bn_dbam", seed, Order::Dbam)
}
pub fn nin_bn_bdam(seed: u64) -> Result<Sequential, NnError> {
    nin_net("nin_bn_bdam", seed, Order::Bdam)
}

fn nin_recipe(expected: &str, schedule: Schedule) -> Recipe {
    Recipe {
        source: "article 003 (Keras Network in Network)".into(),
        expected: expected.into(),
        epochs: 200,
        batch_size: 128,
        optimizer: Optim::Sgd {
            momentum: 0.9,
            nesterov: true,
        },
        schedule,
        weight_decay: 1e-4,
        preprocess: Preprocess::PerChannel {
            mean: data::augment::NIN_MEAN,
            std: data::augment::NIN_STD,
        },
        augment: Augmentation {
            flip: true,
            shift: Some(0.125),
            crop: None,
        },
        validation: Validation::TestSet,
    }
}

pub fn recipe() -> Recipe {
    nin_recipe(
        "about 90% test accuracy after 200 epochs (the article's NIN)",
        Schedule::nin(),
    )
}

pub fn recipe_bn() -> Recipe {
    nin_recipe(
        "above the plain NIN with the bamd order; the other orders overfit",
        Schedule::nin_bn(),
    )
}
