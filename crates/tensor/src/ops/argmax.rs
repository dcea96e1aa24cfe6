//! argmax: how many rows of `[batch, classes]` scores have their maximum at the label.

use crate::{Device, Result, Tensor, TensorError};

pub fn count_correct(logits: &Tensor, labels: &[u32]) -> Result<usize> {
    logits.expect_rank("count_correct", "logits", 2)?;
    if labels.len() != logits.dims()[0] {
        return Err(TensorError::shape(
            "count_correct",
            format!("{} labels for logits {}", labels.len(), logits.shape()),
        ));
    }
    Ok(match logits.device() {
        Device::Cpu => cpu::argmax::count_correct(logits.as_slice(), labels, logits.dims()[1]),
        #[cfg(feature = "gpu")]
        dev @ Device::Gpu(_) => {
            let mut count = Tensor::zeros_on([1], &dev)?;
            accumulate_correct(logits, labels, &mut count)?;
            count.item()? as usize
        }
    })
}

/// Adds the number of rows whose highest logit is the label to `sum[0]`, on the logits'
/// device. On the GPU nothing is read back: training sums its metrics there and reads them
/// only now and then.
pub fn accumulate_correct(logits: &Tensor, labels: &[u32], sum: &mut Tensor) -> Result<()> {
    logits.expect_rank("count_correct", "logits", 2)?;
    let (rows, classes) = (logits.dims()[0], logits.dims()[1]);
    if labels.len() != rows || sum.numel() == 0 {
        return Err(TensorError::shape(
            "count_correct",
            format!(
                "{} labels for logits {}, sum {}",
                labels.len(),
                logits.shape(),
                sum.shape()
            ),
        ));
    }
    let dev = crate::ops::same_device("count_correct", &[logits, sum])?;
    match &dev {
        Device::Cpu => {
            sum.data_mut()[0] +=
                cpu::argmax::count_correct(logits.as_slice(), labels, classes) as f32
        }
        #[cfg(feature = "gpu")]
        Device::Gpu(ctx) => {
            let gl = crate::ops::labels_on(labels, &dev)?;
            gpu::softmax_xent::count_correct(
                ctx,
                logits.gpu_buf(),
                gl.gpu_buf(),
                rows,
                classes,
                sum.gpu_buf_mut(),
                0,
                true,
            )?
        }
    }
    Ok(())
}
