//! Inputs users tripped over (issue 9): pickle bombs, huge labels, folders where files should
//! be, unreadable folders, and error messages that said the wrong thing or said it twice.

mod common;

use std::error::Error as _;
use std::fs;
use std::path::{Path, PathBuf};

use common::{binary_records, fixture};
use data::{
    load_or_download, load_test, load_train, parse_python_batch, read_binary_batch,
    read_python_batch, resolve_dir, DataError,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// The message as anyhow's `{:#}` prints it: each error in the `source()` chain, joined by ": ".
fn chain(err: &DataError) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out += &format!(": {e}");
        next = e.source();
    }
    out
}

/// A BINPUT / LONG_BINPUT of memo slot `i`, as Python's pickler writes it.
fn put(out: &mut Vec<u8>, i: u32) {
    if i < 256 {
        out.extend([b'q', i as u8]);
    } else {
        out.push(b'r');
        out.extend(i.to_le_bytes());
    }
}

/// `pickle.dumps(x, 2)` for x = [[[…]]] nested `n` deep, exactly as CPython writes it:
/// every list is memoised before its contents, and closed by APPEND.
fn nested_lists(n: u32) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    for i in 0..n {
        out.push(b']');
        put(&mut out, i);
    }
    out.extend(std::iter::repeat_n(b'a', n as usize - 1));
    out.push(b'.');
    out
}

// ---------------------------------------------------------------- pickle bombs

#[test]
fn nesting_bomb_in_place_of_a_batch_file_is_one_clear_error() {
    let bomb = nested_lists(10_000);
    assert!(bomb.len() < 80_000, "{}", bomb.len());
    let tmp = tempfile::tempdir().unwrap();
    let py = tmp.path().join("cifar-10-batches-py");
    fs::create_dir(&py).unwrap();
    for stem in data::dir::TRAIN_BATCHES {
        fs::copy(fixture("tiny_batch_py2"), py.join(stem)).unwrap();
    }
    fs::copy(fixture("tiny_batch_py2"), py.join("test_batch")).unwrap();
    let path = write(&py, "data_batch_3", &bomb);

    let err = load_train(tmp.path()).unwrap_err();
    assert!(matches!(err, DataError::BadPickle { .. }), "{err:?}");
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        msg.starts_with(&format!(
            "{}: not a CIFAR-10 python batch: it nests lists, tuples or dicts more than 100 \
             levels deep (at byte ",
            path.display()
        )),
        "{msg}"
    );
    // The other split still loads.
    assert_eq!(load_test(tmp.path()).unwrap().len(), 3);
}

#[test]
fn every_way_of_nesting_deeply_is_refused_and_shallow_nesting_is_not() {
    let n = 10_000;
    let rep = |b: &[u8], k: usize| b.repeat(k);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("lists by APPEND", nested_lists(n)),
        (
            "lists by MARK/LIST",
            [rep(b"(", n as usize), rep(b"l", n as usize), b".".to_vec()].concat(),
        ),
        (
            "tuples by TUPLE1",
            [b"N".to_vec(), rep(b"\x85", n as usize), b".".to_vec()].concat(),
        ),
        (
            "dicts by SETITEM",
            [
                b"}".to_vec(),
                rep(b"K\x01}", n as usize),
                rep(b"s", n as usize),
                b".".to_vec(),
            ]
            .concat(),
        ),
        (
            "sets by ADDITEMS",
            [
                rep(b"\x8f(", n as usize),
                rep(b"\x90", n as usize),
                b".".to_vec(),
            ]
            .concat(),
        ),
        (
            "REDUCE arguments",
            [
                b"cnumpy\nx\n".to_vec(),
                b"N".to_vec(),
                rep(b"\x85", n as usize),
                b"\x85R.".to_vec(),
            ]
            .concat(),
        ),
        // A dict deeper than the limit never reaches the point where it is a batch.
        (
            "BUILD states",
            [
                rep(b"NN\x85", n as usize),
                rep(b"b\x85", n as usize - 1),
                b".".to_vec(),
            ]
            .concat(),
        ),
    ];
    for (name, bytes) in cases {
        let err = parse_python_batch(Path::new("bomb"), &bytes).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("more than 100 levels deep"), "{name}: {msg}");
    }
    // 90 levels are fine as far as nesting goes (it is then not a batch, of course).
    let msg = parse_python_batch(Path::new("deep"), &nested_lists(90))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("holds a list of 1, not a dict"), "{msg}");
}

#[test]
fn memo_and_dup_bombs_are_refused_before_allocating() {
    // "Billion laughs": list k holds list k-1 twice (by memo reference), 64 times over:
    // serde-pickle would clone 2^64 lists when expanding the references.
    let mut laughs = vec![0x80, 2, b']'];
    put(&mut laughs, 0);
    for k in 1..64 {
        laughs.push(b']');
        put(&mut laughs, k);
        laughs.extend([b'(', b'h', (k - 1) as u8, b'h', (k - 1) as u8, b'e']);
    }
    laughs.push(b'.');
    // DUP of a 1 MB string, 2000 times: 2 GB of copies from a 1 MB file.
    let mut dups = vec![0x80, 3, b'B'];
    dups.extend((1u32 << 20).to_le_bytes());
    dups.extend(vec![7u8; 1 << 20]);
    dups.extend(vec![b'2'; 2000]);
    dups.extend(b"l.");
    // A memoised list fetched, then grown: later expansions would not match what was costed.
    let grown = b"\x80\x02]q\x00h\x00K\x01a.".to_vec();
    // A memo slot filled twice.
    let twice = b"\x80\x02]q\x00]q\x00l.".to_vec();
    // An integer of a million decimal digits (slow to parse).
    let digits = [b"L".to_vec(), vec![b'7'; 1_000_000], b"L\n.".to_vec()].concat();

    for (name, bytes, expect) in [
        ("laughs", laughs, "unpickling it would take more than 64 MB"),
        ("dups", dups, "unpickling it would take more than 72 MB"),
        ("grown", grown, "it changes memo entry 0 after fetching it"),
        ("twice", twice, "it stores memo entry 0 twice"),
        (
            "digits",
            digits,
            "it holds a text integer of 1000001 characters",
        ),
    ] {
        let start = std::time::Instant::now();
        let err = parse_python_batch(Path::new(name), &bytes).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expect), "{name}: {msg}");
        assert!(
            msg.starts_with(&format!("{name}: not a CIFAR-10 python batch")),
            "{msg}"
        );
        assert!(
            start.elapsed().as_secs() < 5,
            "{name} took {:?}",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------- labels

/// Replaces the first occurrence of `from` (which must exist) in `bytes` by `to`.
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in fixture");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn huge_pickle_labels_are_out_of_range_not_a_type_error() {
    let py2 = fs::read(fixture("tiny_batch_py2")).unwrap();
    let labels = b"(K\x06K\tK\x01e";
    // LONG1 of 9 bytes: 2^70.
    let two_70 = b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40";
    let bytes = patch(&py2, labels, &[b"(K\x06", &two_70[..], b"K\x01e"].concat());
    let msg = parse_python_batch(Path::new("data_batch_1"), &bytes)
        .unwrap_err()
        .to_string();
    println!("{msg}");
    assert!(
        msg.starts_with(
            "data_batch_1: not a CIFAR-10 python batch: b'labels'[1] is \
             1180591620717411303424, but CIFAR-10 labels are 0..=9"
        ),
        "{msg}"
    );
    // 2^1000 (LONG4 of 126 bytes) is described by size rather than printed.
    let mut big = vec![0x8b];
    big.extend(126i32.to_le_bytes());
    let mut digits = vec![0u8; 126];
    digits[125] = 0x01;
    big.extend(digits);
    let bytes = patch(&py2, labels, &[b"(K\x06K\t", &big[..], b"e"].concat());
    let msg = parse_python_batch(Path::new("b"), &bytes)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("b'labels'[2] is a 1001-bit integer, but CIFAR-10 labels are 0..=9"),
        "{msg}"
    );
    // Negative and float labels.
    let bytes = patch(&py2, labels, b"(J\xff\xff\xff\xffK\tK\x01e");
    let err = parse_python_batch(Path::new("b"), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 0,
                label: -1,
                ..
            }
        ),
        "{err:?}"
    );
    let bytes = patch(&py2, labels, b"(K\x06K\tG?\xf0\x00\x00\x00\x00\x00\x00e");
    let msg = parse_python_batch(Path::new("b"), &bytes)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("b'labels'[2] is a float, expected an int in 0..=9"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- folders and files

fn binary_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for b in 1..=5 {
        write(
            dir,
            &format!("data_batch_{b}.bin"),
            &binary_records(1, b as u8, b),
        );
    }
    write(dir, "test_batch.bin", &binary_records(1, 0, 9));
}

#[test]
fn a_directory_named_like_a_batch_is_not_called_missing() {
    let tmp = tempfile::tempdir().unwrap();
    binary_dir(tmp.path());
    let batch2 = tmp.path().join("data_batch_2.bin");
    fs::remove_file(&batch2).unwrap();
    fs::create_dir(&batch2).unwrap();
    let expected = format!(
        "{}: is a directory, not a CIFAR-10 batch file. Move it away and put the batch file \
         there",
        batch2.display()
    );
    let err = load_train(tmp.path()).unwrap_err();
    assert!(
        matches!(err, DataError::NotAFile { is_dir: true, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), expected);
    // The readers say the same when asked for it directly (not "truncated: 4096 bytes").
    assert_eq!(
        read_binary_batch(&batch2).unwrap_err().to_string(),
        expected
    );
    assert_eq!(
        read_python_batch(&batch2).unwrap_err().to_string(),
        expected
    );
    // And when test_batch.bin is the folder, load_test says so too.
    let test = tmp.path().join("test_batch.bin");
    fs::remove_file(&test).unwrap();
    fs::create_dir(&test).unwrap();
    let msg = load_test(tmp.path()).unwrap_err().to_string();
    assert!(msg.contains("test_batch.bin: is a directory"), "{msg}");
    // A folder whose only batch-like entry is a directory resolves, so the error is specific.
    let only = tmp.path().join("only");
    fs::create_dir_all(only.join("data_batch_1.bin")).unwrap();
    let msg = load_train(&only).unwrap_err().to_string();
    assert!(msg.contains("data_batch_1.bin: is a directory"), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_device_in_place_of_a_batch_is_refused_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("data_batch_1.bin");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    for err in [
        read_binary_batch(&path).unwrap_err(),
        read_python_batch(&path).unwrap_err(),
    ] {
        assert_eq!(
            err.to_string(),
            format!(
                "{}: is not a regular file, not a CIFAR-10 batch file. Move it away and put \
                 the batch file there",
                path.display()
            )
        );
    }
}

/// Whether `path` can still be read after its permissions were removed (as root, it can).
#[cfg(unix)]
fn readable_anyway(path: &Path, test: &str) -> bool {
    let readable = if path.is_dir() {
        fs::read_dir(path).is_ok()
    } else {
        fs::read(path).is_ok()
    };
    if readable {
        eprintln!(
            "skipping {test}: {} is readable despite mode 000 (running as root?); \
             dir::tests covers the same logic with an injected error",
            path.display()
        );
    }
    readable
}

#[cfg(unix)]
#[test]
fn an_unsearchable_data_folder_is_a_permission_error_not_no_data() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar");
    binary_dir(&dir);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
    let skip = readable_anyway(&dir, "an_unsearchable_data_folder_is_a_permission_error");
    let result = (!skip).then(|| (resolve_dir(&dir), load_train(&dir)));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let Some((resolved, loaded)) = result else {
        return;
    };
    for err in [resolved.unwrap_err(), loaded.unwrap_err()] {
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        let msg = chain(&err);
        assert!(
            msg.starts_with(&format!(
                "{}: looking for the CIFAR-10 batch files in it failed: Permission denied",
                dir.display()
            )),
            "{msg}"
        );
        assert!(!msg.contains("no CIFAR-10 data found"), "{msg}");
        assert_eq!(msg.matches("Permission denied").count(), 1, "{msg}");
    }
}

#[cfg(unix)]
#[test]
fn an_unreadable_batch_file_is_a_permission_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    binary_dir(tmp.path());
    let path = tmp.path().join("data_batch_4.bin");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if readable_anyway(
        &path,
        "an_unreadable_batch_file_is_a_permission_error_naming_it",
    ) {
        return;
    }
    let err = load_train(tmp.path()).unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.starts_with(&format!(
            "{}: reading failed: Permission denied (os error 13). Check its permissions",
            path.display()
        )),
        "{msg}"
    );
    assert_eq!(msg.matches("Permission denied").count(), 1, "{msg}");
}

#[test]
fn an_io_error_cause_is_printed_once_in_the_chain() {
    // A batch path below a regular file: the OS says "Not a directory" (ENOTDIR), an Io error
    // that root gets too.
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "file", b"x");
    let err = read_binary_batch(&file.join("data_batch_1.bin")).unwrap_err();
    let DataError::Io { cause, .. } = &err else {
        panic!("{err:?}");
    };
    let cause = cause.to_string();
    assert!(err.source().is_none(), "{err:?}");
    let msg = chain(&err);
    assert_eq!(msg.matches(&cause).count(), 1, "{msg}");
    assert!(msg.contains("reading failed: "), "{msg}");
}

// ---------------------------------------------------------------- the download hint

#[test]
fn redownload_hint_only_for_the_download_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let bin = dir.join("cifar-10-batches-bin");
    binary_dir(&bin);
    let mut short = binary_records(2, 0, 3);
    short.truncate(5000);
    let path = write(&bin, "data_batch_5.bin", &short);
    let truncated = format!(
        "{}: truncated: 5000 bytes is not a whole number of 3073-byte records; expected e.g. \
         30,730,000 bytes for a full batch. Re-extract it from cifar-10-binary.tar.gz",
        path.display()
    );

    // --data DIR: never downloaded into, so no word of downloading again.
    let err = load_or_download(Some(&dir), Path::new("/nonexistent-default")).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_eq!(err.to_string(), truncated);
    assert_eq!(load_train(&dir).unwrap_err().to_string(), truncated);

    // No --data: the default folder already holds the data (so nothing is downloaded) and
    // the message adds how to get a fresh copy.
    let err = load_or_download(None, &dir).unwrap_err();
    assert!(matches!(err, DataError::InDownloadFolder { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{truncated}. As no --data was given, you can also delete {} and the next run \
             downloads a fresh copy",
            bin.display()
        )
    );
    assert!(err.source().is_none());

    // Empty files and missing batches the same way.
    write(&bin, "data_batch_5.bin", b"");
    let msg = load_or_download(Some(&dir), Path::new("x"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("the file is empty"), "{msg}");
    assert!(!msg.contains("download"), "{msg}");
    fs::remove_file(bin.join("data_batch_5.bin")).unwrap();
    let msg = load_or_download(Some(&dir), Path::new("x"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing data_batch_5.bin"), "{msg}");
    assert!(!msg.contains("download"), "{msg}");
    let msg = load_or_download(None, &dir).unwrap_err().to_string();
    assert!(msg.contains("missing data_batch_5.bin"), "{msg}");
    assert!(
        msg.contains(&format!(
            "delete {} and the next run downloads",
            bin.display()
        )),
        "{msg}"
    );

    // A good folder loads either way.
    write(&bin, "data_batch_5.bin", &binary_records(1, 5, 5));
    let (folder, cifar) = load_or_download(None, &dir).unwrap();
    assert_eq!(folder, bin);
    assert_eq!((cifar.train.len(), cifar.test.len()), (5, 1));
    let (folder, _) = load_or_download(Some(&dir), Path::new("x")).unwrap();
    assert_eq!(folder, bin);
}

#[test]
fn errors_a_download_would_not_fix_get_no_hint() {
    let err = DataError::NoData {
        dir: PathBuf::from("d"),
    };
    assert!(matches!(
        err.in_download_folder(Path::new("data")),
        DataError::NoData { .. }
    ));
    let err = DataError::EmptyFile {
        path: PathBuf::from("data/x"),
    };
    assert!(matches!(
        err.in_download_folder(Path::new("data")),
        DataError::InDownloadFolder { .. }
    ));
}

/// The bomb checks must not refuse real batches: full-size (10,000-image) pickles as Python 3
/// writes them at protocols 2 (bytes spelled as latin-1 text, the costliest) and 5 load.
#[test]
fn full_size_pickles_pass_the_bomb_checks() {
    let n = 10_000;
    let records = binary_records(n, 3, 77);
    let (labels, raw) = common::split_records(&records);
    let names: Vec<String> = (0..n).map(|i| format!("img_{i:06}.png")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let batch = common::Py3Batch {
        raw: &raw,
        shape: &[n as u32, 3072],
        labels: &labels,
        filenames: &names,
        str_keys: false,
    };
    let expected = data::parse_records(Path::new("x"), &records).unwrap();
    for bytes in [common::py3_protocol2(&batch), common::py3_protocol5(&batch)] {
        let got = parse_python_batch(Path::new("full"), &bytes).unwrap();
        assert_eq!(got.len(), n);
        assert!(got == expected);
    }
}
