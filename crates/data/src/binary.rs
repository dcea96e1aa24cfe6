//! Reader for the binary version of CIFAR-10 (`cifar-10-batches-bin/*.bin`).
//!
//! A batch file is a plain sequence of 3073-byte records: one label byte (0..=9), then the
//! 32x32 image as three planes, R then G then B, each row-major. The official files hold
//! 10,000 records (30,730,000 bytes); this reader accepts any whole number of records, so the
//! same code reads the test subset and tiny fixtures. Sizes and labels are checked before
//! anything is trusted, and each problem is a [`DataError`] naming the file.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use crate::cifar::{chw_to_hwc, Dataset, CLASSES, IMAGE_BYTES, RECORD_BYTES};
use crate::error::DataError;

/// Reads one binary batch file into a [`Dataset`] (images transposed to HWC).
pub fn read_binary_batch(path: &Path) -> Result<Dataset, DataError> {
    // Check the size first, so a wrong-sized file is reported without reading it.
    let len = file_len(path)?;
    if !len.is_multiple_of(RECORD_BYTES as u64) {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            len,
        });
    }
    // The file may have changed since; parse_records re-checks the size.
    let bytes = read_file(path)?;
    parse_records(path, &bytes)
}

/// The size of the batch file `path`: an error if it is missing, unreadable, not a regular
/// file (a folder, or a device such as /dev/zero that would never end) or empty.
pub(crate) fn file_len(path: &Path) -> Result<u64, DataError> {
    let meta = fs::metadata(path).map_err(|e| DataError::open(path, e))?;
    if !meta.is_file() {
        return Err(DataError::NotAFile {
            path: path.to_path_buf(),
            is_dir: meta.is_dir(),
        });
    }
    if meta.len() == 0 {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

/// The whole of batch file `path` (checked as in [`file_len`]). The buffer is reserved
/// fallibly, so a file too large for memory is an error rather than an abort.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let len = file_len(path)?;
    let mut file = fs::File::open(path).map_err(|e| DataError::open(path, e))?;
    let mut bytes = Vec::new();
    let want = usize::try_from(len).unwrap_or(usize::MAX);
    bytes.try_reserve_exact(want).map_err(|_| {
        DataError::io(
            path,
            "reading",
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("the file is {len} bytes, more than fits in memory"),
            ),
        )
    })?;
    file.read_to_end(&mut bytes)
        .map_err(|e| DataError::open(path, e))?;
    if bytes.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Decodes a buffer of whole 3073-byte records (anything else is [`DataError::Truncated`]).
/// `path` is only used in error messages.
pub fn parse_records(path: &Path, bytes: &[u8]) -> Result<Dataset, DataError> {
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD_BYTES;
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = Vec::with_capacity(n);
    for (index, (record, image)) in bytes
        .chunks_exact(RECORD_BYTES)
        .zip(images.chunks_exact_mut(IMAGE_BYTES))
        .enumerate()
    {
        let label = record[0];
        if label as usize >= CLASSES {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                index,
                label: label.into(),
            });
        }
        labels.push(label);
        chw_to_hwc(&record[1..], image);
    }
    Ok(Dataset { images, labels })
}
