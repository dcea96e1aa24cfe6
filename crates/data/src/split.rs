//! Hold-out validation splits.
//!
//! [`split_last`] reproduces article 004's split (`docs/models.md`, section E): of the 50,000
//! training images, the **last** 10% (5,000 images, i.e. the tail of `data_batch_5`) become the
//! validation set and the first 45,000 the training set. No shuffling happens here: the split is
//! a pure function of the order the batches were loaded in, so it is the same on every run.

use crate::cifar::Dataset;

/// Splits `ds` into `(train, validation)`, where the validation set is the last
/// `round(fraction * ds.len())` images (rounded half away from zero, as `f64::round`) and the
/// training set is everything before them. Both are copies; `ds` is left untouched.
///
/// `fraction = 0.0` gives `(ds, empty)`, `fraction = 1.0` gives `(empty, ds)`.
///
/// Panics if `fraction` is not in `[0, 1]` (NaN included).
///
/// ```
/// # use data::{Dataset, IMAGE_BYTES};
/// let ds = Dataset { images: vec![0; 50 * IMAGE_BYTES], labels: vec![0; 50] };
/// let (train, val) = data::split_last(&ds, 0.1);
/// assert_eq!((train.len(), val.len()), (45, 5));
/// ```
pub fn split_last(ds: &Dataset, fraction: f64) -> (Dataset, Dataset) {
    assert!(
        (0.0..=1.0).contains(&fraction),
        "split_last: fraction must be in [0, 1], got {fraction}"
    );
    let n = ds.len();
    // fraction <= 1, so the product is <= n and the cast cannot overflow.
    let n_val = ((fraction * n as f64).round() as usize).min(n);
    let cut = n - n_val;
    (ds.slice(0..cut), ds.slice(cut..n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cifar::IMAGE_BYTES;

    /// `n` images whose bytes and labels all depend on the image index.
    fn dataset(n: usize) -> Dataset {
        Dataset {
            images: (0..n * IMAGE_BYTES)
                .map(|k| ((k / IMAGE_BYTES) * 7 + k % 251) as u8)
                .collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn split_last_sizes_match_article_004() {
        // 500 stands in for 50,000: the last 10% is validation.
        let ds = dataset(500);
        let (train, val) = split_last(&ds, 0.1);
        assert_eq!(train.len(), 450);
        assert_eq!(val.len(), 50);
        assert_eq!(train.images.len(), 450 * IMAGE_BYTES);
        assert_eq!(val.images.len(), 50 * IMAGE_BYTES);
    }

    #[test]
    fn split_last_contents_are_the_original_slices() {
        let ds = dataset(37);
        let (train, val) = split_last(&ds, 0.25);
        // round(0.25 * 37) = round(9.25) = 9.
        assert_eq!(val.len(), 9);
        assert_eq!(train, ds.slice(0..28));
        assert_eq!(val, ds.slice(28..37));
        assert_eq!(val.image(0), ds.image(28));
        assert_eq!(val.labels[8], ds.labels[36]);
        assert_eq!(Dataset::concat(&[train, val]), ds);
    }

    #[test]
    fn split_last_rounds_to_nearest() {
        let ds = dataset(10);
        assert_eq!(split_last(&ds, 0.14).1.len(), 1);
        // 0.25 * 10 = 2.5 exactly: half rounds away from zero.
        assert_eq!(split_last(&ds, 0.25).1.len(), 3);
        assert_eq!(split_last(&ds, 0.16).1.len(), 2);
    }

    #[test]
    fn split_last_fraction_zero_and_one() {
        let ds = dataset(12);
        let (train, val) = split_last(&ds, 0.0);
        assert_eq!(train, ds);
        assert!(val.is_empty() && val.images.is_empty());
        let (train, val) = split_last(&ds, 1.0);
        assert!(train.is_empty() && train.images.is_empty());
        assert_eq!(val, ds);
        let (train, val) = split_last(&Dataset::default(), 0.5);
        assert!(train.is_empty() && val.is_empty());
    }

    #[test]
    #[should_panic(expected = "fraction must be in [0, 1]")]
    fn split_last_rejects_bad_fraction() {
        split_last(&dataset(3), 1.5);
    }
}
