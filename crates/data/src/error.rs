//! The one error type of this crate, [`DataError`].
//!
//! Every variant names the file, folder or URL involved and ends with what to do about it
//! (llm.c's `freadCheck` "HINT" habit): a user who sees one of these on the terminal should not
//! need to read the source to fix it. Nothing in this crate panics on a bad or missing file;
//! panics are reserved for caller bugs such as an out-of-range index or a wrongly sized buffer.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Where the data comes from and how to get it, appended to "no data here" errors.
pub(crate) const GET_DATA_HINT: &str =
    "Download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar-10.html and \
     unpack it there, or pass --data DIR pointing at a folder with data_batch_1.bin … test_batch.bin";

/// Everything that can go wrong while finding, downloading or reading CIFAR-10.
#[derive(Debug, Error)]
pub enum DataError {
    /// A batch file that was asked for by path does not exist.
    #[error(
        "{}: no such file. The CIFAR-10 batch files (data_batch_1.bin … data_batch_5.bin and \
         test_batch.bin, or data_batch_1 … test_batch for the python version) should be in {}. \
         {GET_DATA_HINT}",
        path.display(),
        parent_of(path)
    )]
    MissingFile {
        /// The file that was asked for.
        path: PathBuf,
    },

    /// The operating system refused to read or write a file or folder.
    ///
    /// The message includes `cause`, so it is deliberately not also given as the error's
    /// `source()`: chain printers (anyhow's `{:#}`) would show it twice.
    #[error("{}: {action} failed: {}. {}", path.display(), cause, io_hint(cause))]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What we were doing, e.g. "reading" or "creating the folder".
        action: &'static str,
        /// The underlying error.
        cause: io::Error,
    },

    /// A batch file name that is a folder or a device rather than a regular file.
    #[error("{}: {}, not a CIFAR-10 batch file. Move it away and put the batch file there",
            path.display(),
            if *is_dir { "is a directory" } else { "is not a regular file" })]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// True for a folder; false for a device, pipe or socket.
        is_dir: bool,
    },

    /// A batch file has zero bytes.
    #[error("{}: the file is empty (0 bytes), so it holds no CIFAR-10 images. Re-extract it from \
             the CIFAR-10 archive", path.display())]
    EmptyFile {
        /// The empty file.
        path: PathBuf,
    },

    /// A binary batch whose size is not a multiple of the 3073-byte record size.
    #[error("{}: truncated: {len} bytes is not a whole number of 3073-byte records; expected e.g. \
             30,730,000 bytes for a full batch. Re-extract it from cifar-10-binary.tar.gz",
             path.display())]
    Truncated {
        /// The short file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },

    /// A record whose label is not one of the ten classes.
    #[error("{}: record {index} has label {label}, but CIFAR-10 labels are 0..=9. The file is \
             corrupt or is not a CIFAR-10 batch (CIFAR-100 records have two label bytes); \
             re-extract it from the CIFAR-10 archive", path.display())]
    BadLabel {
        /// The file holding the record.
        path: PathBuf,
        /// The 0-based index of the record in that file.
        index: usize,
        /// The label found.
        label: i64,
    },

    /// A python-version batch that does not unpickle to the expected dict and array.
    #[error("{}: not a CIFAR-10 python batch: {reason}. Expected a pickled dict with b'data' \
             (a uint8 numpy array of shape (N, 3072)) and b'labels' (N ints), as in \
             cifar-10-batches-py/; re-extract it, or use the binary version \
             (cifar-10-binary.tar.gz) instead", path.display())]
    BadPickle {
        /// The file.
        path: PathBuf,
        /// What exactly was wrong.
        reason: String,
    },

    /// A data folder that is a file (`--data data_batch_1.bin`, say).
    #[error("{}: is a file; --data takes the folder that holds data_batch_1 … data_batch_5 and \
             test_batch", path.display())]
    NotAFolder {
        /// The path given as the folder.
        path: PathBuf,
    },

    /// A folder with no recognisable CIFAR-10 files in it.
    #[error("{}: no CIFAR-10 data found (looked for data_batch_1.bin or test_batch.bin, \
             data_batch_1 or test_batch, and the sub-folders cifar-10-batches-bin/ and \
             cifar-10-batches-py/). {GET_DATA_HINT}", dir.display())]
    NoData {
        /// The folder that was searched.
        dir: PathBuf,
    },

    /// A CIFAR-10 folder that lacks one of the six batch files.
    #[error("{}: missing {name}; a CIFAR-10 folder needs data_batch_1 … data_batch_5 and \
             test_batch (all with .bin, or all without for the python version). Re-extract the \
             archive into {}", dir.join(name).display(), dir.display())]
    MissingBatch {
        /// The folder that was resolved as holding CIFAR-10.
        dir: PathBuf,
        /// The missing file's name, e.g. `data_batch_3.bin`.
        name: String,
    },

    /// A bad or incomplete file in the CIFAR-10 folder found in (or downloaded into) the default
    /// folder, used when no `--data` is given: `error` plus the hint that deleting `folder`
    /// makes the next run download a fresh copy. Made by [`crate::load_or_download`]; reader
    /// functions never say it, because a folder passed with `--data` is never downloaded into.
    #[error("{error}. As no --data was given, you can also delete {} and the next run downloads \
             a fresh copy", folder.display())]
    InDownloadFolder {
        /// The CIFAR-10 folder in the default folder (e.g. `data/cifar-10-batches-bin`).
        folder: PathBuf,
        /// What is wrong in it.
        error: Box<DataError>,
    },

    /// The archive could not be fetched (offline, refused, HTTP error, broken transfer).
    #[error("could not download CIFAR-10 from {url} ({cause}). Download cifar-10-binary.tar.gz \
             yourself and unpack it into {}, or pass --data DIR pointing at a folder with \
             data_batch_1.bin … test_batch.bin", dest.display())]
    Download {
        /// The URL asked for.
        url: String,
        /// Why it failed, e.g. "connection refused".
        cause: String,
        /// The folder it was going to be unpacked into.
        dest: PathBuf,
    },

    /// The archive arrived but is not the expected file.
    #[error("downloaded {url}, but it {problem}; the download was deleted. Try again (the \
             transfer may have been corrupted), or download cifar-10-binary.tar.gz yourself, \
             check its md5 and unpack it into {}", dest.display())]
    Corrupt {
        /// The URL it came from.
        url: String,
        /// e.g. "is 12 bytes, expected 170052171" or "has md5 …, expected …".
        problem: String,
        /// The folder it was going to be unpacked into.
        dest: PathBuf,
    },

    /// The archive could not be unpacked, or did not hold CIFAR-10.
    #[error("{}: could not unpack: {cause}. Delete it and try again, or unpack it yourself into {}",
            archive.display(), dest.display())]
    Unpack {
        /// The archive.
        archive: PathBuf,
        /// Where it was being unpacked to.
        dest: PathBuf,
        /// What went wrong.
        cause: String,
    },
}

/// What to do about an I/O error, by its kind.
fn io_hint(cause: &io::Error) -> &'static str {
    match cause.kind() {
        io::ErrorKind::PermissionDenied => {
            "Check its permissions (and those of the folders above it): this user must be able \
             to read it"
        }
        io::ErrorKind::OutOfMemory => "Free some memory, or check that this is the right file",
        _ => "Check that the path exists, is readable/writable and that the disk is not full",
    }
}

/// The folder a file should be in, for messages ("." when the path has no parent).
fn parent_of(path: &std::path::Path) -> String {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".to_string(),
    }
}

impl DataError {
    /// An [`io::Error`] from opening `path`, turned into [`DataError::MissingFile`] when the
    /// file is not there and into [`DataError::Io`] otherwise.
    pub(crate) fn open(path: &std::path::Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                action: "reading",
                cause: source,
            }
        }
    }

    /// This error, found in `folder`, a CIFAR-10 folder inside the default folder (used when no
    /// `--data` is given): a damaged or missing batch file becomes
    /// [`DataError::InDownloadFolder`], which adds that deleting `folder` fetches a fresh copy. Errors that a new download would not
    /// fix (permissions, a failed download) are returned unchanged.
    pub fn in_download_folder(self, folder: &std::path::Path) -> Self {
        match self {
            DataError::MissingFile { .. }
            | DataError::EmptyFile { .. }
            | DataError::Truncated { .. }
            | DataError::BadLabel { .. }
            | DataError::BadPickle { .. }
            | DataError::MissingBatch { .. }
            | DataError::NotAFile { .. } => DataError::InDownloadFolder {
                folder: folder.to_path_buf(),
                error: Box::new(self),
            },
            other => other,
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            action,
            cause: source,
        }
    }
}
