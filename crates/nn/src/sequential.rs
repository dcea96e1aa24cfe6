//! A model as a stack of layers, built the way a Keras `Sequential` is written.
//!
//! ```
//! use nn::{Activation::Relu, Init, Padding::Same, SequentialBuilder};
//! let mut b = SequentialBuilder::new("tiny", &[32, 32, 3], 1);
//! b.conv2d(8, 3, 1, Same, Relu, Init::GlorotUniform).unwrap()
//!     .maxpool2d(2, 2, nn::Padding::Valid).unwrap()
//!     .flatten()
//!     .dense(10, Activation::Linear, Init::GlorotUniform).unwrap();
//! # use nn::Activation;
//! let model = b.build();
//! assert_eq!(model.store.total_count(), 8 * 27 + 8 + 16 * 16 * 8 * 10 + 10);
//! ```

use std::collections::HashMap;

use autograd::{Tape, Var};
use rand::{rngs::StdRng, SeedableRng};
use tensor::{Device, Padding, Tensor};

use crate::layers::{
    ActivationLayer, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Flatten, GlobalAvgPool, Lrn,
    MaxPool2d, Residual, Shortcut,
};
use crate::{Activation, Ctx, Init, Layer, NnError, ParamKind, ParamStore};

pub struct Sequential {
    name: String,
    input_shape: Vec<usize>,
    layers: Vec<Box<dyn Layer>>,
    pub store: ParamStore,
}

impl Sequential {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Shape of one input example, e.g. `[32, 32, 3]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }
    /// Shape of one output example (the logits: `[10]`).
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map_or(&self.input_shape, |l| l.output_shape())
    }

    /// Where the parameters live (the CPU for a model without parameters).
    pub fn device(&self) -> Device {
        self.store
            .iter()
            .next()
            .map_or(Device::Cpu, |(_, p)| p.value.device())
    }

    /// Move every parameter (and so every later step) to `device`.
    pub fn to_device(&mut self, device: &Device) -> Result<(), NnError> {
        for (_, p) in self.store.iter_mut() {
            p.value = p.value.to_device(device)?;
        }
        Ok(())
    }

    /// Records the model on `tape`, after checking that `x` is a batch of the input shape.
    pub fn forward(&self, tape: &mut Tape, x: Var, ctx: &mut Ctx) -> Result<Var, NnError> {
        let dims = tape.value(x).dims();
        if dims.len() != self.input_shape.len() + 1 || dims[1..] != self.input_shape[..] {
            return Err(NnError::Input {
                model: self.name.clone(),
                expected: format!("[batch, {}]", join(&self.input_shape)),
                got: format!("{}", tape.value(x).shape()),
            });
        }
        crate::layers::forward_layers(&self.layers, tape, x, ctx)
    }

    /// Inference: the logits for a batch (dropout off, nothing kept for backward).
    pub fn predict(&self, images: &Tensor) -> Result<Tensor, NnError> {
        let mut tape = Tape::new();
        let x = tape.input(images.to_device(&self.device())?);
        let mut ctx = Ctx::new(&self.store, false, 0);
        let y = self.forward(&mut tape, x, &mut ctx)?;
        Ok(tape.value(y).clone())
    }

    /// Forward floating-point operations per example of the conv and dense layers.
    pub fn forward_flops_per_example(&self) -> u64 {
        self.kernel_flops(false)
    }

    /// Floating-point operations per example of a training step: the forward pass, plus twice
    /// the forward cost (input and weight gradients) for layers whose kernels train. Frozen
    /// layers cost only their forward pass.
    pub fn training_flops_per_example(&self) -> u64 {
        self.kernel_flops(true)
    }

    fn kernel_flops(&self, training: bool) -> u64 {
        (0..self.layers.len())
            .map(|i| {
                let (fwd, trainable) = self.layer_flops(i);
                if training && trainable {
                    3 * fwd
                } else {
                    fwd
                }
            })
            .sum()
    }

    /// Forward floating-point operations per example of layer `i`'s kernels (conv and dense;
    /// 0 for other layers), and whether those kernels train.
    pub fn layer_flops(&self, i: usize) -> (u64, bool) {
        let layer = &self.layers[i];
        let out = layer.output_shape();
        let mut flops = 0u64;
        let mut trainable = false;
        for id in layer.params() {
            let p = self.store.get(id);
            if p.kind == ParamKind::Kernel {
                // A kernel's inputs x outputs multiply-adds per output position; residual
                // blocks report their own output shape, which all their kernels share
                // except a strided first conv (whose output is that same shape too).
                let positions: usize = out[..out.len() - 1].iter().product();
                flops += 2 * (positions * p.value.numel()) as u64;
                trainable |= p.trainable;
            }
        }
        (flops, trainable)
    }
}

fn join(d: &[usize]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a [`Sequential`], tracking the running shape and naming layers like Keras
/// (`conv2d`, `conv2d_1`, ...). Parameters are initialised from the builder's seed.
pub struct SequentialBuilder {
    name: String,
    input_shape: Vec<usize>,
    shape: Vec<usize>,
    layers: Vec<Box<dyn Layer>>,
    store: ParamStore,
    rng: StdRng,
    counters: HashMap<&'static str, usize>,
}

impl SequentialBuilder {
    pub fn new(name: &str, input_shape: &[usize], seed: u64) -> Self {
        SequentialBuilder {
            name: name.to_string(),
            input_shape: input_shape.to_vec(),
            shape: input_shape.to_vec(),
            layers: Vec::new(),
            store: ParamStore::default(),
            rng: StdRng::seed_from_u64(seed),
            counters: HashMap::new(),
        }
    }

    /// `base`, `base_1`, `base_2`, ... as Keras names layers.
    fn next_name(&mut self, base: &'static str) -> String {
        let n = self.counters.entry(base).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        name
    }

    fn error(&self, layer: &str, detail: String) -> NnError {
        NnError::Build {
            model: self.name.clone(),
            layer: layer.to_string(),
            detail,
        }
    }

    fn spatial(&self, layer: &str) -> Result<(usize, usize, usize), NnError> {
        match self.shape[..] {
            [h, w, c] => Ok((h, w, c)),
            _ => Err(self.error(
                layer,
                format!("needs an [h, w, c] input, got [{}]", join(&self.shape)),
            )),
        }
    }

    /// The `(out_h, out_w, c)` of a `size x size` window with `stride` over the current
    /// `[h, w, c]` shape, or an error naming `layer` when it does not fit.
    fn window_output(
        &self,
        layer: &str,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<(usize, usize, usize), NnError> {
        let (h, w, c) = self.spatial(layer)?;
        match (padding.output_and_pad(h, size, stride), padding.output_and_pad(w, size, stride)) {
            (Some((oh, _)), Some((ow, _))) => Ok((oh, ow, c)),
            _ => Err(self.error(
                layer,
                format!("a {size}x{size} window with stride {stride} and {padding} padding does not fit a {h}x{w} input"),
            )),
        }
    }

    fn param(
        &mut self,
        name: String,
        shape: Vec<usize>,
        kind: ParamKind,
        init: Init,
        fans: (usize, usize),
    ) -> crate::ParamId {
        let len = shape.iter().product();
        let data = init.sample(len, fans.0, fans.1, &mut self.rng);
        let t = Tensor::from_vec(shape, data).expect("length from shape");
        self.store.add(name, t, kind)
    }

    /// Conv2D with `filters` square `k x k` kernels and a bias.
    pub fn conv2d(
        &mut self,
        filters: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        activation: Activation,
        init: Init,
    ) -> Result<&mut Self, NnError> {
        let name = self.next_name("conv2d");
        let (oh, ow, c) = self.window_output(&name, k, stride, padding)?;
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![k, k, c, filters],
            ParamKind::Kernel,
            init,
            (k * k * c, k * k * filters),
        );
        let bias = self.param(
            format!("{name}.bias"),
            vec![filters],
            ParamKind::Bias,
            Init::Zeros,
            (1, 1),
        );
        self.shape = vec![oh, ow, filters];
        self.layers.push(Box::new(Conv2d {
            name,
            kernel,
            bias: Some(bias),
            stride,
            padding,
            activation,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    pub fn maxpool2d(
        &mut self,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<&mut Self, NnError> {
        let name = self.next_name("max_pooling2d");
        let (oh, ow, c) = self.window_output(&name, size, stride, padding)?;
        self.shape = vec![oh, ow, c];
        self.layers.push(Box::new(MaxPool2d {
            name,
            size,
            stride,
            padding,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    pub fn dropout(&mut self, rate: f32) -> Result<&mut Self, NnError> {
        let name = self.next_name("dropout");
        if !(0.0..1.0).contains(&rate) {
            return Err(self.error(&name, format!("rate must be in [0, 1), got {rate}")));
        }
        self.layers.push(Box::new(Dropout {
            name,
            rate,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    pub fn flatten(&mut self) -> &mut Self {
        let name = self.next_name("flatten");
        self.shape = vec![self.shape.iter().product()];
        self.layers.push(Box::new(Flatten {
            name,
            shape: self.shape.clone(),
        }));
        self
    }

    pub fn activation(&mut self, activation: Activation) -> &mut Self {
        let name = self.next_name("activation");
        self.layers.push(Box::new(ActivationLayer {
            name,
            activation,
            shape: self.shape.clone(),
        }));
        self
    }

    pub fn dense(
        &mut self,
        units: usize,
        activation: Activation,
        init: Init,
    ) -> Result<&mut Self, NnError> {
        let name = self.next_name("dense");
        let &[inputs] = &self.shape[..] else {
            return Err(self.error(
                &name,
                format!(
                    "needs a flat input, got [{}]: add flatten() first",
                    join(&self.shape)
                ),
            ));
        };
        let kernel = self.param(
            format!("{name}.kernel"),
            vec![inputs, units],
            ParamKind::Kernel,
            init,
            (inputs, units),
        );
        let bias = self.param(
            format!("{name}.bias"),
            vec![units],
            ParamKind::Bias,
            Init::Zeros,
            (1, 1),
        );
        self.shape = vec![units];
        self.layers.push(Box::new(Dense {
            name,
            kernel,
            bias: Some(bias),
            activation,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    /// Keras' BatchNormalization(momentum=0.99, epsilon=1e-3) over the channels.
    pub fn batchnorm(&mut self) -> &mut Self {
        self.batchnorm_with(0.99, 1e-3)
    }

    /// BatchNormalization with explicit `momentum` (of the moving averages) and `epsilon`.
    pub fn batchnorm_with(&mut self, momentum: f32, epsilon: f32) -> &mut Self {
        let name = self.next_name("batch_normalization");
        let c = *self.shape.last().expect("shape is never empty");
        let ones = Tensor::full([c], 1.0);
        let gamma = self
            .store
            .add(format!("{name}.gamma"), ones.clone(), ParamKind::Scale);
        let beta = self
            .store
            .add(format!("{name}.beta"), Tensor::zeros([c]), ParamKind::Shift);
        let moving_mean = self.store.add(
            format!("{name}.moving_mean"),
            Tensor::zeros([c]),
            ParamKind::Statistic,
        );
        let moving_var = self.store.add(
            format!("{name}.moving_variance"),
            ones,
            ParamKind::Statistic,
        );
        for id in [moving_mean, moving_var] {
            self.store.get_mut(id).trainable = false;
        }
        self.layers.push(Box::new(BatchNorm {
            name,
            gamma,
            beta,
            moving_mean,
            moving_var,
            momentum,
            epsilon,
            shape: self.shape.clone(),
        }));
        self
    }

    pub fn avgpool2d(
        &mut self,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<&mut Self, NnError> {
        let name = self.next_name("average_pooling2d");
        let (oh, ow, c) = self.window_output(&name, size, stride, padding)?;
        self.shape = vec![oh, ow, c];
        self.layers.push(Box::new(AvgPool2d {
            name,
            size,
            stride,
            padding,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    pub fn global_avgpool(&mut self) -> Result<&mut Self, NnError> {
        let name = self.next_name("global_average_pooling2d");
        let (_, _, c) = self.spatial(&name)?;
        self.shape = vec![c];
        self.layers.push(Box::new(GlobalAvgPool {
            name,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    pub fn lrn(&mut self, params: tensor::ops::LrnParams) -> &mut Self {
        let name = self.next_name("lrn");
        self.layers.push(Box::new(Lrn {
            name,
            params,
            shape: self.shape.clone(),
        }));
        self
    }

    /// He et al.'s basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the shortcut, then
    /// ReLU. When the shape changes, `projection` picks option B (1x1 conv + BN) over option A
    /// (subsample and zero-pad channels).
    pub fn residual_block(
        &mut self,
        filters: usize,
        stride: usize,
        projection: bool,
        init: Init,
    ) -> Result<&mut Self, NnError> {
        let name = self.next_name("residual_block");
        let (_, _, c) = self.spatial(&name)?;
        let input_shape = self.shape.clone();
        let start = self.layers.len();
        self.conv2d(filters, 3, stride, Padding::Same, Activation::Linear, init)?
            .batchnorm()
            .activation(Activation::Relu)
            .conv2d(filters, 3, 1, Padding::Same, Activation::Linear, init)?
            .batchnorm();
        let main = self.layers.split_off(start);
        let out_shape = self.shape.clone();
        let shortcut = if stride == 1 && c == filters {
            Shortcut::Identity
        } else if projection {
            self.shape = input_shape;
            self.conv2d(filters, 1, stride, Padding::Same, Activation::Linear, init)?
                .batchnorm();
            Shortcut::Projection(self.layers.split_off(start))
        } else {
            if filters < c {
                return Err(self.error(
                    &name,
                    format!("option-A shortcut cannot shrink {c} channels to {filters}"),
                ));
            }
            let before = (filters - c) / 2;
            Shortcut::ZeroPad {
                stride,
                before,
                after: filters - c - before,
            }
        };
        self.shape = out_shape;
        self.layers.push(Box::new(Residual {
            name,
            main,
            shortcut,
            activation: Activation::Relu,
            shape: self.shape.clone(),
        }));
        Ok(self)
    }

    /// Marks every parameter created so far as frozen (Keras' `layer.trainable = False` for
    /// all layers added until now).
    pub fn freeze(&mut self) -> &mut Self {
        for (_, p) in self.store.iter_mut() {
            p.trainable = false;
        }
        self
    }

    pub fn build(self) -> Sequential {
        Sequential {
            name: self.name,
            input_shape: self.input_shape,
            layers: self.layers,
            store: self.store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_that_do_not_fit_are_build_errors() {
        let mut b = SequentialBuilder::new("bad", &[4, 4, 3], 0);
        b.maxpool2d(2, 2, Padding::Valid).unwrap();
        let err = b
            .conv2d(
                8,
                3,
                1,
                Padding::Valid,
                Activation::Relu,
                Init::GlorotUniform,
            )
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad") && err.contains("conv2d") && err.contains("2x2"),
            "{err}"
        );
        let err = b
            .dense(3, Activation::Linear, Init::Zeros)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("flatten"), "{err}");
        let err = b.flatten().global_avgpool().err().unwrap().to_string();
        assert!(err.contains("[h, w, c]"), "{err}");
    }

    /// With momentum 0 the moving statistics become the last batch's, so inference on that
    /// batch must give what the training-mode forward gave: the train/inference paths of batch
    /// norm agree and the moving-average update lands in the right parameters.
    #[test]
    fn batchnorm_inference_uses_the_moving_statistics() {
        let mut b = SequentialBuilder::new("bn", &[5, 5, 2], 3);
        b.conv2d(4, 3, 1, Padding::Same, Activation::Linear, Init::HeNormal)
            .unwrap()
            .batchnorm_with(0.0, 1e-3)
            .activation(Activation::Relu)
            .global_avgpool()
            .unwrap()
            .dense(3, Activation::Linear, Init::GlorotUniform)
            .unwrap();
        let mut model = b.build();
        let x: Vec<f32> = (0..2 * 5 * 5 * 2)
            .map(|i| ((i * 37 % 11) as f32) / 5.0 - 1.0)
            .collect();
        let x = Tensor::from_vec([2, 5, 5, 2], x).unwrap();
        // Zero learning rate: parameters stay, only the moving statistics change.
        let mut opt = crate::optim::Adam::new(tensor::ops::AdamHyper {
            lr: 0.0,
            ..Default::default()
        });
        let batch = crate::step::TrainBatch {
            images: x.clone(),
            labels: &[0, 2],
            seed: 0,
            step: 0,
        };
        crate::step::train_step(&mut model, &mut opt, batch, 0.0).unwrap();
        let mut tape = Tape::new();
        let xv = tape.input(x.clone());
        let mut ctx = Ctx::new(&model.store, true, 0);
        let y = model.forward(&mut tape, xv, &mut ctx).unwrap();
        let train = tape.value(y).to_vec();
        let infer = model.predict(&x).unwrap().to_vec();
        for (a, b) in train.iter().zip(&infer) {
            assert!(
                (a - b).abs() < 1e-5,
                "training {train:?} vs inference {infer:?}"
            );
        }
        // And before the update (moving mean 0, variance 1) the two differ.
        let fresh = {
            let mut b = SequentialBuilder::new("bn", &[5, 5, 2], 3);
            b.conv2d(4, 3, 1, Padding::Same, Activation::Linear, Init::HeNormal)
                .unwrap()
                .batchnorm_with(0.0, 1e-3)
                .activation(Activation::Relu)
                .global_avgpool()
                .unwrap()
                .dense(3, Activation::Linear, Init::GlorotUniform)
                .unwrap();
            b.build()
        };
        assert_ne!(fresh.predict(&x).unwrap().to_vec(), infer);
    }
}
