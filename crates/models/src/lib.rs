//! The model catalogue (`docs/models.md`): each architecture as a constructor, and the
//! training recipe its article used.
//!
//! `build(name, seed)` makes any model by name; `recipe(name)` gives the article's defaults,
//! which the command line can override part by part.

mod keras6;
mod nin;
mod recipe;
mod stackoverflow;
mod tuning;
mod vgg16;

pub use recipe::{Augmentation, Optim, Preprocess, Recipe, Validation};

use nn::{NnError, Sequential};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("unknown model `{0}`{hint}; `scratchnet models` lists them: {known}", hint = suggestion(.0), known = names().join(", "))]
    Unknown(String),
    #[error(transparent)]
    Build(#[from] NnError),
}

/// One catalogue entry.
pub struct Entry {
    pub name: &'static str,
    /// The article section of `docs/models.md`.
    pub section: &'static str,
    build: fn(u64) -> Result<Sequential, NnError>,
    recipe: fn() -> Recipe,
}

/// Every model, in `docs/models.md` order.
pub fn catalogue() -> &'static [Entry] {
    &CATALOGUE
}

macro_rules! entry {
    ($name:literal, $section:literal, $build:expr, $recipe:expr) => {
        Entry {
            name: $name,
            section: $section,
            build: $build,
            recipe: $recipe,
        }
    };
}

static CATALOGUE: [Entry; 26] = [
    entry!("keras6_v1", "A.1", keras6::keras6_v1, keras6::recipe),
    entry!("keras6_v2", "A.2", keras6::keras6_v2, keras6::recipe),
    entry!("keras6_v3", "A.3", keras6::keras6_v3, keras6::recipe),
    entry!("keras6", "A.4", keras6::keras6, keras6::recipe),
    entry!(
        "so_original",
        "B.1",
        stackoverflow::so_original,
        stackoverflow::so_original_recipe
    ),
    entry!(
        "so_answer",
        "B.2",
        stackoverflow::so_answer,
        stackoverflow::so_answer_recipe
    ),
    entry!(
        "keras_example",
        "B.3",
        stackoverflow::keras_example,
        stackoverflow::keras_example_recipe
    ),
    entry!("vgg16_finetune", "C", vgg16::vgg16_finetune, vgg16::recipe),
    entry!("vgg16", "C (from scratch)", vgg16::vgg16, vgg16::recipe),
    entry!("nin", "D.1", nin::nin, nin::recipe),
    entry!("nin_bn", "D.2", nin::nin_bn, nin::recipe_bn),
    entry!("nin_bn_badm", "D.3", nin::nin_bn_badm, nin::recipe_bn),
    entry!("nin_bn_dbam", "D.3", nin::nin_bn_dbam, nin::recipe_bn),
    entry!("nin_bn_bdam", "D.3", nin::nin_bn_bdam, nin::recipe_bn),
    entry!("basic3", "E.1", tuning::basic3, tuning::basic3_recipe),
    entry!(
        "basic3_augment",
        "E.2",
        tuning::basic3_augment,
        tuning::basic3_augment_recipe
    ),
    entry!(
        "basic3_regularise",
        "E.3",
        tuning::basic3_regularise,
        tuning::basic3_regularise_recipe
    ),
    entry!(
        "basic3_lr_schedule",
        "E.4",
        tuning::basic3_lr_schedule,
        tuning::basic3_lr_schedule_recipe
    ),
    entry!("plain8", "E.5", |s| tuning::plain_net(8, s), || {
        tuning::deep_recipe("about 90% (plain8)")
    }),
    entry!("plain14", "E.5", |s| tuning::plain_net(14, s), || {
        tuning::deep_recipe("the article's best plain depth")
    }),
    entry!("plain20", "E.5", |s| tuning::plain_net(20, s), || {
        tuning::deep_recipe("below plain14: deeper plain nets degrade")
    }),
    entry!("plain32", "E.5", |s| tuning::plain_net(32, s), || {
        tuning::deep_recipe("below plain20: deeper plain nets degrade")
    }),
    entry!("resnet20", "E.6", |s| tuning::resnet_net(20, s), || {
        tuning::deep_recipe("91.25% (He et al.)")
    }),
    entry!("resnet32", "E.6", |s| tuning::resnet_net(32, s), || {
        tuning::deep_recipe("92.49% (He et al.)")
    }),
    entry!("resnet44", "E.6", |s| tuning::resnet_net(44, s), || {
        tuning::deep_recipe("92.83% (He et al.)")
    }),
    entry!("resnet56", "E.6", |s| tuning::resnet_net(56, s), || {
        tuning::deep_recipe("91.55% (the article); 93.03% (He et al.)")
    }),
];

/// ` (did you mean `keras6`?)` for a name one or two edits away from a catalogue name.
fn suggestion(name: &str) -> String {
    names()
        .into_iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, with a swap of two neighbours counting as one edit (`kears6`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

pub fn names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|e| e.name).collect()
}

fn entry(name: &str) -> Result<&'static Entry, ModelError> {
    CATALOGUE
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::Unknown(name.to_string()))
}

/// The model `name` with weights initialised from `seed`.
pub fn build(name: &str, seed: u64) -> Result<Sequential, ModelError> {
    Ok((entry(name)?.build)(seed)?)
}

/// For models that can start from another framework's weights: the `(parameter, tensor)`
/// name mapping of that file (Keras' VGG16 notop for the VGG16 models).
pub fn import_mapping(name: &str) -> Option<Vec<(String, String)>> {
    matches!(name, "vgg16" | "vgg16_finetune").then(vgg16::keras_mapping)
}

/// The article's training recipe for `name`.
pub fn recipe(name: &str) -> Result<Recipe, ModelError> {
    Ok((entry(name)?.recipe)())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_names_get_a_suggestion() {
        assert_eq!(edit_distance("kears6", "keras6"), 1);
        assert_eq!(edit_distance("resnet", "resnet20"), 2);
        let err = build("kears6", 1).err().unwrap().to_string();
        assert!(err.contains("did you mean `keras6`?"), "{err}");
        assert!(err.contains("scratchnet models"), "{err}");
        let err = build("transformer", 1).err().unwrap().to_string();
        assert!(!err.contains("did you mean"), "{err}");
    }
}
