//! Finding a CIFAR-10 folder on disk and loading its batches.
//!
//! [`resolve_dir`] accepts either the folder that holds the batch files or its parent (the
//! folder the archive was unpacked into), and tells which of the two versions it found. The
//! binary version wins when both are present. [`load_train`], [`load_test`] and [`load`] then
//! read and concatenate the batches; a missing batch is named in the error rather than
//! silently giving a smaller training set.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::binary::read_binary_batch;
use crate::cifar::{Cifar10, Dataset};
use crate::error::DataError;
use crate::pickle::read_python_batch;

/// The five training batches, in order.
pub const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
];
/// The test batch.
pub const TEST_BATCH: &str = "test_batch";
/// The folder the binary archive unpacks to.
pub const BINARY_SUBDIR: &str = "cifar-10-batches-bin";
/// The folder the python archive unpacks to.
pub const PYTHON_SUBDIR: &str = "cifar-10-batches-py";

/// Which version of CIFAR-10 a folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `data_batch_1.bin` …: 3073-byte records.
    Binary,
    /// `data_batch_1` …: pickled dicts.
    Python,
}

impl Format {
    /// The file name of batch `stem` (e.g. `"test_batch"`) in this format.
    pub fn file_name(self, stem: &str) -> String {
        match self {
            Format::Binary => format!("{stem}.bin"),
            Format::Python => stem.to_string(),
        }
    }
}

/// Reads one batch file in the given format.
pub fn read_batch(path: &Path, format: Format) -> Result<Dataset, DataError> {
    match format {
        Format::Binary => read_binary_batch(path),
        Format::Python => read_python_batch(path),
    }
}

/// What is at a path where a batch file may be.
#[derive(Debug)]
enum Entry {
    File,
    /// A folder, device, pipe …: reported by the reader as [`DataError::NotAFile`].
    Other,
    Missing,
}

/// Looks at `path` without following what is not there: "not found" (also "a component is not
/// a folder") is [`Entry::Missing`]; any other failure, such as a folder this user may not
/// enter, is an error naming `folder`, the folder being searched.
fn probe(folder: &Path, path: &Path) -> Result<Entry, DataError> {
    classify(folder, std::fs::metadata(path).map(|m| m.is_file()))
}

/// [`probe`]'s decision on a `metadata(path).is_file()` result (separate so that errors the
/// test machine cannot produce, such as permission denied for root, can be tested).
fn classify(folder: &Path, is_file: std::io::Result<bool>) -> Result<Entry, DataError> {
    match is_file {
        Ok(true) => Ok(Entry::File),
        Ok(false) => Ok(Entry::Other),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            Ok(Entry::Missing)
        }
        Err(e) => Err(DataError::io(
            folder,
            "looking for the CIFAR-10 batch files in it",
            e,
        )),
    }
}

/// Finds the CIFAR-10 batch folder at or just below `dir`.
///
/// Tried in order: `dir` itself holding `data_batch_1.bin` or `test_batch.bin` (binary), or
/// `data_batch_1` or `test_batch` (python); then the sub-folders `cifar-10-batches-bin/` and
/// `cifar-10-batches-py/` of `dir`, each judged the same way. Returns the folder that holds the
/// files and their format, or [`DataError::NoData`]. A folder that cannot be searched (no
/// permission) is a [`DataError::Io`] naming it, not "no data"; a folder whose
/// `data_batch_1.bin` is itself a folder resolves, so that reading it says what is wrong.
pub fn resolve_dir(dir: &Path) -> Result<(PathBuf, Format), DataError> {
    if dir.is_file() {
        return Err(DataError::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    let candidates = [
        (dir.to_path_buf(), Format::Binary),
        (dir.to_path_buf(), Format::Python),
        (dir.join(BINARY_SUBDIR), Format::Binary),
        (dir.join(PYTHON_SUBDIR), Format::Python),
    ];
    let mut first_error = None;
    let mut first_other = None;
    for (folder, format) in candidates {
        for stem in [TRAIN_BATCHES[0], TEST_BATCH] {
            match probe(&folder, &folder.join(format.file_name(stem))) {
                Ok(Entry::File) => return Ok((folder, format)),
                Ok(Entry::Other) => {
                    first_other.get_or_insert((folder.clone(), format));
                }
                Ok(Entry::Missing) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some(found) = first_other {
        return Ok(found);
    }
    Err(DataError::NoData {
        dir: dir.to_path_buf(),
    })
}

/// Reads `stem` from a resolved folder, turning "not found" into [`DataError::MissingBatch`].
fn read_stem(folder: &Path, format: Format, stem: &str) -> Result<Dataset, DataError> {
    let name = format.file_name(stem);
    let path = folder.join(&name);
    if let Entry::Missing = probe(folder, &path)? {
        return Err(DataError::MissingBatch {
            dir: folder.to_path_buf(),
            name,
        });
    }
    read_batch(&path, format)
}

/// Loads and concatenates `data_batch_1` … `data_batch_5` from a folder accepted by
/// [`resolve_dir`]. Every batch must be there; the first missing one is named in the error.
pub fn load_train(dir: &Path) -> Result<Dataset, DataError> {
    let (folder, format) = resolve_dir(dir)?;
    // Check that all five exist before spending time reading any of them.
    for stem in TRAIN_BATCHES {
        let name = format.file_name(stem);
        let path = folder.join(&name);
        match probe(&folder, &path)? {
            Entry::File => {}
            Entry::Missing => return Err(DataError::MissingBatch { dir: folder, name }),
            Entry::Other => {
                return Err(DataError::NotAFile {
                    is_dir: path.is_dir(),
                    path,
                })
            }
        }
    }
    let parts = TRAIN_BATCHES
        .iter()
        .map(|stem| read_stem(&folder, format, stem))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dataset::concat(&parts))
}

/// Loads `test_batch` from a folder accepted by [`resolve_dir`].
pub fn load_test(dir: &Path) -> Result<Dataset, DataError> {
    let (folder, format) = resolve_dir(dir)?;
    read_stem(&folder, format, TEST_BATCH)
}

/// Loads both splits from a folder accepted by [`resolve_dir`].
pub fn load(dir: &Path) -> Result<Cifar10, DataError> {
    Ok(Cifar10 {
        train: load_train(dir)?,
        test: load_test(dir)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn permission_denied_while_searching_names_the_folder() {
        let folder = Path::new("/data/cifar");
        let denied = io::Error::from(ErrorKind::PermissionDenied);
        let err = classify(folder, Err(denied)).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("/data/cifar: looking for the CIFAR-10 batch files in it failed: "),
            "{msg}"
        );
        assert!(msg.contains("permission denied"), "{msg}");
        assert!(msg.contains("Check its permissions"), "{msg}");
        assert!(!msg.contains("no CIFAR-10 data found"), "{msg}");
    }

    #[test]
    fn not_found_and_not_a_folder_are_missing_and_others_are_kept_apart() {
        for kind in [ErrorKind::NotFound, ErrorKind::NotADirectory] {
            let got = classify(Path::new("d"), Err(io::Error::from(kind)));
            assert!(matches!(got, Ok(Entry::Missing)), "{kind:?}: {got:?}");
        }
        assert!(matches!(
            classify(Path::new("d"), Ok(true)),
            Ok(Entry::File)
        ));
        assert!(matches!(
            classify(Path::new("d"), Ok(false)),
            Ok(Entry::Other)
        ));
        let other = classify(Path::new("d"), Err(io::Error::other("disk on fire")));
        assert!(
            matches!(&other, Err(DataError::Io { path, .. }) if path == Path::new("d")),
            "{other:?}"
        );
    }
}
