//! From stored images to a network's input batch, as a recipe prescribes: convert (and scale)
//! the bytes, normalise per channel, augment (random in training, centre crop at evaluation),
//! then standardise per image. All buffers are allocated once and reused every step.

use data::augment::{self, Augment, Crop, Mode};
use data::{Dataset, IMAGE_BYTES};
use models::{Preprocess, Recipe};
use tensor::Tensor;

pub struct Pipeline {
    preprocess: Preprocess,
    augment: Augment,
    seed: u64,
    raw: Vec<f32>,
    out: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Pipeline {
    pub fn new(recipe: &Recipe, batch_size: usize, seed: u64) -> Self {
        let a = &recipe.augment;
        let augment = Augment {
            flip: a.flip,
            shift: a.shift,
            shift_fill: 0.0,
            crop: a.crop.map(|(pad, size)| Crop { pad, size }),
        };
        let (oh, ow) = augment.output_hw(32, 32);
        Pipeline {
            preprocess: recipe.preprocess,
            augment,
            seed,
            raw: vec![0.0; batch_size * IMAGE_BYTES],
            out: vec![0.0; batch_size * oh * ow * 3],
            labels: vec![0; batch_size],
        }
    }

    /// The network's input size for this recipe.
    pub fn input_hw(&self) -> (usize, usize) {
        self.augment.output_hw(32, 32)
    }

    /// The images `indices` of `ds`, ready for the network; their labels are left in
    /// `self.labels[..indices.len()]`. `step` seeds the random augmentation.
    pub fn batch(
        &mut self,
        ds: &Dataset,
        indices: &[usize],
        mode: Mode,
        step: u64,
    ) -> anyhow::Result<Tensor> {
        let n = indices.len();
        let (oh, ow) = self.input_hw();
        let raw = &mut self.raw[..n * IMAGE_BYTES];
        data::fill_batch(
            ds,
            indices,
            self.preprocess.scale(),
            raw,
            &mut self.labels[..n],
        );
        if let Preprocess::PerChannel { mean, std } = self.preprocess {
            augment::normalize_per_channel(raw, 3, &mean, &std);
        }
        let out = &mut self.out[..n * oh * ow * 3];
        augment::augment_batch(raw, n, 32, 32, 3, &self.augment, mode, self.seed, step, out);
        if self.preprocess == Preprocess::PerImage {
            augment::standardize_per_image(out, oh * ow * 3);
        }
        Ok(Tensor::from_slice([n, oh, ow, 3], out)?)
    }
}

/// Loss and accuracy over a whole dataset in inference mode (evaluation preprocessing).
pub fn evaluate(
    model: &nn::Sequential,
    ds: &Dataset,
    recipe: &Recipe,
    batch_size: usize,
) -> anyhow::Result<(f32, f32)> {
    let mut p = Pipeline::new(recipe, batch_size, 0);
    // Summed on the model's device and read once at the end.
    let mut metrics = nn::step::Metrics::new(&model.device())?;
    let all: Vec<usize> = (0..ds.len()).collect();
    for idx in all.chunks(batch_size) {
        let x = p.batch(ds, idx, Mode::Eval, 0)?;
        nn::step::record_evaluation(model, &x, &p.labels[..idx.len()], &mut metrics)?;
    }
    let s = metrics.take()?;
    let n = ds.len().max(1) as f64;
    Ok((s.loss, (s.correct as f64 / n) as f32))
}

/// Mean loss over `ds` and the predicted class of every image, in order (inference mode,
/// evaluation preprocessing): what `eval`'s per-class table and confusion matrix need.
pub fn predict_all(
    model: &nn::Sequential,
    ds: &Dataset,
    recipe: &Recipe,
    batch_size: usize,
) -> anyhow::Result<(f32, Vec<u32>)> {
    let mut p = Pipeline::new(recipe, batch_size, 0);
    let mut metrics = nn::step::Metrics::new(&model.device())?;
    let mut predictions = Vec::with_capacity(ds.len());
    let all: Vec<usize> = (0..ds.len()).collect();
    for idx in all.chunks(batch_size) {
        let x = p.batch(ds, idx, Mode::Eval, 0)?;
        let logits = nn::step::record_evaluation(model, &x, &p.labels[..idx.len()], &mut metrics)?;
        let host = logits.try_to_vec()?;
        let classes = host.len() / idx.len();
        predictions.extend(
            host.chunks(classes)
                .map(|row| cpu::argmax::argmax_row(row) as u32),
        );
    }
    Ok((metrics.take()?.loss, predictions))
}
