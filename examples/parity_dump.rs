//! The scratchnet half of the PyTorch parity harness (`parity/`): trains a catalogue model for
//! a few steps on fixed batches and writes everything a step changes.
//!
//! ```text
//! cargo run --release --example parity_dump -- MODEL STEPS OUT_DIR [--seed S] [--data DIR]
//! ```
//! writes to `OUT_DIR`:
//! - `batches.safetensors`: `x.K` (`[n, 32, 32, 3]`, NHWC, the recipe's evaluation
//!   preprocessing: no augmentation) and `y.K` (labels as `f32`) for steps `K = 1..=STEPS`;
//!   batch `K` holds training images `(K - 1) * n ..` in file order, wrapping around (no shuffle).
//! - `step_000.safetensors`: the initial state; `step_K.safetensors` the state after step `K`:
//!   `param.NAME` for every parameter (kernels HWIO / `[in, out]`, BN moving statistics
//!   included), `opt.NAME.velocity` (SGD with momentum; Keras' `v`, which holds `-lr * g`
//!   terms) or `opt.NAME.m` / `opt.NAME.v` (Adam), and for `K >= 1` `loss` (the step's mean
//!   cross-entropy plus the L2 penalty of the weights before the update) and `penalty`.
//!   The metadata holds the step's dropout seed (`seed`), the learning rate and the recipe.
//!
//! The optimiser, learning rate (the schedule's value at epoch 0), weight decay, batch size and
//! preprocessing are the model's recipe; training runs on the CPU.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use models::{Optim, Preprocess};
use nn::optim::{Adam, Optimizer, Sgd, SgdHyper};
use nn::Sequential;
use safetensors::tensor::{Dtype, TensorView};
use tensor::ops::AdamHyper;
use tensor::Tensor;

type Res<T> = Result<T, Box<dyn Error>>;
/// A named tensor to write: name, shape, values.
type Named = (String, Vec<usize>, Vec<f32>);

/// Named `f32` tensors and string metadata, written as one safetensors file.
fn write(path: &Path, tensors: &[Named], meta: HashMap<String, String>) -> Res<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    std::fs::write(path, safetensors::serialize(views, Some(meta))?)?;
    Ok(())
}

fn entry(name: String, t: &Tensor) -> Res<Named> {
    Ok((name, t.dims().to_vec(), t.try_to_vec()?))
}

/// Every parameter and optimiser buffer of the model (the buffers as the checkpoints store
/// them: Keras' SGD `velocity`, Adam's `m` and `v`).
fn state(model: &Sequential, opt: &dyn Optimizer) -> Res<Vec<Named>> {
    let mut out = Vec::new();
    for (_, p) in model.store.iter() {
        out.push(entry(format!("param.{}", p.name), &p.value)?);
    }
    for (buffer, id, t) in opt.state().buffers {
        let name = &model.store.get(id).name;
        out.push(entry(format!("opt.{name}.{buffer}"), &t)?);
    }
    Ok(out)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: parity_dump MODEL STEPS OUT_DIR [--seed S] [--data DIR]";
    if args.len() < 3 {
        return Err(usage.into());
    }
    let (name, steps, out) = (&args[0], args[1].parse::<u64>()?, PathBuf::from(&args[2]));
    let mut seed = 1u64;
    let mut data_dir = PathBuf::from("../shared/cifar10-subset");
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(usage)?;
        match flag.as_str() {
            "--seed" => seed = value.parse()?,
            "--data" => data_dir = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}; {usage}").into()),
        }
    }
    std::fs::create_dir_all(&out)?;

    let recipe = models::recipe(name)?;
    let mut model = models::build(name, seed)?;
    let lr = recipe.schedule.lr(0, 0);
    let wd = recipe.weight_decay;
    let mut opt: Box<dyn Optimizer> = match recipe.optimizer {
        Optim::Sgd { momentum, nesterov } => Box::new(Sgd::new(SgdHyper {
            lr,
            momentum,
            nesterov,
        })),
        Optim::Adam => Box::new(Adam::new(AdamHyper {
            lr,
            ..AdamHyper::default()
        })),
        Optim::Rmsprop { .. } => return Err("RMSprop recipes are not covered".into()),
    };
    if recipe.augment.crop.is_some_and(|(_, size)| size != 32)
        || recipe.preprocess == Preprocess::PerImage
    {
        return Err(
            format!("{name}: only 32x32 recipes without per-image whitening are covered").into(),
        );
    }

    // Fixed batches: file order, evaluation preprocessing, no augmentation.
    let train = data::load_train(&data_dir)?;
    let bs = recipe.batch_size;
    let mut batch_tensors = Vec::new();
    let mut batches = Vec::new();
    for k in 0..steps as usize {
        let idx: Vec<usize> = (0..bs).map(|i| (k * bs + i) % train.len()).collect();
        let mut images = vec![0.0f32; bs * data::IMAGE_BYTES];
        let mut labels = vec![0u32; bs];
        data::fill_batch(
            &train,
            &idx,
            recipe.preprocess.scale(),
            &mut images,
            &mut labels,
        );
        if let Preprocess::PerChannel { mean, std } = recipe.preprocess {
            data::augment::normalize_per_channel(&mut images, 3, &mean, &std);
        }
        let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        batch_tensors.push((format!("x.{}", k + 1), vec![bs, 32, 32, 3], images.clone()));
        batch_tensors.push((format!("y.{}", k + 1), vec![bs], y));
        batches.push((Tensor::from_vec([bs, 32, 32, 3], images)?, labels));
    }
    let recipe_meta = HashMap::from([
        ("model".to_string(), name.clone()),
        ("seed".to_string(), seed.to_string()),
        ("optimizer".to_string(), opt.describe()),
        ("weight_decay".to_string(), wd.to_string()),
        ("batch_size".to_string(), bs.to_string()),
        ("steps".to_string(), steps.to_string()),
    ]);
    write(
        &out.join("batches.safetensors"),
        &batch_tensors,
        recipe_meta.clone(),
    )?;
    write(
        &out.join("step_000.safetensors"),
        &state(&model, opt.as_ref())?,
        recipe_meta,
    )?;

    for (k, (x, labels)) in batches.into_iter().enumerate() {
        let step = k as u64;
        // The trainer's per-step dropout seed (crates/cli/src/train.rs).
        let drop_seed = cpu::rng::pcg_hash((seed as u32) ^ cpu::rng::pcg_hash(step as u32));
        let penalty = nn::regularizer::l2_penalty(&model.store, wd);
        let stats = nn::step::train_step(
            &mut model,
            opt.as_mut(),
            nn::step::TrainBatch {
                images: x,
                labels: &labels,
                seed: drop_seed,
                step,
            },
            wd,
        )?;
        let mut tensors = state(&model, opt.as_ref())?;
        tensors.push(("loss".into(), vec![1], vec![stats.loss]));
        tensors.push(("penalty".into(), vec![1], vec![penalty]));
        let meta = HashMap::from([
            ("dropout_seed".to_string(), drop_seed.to_string()),
            ("lr".to_string(), lr.to_string()),
        ]);
        write(
            &out.join(format!("step_{:03}.safetensors", k + 1)),
            &tensors,
            meta,
        )?;
        eprintln!("{name} step {}: loss {:.6}", k + 1, stats.loss);
    }
    Ok(())
}
