//! The host buffer cache: freed `Vec<f32>` storage kept by length for the next tensor of the
//! same length.
//!
//! A training step creates the same set of tensors every time (activations, gradients,
//! scratch). Returning each freed buffer here and handing it to the next tensor of the same
//! length means that after the first step no new memory is requested from the allocator, and
//! large buffers are not zeroed or page-faulted again every step.
//!
//! The cache is process-wide and bounded: it keeps at most [`limit`] bytes (4 GiB unless
//! [`set_limit`] says otherwise) and drops what would exceed it. [`cached_bytes`] reports what
//! it holds and [`trim`] gives it all back to the allocator (the trainer calls it when a run
//! ends; a program that trains several models in turn can call it between them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The default bound, in bytes.
pub const DEFAULT_LIMIT_BYTES: usize = 4 << 30;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT_BYTES);
static CACHE: Mutex<Cache> = Mutex::new(Cache::new());

/// Free buffers by length, and their total size in floats.
struct Cache {
    free: Option<HashMap<usize, Vec<Vec<f32>>>>,
    floats: usize,
}

impl Cache {
    const fn new() -> Self {
        Cache {
            free: None,
            floats: 0,
        }
    }

    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let v = self.free.as_mut()?.get_mut(&len)?.pop()?;
        self.floats -= len;
        Some(v)
    }

    /// Keeps `v` unless that would take the cache past `limit_floats`.
    fn give(&mut self, v: Vec<f32>, limit_floats: usize) {
        let len = v.len();
        if len == 0 || self.floats + len > limit_floats {
            return;
        }
        self.floats += len;
        self.free
            .get_or_insert_with(HashMap::new)
            .entry(len)
            .or_default()
            .push(v);
    }

    fn clear(&mut self) {
        self.free = None;
        self.floats = 0;
    }
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while holding the lock leaves the cache consistent (every method updates
    // `floats` together with the map), so a poisoned lock is still usable.
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of exactly `len` floats with unspecified contents.
pub(crate) fn take(len: usize) -> Vec<f32> {
    lock().take(len).unwrap_or_else(|| vec![0.0; len])
}

/// Gives a buffer back for reuse (dropped instead when the cache is full).
pub(crate) fn give(v: Vec<f32>) {
    let limit_floats = LIMIT.load(Ordering::Relaxed) / 4;
    lock().give(v, limit_floats);
}

/// Bytes the cache holds now.
pub fn cached_bytes() -> usize {
    lock().floats * 4
}

/// Gives every cached buffer back to the allocator.
pub fn trim() {
    lock().clear();
}

/// The most bytes the cache keeps.
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Changes the bound; a smaller one takes effect at once (the cache is trimmed when it holds
/// more). 0 turns caching off.
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    let mut cache = lock();
    if cache.floats * 4 > bytes {
        cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_for_the_same_length_only() {
        let mut c = Cache::new();
        c.give(vec![1.0; 10], 100);
        assert_eq!(c.floats, 10);
        assert!(c.take(9).is_none());
        assert_eq!(c.take(10).unwrap().len(), 10);
        assert_eq!(c.floats, 0);
        assert!(c.take(10).is_none());
    }

    #[test]
    fn the_bound_drops_what_would_exceed_it_and_clear_empties() {
        let mut c = Cache::new();
        c.give(vec![0.0; 60], 100);
        c.give(vec![0.0; 60], 100); // would make 120 > 100: dropped
        c.give(vec![0.0; 40], 100);
        assert_eq!(c.floats, 100);
        c.give(Vec::new(), 100);
        assert_eq!(c.floats, 100);
        c.clear();
        assert_eq!(c.floats, 0);
        assert!(c.take(60).is_none());
    }
}
