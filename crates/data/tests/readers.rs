//! Reading batch files and folders: the binary and pickle readers on fixtures, every bad-input
//! error, folder resolution, and the real-image subset.

mod common;

use std::fs;
use std::path::Path;

use common::{binary_records, cifar_subset, fixture, split_records, Py3Batch, FIXTURE_LABELS};
use data::{
    load, load_test, load_train, parse_python_batch, read_binary_batch, read_python_batch,
    resolve_dir, DataError, Dataset, Format, IMAGE_BYTES,
};

/// Checks the HWC transpose of `ds.image(i)` against record `i` of raw binary `records`:
/// pixel (y, x) channel c must equal the record's byte 1 + c*1024 + y*32 + x.
fn assert_hwc_matches_records(ds: &Dataset, records: &[u8]) {
    for (i, record) in records.chunks_exact(3073).enumerate() {
        assert_eq!(ds.labels[i], record[0]);
        let img = ds.image(i);
        for y in 0..32 {
            for x in 0..32 {
                for c in 0..3 {
                    assert_eq!(img[(y * 32 + x) * 3 + c], record[1 + c * 1024 + y * 32 + x]);
                }
            }
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------- binary reader

#[test]
fn binary_fixture_reads_in_hwc_order() {
    let ds = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.labels, FIXTURE_LABELS);
    assert_eq!(ds.images.len(), 3 * IMAGE_BYTES);
    assert_hwc_matches_records(&ds, &fs::read(fixture("tiny_batch.bin")).unwrap());
}

#[test]
fn missing_file_is_named_with_where_files_go() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("data_batch_1.bin");
    let err = read_binary_batch(&path).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("no such file"), "{msg}");
    assert!(
        msg.contains(&format!("should be in {}", tmp.path().display())),
        "{msg}"
    );
    assert!(msg.contains("--data DIR"), "{msg}");
}

#[test]
fn empty_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "data_batch_1.bin", &[]);
    let err = read_binary_batch(&path).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(err.to_string().contains("empty"));
}

#[test]
fn truncated_file_reports_its_size_and_the_expected_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = binary_records(2, 0, 1);
    bytes.truncate(3073 * 2 - 5);
    let path = write(tmp.path(), "data_batch_1.bin", &bytes);
    let err = read_binary_batch(&path).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { len: 6141, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("truncated: 6141 bytes is not a whole number of 3073-byte records"),
        "{msg}"
    );
    assert!(msg.contains("30,730,000 bytes for a full batch"), "{msg}");
}

#[test]
fn bad_label_names_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = binary_records(3, 0, 2);
    bytes[3073 * 2] = 10;
    let path = write(tmp.path(), "test_batch.bin", &bytes);
    let err = read_binary_batch(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("record 2 has label 10"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn a_directory_is_not_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let err = read_binary_batch(tmp.path()).unwrap_err();
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
    let err = read_python_batch(tmp.path()).unwrap_err();
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------- pickle reader

#[test]
fn python2_pickle_fixture_matches_binary_fixture() {
    let from_pickle = read_python_batch(&fixture("tiny_batch_py2")).unwrap();
    let from_binary = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    assert_eq!(from_pickle.labels, FIXTURE_LABELS);
    assert_eq!(from_pickle, from_binary);
}

fn fixture_batch<'a>(raw: &'a [u8], labels: &'a [u8], str_keys: bool) -> Py3Batch<'a> {
    Py3Batch {
        raw,
        shape: &[3, 3072],
        labels,
        filenames: &["tiny_000000.png", "tiny_000001.png", "tiny_000002.png"],
        str_keys,
    }
}

#[test]
fn python3_protocol2_and_5_pickles_match_binary_fixture() {
    let records = fs::read(fixture("tiny_batch.bin")).unwrap();
    let expected = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    let (labels, raw) = split_records(&records);
    for str_keys in [false, true] {
        let batch = fixture_batch(&raw, &labels, str_keys);
        for (proto, bytes) in [
            (2, common::py3_protocol2(&batch)),
            (5, common::py3_protocol5(&batch)),
        ] {
            let got = parse_python_batch(Path::new("py3"), &bytes)
                .unwrap_or_else(|e| panic!("protocol {proto}, str keys {str_keys}: {e}"));
            assert_eq!(got, expected, "protocol {proto}, str keys {str_keys}");
        }
    }
}

/// Checks the reader against pickles really written by Python 3 + numpy, and the test writer
/// in `common` against them byte for byte. Needs `python3 tests/fixtures/make_fixtures.py
/// --py3-dir DIR` and `SCRATCHNET_PY3_PICKLES=DIR`; skipped otherwise (CI has no numpy).
#[test]
fn python3_numpy_pickles_from_env() {
    let Some(dir) = std::env::var_os("SCRATCHNET_PY3_PICKLES") else {
        eprintln!("skipping python3_numpy_pickles_from_env: SCRATCHNET_PY3_PICKLES is not set");
        return;
    };
    let dir = Path::new(&dir);
    let expected = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    let mut seen = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let got = read_python_batch(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, expected, "{}", path.display());
        seen += 1;
    }
    assert!(
        seen >= 4,
        "expected the pickles make_fixtures.py writes in {}",
        dir.display()
    );
    let records = fs::read(fixture("tiny_batch.bin")).unwrap();
    let (labels, raw) = split_records(&records);
    let batch = fixture_batch(&raw, &labels, false);
    assert_eq!(
        common::py3_protocol2(&batch),
        fs::read(dir.join("tiny_batch_py3_p2")).unwrap()
    );
    assert_eq!(
        common::py3_protocol5(&batch),
        fs::read(dir.join("tiny_batch_py3_p5")).unwrap()
    );
    let batch = fixture_batch(&raw, &labels, true);
    assert_eq!(
        common::py3_protocol2(&batch),
        fs::read(dir.join("tiny_batch_py3_p2_strkeys")).unwrap()
    );
}

#[test]
fn garbage_pickle_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 4] = [
        ("text", b"this is not a pickle\n"),
        ("binary-batch", &binary_records(1, 0, 3)),
        ("an-int", b"\x80\x02K\x05."),
        ("no-stop", b"\x80\x02}q\x01(U\x04dataq\x02"),
    ];
    for (name, bytes) in cases {
        let path = write(tmp.path(), name, bytes);
        let err = read_python_batch(&path).unwrap_err();
        assert!(
            matches!(err, DataError::BadPickle { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("not a CIFAR-10 python batch"), "{msg}");
    }
    let path = write(tmp.path(), "an-int", b"\x80\x02K\x05.");
    let msg = read_python_batch(&path).unwrap_err().to_string();
    assert!(msg.contains("holds an int, not a dict"), "{msg}");
    let path = write(tmp.path(), "empty", b"");
    assert!(matches!(
        read_python_batch(&path),
        Err(DataError::EmptyFile { .. })
    ));
    let path = tmp.path().join("missing");
    assert!(matches!(
        read_python_batch(&path),
        Err(DataError::MissingFile { .. })
    ));
}

/// Replaces the first occurrence of `from` (which must exist) in `bytes` by `to`.
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in fixture");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn pickle_with_wrong_ndarray_shape_is_an_error() {
    let py2 = fs::read(fixture("tiny_batch_py2")).unwrap();
    // The shape tuple (3, 3072) is BININT1 3, BININT2 3072, TUPLE2.
    let shape = b"K\x03M\x00\x0c\x86";
    for (to, expect) in [
        (
            &b"K\x03M\xff\x0b\x86"[..],
            "b'data' has shape (3, 3071), expected (N, 3072)",
        ),
        (
            b"K\x02M\x00\x0c\x86",
            "(2, 3072) but 9216 bytes of pixel data",
        ),
        // LONG1 i64::MAX: N * 3072 overflows, which must be an error, not a panic.
        (
            b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7fM\x00\x0c\x86",
            "(9223372036854775807, 3072) but 9216 bytes",
        ),
        (
            b"J\xff\xff\xff\xffM\x00\x0c\x86",
            "bad dimension (-1) in its shape",
        ),
    ] {
        let bytes = patch(&py2, shape, to);
        let err = parse_python_batch(Path::new("data_batch_1"), &bytes).unwrap_err();
        assert!(matches!(err, DataError::BadPickle { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{err}");
    }
    // And the same through the Python 3 path, with a 4-d shape that is not (N, 3, 32, 32).
    let records = fs::read(fixture("tiny_batch.bin")).unwrap();
    let (labels, raw) = split_records(&records);
    let mut batch = fixture_batch(&raw, &labels, false);
    for (shape, expect) in [
        (&[3u32, 32, 96][..], "shape (3, 32, 96), expected (N, 3072)"),
        (&[9216], "shape (9216,), expected (N, 3072)"),
    ] {
        batch.shape = shape;
        let err = parse_python_batch(Path::new("x"), &common::py3_protocol2(&batch)).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
    }
    // (N, 3, 32, 32) is the same memory layout and is accepted.
    batch.shape = &[3, 3, 32, 32];
    let ok = parse_python_batch(Path::new("x"), &common::py3_protocol5(&batch)).unwrap();
    assert_eq!(ok, read_binary_batch(&fixture("tiny_batch.bin")).unwrap());
}

#[test]
fn pickle_label_problems_are_errors() {
    let py2 = fs::read(fixture("tiny_batch_py2")).unwrap();
    // labels list: MARK, BININT1 6, BININT1 9, BININT1 1, APPENDS
    let labels = b"(K\x06K\tK\x01e";
    let bad = patch(&py2, labels, b"(K\x06K\x0cK\x01e");
    let err = parse_python_batch(Path::new("data_batch_2"), &bad).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 1,
                label: 12,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("data_batch_2: record 1 has label 12"),
        "{err}"
    );
    // Two labels for three images: APPENDS after two ints, then push None and POP it.
    let short = patch(&py2, labels, b"(K\x06K\teN0");
    let err = parse_python_batch(Path::new("b"), &short).unwrap_err();
    assert!(
        err.to_string()
            .contains("3 images but b'labels' has 2 entries"),
        "{err}"
    );
}

#[test]
fn truncated_or_mutated_pickles_never_panic() {
    let py2 = fs::read(fixture("tiny_batch_py2")).unwrap();
    // Every prefix is an error (a pickle is only complete at its STOP opcode).
    for cut in 0..py2.len() {
        assert!(
            parse_python_batch(Path::new("cut"), &py2[..cut]).is_err(),
            "cut {cut}"
        );
    }
    // Single-byte changes anywhere in the header and tail (not the pixels, where any value is
    // valid) give an error or a dataset, never a panic.
    let header = 0..160;
    let tail = py2.len() - 140..py2.len();
    let mut x: u32 = 7;
    for at in header.chain(tail) {
        for _ in 0..8 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut bytes = py2.clone();
            bytes[at] = (x >> 16) as u8;
            let _ = parse_python_batch(Path::new("mutated"), &bytes);
        }
    }
}

// ---------------------------------------------------------------- folders

/// Writes data_batch_1..5 and test_batch (`.bin` if `ext`) with `n` records each into `dir`,
/// labels starting at the batch number so batches can be told apart.
fn write_binary_dir(dir: &Path, n: usize) {
    fs::create_dir_all(dir).unwrap();
    for b in 1..=5 {
        write(
            dir,
            &format!("data_batch_{b}.bin"),
            &binary_records(n, b as u8, b),
        );
    }
    write(dir, "test_batch.bin", &binary_records(n, 0, 99));
}

#[test]
fn resolve_dir_finds_both_formats_at_or_below_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    assert!(matches!(resolve_dir(root), Err(DataError::NoData { .. })));

    let bin = root.join("cifar-10-batches-bin");
    write_binary_dir(&bin, 1);
    assert_eq!(resolve_dir(root).unwrap(), (bin.clone(), Format::Binary));
    assert_eq!(resolve_dir(&bin).unwrap(), (bin.clone(), Format::Binary));

    let py = tmp.path().join("other/cifar-10-batches-py");
    fs::create_dir_all(&py).unwrap();
    fs::copy(fixture("tiny_batch_py2"), py.join("data_batch_1")).unwrap();
    let parent = py.parent().unwrap();
    assert_eq!(resolve_dir(parent).unwrap(), (py.clone(), Format::Python));
    assert_eq!(resolve_dir(&py).unwrap(), (py.clone(), Format::Python));
}

#[test]
fn no_data_error_lists_what_was_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("does-not-exist")] {
        let msg = load(&dir).unwrap_err().to_string();
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(msg.contains("no CIFAR-10 data found"), "{msg}");
        assert!(msg.contains("cifar-10-batches-bin/"), "{msg}");
        assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
    }
    // A file given as the folder says so.
    let file = tmp.path().join("data_batch_1.bin");
    std::fs::write(&file, [0u8; 3073]).unwrap();
    let msg = load(&file).unwrap_err().to_string();
    assert!(
        msg.contains("is a file") && msg.contains("data_batch_1.bin"),
        "{msg}"
    );
}

#[test]
fn load_concatenates_the_five_training_batches_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    write_binary_dir(&tmp.path().join("cifar-10-batches-bin"), 2);
    let cifar = load(tmp.path()).unwrap();
    assert_eq!(cifar.train.len(), 10);
    assert_eq!(cifar.train.labels, [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    assert_eq!(cifar.test.len(), 2);
    let batch3 = read_binary_batch(&tmp.path().join("cifar-10-batches-bin/data_batch_3.bin"));
    assert_eq!(cifar.train.slice(4..6), batch3.unwrap());
}

#[test]
fn load_reads_the_python_version() {
    let tmp = tempfile::tempdir().unwrap();
    let py = tmp.path().join("cifar-10-batches-py");
    fs::create_dir_all(&py).unwrap();
    for name in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
    ] {
        fs::copy(fixture("tiny_batch_py2"), py.join(name)).unwrap();
    }
    fs::copy(fixture("tiny_batch_py2"), py.join("test_batch")).unwrap();
    let cifar = load(tmp.path()).unwrap();
    let one = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    assert_eq!(
        cifar.train,
        Dataset::concat(&[
            one.clone(),
            one.clone(),
            one.clone(),
            one.clone(),
            one.clone()
        ])
    );
    assert_eq!(cifar.test, one);
}

#[test]
fn missing_training_batch_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_binary_dir(tmp.path(), 1);
    fs::remove_file(tmp.path().join("data_batch_3.bin")).unwrap();
    let err = load_train(tmp.path()).unwrap_err();
    assert!(matches!(&err, DataError::MissingBatch { name, .. } if name == "data_batch_3.bin"));
    let msg = err.to_string();
    let path = tmp.path().join("data_batch_3.bin");
    assert!(
        msg.contains(&format!("{}: missing data_batch_3.bin", path.display())),
        "{msg}"
    );
    assert!(load(tmp.path()).is_err());
    // The test split does not need the training batches.
    assert_eq!(load_test(tmp.path()).unwrap().len(), 1);
}

#[test]
fn test_split_alone_resolves_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "test_batch.bin", &binary_records(4, 0, 5));
    assert_eq!(load_test(tmp.path()).unwrap().len(), 4);
    let err = load_train(tmp.path()).unwrap_err();
    assert!(
        err.to_string().contains("missing data_batch_1.bin"),
        "{err}"
    );
}

#[test]
fn concat_and_slice() {
    let a = data::parse_records(Path::new("a"), &binary_records(2, 0, 1)).unwrap();
    let b = data::parse_records(Path::new("b"), &binary_records(3, 5, 2)).unwrap();
    let ab = Dataset::concat(&[a.clone(), b.clone()]);
    assert_eq!(ab.len(), 5);
    assert_eq!(ab.slice(0..2), a);
    assert_eq!(ab.slice(2..5), b);
    assert_eq!(ab.image(3), b.image(1));
    assert!(Dataset::concat(&[]).is_empty());
    assert_eq!(ab.class_counts().iter().sum::<usize>(), 5);
}

// ---------------------------------------------------------------- the real subset

#[test]
fn real_subset_loads_with_sane_labels_and_pixels() {
    let Some(dir) = cifar_subset("real_subset_loads_with_sane_labels_and_pixels") else {
        return;
    };
    let cifar = load(&dir).unwrap();
    assert_eq!(cifar.train.len(), 5085);
    assert_eq!(cifar.test.len(), 500);
    assert_eq!(cifar.train.images.len(), 5085 * IMAGE_BYTES);
    assert!(cifar
        .train
        .labels
        .iter()
        .chain(&cifar.test.labels)
        .all(|&l| l < 10));
    let counts = cifar.train.class_counts();
    for (class, &count) in counts.iter().enumerate() {
        assert!(
            (350..=700).contains(&count),
            "class {class} ({}) has {count} training images: {counts:?}",
            data::CLASS_NAMES[class]
        );
    }
    // Image 0's first pixel is R, G, B from the three planes of record 0.
    let raw = fs::read(dir.join("data_batch_1.bin")).unwrap();
    assert_eq!(cifar.train.labels[0], raw[0]);
    assert_eq!(
        cifar.train.image(0)[..3],
        [raw[1], raw[1 + 1024], raw[1 + 2048]]
    );
    // And the whole first and last records of that batch.
    assert_hwc_matches_records(&cifar.train.slice(0..1017), &raw);
    // Real photos are not constant: the first image spans a wide range of values.
    let img = cifar.train.image(0);
    let (lo, hi) = (img.iter().min().unwrap(), img.iter().max().unwrap());
    assert!(hi - lo > 100, "image 0 spans only {lo}..{hi}");
}
