//! `predict --weights W IMAGE...`: the top classes of PNG or JPEG images.
//!
//! Each image is decoded, turned into 8-bit RGB (a grayscale image's one channel is copied to
//! all three; an alpha channel is composited over white), resized to the network's 32 x 32
//! input with an antialiased bilinear filter (`image`'s Triangle filter, the equivalent of
//! torchvision's `Resize(antialias=True)`; a 32 x 32 image is used as it is), and then goes
//! through the recipe's evaluation preprocessing, exactly as a test image does in `eval`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use data::{Dataset, CLASS_NAMES, HEIGHT, WIDTH};
use image::imageops::FilterType;
use serde_json::json;

use crate::device::DeviceFlag;
use crate::output::{self, info, Mode};

#[derive(Args, Debug)]
#[command(after_help = "Example:
  scratchnet predict --weights runs/keras6-1764600000/best.safetensors cat.jpg ship.png --top 3")]
pub struct PredictArgs {
    /// A weights file written by `train`; it names the model it is for.
    #[arg(long)]
    pub weights: PathBuf,
    /// PNG or JPEG files, any size.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// How many classes to print per image, most probable first.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=10))]
    pub top: u16,
    /// cpu (the default: a few images are not worth a GPU's start-up), auto or gpu.
    #[arg(long, value_enum, default_value_t = DeviceFlag::Cpu)]
    pub device: DeviceFlag,
    /// Print one JSON array (file, top: [{class, name, probability}]) and nothing else.
    #[arg(long)]
    pub json: bool,
}

/// The image at `path` as 32 x 32 x 3 bytes (HWC, RGB).
pub fn load_image(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .map_err(|e| {
            anyhow::anyhow!(
                "{} is not an image scratchnet can read (PNG or JPEG): {e}",
                path.display()
            )
        })?;
    let rgba = img.to_rgba8();
    // Alpha over white: a transparent pixel's colour is undefined, white is what viewers show.
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let over = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(p[0]), over(p[1]), over(p[2])])
    });
    let (w, h) = (WIDTH as u32, HEIGHT as u32);
    let rgb = if rgb.dimensions() == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, w, h, FilterType::Triangle)
    };
    Ok(rgb.into_raw())
}

/// Softmax of one row of logits.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

pub fn predict(args: &PredictArgs) -> anyhow::Result<()> {
    let meta = nn::checkpoint::metadata(&args.weights)?;
    let name = meta.get("model").cloned().with_context(|| {
        format!(
            "{} does not say which model it is for: not a scratchnet weights file",
            args.weights.display()
        )
    })?;
    let mut model = models::build(&name, 0)?;
    let recipe = models::recipe(&name)?;
    nn::checkpoint::load(&mut model, &args.weights)?;
    // Every image is read before any work, so a bad file fails fast.
    let mut ds = Dataset::default();
    for path in &args.images {
        ds.images.extend(load_image(path)?);
        ds.labels.push(0);
    }
    let (device, line) = crate::device::select(args.device)?;
    info!("{line}");
    info!("model: {name} (weights {})", args.weights.display());
    model.to_device(&device)?;
    // In batches, so that thousands of files need no more memory than a few hundred.
    const BATCH: usize = 256;
    let mut pipe = crate::pipeline::Pipeline::new(&recipe, BATCH.min(ds.len()), 0);
    let all_idx: Vec<usize> = (0..ds.len()).collect();
    let mut logits = Vec::with_capacity(ds.len() * data::CLASSES);
    for idx in all_idx.chunks(BATCH) {
        let x = pipe.batch(&ds, idx, data::augment::Mode::Eval, 0)?;
        logits.extend(model.predict(&x)?.try_to_vec()?);
    }
    let classes = logits.len() / ds.len();
    let mut all = Vec::new();
    for (path, row) in args.images.iter().zip(logits.chunks(classes)) {
        let p = softmax(row);
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        order.truncate(args.top as usize);
        match output::mode() {
            Mode::Json => all.push(json!({
                "file": path.display().to_string(),
                "top": order.iter().map(|&c| json!({
                    "class": c,
                    "name": CLASS_NAMES[c],
                    "probability": p[c],
                })).collect::<Vec<_>>(),
            })),
            _ => {
                let top: Vec<String> = order
                    .iter()
                    .map(|&c| format!("{} {:.4}", CLASS_NAMES[c], p[c]))
                    .collect();
                println!("{}: {}", path.display(), top.join(", "));
            }
        }
    }
    if output::mode() == Mode::Json {
        output::json(&all)?;
    }
    Ok(())
}
