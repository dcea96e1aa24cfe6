//! The README's op table (between `<!-- ops-table:start -->` and `<!-- ops-table:end -->`)
//! against the tree, so it cannot go stale: every file it names exists; every op file in the
//! folders it covers appears in it; and a file named after an op (`maxpool2d.wgsl`) appears in
//! that op's row, so an op keeps one name at every layer.

use std::collections::BTreeSet;
use std::path::Path;

/// The table's columns after the op name: the folder each cell's files live in.
const COLUMNS: [&str; 8] = [
    "crates/cpu/src",
    "shaders",
    "crates/gpu/src",
    "crates/tensor/src/ops",
    "crates/autograd/src/ops",
    "crates/nn/src",
    "tests/gpu",
    "benches",
];

/// Files in those folders that are not ops (shared machinery), each with the reason.
const NOT_OPS: [(&str, &str); 19] = [
    ("crates/cpu/src/lib.rs", "crate root"),
    (
        "crates/cpu/src/padding.rs",
        "output sizes and padding of windows",
    ),
    (
        "crates/cpu/src/rng.rs",
        "the counter-based RNG dropout uses",
    ),
    ("crates/cpu/src/peak.rs", "FMA peak measurement for bench"),
    (
        "crates/cpu/src/simd.rs",
        "run-time choice of the widest SIMD",
    ),
    ("crates/cpu/src/testutil.rs", "test helpers"),
    ("shaders/prelude.wgsl", "compiled before every shader"),
    ("crates/gpu/src/lib.rs", "crate root"),
    (
        "crates/gpu/src/buffer.rs",
        "storage buffers and their cache",
    ),
    ("crates/gpu/src/checks.rs", "argument checks"),
    ("crates/gpu/src/context.rs", "the device"),
    ("crates/gpu/src/error.rs", "errors"),
    ("crates/gpu/src/pipeline.rs", "pipeline cache and prelude"),
    ("crates/gpu/src/record.rs", "command recording"),
    ("crates/gpu/src/uniform_layout.rs", "uniform layout test"),
    ("crates/tensor/src/ops/mod.rs", "module root"),
    ("crates/autograd/src/ops/mod.rs", "module root"),
    ("tests/gpu/main.rs", "test binary root"),
    (
        "tests/gpu/training.rs",
        "whole training steps, GPU against CPU",
    ),
];

struct Row {
    op: String,
    /// Per column, the files (paths from the repository root).
    cells: Vec<Vec<String>>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn table() -> Vec<Row> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- ops-table:start -->")
        .expect("start marker");
    let end = readme.find("<!-- ops-table:end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| **"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 1 + COLUMNS.len(), "columns of: {line}");
            let op = cells[0].trim_matches('*').to_string();
            let cells = cells[1..]
                .iter()
                .zip(COLUMNS)
                .map(|(cell, folder)| {
                    cell.split(',')
                        .map(|f| f.trim().trim_matches('`'))
                        .filter(|f| !f.is_empty() && *f != "—")
                        .map(|f| format!("{folder}/{f}"))
                        .collect()
                })
                .collect();
            Row { op, cells }
        })
        .collect()
}

/// The source files directly in `folder` and, for `crates/nn/src`, in its `layers/` and `optim/`.
fn files(folder: &str) -> Vec<String> {
    let subfolders: &[&str] = if folder == "crates/nn/src" {
        &["layers", "optim"]
    } else {
        &[""]
    };
    let mut out = Vec::new();
    for sub in subfolders {
        let dir = if sub.is_empty() {
            folder.to_string()
        } else {
            format!("{folder}/{sub}")
        };
        for e in std::fs::read_dir(root().join(&dir)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".rs") || name.ends_with(".wgsl") {
                out.push(format!("{dir}/{name}"));
            }
        }
    }
    out
}

fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap();
    name.split('.').next().unwrap()
}

#[test]
fn every_file_the_table_names_exists() {
    let rows = table();
    assert!(rows.len() >= 15, "only {} rows parsed", rows.len());
    for row in &rows {
        for f in row.cells.iter().flatten() {
            assert!(root().join(f).is_file(), "{}: {f} does not exist", row.op);
        }
    }
}

#[test]
fn every_op_file_is_in_the_table_and_in_its_own_row() {
    let rows = table();
    let listed: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten())
        .map(String::as_str)
        .collect();
    let not_ops: BTreeSet<&str> = NOT_OPS.iter().map(|(f, _)| *f).collect();
    for folder in COLUMNS {
        for f in files(folder) {
            // The nn crate's other files (sequential.rs, init.rs, ...) are not per-op; only
            // those the table names are checked there.
            if folder == "crates/nn/src" || not_ops.contains(f.as_str()) {
                continue;
            }
            assert!(
                listed.contains(f.as_str()),
                "{f} is in no row of the README's op table"
            );
        }
    }
    // A file named after an op belongs to that op's row.
    for row in &rows {
        for (folder, cell) in COLUMNS.iter().zip(&row.cells) {
            for f in files(folder) {
                if stem(&f) == row.op {
                    assert!(
                        cell.contains(&f),
                        "{f} is named after {} but not in its row",
                        row.op
                    );
                }
            }
        }
    }
    // NOT_OPS names real files that the table leaves out.
    for (f, why) in NOT_OPS {
        assert!(root().join(f).is_file(), "{f} ({why}) does not exist");
        assert!(
            !listed.contains(f),
            "{f} is listed as an op file and as {why}"
        );
    }
}
