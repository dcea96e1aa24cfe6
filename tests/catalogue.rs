//! Every catalogue model builds, has Keras' parameter counts, and takes training steps.

mod common;

use nn::optim::Adam;

/// (name, total, trainable) as Keras' `model.summary()` counts them (`docs/models.md` / issue 4).
const COUNTS: [(&str, usize, usize); 26] = [
    ("keras6_v1", 4_486_954, 4_486_954),
    ("keras6_v2", 4_486_954, 4_486_954),
    ("keras6_v3", 1_341_226, 1_341_226),
    ("keras6", 307_498, 307_498),
    ("so_original", 6_572_170, 6_572_170),
    ("so_answer", 12_923_914, 12_923_914),
    ("keras_example", 1_250_858, 1_250_858),
    ("vgg16_finetune", 14_982_474, 7_347_210),
    ("vgg16", 14_982_474, 14_982_474),
    ("nin", 966_986, 966_986),
    ("nin_bn", 972_658, 969_822),
    ("nin_bn_badm", 972_658, 969_822),
    ("nin_bn_dbam", 972_658, 969_822),
    ("nin_bn_bdam", 972_658, 969_822),
    ("basic3", 4_576_394, 4_576_394),
    ("basic3_augment", 2_741_386, 2_741_386),
    // + BatchNorm after each conv: 4 x (64 + 128 + 256), half of them non-trainable.
    ("basic3_regularise", 2_741_386 + 1_792, 2_741_386 + 896),
    ("basic3_lr_schedule", 2_741_386 + 1_792, 2_741_386 + 896),
    ("plain8", 27_066, 27_066 - 2 * (16 * 2 + 32 + 64)),
    ("plain14", 76_010, 76_010 - 2 * (16 * 3 + 32 * 2 + 64 * 2)),
    ("plain20", 124_954, 124_954 - 2 * (16 * 4 + 32 * 3 + 64 * 3)),
    ("plain32", 222_842, 222_842 - 2 * (16 * 6 + 32 * 5 + 64 * 5)),
    ("resnet20", 271_786, 271_786 - 1_376),
    ("resnet32", 467_562, 467_562 - 2_272),
    ("resnet44", 663_338, 663_338 - 3_168),
    ("resnet56", 859_114, 859_114 - 4_064),
];

#[test]
fn every_model_has_keras_parameter_counts() {
    assert_eq!(
        models::names().len(),
        COUNTS.len(),
        "catalogue and table differ"
    );
    for (name, total, trainable) in COUNTS {
        let m = models::build(name, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.store.total_count(), total, "{name} total");
        assert_eq!(m.store.trainable_count(), trainable, "{name} trainable");
        assert_eq!(m.output_shape(), &[10], "{name} output");
        let summary = nn::summary::summary(&m);
        let want = format!("Total params: {}", nn::summary::thousands(total));
        assert!(summary.contains(&want), "{name} summary:\n{summary}");
        let non = format!(
            "Non-trainable params: {}",
            nn::summary::thousands(total - trainable)
        );
        assert!(summary.contains(&non), "{name} summary:\n{summary}");
        models::recipe(name).unwrap();
    }
}

/// `docs/models.md`, the catalogue's documentation, as compiled into this test (so editing it
/// rebuilds the test).
const MODELS_MD: &str = include_str!("../docs/models.md");

/// A parameter count as `docs/models.md` writes it: digits in groups of three separated by
/// commas (`4,486,954`; `650`), the format of `nn::summary::thousands` and of Keras' summary.
/// `None` for anything else (`4486954`, `4.486.954`, `4,48,6954`, `007`, `1.3M`).
fn parse_thousands(cell: &str) -> Option<usize> {
    let groups: Vec<&str> = cell.split(',').collect();
    let well_formed = groups.iter().enumerate().all(|(i, g)| {
        let len_ok = if i == 0 {
            (1..=3).contains(&g.len())
        } else {
            g.len() == 3
        };
        len_ok && g.bytes().all(|b| b.is_ascii_digit())
    });
    // No leading zeros (`0` itself aside), as `thousands` never writes them.
    if !well_formed || (cell.len() > 1 && cell.starts_with('0')) {
        return None;
    }
    groups.concat().parse().ok()
}

#[test]
fn parse_thousands_accepts_only_grouped_digits() {
    assert_eq!(parse_thousands("4,486,954"), Some(4_486_954));
    assert_eq!(parse_thousands("650"), Some(650));
    assert_eq!(parse_thousands("0"), Some(0));
    for bad in [
        "4486954",
        "4.486.954",
        "4,48,6954",
        "1.3M",
        "",
        ",123",
        "012,345",
        "007",
        "1,2a4",
    ] {
        assert_eq!(parse_thousands(bad), None, "{bad:?}");
    }
}

/// The rows of the index table of `docs/models.md` (between its `models-index` markers), each
/// as its trimmed cells: model (in backticks), section, total params, trainable params, ...
fn index_rows(doc: &str) -> Vec<Vec<&str>> {
    let begin = doc
        .find("<!-- models-index: begin")
        .expect("docs/models.md: no `<!-- models-index: begin` marker before the index table");
    let len = doc[begin..]
        .find("<!-- models-index: end -->")
        .expect("docs/models.md: no `<!-- models-index: end -->` marker after the index table");
    doc[begin..begin + len]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect()
        })
        .collect()
}

/// The `###` entry whose heading names `name` (in backticks): its heading and text, up to the
/// next heading. Panics unless exactly one heading names the model.
fn entry_of<'a>(doc: &'a str, name: &str) -> &'a str {
    let tag = format!("`{name}`");
    // Every line with the byte offset it starts at.
    let mut offset = 0;
    let lines: Vec<(usize, &str)> = doc
        .split_inclusive('\n')
        .map(|line| {
            offset += line.len();
            (offset - line.len(), line)
        })
        .collect();
    let headings: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].1.starts_with("### ") && lines[i].1.contains(&tag))
        .collect();
    assert_eq!(
        headings.len(),
        1,
        "docs/models.md: {name} needs exactly one `### ` heading naming it as {tag}"
    );
    let start = headings[0];
    let end = lines[start + 1..]
        .iter()
        .find(|(_, line)| line.starts_with('#'))
        .map_or(doc.len(), |&(at, _)| at);
    &doc[lines[start].0..end]
}

/// `docs/models.md` documents every catalogue model, in catalogue order: a row of its index
/// table with the model's name, section and Keras parameter counts (total and trainable, with
/// thousands separators), and an entry of its own (a `###` heading naming it) that states the
/// total again. A model added to the catalogue without a row and an entry, a row left for a
/// model that is gone, or a count that no longer matches the code fails here.
#[test]
fn docs_models_md_describes_every_model() {
    let rows = index_rows(MODELS_MD);
    let documented: Vec<&str> = rows.iter().map(|r| r[0].trim_matches('`')).collect();
    assert_eq!(
        documented,
        models::names(),
        "docs/models.md: the index table needs one row per catalogue model, in catalogue order"
    );
    for (row, entry) in rows.iter().zip(models::catalogue()) {
        let name = entry.name;
        assert!(
            row.len() >= 4,
            "docs/models.md: {name}'s index row is short: {row:?}"
        );
        assert_eq!(row[1], entry.section, "docs/models.md: {name}'s section");
        let m = models::build(name, 0).unwrap();
        for (cell, what, count) in [
            (row[2], "total", m.store.total_count()),
            (row[3], "trainable", m.store.trainable_count()),
        ] {
            let written = parse_thousands(cell).unwrap_or_else(|| {
                panic!(
                    "docs/models.md: {name}'s {what} count {cell:?} is not written like 1,234,567"
                )
            });
            assert_eq!(
                written, count,
                "docs/models.md: {name}'s {what} parameter count"
            );
        }
        let total = nn::summary::thousands(m.store.total_count());
        let text = entry_of(MODELS_MD, name);
        assert!(
            text.contains(&total),
            "docs/models.md: {name}'s entry does not give its total parameter count {total}:\n{text}"
        );
    }
}

/// Two training steps of every model on random data: finite loss, trainable parameters move,
/// frozen ones and (for BN) nothing else breaks; the moving statistics move too.
#[test]
fn every_model_trains_two_steps() {
    for name in models::names() {
        let mut m = models::build(name, 1).unwrap();
        let before: Vec<(bool, Vec<f32>)> = m
            .store
            .iter()
            .map(|(_, p)| (p.trainable, p.value.to_vec()))
            .collect();
        let mut shape = vec![4];
        shape.extend_from_slice(m.input_shape());
        let mut opt = Adam::default();
        for step in 0..2 {
            let x = common::random(shape.clone(), step, 0.0, 1.0);
            let batch = nn::step::TrainBatch {
                images: x,
                labels: &[0, 3, 7, 9],
                seed: step as u32,
                step,
            };
            let s = nn::step::train_step(&mut m, &mut opt, batch, 1e-4)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(s.loss.is_finite(), "{name}: loss {}", s.loss);
        }
        let mut moved = 0;
        for ((_, p), (trainable, old)) in m.store.iter().zip(&before) {
            let changed = p.value.as_slice() != &old[..];
            if !trainable && p.kind != nn::ParamKind::Statistic {
                assert!(!changed, "{name}: frozen {} changed", p.name);
            }
            moved += changed as usize;
        }
        assert!(moved > 0, "{name}: nothing was updated");
    }
}

#[test]
fn keras6_layer_shapes_are_the_articles() {
    let m = models::build("keras6", 0).unwrap();
    let convs: Vec<Vec<usize>> = m
        .layers()
        .iter()
        .filter(|l| l.kind() == "Conv2D")
        .map(|l| l.output_shape().to_vec())
        .collect();
    assert_eq!(convs.len(), 6);
    assert_eq!(convs[0], vec![32, 32, 32]);
    assert_eq!(convs[3], vec![16, 16, 64]);
    assert_eq!(convs[5], vec![8, 8, 128]);
    // Forward FLOPs: the multiply-adds of each conv (pixels x patch x filters) and the dense layer.
    let macs = 1024 * 27 * 32
        + 1024 * 288 * 32
        + 256 * 288 * 64
        + 256 * 576 * 64
        + 64 * 576 * 128
        + 64 * 1152 * 128
        + 2048 * 10;
    assert_eq!(m.forward_flops_per_example(), 2 * macs);
}

#[test]
fn unknown_model_is_an_error_listing_the_known_ones() {
    let err = models::build("resnet9000", 0).err().unwrap().to_string();
    assert!(
        err.contains("resnet9000") && err.contains("keras6") && err.contains("resnet56"),
        "{err}"
    );
}
