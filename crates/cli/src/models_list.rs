//! `models`: the catalogue, one model a line (or one JSON array with `--json`).

use clap::Args;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print one JSON array (fields: name, section, source, parameters, trainable_parameters,
    /// forward_mflop, reported, recipe) instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ModelRow {
    name: &'static str,
    section: &'static str,
    source: String,
    parameters: usize,
    trainable_parameters: usize,
    forward_mflop: f64,
    reported: String,
    recipe: String,
}

fn rows() -> anyhow::Result<Vec<ModelRow>> {
    models::catalogue()
        .iter()
        .map(|e| {
            let m = models::build(e.name, 0)?;
            let r = models::recipe(e.name)?;
            Ok(ModelRow {
                name: e.name,
                section: e.section,
                source: r.source.clone(),
                parameters: m.store.total_count(),
                trainable_parameters: m.store.trainable_count(),
                forward_mflop: (m.forward_flops_per_example() as f64 / 1e5).round() / 10.0,
                reported: r.expected.clone(),
                recipe: r.summary(),
            })
        })
        .collect()
}

pub fn list(args: &ModelsArgs) -> anyhow::Result<()> {
    let rows = rows()?;
    if args.json {
        return crate::output::json(&rows);
    }
    println!(
        "{:<19} {:>12} {:>8}  {:<18} reported / default recipe",
        "model", "parameters", "MFLOP", "article"
    );
    for r in &rows {
        println!(
            "{:<19} {:>12} {:>8.1}  {:<18} {}",
            r.name,
            nn::summary::thousands(r.parameters),
            r.forward_mflop,
            r.section,
            r.reported
        );
        println!("{:<60} {}", "", r.recipe);
    }
    println!("(MFLOP: forward pass per image; `scratchnet summary --model NAME` shows the layers)");
    Ok(())
}
