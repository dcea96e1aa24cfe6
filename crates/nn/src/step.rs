//! One training step and batch evaluation.
//!
//! A step: record the forward pass on a fresh tape, add the fused softmax cross-entropy,
//! back-propagate, drop the tape (so the parameters are no longer shared and can be updated in
//! place), then let the optimiser update every trainable parameter.
//!
//! Loss and accuracy go into [`Metrics`], running sums kept on the model's device. On the GPU
//! nothing is read back during a step: the caller reads the sums with [`Metrics::take`] every
//! so many steps, and a step whose loss is not finite changes no parameter, because every
//! update kernel first checks the running loss sum on the device (the optimiser's `guard`).
//! On the CPU the loss is checked at once and a bad step returns an error before any update.

use autograd::Tape;
use tensor::{ops, Device, Shape, Tensor};

use crate::optim::Optimizer;
use crate::{Ctx, NnError, Sequential};

/// What one step or one evaluated batch produced.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    /// Examples whose highest logit is the label.
    pub correct: usize,
    pub examples: usize,
}

/// Running sums of the loss and of correct predictions over some steps (or evaluated batches),
/// on the model's device.
pub struct Metrics {
    /// `sum over steps of loss * examples`; shape `[]`. Also the update guard: once it is not
    /// finite, no later step of this stretch changes anything.
    loss_sum: Tensor,
    correct: Tensor,
    examples: usize,
    /// Steps recorded since the last `take`: (first, last).
    steps: Option<(u64, u64)>,
}

impl Metrics {
    pub fn new(device: &Device) -> Result<Self, NnError> {
        Ok(Metrics {
            loss_sum: Tensor::zeros_on(Shape::new(vec![]), device)?,
            correct: Tensor::zeros_on(Shape::new(vec![]), device)?,
            examples: 0,
            steps: None,
        })
    }

    /// Examples recorded since the last [`Metrics::take`].
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Add one batch's mean `loss` (a one-element tensor) and its logits' correct count.
    fn record(
        &mut self,
        loss: &Tensor,
        logits: &Tensor,
        labels: &[u32],
        step: u64,
    ) -> Result<(), NnError> {
        ops::axpy(labels.len() as f32, loss, &mut self.loss_sum)?;
        ops::accumulate_correct(logits, labels, &mut self.correct)?;
        self.examples += labels.len();
        self.steps = Some(self.steps.map_or((step, step), |(first, _)| (first, step)));
        Ok(())
    }

    /// The sums so far as a mean loss and a correct count (a readback on the GPU, which also
    /// waits for the recorded work), and a fresh start. A loss that stopped being finite since
    /// the last call is an error naming the steps in between.
    pub fn take(&mut self) -> Result<BatchStats, NnError> {
        let device = self.loss_sum.device();
        let sums = (self.loss_sum.item()?, self.correct.item()?);
        let examples = std::mem::take(&mut self.examples);
        let steps = self.steps.take();
        self.loss_sum = Tensor::zeros_on(Shape::new(vec![]), &device)?;
        self.correct = Tensor::zeros_on(Shape::new(vec![]), &device)?;
        if !sums.0.is_finite() {
            let (first, last) = steps.unwrap_or((0, 0));
            return Err(NnError::NonFiniteLoss {
                value: sums.0,
                step: first,
                last,
            });
        }
        Ok(BatchStats {
            loss: if examples > 0 {
                sums.0 / examples as f32
            } else {
                0.0
            },
            correct: sums.1 as usize,
            examples,
        })
    }
}

/// One batch of a training step: the images (on any device; they are moved to the model's),
/// their labels, and where the step falls in the run.
pub struct TrainBatch<'a> {
    pub images: Tensor,
    pub labels: &'a [u32],
    /// Drives dropout: pass a different one each step.
    pub seed: u32,
    /// The global step, only used to report where a non-finite loss appeared.
    pub step: u64,
}

/// Trains on one batch and returns its loss and accuracy (on the GPU, a readback every call:
/// training loops use [`record_train_step`] and read [`Metrics`] now and then instead).
///
/// `weight_decay` is Keras' `l2(weight_decay)` on every trainable kernel (0 for none): the
/// reported loss includes `weight_decay * Σ w²`, and each kernel's gradient gains
/// `2 * weight_decay * w`. A NaN or infinite loss is an error and the parameters are left
/// untouched.
pub fn train_step(
    model: &mut Sequential,
    opt: &mut dyn Optimizer,
    batch: TrainBatch,
    weight_decay: f32,
) -> Result<BatchStats, NnError> {
    let mut metrics = Metrics::new(&model.device())?;
    record_train_step(model, opt, batch, weight_decay, &mut metrics)?;
    metrics.take()
}

/// [`train_step`] whose loss and accuracy are added to `metrics` (on the model's device, so on
/// the GPU the step is only recorded: nothing waits for it).
pub fn record_train_step(
    model: &mut Sequential,
    opt: &mut dyn Optimizer,
    batch: TrainBatch,
    weight_decay: f32,
    metrics: &mut Metrics,
) -> Result<(), NnError> {
    let TrainBatch {
        images,
        labels,
        seed,
        step,
    } = batch;
    let device = model.device();
    let mut tape = Tape::new();
    let x = tape.input(images.to_device(&device)?);
    let mut ctx = Ctx::new(&model.store, true, seed);
    let logits = model.forward(&mut tape, x, &mut ctx)?;
    let loss_var = tape.softmax_cross_entropy(logits, labels)?;
    let mut loss = tape.value(loss_var).clone();
    if weight_decay > 0.0 {
        let penalty = crate::regularizer::l2_penalty_tensor(&model.store, weight_decay)?;
        ops::add_assign(&mut loss, &penalty)?;
    }
    if !device.is_gpu() {
        // On the CPU the check is free: stop before anything changes.
        let value = loss.item()?;
        if !value.is_finite() {
            return Err(NnError::NonFiniteLoss {
                value,
                step,
                last: step,
            });
        }
    }
    metrics.record(&loss, tape.value(logits), labels, step)?;
    let mut grads = tape.backward(loss_var)?;
    let mut updates: Vec<_> = ctx
        .param_vars()
        .filter(|&(id, _)| model.store.get(id).trainable)
        .filter_map(|(id, v)| grads.take(v).map(|g| (id, g)))
        .collect();
    crate::regularizer::add_l2_gradients(&model.store, weight_decay, &mut updates)?;
    let statistics = ctx.take_updates();
    drop(ctx);
    drop(grads);
    drop(tape);
    let guard = Some(&metrics.loss_sum);
    opt.step(&mut model.store, updates, guard)?;
    for (id, batch, momentum) in statistics {
        let moving = &mut model.store.get_mut(id).value;
        ops::update_moving_average(moving, &batch, momentum, guard)?;
    }
    Ok(())
}

/// Loss and accuracy counts of the model in inference mode on one batch (a readback on the
/// GPU; loops over many batches use [`record_evaluation`]).
pub fn evaluate_batch(
    model: &Sequential,
    images: &Tensor,
    labels: &[u32],
) -> Result<BatchStats, NnError> {
    let mut metrics = Metrics::new(&model.device())?;
    record_evaluation(model, images, labels, &mut metrics)?;
    metrics.take()
}

/// Adds the inference-mode loss and correct count of one batch to `metrics`, and returns the
/// batch's logits (on the model's device) for callers that want the predictions too.
pub fn record_evaluation(
    model: &Sequential,
    images: &Tensor,
    labels: &[u32],
    metrics: &mut Metrics,
) -> Result<Tensor, NnError> {
    let logits = model.predict(images)?;
    let (loss, _) = ops::softmax_xent(&logits, labels)?;
    metrics.record(&loss, &logits, labels, 0)?;
    Ok(logits)
}
