//! `eval --model NAME --weights FILE --data DIR`.

use std::path::Path;

use anyhow::Context;

use crate::device::DeviceFlag;

pub fn eval(
    model: &str,
    weights: &Path,
    data_dir: &Path,
    batch_size: usize,
    device: DeviceFlag,
) -> anyhow::Result<()> {
    anyhow::ensure!(batch_size > 0, "--batch-size must be at least 1");
    let (device, line) = crate::device::select(device)?;
    println!("{line}");
    let mut m = models::build(model, 0)?;
    let recipe = models::recipe(model)?;
    nn::checkpoint::load(&mut m, weights)?;
    m.to_device(&device)?;
    let test = data::load_test(data_dir)
        .with_context(|| format!("loading the test set from {}", data_dir.display()))?;
    let (loss, acc) = crate::pipeline::evaluate(&m, &test, &recipe, batch_size)?;
    println!("test images: {}", test.len());
    println!("loss: {loss:.4}");
    println!("accuracy: {acc:.4}");
    Ok(())
}
