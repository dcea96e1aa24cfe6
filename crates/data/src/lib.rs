//! CIFAR-10 for scratchnet: find it, download it, read it, batch it.
//!
//! * [`cifar`]: the in-memory [`Dataset`] (u8 images in NHWC order, u8 labels) and constants.
//! * [`binary`]: reader for the binary version (`data_batch_1.bin` …, 3073-byte records).
//! * [`pickle`]: reader for the python version (`data_batch_1` …, pickled numpy arrays).
//! * [`dir`]: locating a CIFAR-10 folder ([`resolve_dir`]) and loading its train/test splits.
//! * [`download`]: fetching the official archive with size and md5 checks, and the
//!   "use what is there, else download" policy ([`find_or_download`], [`load_or_download`]).
//! * [`batch`]: per-epoch shuffles and filling caller-owned f32 batch buffers.
//! * [`split`]: hold-out validation splits ([`split_last`]: the last 10% as in article 004).
//! * [`augment`]: normalisation (per channel, per image) and augmentation (flip, shift,
//!   pad-and-crop) on f32 NHWC batches, reproducing Keras / TensorFlow / scipy semantics.
//! * [`error`]: [`DataError`]; every message names the file and says what to do.
//!
//! Typical use:
//!
//! ```no_run
//! use std::path::Path;
//! // The default folder "data" is filled by a download if it holds no CIFAR-10 yet.
//! let (_dir, cifar) = data::load_or_download(None, Path::new("data"))?;
//! let order = data::shuffled_indices(cifar.train.len(), 42, 0);
//! let (mut x, mut y) = (vec![0.0f32; 128 * data::IMAGE_BYTES], vec![0u32; 128]);
//! data::fill_batch(&cifar.train, &order[..128], 1.0 / 255.0, &mut x, &mut y);
//! # Ok::<(), data::DataError>(())
//! ```

pub mod augment;
pub mod batch;
pub mod binary;
pub mod cifar;
pub mod dir;
pub mod download;
pub mod error;
pub mod pickle;
mod pickle_scan;
pub mod split;

pub use augment::{
    augment_batch, flip_horizontal, flip_horizontal_in_place, normalize_per_channel, pad_crop,
    shift, standardize_per_image, Augment, Crop, Mode, NIN_MEAN, NIN_STD,
};
pub use batch::{fill_batch, shuffled_indices};
pub use binary::{parse_records, read_binary_batch};
pub use cifar::{
    Cifar10, Dataset, CHANNELS, CLASSES, CLASS_NAMES, HEIGHT, IMAGE_BYTES, RECORD_BYTES, WIDTH,
};
pub use dir::{load, load_test, load_train, read_batch, resolve_dir, Format};
pub use download::{
    download_and_unpack, find_or_download, load_or_download, CIFAR10_BINARY_MD5,
    CIFAR10_BINARY_SIZE, CIFAR10_BINARY_URL,
};
pub use error::DataError;
pub use pickle::{parse_python_batch, read_python_batch};
pub use split::split_last;
