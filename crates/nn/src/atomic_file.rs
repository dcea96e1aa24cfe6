//! Durable file replacement: a file is either the old version or the complete new one, after
//! a crash, a `kill -9`, a power cut or a full disk.
//!
//! The recipe (as in SQLite's and Keras' `BackupAndRestore` writers):
//! 1. write the bytes to a temporary file with a name of its own in the target's folder (the
//!    same file system, so the rename below is atomic);
//! 2. `fsync` it, so its contents are on disk before its name is;
//! 3. rename it over the target (atomic on POSIX: readers see the old or the new file);
//! 4. `fsync` the folder, so the rename itself survives a power cut.
//!
//! On any error the temporary file is removed and the target is left as it was. A process
//! killed between 1 and 3 leaves its temporary file behind: [`remove_stale_temporaries`]
//! deletes those, and only those, by their name pattern (`.<target name>.<pid>-<n>.tmp`).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes`, durably (see the module comment).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, |file, bytes| file.write_all(bytes))
}

/// [`write_atomic`] with the write itself injected, so that tests can make it fail part-way
/// (a full disk) and check what is left.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut File, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_name(path)?;
    let result = (|| {
        let mut file = File::options().write(true).create_new(true).open(&tmp)?;
        write(&mut file, bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_folder(path)
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one above.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `fsync` of the folder holding `path`, which makes a rename or a new name in it durable.
pub fn sync_folder(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// A name no other writer uses: `.<file name>.<pid>-<counter>.tmp` beside `path`.
fn temporary_name(path: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file name", path.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(
        ".{}.{}-{n}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Deletes the temporary files that a killed [`write_atomic`] of one of `targets` (file names)
/// left in `dir`; returns the paths removed. Nothing else is touched.
pub fn remove_stale_temporaries(dir: &Path, targets: &[&str]) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = targets.iter().any(|t| is_temporary_of(&name, t));
        if stale && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// Whether `name` has the shape of [`temporary_name`] for the target file name `target`.
fn is_temporary_of(name: &str, target: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(target))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".tmp"))
    else {
        return false;
    };
    let mut parts = rest.split('-');
    let digits =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder, removed when the test ends.
    fn dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("scratchnet-atomic-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let scratch = dir("replace");
        let d = scratch.path();
        let p = d.join("w.safetensors");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second, longer");
        assert_eq!(names(d), ["w.safetensors"]);
    }

    /// A disk that fills up part-way: the error comes back, the old file is intact and no
    /// temporary file is left.
    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let scratch = dir("full");
        let d = scratch.path();
        let p = d.join("w.safetensors");
        write_atomic(&p, b"the good checkpoint").unwrap();
        let err = write_atomic_with(&p, b"a new checkpoint", |f, bytes| {
            f.write_all(&bytes[..5])?;
            Err(io::Error::from(io::ErrorKind::StorageFull))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(&p).unwrap(), b"the good checkpoint");
        assert_eq!(names(d), ["w.safetensors"]);
        // A target in a folder that does not exist fails without creating anything.
        assert!(write_atomic(&d.join("missing/w.safetensors"), b"x").is_err());
        assert_eq!(names(d), ["w.safetensors"]);
    }

    #[test]
    fn stale_temporaries_are_recognised_by_name_only() {
        let scratch = dir("stale");
        let d = scratch.path();
        for n in [
            ".w.safetensors.123-0.tmp",
            ".w.safetensors.9-17.tmp",
            ".w.safetensors.tmp",
            ".w.safetensors.12x-0.tmp",
            ".other.bin.5-0.tmp",
            "w.safetensors",
            "notes.tmp",
        ] {
            std::fs::write(d.join(n), b"x").unwrap();
        }
        let mut removed = remove_stale_temporaries(d, &["w.safetensors"]).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                d.join(".w.safetensors.123-0.tmp"),
                d.join(".w.safetensors.9-17.tmp")
            ]
        );
        assert_eq!(
            names(d),
            [
                ".other.bin.5-0.tmp",
                ".w.safetensors.12x-0.tmp",
                ".w.safetensors.tmp",
                "notes.tmp",
                "w.safetensors"
            ]
        );
    }
}
