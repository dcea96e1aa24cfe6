//! Which folder the CIFAR-10 files come from: `--data DIR` (never downloads), else the
//! `SCRATCHNET_DATA` environment variable, else the per-user cache folder
//! (`$XDG_CACHE_HOME/scratchnet/cifar-10`, by default `~/.cache/scratchnet/cifar-10`); the
//! last two are downloaded into when they hold no data yet. `train` and `eval` agree on it.

use std::path::{Path, PathBuf};

/// The folder used when `--data` is not given.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCRATCHNET_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .map(|c| c.join("scratchnet").join("cifar-10"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// The folder that holds the batches: `--data`, or the default folder (downloading into it
/// if it holds nothing yet).
pub fn find(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(data::find_or_download(flag, &default_dir())?)
}

/// [`find`], then both splits loaded; an error in a downloaded folder says how to get a fresh
/// copy (delete it and run again), which `--data` folders are never given.
pub fn load(flag: Option<&Path>) -> anyhow::Result<(PathBuf, data::Cifar10)> {
    Ok(data::load_or_download(flag, &default_dir())?)
}
