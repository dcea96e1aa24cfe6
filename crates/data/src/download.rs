//! Downloading and unpacking the CIFAR-10 archive, and deciding whether to.
//!
//! [`download_and_unpack`] streams the archive to `dest/<name>.part` in 64 KiB chunks (never
//! holding 170 MB in memory), hashing as it goes; checks the byte count and md5; renames the
//! file to `dest/<name>`; unpacks it into a staging folder `dest/<name>.unpacking/` with
//! `flate2` + `tar` (`Entry::unpack_in` refuses entries that would land outside it), moves the
//! result into `dest`, and deletes the archive. On any failure before the unpack the `.part`
//! file is deleted; a failed unpack keeps the verified archive so it can be unpacked by hand.
//!
//! [`find_or_download`] is the policy the CLI uses: an explicit `--data` folder is only ever
//! resolved, never downloaded into; without one, the default folder is used if it already holds
//! CIFAR-10 and filled by a download otherwise. [`load_or_download`] adds the loading, and the
//! "delete the folder to download it again" hint for bad files in the default folder only.

use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

use crate::cifar::Cifar10;
use crate::dir::resolve_dir;
use crate::error::DataError;

/// The official home of the binary version.
pub const CIFAR10_BINARY_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Size of `cifar-10-binary.tar.gz` in bytes.
pub const CIFAR10_BINARY_SIZE: u64 = 170_052_171;
/// md5 of `cifar-10-binary.tar.gz`, as published on the CIFAR page.
pub const CIFAR10_BINARY_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Downloads `url` into `dest`, checks it is `expected_size` bytes with md5 `expected_md5`
/// (lower- or upper-case hex), unpacks it there and returns the CIFAR-10 folder found in
/// `dest` (as [`resolve_dir`] gives it). `progress` shows a progress bar, but only when stderr
/// is a terminal.
pub fn download_and_unpack(
    url: &str,
    expected_size: u64,
    expected_md5: &str,
    dest: &Path,
    progress: bool,
) -> Result<PathBuf, DataError> {
    let created = !dest.exists();
    fs::create_dir_all(dest).map_err(|e| DataError::io(dest, "creating the folder", e))?;
    let name = archive_name(url);
    let part = dest.join(format!("{name}.part"));
    let archive = dest.join(&name);

    let fetched = fetch(url, expected_size, expected_md5, dest, &part, progress).and_then(|()| {
        fs::rename(&part, &archive)
            .map_err(|e| DataError::io(&archive, "renaming the finished download", e))
    });
    if let Err(e) = fetched {
        let _ = fs::remove_file(&part);
        if created {
            let _ = fs::remove_dir(dest); // only succeeds if we left it empty
        }
        return Err(e);
    }

    unpack(&archive, dest)?;
    match resolve_dir(dest) {
        Ok((folder, _)) => {
            let _ = fs::remove_file(&archive); // unpacked; the archive is no longer needed
            Ok(folder)
        }
        Err(_) => Err(DataError::Unpack {
            archive,
            dest: dest.to_path_buf(),
            cause: "it unpacked, but holds no CIFAR-10 batch files".into(),
        }),
    }
}

/// Returns the CIFAR-10 folder to load from.
///
/// * `data = Some(dir)`: `dir` as [`resolve_dir`] resolves it; an error if it holds no
///   CIFAR-10. Never downloads.
/// * `data = None`: `default_dir` if it already resolves; otherwise prints one line to stderr
///   and downloads the binary archive from [`CIFAR10_BINARY_URL`] into `default_dir`.
pub fn find_or_download(data: Option<&Path>, default_dir: &Path) -> Result<PathBuf, DataError> {
    if let Some(dir) = data {
        return resolve_dir(dir).map(|(folder, _)| folder);
    }
    if let Ok((folder, _)) = resolve_dir(default_dir) {
        return Ok(folder);
    }
    eprintln!(
        "CIFAR-10 not found in {}; downloading {} (170 MB) into it",
        default_dir.display(),
        CIFAR10_BINARY_URL
    );
    download_and_unpack(
        CIFAR10_BINARY_URL,
        CIFAR10_BINARY_SIZE,
        CIFAR10_BINARY_MD5,
        default_dir,
        true,
    )
}

/// [`find_or_download`], then [`crate::load`]: the CIFAR-10 folder and both splits.
///
/// When the data comes from `default_dir` (no `data` folder was given), a bad or missing batch
/// file there is wrapped in [`DataError::InDownloadFolder`], whose message adds that deleting
/// the CIFAR-10 folder (e.g. `data/cifar-10-batches-bin`) makes the next run download a fresh
/// copy. For a `data` folder it is not said:
/// that folder is never downloaded into.
pub fn load_or_download(
    data: Option<&Path>,
    default_dir: &Path,
) -> Result<(PathBuf, Cifar10), DataError> {
    let folder = find_or_download(data, default_dir)?;
    match crate::dir::load(&folder) {
        Ok(cifar) => Ok((folder, cifar)),
        Err(e) if data.is_none() => Err(e.in_download_folder(&folder)),
        Err(e) => Err(e),
    }
}

/// The archive's file name: the URL's last path segment if it is a plain name, else a default.
fn archive_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    let plain = !last.is_empty()
        && !last.starts_with('.')
        && last
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        last.to_string()
    } else {
        "cifar-10-binary.tar.gz".to_string()
    }
}

/// An HTTP agent with connect/response timeouts. Proxies come from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`, …) except for loopback URLs, which are always fetched directly.
fn agent_for(url: &str) -> ureq::Agent {
    let loopback = is_loopback(url);
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .proxy(if loopback {
            None
        } else {
            ureq::Proxy::try_from_env()
        })
        .build()
        .into()
}

/// True when `url`'s host is `localhost` or a loopback address.
fn is_loopback(url: &str) -> bool {
    url.parse::<ureq::http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(|h| h.trim_matches(['[', ']']).to_string()))
        .is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// Why a request failed, in words.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found; are you offline?".into(),
        other => other.to_string(),
    }
}

/// Streams `url` into `part`, checking size and md5. Leaves `part` behind on error (the
/// caller deletes it).
fn fetch(
    url: &str,
    expected_size: u64,
    expected_md5: &str,
    dest: &Path,
    part: &Path,
    progress: bool,
) -> Result<(), DataError> {
    let download_error = |cause: String| DataError::Download {
        url: url.into(),
        cause,
        dest: dest.to_path_buf(),
    };
    let corrupt = |problem: String| DataError::Corrupt {
        url: url.into(),
        problem,
        dest: dest.to_path_buf(),
    };

    // Ask for the file as stored: a server that gzip-encoded the .tar.gz again would otherwise
    // be transparently decoded by ureq and fail the md5 check.
    let mut response = agent_for(url)
        .get(url)
        .header("Accept-Encoding", "identity")
        .call()
        .map_err(|e| download_error(describe(&e)))?;
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = announced {
        if len != expected_size {
            return Err(corrupt(format!(
                "is {len} bytes (Content-Length), expected {expected_size}"
            )));
        }
    }

    let mut file = File::create(part).map_err(|e| DataError::io(part, "creating", e))?;
    let bar = if progress && io::stderr().is_terminal() {
        let bar = ProgressBar::new(expected_size);
        let style = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Some(bar)
    } else {
        None
    };

    let mut reader = response.body_mut().as_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(download_error(format!(
                    "the transfer broke off after {got} bytes: {e}"
                )))
            }
        };
        got += n as u64;
        if got > expected_size {
            return Err(corrupt(format!(
                "is more than the expected {expected_size} bytes"
            )));
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| DataError::io(part, "writing", e))?;
        if let Some(bar) = &bar {
            bar.inc(n as u64);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    file.sync_all()
        .map_err(|e| DataError::io(part, "writing", e))?;
    drop(file);

    if got != expected_size {
        return Err(corrupt(format!("is {got} bytes, expected {expected_size}")));
    }
    let md5 = hex(&hasher.finalize());
    if !md5.eq_ignore_ascii_case(expected_md5.trim()) {
        return Err(corrupt(format!("has md5 {md5}, expected {expected_md5}")));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpacks the gzipped tar `archive` into `dest` via a staging folder, so that a failed unpack
/// never leaves a half-filled `cifar-10-batches-bin/` that would later pass for the real thing.
fn unpack(archive: &Path, dest: &Path) -> Result<(), DataError> {
    let fail = |cause: String| DataError::Unpack {
        archive: archive.to_path_buf(),
        dest: dest.to_path_buf(),
        cause,
    };
    let file_name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let staging = dest.join(format!("{}.unpacking", file_name.unwrap_or_default()));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .map_err(|e| fail(format!("removing old {}: {e}", staging.display())))?;
    }
    let result = unpack_into(archive, &staging)
        .map_err(&fail)
        .and_then(|()| {
            // Move each top-level entry (normally just cifar-10-batches-bin/) into place.
            let entries = fs::read_dir(&staging).map_err(|e| fail(e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| fail(e.to_string()))?;
                let target = dest.join(entry.file_name());
                // An empty left-over folder may be replaced; anything else is the user's to move.
                if target.exists() && fs::remove_dir(&target).is_err() {
                    return Err(fail(format!(
                        "{} already exists; move it away and try again",
                        target.display()
                    )));
                }
                fs::rename(entry.path(), &target)
                    .map_err(|e| fail(format!("moving it to {}: {e}", target.display())))?;
            }
            Ok(())
        });
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Extracts every entry of the gzipped tar `archive` into `staging`.
fn unpack_into(archive: &Path, staging: &Path) -> Result<(), String> {
    fs::create_dir_all(staging).map_err(|e| format!("creating {}: {e}", staging.display()))?;
    let file = File::open(archive).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let entries = tar.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        // Ok(false) means the entry was skipped because its path would escape `staging`.
        entry.unpack_in(staging).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_name_is_the_plain_last_segment_or_a_default() {
        assert_eq!(archive_name(CIFAR10_BINARY_URL), "cifar-10-binary.tar.gz");
        assert_eq!(archive_name("http://h/x/a-b_1.tgz?sig=1#f"), "a-b_1.tgz");
        for odd in [
            "http://h/",
            "http://h/..",
            "http://h/a%2F..",
            "http://h/.hidden",
        ] {
            assert_eq!(archive_name(odd), "cifar-10-binary.tar.gz", "{odd}");
        }
    }

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:8080/a.tar.gz"));
        assert!(is_loopback("http://localhost/a"));
        assert!(is_loopback("http://[::1]:80/a"));
        assert!(!is_loopback(CIFAR10_BINARY_URL));
        assert!(!is_loopback("not a url"));
    }
}
