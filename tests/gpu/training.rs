//! Whole training steps on the GPU against the same steps on the CPU: same initial weights,
//! same batches, same dropout seeds. The losses of every step (and the inference-mode loss
//! afterwards, which reads the batch-norm moving averages) must agree to 1e-3, for keras6
//! (the check) and for one model of each other family: RMSprop, SGD with momentum,
//! batch norm, average and global-average pooling, LRN, L2 weight decay, residual shortcuts.
//!
//! Runs on lavapipe in CI (small batches keep it to seconds per model).

use crate::common;

use nn::optim::{Adam, Optimizer, Rmsprop, RmspropHyper, Sgd, SgdHyper};
use nn::step::{self, Metrics};
use tensor::{Device, Tensor};

fn optimizer(model: &str) -> Box<dyn Optimizer> {
    match models::recipe(model).unwrap().optimizer {
        models::Optim::Adam => Box::new(Adam::default()),
        models::Optim::Sgd { momentum, nesterov } => Box::new(Sgd::new(SgdHyper {
            lr: 0.01,
            momentum,
            nesterov,
        })),
        models::Optim::Rmsprop { decay } => Box::new(Rmsprop::new(RmspropHyper {
            lr: 1e-4,
            decay,
            ..RmspropHyper::default()
        })),
    }
}

/// Per-step training losses, then the inference-mode loss on the first batch.
fn run(model_name: &str, device: &Device, batches: &[(Tensor, Vec<u32>)], wd: f32) -> Vec<f32> {
    let mut model = models::build(model_name, 5).unwrap();
    model.to_device(device).unwrap();
    let mut opt = optimizer(model_name);
    let mut losses = Vec::new();
    for (s, (x, y)) in batches.iter().enumerate() {
        let mut m = Metrics::new(device).unwrap();
        let seed = 1000 + s as u32;
        let batch = step::TrainBatch {
            images: x.clone(),
            labels: y,
            seed,
            step: s as u64,
        };
        step::record_train_step(&mut model, opt.as_mut(), batch, wd, &mut m).unwrap();
        let stats = m.take().unwrap();
        assert_eq!(stats.examples, y.len());
        losses.push(stats.loss);
    }
    let (x, y) = &batches[0];
    losses.push(step::evaluate_batch(&model, x, y).unwrap().loss);
    losses
}

fn compare(model_name: &str, batch: usize, steps: usize, wd: f32) {
    let Some(ctx) = common::gpu() else { return };
    let model = models::build(model_name, 5).unwrap();
    let classes = model.output_shape()[0] as u32;
    let mut shape = vec![batch];
    shape.extend_from_slice(model.input_shape());
    let batches: Vec<(Tensor, Vec<u32>)> = (0..steps)
        .map(|s| {
            let x = common::random(shape.clone(), 40 + s as u64, 0.0, 1.0);
            let y = (0..batch as u32)
                .map(|i| (i * 7 + s as u32) % classes)
                .collect();
            (x, y)
        })
        .collect();
    let cpu = run(model_name, &Device::Cpu, &batches, wd);
    let gpu = run(model_name, &Device::Gpu(ctx.clone()), &batches, wd);
    eprintln!("{model_name}: cpu {cpu:?}, gpu {gpu:?}");
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert!(c.is_finite() && g.is_finite(), "{model_name} step {i}");
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "{model_name}: loss {i} is {g} on the GPU and {c} on the CPU"
        );
    }
}

#[test]
fn keras6_three_steps_agree_with_the_cpu() {
    compare("keras6", 16, 3, 0.0);
}

#[test]
fn keras_example_with_rmsprop_agrees_with_the_cpu() {
    compare("keras_example", 8, 3, 0.0);
}

#[test]
fn nin_bn_with_sgd_batch_norm_and_pooling_agrees_with_the_cpu() {
    compare("nin_bn", 4, 3, 0.0);
}

#[test]
fn basic3_regularise_with_lrn_and_l2_agrees_with_the_cpu() {
    compare("basic3_regularise", 8, 3, 1e-3);
}

#[test]
fn resnet20_with_shortcuts_agrees_with_the_cpu() {
    compare("resnet20", 4, 3, 1e-4);
}

#[test]
fn a_nan_loss_on_the_gpu_leaves_the_parameters_untouched_and_is_reported() {
    let Some(ctx) = common::gpu() else { return };
    let device = Device::Gpu(ctx.clone());
    let mut model = models::build("keras6", 2).unwrap();
    // A NaN in the last bias reaches the logits (ReLU would swallow one in the pixels).
    let (id, _) = model.store.iter().last().unwrap();
    model.store.get_mut(id).value.data_mut()[3] = f32::NAN;
    model.to_device(&device).unwrap();
    let bits = |m: &nn::Sequential| -> Vec<u32> {
        let all = m.store.iter().flat_map(|(_, p)| p.value.to_vec());
        all.map(f32::to_bits).collect()
    };
    let before = bits(&model);
    let mut opt = Adam::default();
    let mut m = Metrics::new(&device).unwrap();
    let x = common::random([2, 32, 32, 3], 1, 0.0, 1.0);
    for s in 0..2 {
        let batch = step::TrainBatch {
            images: x.clone(),
            labels: &[1, 2],
            seed: s,
            step: 10 + s as u64,
        };
        step::record_train_step(&mut model, &mut opt, batch, 0.0, &mut m).unwrap();
    }
    let err = m.take().unwrap_err().to_string();
    assert!(err.contains("step 10") && err.contains("11"), "{err}");
    // Every update kernel saw the non-finite loss sum on the device and skipped (NaN != NaN,
    // so compare bit patterns).
    assert!(before == bits(&model), "a NaN step changed the parameters");
}

#[test]
fn mixing_devices_is_an_error_not_a_panic() {
    let Some(ctx) = common::gpu() else { return };
    let a = Tensor::zeros([2, 3])
        .to_device(&Device::Gpu(ctx.clone()))
        .unwrap();
    let b = Tensor::zeros([3, 2]);
    let err = tensor::ops::gemm(
        &a,
        tensor::ops::Transpose::No,
        &b,
        tensor::ops::Transpose::No,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different devices"), "{err}");
}

#[test]
fn a_tensor_past_the_binding_limit_is_refused_with_a_clear_error() {
    if common::gpu().is_none() {
        return;
    }
    // A context that refuses buffers over 4 KB: keras6's 3x3x32x32 kernel (36 KB) is too big.
    let small = gpu::GpuContext::with_binding_limit(4096).unwrap();
    let device = Device::Gpu(std::sync::Arc::new(small));
    let mut model = models::build("keras6", 1).unwrap();
    let err = model.to_device(&device).unwrap_err().to_string();
    assert!(
        err.contains("binding limit") && err.contains("shape"),
        "{err}"
    );
}
