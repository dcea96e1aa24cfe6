//! softmax_xent: fused softmax + cross-entropy over the rows of a `[batch, classes]` tensor.

use crate::{Device, Result, Tensor, TensorError};

fn check(logits: &Tensor, labels: &[u32]) -> Result<(usize, usize)> {
    logits.expect_rank("softmax_xent", "logits", 2)?;
    let (rows, classes) = (logits.dims()[0], logits.dims()[1]);
    if labels.len() != rows {
        return Err(TensorError::shape(
            "softmax_xent",
            format!("{} labels for logits {}", labels.len(), logits.shape()),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(TensorError::argument(
            "softmax_xent",
            format!("label {bad} is not below the {classes} classes"),
        ));
    }
    Ok((rows, classes))
}

/// Mean cross-entropy of `softmax(logits)` against `labels`, as a one-element tensor on the
/// logits' device, and the probabilities (kept for the backward pass).
pub fn softmax_xent(logits: &Tensor, labels: &[u32]) -> Result<(Tensor, Tensor)> {
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    let (rows, classes) = check(logits, labels)?;
    let dev = logits.device();
    let mut probs = Tensor::uninit_on(logits.shape().clone(), &dev)?;
    let loss = match &dev {
        Device::Cpu => Tensor::scalar(cpu::softmax_xent::softmax_xent_forward(
            logits.as_slice(),
            labels,
            classes,
            probs.data_mut(),
        )),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let gl = crate::ops::labels_on(labels, &dev)?;
            let loss = Tensor::uninit_on(crate::Shape::new(vec![]), &dev)?;
            gpu::softmax_xent::softmax_xent_forward(
                ctx,
                logits.gpu_buf(),
                gl.gpu_buf(),
                rows,
                classes,
                probs.gpu_buf(),
                loss.gpu_buf(),
                0,
                false,
            )?;
            loss
        }
    };
    Ok((loss, probs))
}

/// Gradient of `scale *` the mean cross-entropy with respect to the logits.
pub fn softmax_xent_backward(probs: &Tensor, labels: &[u32], scale: f32) -> Result<Tensor> {
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    let (rows, classes) = check(probs, labels)?;
    let dev = probs.device();
    let mut d = Tensor::uninit_on(probs.shape().clone(), &dev)?;
    match &dev {
        Device::Cpu => cpu::softmax_xent::softmax_xent_backward(
            probs.as_slice(),
            labels,
            classes,
            scale,
            d.data_mut(),
        ),
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let gl = crate::ops::labels_on(labels, &dev)?;
            gpu::softmax_xent::softmax_xent_backward(
                ctx,
                probs.gpu_buf(),
                gl.gpu_buf(),
                rows,
                classes,
                scale,
                d.gpu_buf(),
            )?
        }
    }
    Ok(d)
}
