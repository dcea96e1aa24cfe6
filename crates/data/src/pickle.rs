//! Reader for the python version of CIFAR-10 (`cifar-10-batches-py/data_batch_1` …).
//!
//! Each batch is a pickled dict, written by Python 2's cPickle at protocol 2:
//!
//! ```text
//! { b'batch_label': b'training batch 1 of 5',
//!   b'labels':      [6, 9, 9, 4, ...],                  # N ints
//!   b'data':        numpy.ndarray uint8, shape (N, 3072) # R plane, G plane, B plane per row
//!   b'filenames':   [b'leptodactylus_pentadactylus_s_000004.png', ...] }
//! ```
//!
//! The ndarray is pickled as `GLOBAL numpy.core.multiarray._reconstruct` + `REDUCE`, followed by
//! `BUILD` with the state tuple `(1, shape, dtype, is_fortran, raw_bytes)`; `raw_bytes` is a
//! Python 2 `str` (`BINSTRING`). We decode with the `serde-pickle` crate, which cannot call
//! numpy but does two things that make the array recoverable:
//!
//! * `BUILD` *replaces* the stand-in for the reconstructed object with its state, so `b'data'`
//!   decodes to the tuple `(1, shape, dtype_state, is_fortran, raw_bytes)`. (The dtype goes
//!   through the same REDUCE + BUILD and becomes its own state tuple, `(3, '|', None, …)`; its
//!   name `'u1'` is lost, so we check instead that the byte count equals the element count,
//!   i.e. one byte per element.)
//! * Python 2 `str` opcodes decode to bytes (we leave `decode_strings` off), and Python 3's
//!   protocol-2 spelling of bytes, `_codecs.encode(u'…', 'latin1')`, is undone by the crate.
//!
//! Files re-pickled from Python 3 therefore also load: protocol 2 (`_codecs.encode`, str or
//! bytes keys), 3 and 4 (`BINBYTES`), and 5, where numpy instead writes
//! `numpy._core.numeric._frombuffer(bytearray, dtype, shape, order)` as a bare `REDUCE`; with
//! `keep_restore_state` that call decodes to its argument tuple `(raw, dtype, shape, order)`.
//! Out-of-band protocol-5 buffers are not supported (they are not in the file).
//!
//! Any unexpected structure is a [`DataError::BadPickle`] that says what was found.

use std::path::Path;

use serde_pickle::{DeOptions, HashableValue, Value};

use crate::cifar::{chw_to_hwc, Dataset, CLASSES, IMAGE_BYTES};
use crate::error::DataError;

/// Reads one python-version batch file into a [`Dataset`] (images transposed to HWC).
pub fn read_python_batch(path: &Path) -> Result<Dataset, DataError> {
    let bytes = crate::binary::read_file(path)?;
    parse_python_batch(path, &bytes)
}

/// Decodes a python-version batch already in memory. `path` is only used in error messages.
///
/// Before `serde-pickle` sees the bytes, `pickle_scan::check` refuses pickles that
/// would overflow its stack (deep nesting) or make it allocate far more than the file's size
/// (shared values repeated); see that module.
pub fn parse_python_batch(path: &Path, bytes: &[u8]) -> Result<Dataset, DataError> {
    if bytes.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    crate::pickle_scan::check(bytes).map_err(|why| bad(path, why))?;
    let value = serde_pickle::value_from_slice(bytes, options()).map_err(|e| {
        bad(
            path,
            format!("it could not be unpickled ({})", clip(&e.to_string())),
        )
    })?;
    decode_batch(path, value)
}

/// How we ask serde-pickle to decode: keep `REDUCE` arguments of unknown callables (needed
/// for protocol 5's `_frombuffer`), and turn any global that survives into the result into
/// `None` instead of failing on it (an extra entry we do not read must not break loading).
fn options() -> DeOptions {
    DeOptions::new()
        .keep_restore_state()
        .replace_unresolved_globals()
}

/// Decodes an unpickled batch dict. `path` is only used in error messages.
fn decode_batch(path: &Path, value: Value) -> Result<Dataset, DataError> {
    let Value::Dict(mut dict) = value else {
        return Err(bad(
            path,
            format!("the pickle holds {}, not a dict", kind(&value)),
        ));
    };
    let data =
        take(&mut dict, "data").ok_or_else(|| bad(path, "it has no b'data' entry".into()))?;
    let labels =
        take(&mut dict, "labels").ok_or_else(|| bad(path, "it has no b'labels' entry".into()))?;

    let (shape, fortran, raw) = ndarray_parts(data).map_err(|r| bad(path, r))?;
    let n = match shape.as_slice() {
        [n, 3072] | [n, 3, 32, 32] if !fortran || shape.len() == 2 => *n,
        _ => {
            let order = if fortran { " in Fortran order" } else { "" };
            return Err(bad(
                path,
                format!(
                    "b'data' has shape {}{order}, expected (N, 3072)",
                    fmt_shape(&shape)
                ),
            ));
        }
    };
    // checked: the shape comes from the file and may be absurd.
    if n.checked_mul(IMAGE_BYTES) != Some(raw.len()) {
        return Err(bad(
            path,
            format!(
                "b'data' has shape {} but {} bytes of pixel data, not one byte per element; \
                 only uint8 arrays are supported",
                fmt_shape(&shape),
                raw.len()
            ),
        ));
    }

    let labels = match labels {
        Value::List(v) | Value::Tuple(v) => v,
        other => {
            return Err(bad(
                path,
                format!("b'labels' is {}, expected a list of ints", kind(&other)),
            ))
        }
    };
    if labels.len() != n {
        return Err(bad(
            path,
            format!(
                "b'data' has {n} images but b'labels' has {} entries",
                labels.len()
            ),
        ));
    }
    let labels = labels
        .into_iter()
        .enumerate()
        .map(|(index, v)| match v {
            Value::I64(l) if (0..CLASSES as i64).contains(&l) => Ok(l as u8),
            Value::I64(label) => Err(DataError::BadLabel {
                path: path.to_path_buf(),
                index,
                label,
            }),
            Value::Int(big) => Err(bad(
                path,
                format!(
                    "b'labels'[{index}] is {}, but CIFAR-10 labels are 0..=9",
                    big_int(&big)
                ),
            )),
            other => Err(bad(
                path,
                format!(
                    "b'labels'[{index}] is {}, expected an int in 0..=9",
                    kind(&other)
                ),
            )),
        })
        .collect::<Result<Vec<u8>, DataError>>()?;

    let mut images = vec![0u8; n * IMAGE_BYTES];
    if fortran {
        // Column-major (N, 3072): element (i, j) is at j * N + i. Gather each row, then
        // transpose it like any other.
        let mut row = vec![0u8; IMAGE_BYTES];
        for (i, image) in images.chunks_exact_mut(IMAGE_BYTES).enumerate() {
            for (j, px) in row.iter_mut().enumerate() {
                *px = raw[j * n + i];
            }
            chw_to_hwc(&row, image);
        }
    } else {
        for (chw, hwc) in raw
            .chunks_exact(IMAGE_BYTES)
            .zip(images.chunks_exact_mut(IMAGE_BYTES))
        {
            chw_to_hwc(chw, hwc);
        }
    }
    Ok(Dataset { images, labels })
}

/// Splits a decoded ndarray into (shape, is_fortran, raw bytes). Accepts the three forms
/// described in the module docs:
///
/// * `(version, shape, dtype, is_fortran, raw)`: `_reconstruct` + `BUILD` (protocols 0-4);
/// * `(shape, dtype, is_fortran, raw)`: the same without the version (very old numpy);
/// * `(raw, dtype, shape, order)`: `_frombuffer` (protocol 5).
fn ndarray_parts(value: Value) -> Result<(Vec<usize>, bool, Vec<u8>), String> {
    const NOT_ARRAY: &str = "b'data' is not a pickled numpy array";
    let Value::Tuple(mut parts) = value else {
        return Err(format!("{NOT_ARRAY} (found {})", kind(&value)));
    };
    let (shape, fortran, raw) = match parts.len() {
        5 => {
            let raw = parts.pop();
            let fortran = parts.pop();
            parts.pop(); // dtype state
            (parts.pop(), fortran, raw)
        }
        4 if matches!(parts[0], Value::Tuple(_)) => {
            let raw = parts.pop();
            let fortran = parts.pop();
            parts.pop();
            (parts.pop(), fortran, raw)
        }
        4 => {
            let order = parts.pop();
            let shape = parts.pop();
            parts.pop();
            let raw = parts.pop();
            let fortran = match order {
                Some(Value::String(s)) => Some(Value::Bool(s == "F")),
                Some(Value::Bytes(s)) => Some(Value::Bool(s == b"F")),
                other => other,
            };
            (shape, fortran, raw)
        }
        n => {
            return Err(format!(
                "{NOT_ARRAY} (its state has {n} fields, expected 4 or 5)"
            ))
        }
    };
    let shape = match shape {
        Some(Value::Tuple(dims)) | Some(Value::List(dims)) => dims
            .into_iter()
            .map(|d| match d {
                Value::I64(d) => usize::try_from(d).map_err(|_| d.to_string()),
                Value::Int(big) => Err(big_int(&big)),
                other => Err(kind(&other)),
            })
            .collect::<Result<Vec<usize>, String>>()
            .map_err(|d| format!("b'data' has a bad dimension ({d}) in its shape"))?,
        other => return Err(format!("{NOT_ARRAY} (its shape is {})", opt_kind(&other))),
    };
    let fortran = match fortran {
        Some(Value::Bool(b)) => b,
        Some(Value::I64(i)) => i != 0,
        other => {
            return Err(format!(
                "{NOT_ARRAY} (its order flag is {})",
                opt_kind(&other)
            ))
        }
    };
    let raw = match raw {
        Some(Value::Bytes(b)) => b,
        other => {
            return Err(format!(
                "{NOT_ARRAY} with raw pixel bytes (found {}; object arrays are not supported)",
                opt_kind(&other)
            ))
        }
    };
    Ok((shape, fortran, raw))
}

/// Removes and returns the entry `name`, stored under a bytes key (Python 2, or Python 3 with
/// `encoding='bytes'`) or a str key (a dict made in Python 3).
fn take(dict: &mut std::collections::BTreeMap<HashableValue, Value>, name: &str) -> Option<Value> {
    dict.remove(&HashableValue::Bytes(name.as_bytes().to_vec()))
        .or_else(|| dict.remove(&HashableValue::String(name.to_string())))
}

fn bad(path: &Path, reason: String) -> DataError {
    DataError::BadPickle {
        path: path.to_path_buf(),
        reason,
    }
}

/// `msg` cut to at most 200 characters: serde-pickle's "invalid stack top" errors print the
/// whole offending value, which for a batch's pixel array is tens of megabytes of numbers.
fn clip(msg: &str) -> String {
    const MAX: usize = 200;
    match msg.char_indices().nth(MAX) {
        Some((at, _)) => format!("{} …", &msg[..at]),
        None => msg.to_string(),
    }
}

fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    }
}

/// A short description of a decoded value's type, for error messages.
fn kind(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(_) => "a bool".into(),
        Value::I64(_) => "an int".into(),
        Value::Int(big) => format!("the int {}", big_int(big)),
        Value::F64(_) => "a float".into(),
        Value::Bytes(b) => format!("a {}-byte string", b.len()),
        Value::String(_) => "a str".into(),
        Value::List(v) => format!("a list of {}", v.len()),
        Value::Tuple(v) => format!("a tuple of {}", v.len()),
        Value::Set(_) | Value::FrozenSet(_) => "a set".into(),
        Value::Dict(_) => "a dict".into(),
    }
}

/// An integer too large for an i64, in decimal when that is short enough to read.
fn big_int(big: &num_bigint::BigInt) -> String {
    if big.bits() <= 128 {
        big.to_string()
    } else {
        format!("a {}-bit integer", big.bits())
    }
}

fn opt_kind(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "missing".into(), kind)
}
