//! `plot RUN_DIR...`: the learning curves of one or several runs on the same axes (to compare
//! recipes), from their history.csv files.

use std::path::PathBuf;

use clap::Args;

use crate::curves;
use crate::run_dir;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run directories (each with a history.csv) to draw on the same axes.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Output file, .svg or .png; both formats are written, side by side (default: the run
    /// directory's curves.svg for one run, ./curves.svg for several).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn plot(args: &PlotArgs) -> anyhow::Result<()> {
    let histories = args
        .runs
        .iter()
        .map(|dir| run_dir::read_history(&dir.join(run_dir::HISTORY)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let label = |dir: &PathBuf| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    };
    let runs: Vec<curves::Run> = args
        .runs
        .iter()
        .zip(&histories)
        .map(|(dir, h)| curves::Run {
            label: label(dir),
            history: h,
        })
        .collect();
    let out = match &args.out {
        Some(p) => {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            anyhow::ensure!(
                ext == "svg" || ext == "png",
                "--out {}: the file name must end in .svg or .png",
                p.display()
            );
            p.clone()
        }
        None if args.runs.len() == 1 => args.runs[0].join(run_dir::CURVES_SVG),
        None => PathBuf::from(run_dir::CURVES_SVG),
    };
    let (svg, png) = (out.with_extension("svg"), out.with_extension("png"));
    let title = runs
        .iter()
        .map(|r| r.label.as_str())
        .collect::<Vec<_>>()
        .join(" vs ");
    curves::write(&svg, &png, &title, &runs)?;
    for (r, h) in runs.iter().zip(&histories) {
        println!("{}: {} epochs", r.label, h.len());
    }
    println!("wrote {} and {}", svg.display(), png.display());
    Ok(())
}
