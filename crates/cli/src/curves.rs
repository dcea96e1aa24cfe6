//! Learning curves: loss and accuracy, training (solid) and validation (dashed), against
//! epochs, with each learning-rate change marked by a dotted vertical line at the start of the
//! first epoch that used the new rate. One run or several on the same axes (`plot`), drawn
//! with plotters to SVG and to PNG (text in the PNG with the DejaVu Sans font bundled into
//! the binary, so no system font is needed).

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::train::EpochRecord;

const SIZE: (u32, u32) = (1280, 520);
/// One colour per run (Tableau 10's first six).
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One run's curves: its label in the legend and its history.
pub struct Run<'a> {
    pub label: String,
    pub history: &'a [EpochRecord],
}

/// The curves as an SVG document.
pub fn svg(title: &str, runs: &[Run]) -> anyhow::Result<String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root, title, runs).map_err(|e| anyhow::anyhow!("drawing the curves: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing the curves: {e}"))?;
    }
    Ok(out)
}

/// The curves as a PNG file's bytes.
pub fn png(title: &str, runs: &[Run]) -> anyhow::Result<Vec<u8>> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, title, runs).map_err(|e| anyhow::anyhow!("drawing the curves: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing the curves: {e}"))?;
    }
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut wr| wr.write_image_data(&rgb))
        .context("encoding the curves as PNG")?;
    Ok(bytes)
}

/// Writes `<stem>.svg` and `<stem>.png` (atomically) for `runs`.
pub fn write(svg_path: &Path, png_path: &Path, title: &str, runs: &[Run]) -> anyhow::Result<()> {
    let s = svg(title, runs)?;
    nn::atomic_file::write_atomic(svg_path, s.as_bytes())
        .with_context(|| format!("writing {}", svg_path.display()))?;
    let p = png(title, runs)?;
    nn::atomic_file::write_atomic(png_path, &p)
        .with_context(|| format!("writing {}", png_path.display()))
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is a valid TrueType file; were it not, text would be missing from
        // the PNG and the drawing calls would report it.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The epochs (1-based) whose learning rate differs from the epoch before, with the new rate.
pub fn lr_changes(history: &[EpochRecord]) -> Vec<(usize, f32)> {
    history
        .windows(2)
        .filter(|w| w[1].lr != w[0].lr)
        .map(|w| (w[1].epoch, w[1].lr))
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    runs: &[Run],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let epochs = runs
        .iter()
        .flat_map(|r| r.history.iter().map(|h| h.epoch))
        .max()
        .unwrap_or(1)
        .max(1) as f32;
    let max_loss = runs
        .iter()
        .flat_map(|r| r.history.iter().flat_map(|h| [h.loss, h.val_loss]))
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max)
        .max(1e-3)
        * 1.05;
    // Legends where the curves usually are not: loss falls from the upper left, accuracy
    // rises from the lower left.
    panel(
        &left,
        "loss",
        epochs,
        max_loss,
        runs,
        |r| (r.loss, r.val_loss),
        SeriesLabelPosition::UpperRight,
    )?;
    panel(
        &right,
        "accuracy",
        epochs,
        1.0,
        runs,
        |r| (r.acc, r.val_acc),
        SeriesLabelPosition::UpperLeft,
    )
}

/// One chart: the training and validation series `metric` of every run.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    epochs: f32,
    y_max: f32,
    runs: &[Run],
    metric: fn(&EpochRecord) -> (f32, f32),
    legend_at: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // A little room right of the last epoch, so its markers are not cut in half.
        .build_cartesian_2d(0f32..epochs + 0.25, 0f32..y_max)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(name)
        .x_labels((epochs as usize + 2).min(12))
        .x_label_formatter(&|x| {
            // Whole epochs only.
            if (x - x.round()).abs() < 1e-3 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        // One run: training and validation in two colours; several: a colour per run, and
        // validation dashed.
        let (colour, val_colour) = if runs.len() == 1 {
            (COLOURS[0], COLOURS[1])
        } else {
            let c = COLOURS[i % COLOURS.len()];
            (c, c)
        };
        let label = |what: &str| {
            if runs.len() == 1 {
                what.to_string()
            } else {
                format!("{} {what}", run.label)
            }
        };
        let finite = |v: f32| v.is_finite().then_some(v.min(y_max));
        let train: Vec<(f32, f32)> = run
            .history
            .iter()
            .filter_map(|r| finite(metric(r).0).map(|v| (r.epoch as f32, v)))
            .collect();
        let val: Vec<(f32, f32)> = run
            .history
            .iter()
            .filter_map(|r| finite(metric(r).1).map(|v| (r.epoch as f32, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(train, colour.stroke_width(2)).point_size(3))?
            .label(label("training"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                val.clone(),
                8,
                5,
                val_colour.stroke_width(2),
            ))?
            .label(label("validation"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 8, y)], val_colour.stroke_width(2))
            });
        chart.draw_series(val.iter().map(|&p| Circle::new(p, 3, val_colour.filled())))?;
        for (epoch, lr) in lr_changes(run.history) {
            let x = epoch as f32 - 1.0;
            chart.draw_series(DashedLineSeries::new(
                [(x, 0.0), (x, y_max)],
                2,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))?;
            // The label sits at the foot of the line, a few pixels to its right: the
            // curves are usually far from the axis there by the time the rate changes.
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, 0.0))
                    + Text::new(
                        format!("lr {lr}"),
                        (4, -18),
                        ("sans-serif", 13).into_font().color(&BLACK.mix(0.8)),
                    ),
            ))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .position(legend_at)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lrs: &[f32]) -> Vec<EpochRecord> {
        lrs.iter()
            .enumerate()
            .map(|(i, &lr)| EpochRecord {
                epoch: i + 1,
                loss: 2.0 / (i + 1) as f32,
                acc: 0.1 * i as f32,
                val_loss: 2.2 / (i + 1) as f32,
                val_acc: 0.08 * i as f32,
                lr,
                seconds: 1.0,
                images_per_sec: 1.0,
            })
            .collect()
    }

    #[test]
    fn lr_changes_are_found_where_the_rate_differs() {
        let h = history(&[0.1, 0.1, 0.01, 0.01, 0.001]);
        assert_eq!(lr_changes(&h), [(3, 0.01), (5, 0.001)]);
        assert!(lr_changes(&h[..2]).is_empty());
    }

    #[test]
    fn both_formats_carry_the_labels() {
        let h = history(&[0.1, 0.1, 0.01]);
        let runs = [Run {
            label: "keras6".into(),
            history: &h,
        }];
        let s = svg("keras6 on cifar10", &runs).unwrap();
        for want in [
            "epoch",
            "loss",
            "accuracy",
            "training",
            "validation",
            "lr 0.01",
        ] {
            assert!(s.contains(want), "{want} missing from the SVG");
        }
        let p = png("keras6", &runs).unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        // Not a blank picture: the curves and text put many non-white pixels on it.
        let decoder = png::Decoder::new(std::io::Cursor::new(&p));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let dark = buf
            .chunks(3)
            .filter(|px| px.iter().all(|&c| c < 128))
            .count();
        assert!(dark > 2000, "only {dark} dark pixels");
        // Two runs get labels with their names; an empty history still draws.
        let two = [
            Run {
                label: "a".into(),
                history: &h,
            },
            Run {
                label: "b".into(),
                history: &[],
            },
        ];
        assert!(svg("two", &two).unwrap().contains("a validation"));
    }
}
