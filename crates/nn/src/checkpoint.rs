//! Weights files: safetensors, one tensor per parameter under its name (`conv2d.kernel`),
//! with the model name in the metadata so weights are never loaded into the wrong model.
//!
//! Saving goes through [`write_atomic`]: a temporary file beside the target, fsynced and
//! renamed over it, so a crash, a kill or a full disk never leaves a half-written file where a
//! good one was. A resumable training checkpoint ([`save_training`]) is a weights file with the
//! optimiser's buffers and the trainer's state added, so it also loads wherever weights do.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tensor::Tensor;

use crate::atomic_file::write_atomic;
use crate::optim::{Optimizer, OptimizerState};
use crate::{NnError, ParamId, Sequential};

const FORMAT: &str = "scratchnet-weights-1";

/// Metadata key of the training state a resumable checkpoint carries (the caller's JSON).
const TRAINING_KEY: &str = "training";
/// Tensor-name prefix of optimiser buffers: `optimizer.<buffer>.<parameter name>`.
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Writes the model's weights to `path` (durably: see [`crate::atomic_file`]).
pub fn save(model: &Sequential, path: &Path) -> Result<(), NnError> {
    save_with_metadata(model, path, &[])
}

/// [`save`] with extra `(key, value)` pairs in the file's metadata (the epoch a best model
/// came from, say), readable with [`metadata`].
pub fn save_with_metadata(
    model: &Sequential,
    path: &Path,
    extra: &[(&str, String)],
) -> Result<(), NnError> {
    write(model, Vec::new(), extra, path)
}

/// A resumable checkpoint: the weights (so `load` and `eval` read it as a weights file), the
/// optimiser's state as tensors `optimizer.<buffer>.<parameter>` with its kind and step count
/// in the metadata, and `training`, the caller's own state (JSON), under the key "training".
pub fn save_training(
    model: &Sequential,
    optimizer: &dyn Optimizer,
    training: &str,
    path: &Path,
) -> Result<(), NnError> {
    let state = optimizer.state();
    let buffers = state
        .buffers
        .into_iter()
        .map(|(buffer, id, t)| {
            let name = format!("{OPTIMIZER_PREFIX}{buffer}.{}", model.store.get(id).name);
            (name, t)
        })
        .collect();
    let extra = [
        ("optimizer", state.kind),
        ("optimizer_steps", state.steps.to_string()),
        (TRAINING_KEY, training.to_string()),
    ];
    write(model, buffers, &extra, path)
}

fn write(
    model: &Sequential,
    extra_tensors: Vec<(String, Tensor)>,
    extra_meta: &[(&str, String)],
    path: &Path,
) -> Result<(), NnError> {
    let werr = |detail: String| NnError::CheckpointWrite {
        path: path.to_path_buf(),
        detail,
    };
    let tensors = model
        .store
        .iter()
        .map(|(_, p)| (p.name.clone(), p.value.clone()))
        .chain(extra_tensors);
    // On the GPU each tensor is read back first.
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .map(|(name, t)| {
            let host = t.try_to_vec()?;
            let b = host.iter().flat_map(|v| v.to_le_bytes()).collect();
            Ok((name, t.dims().to_vec(), b))
        })
        .collect::<Result<_, NnError>>()?;
    let views = bytes
        .iter()
        .map(|(name, shape, b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| werr(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("model".to_string(), model.name().to_string()),
    ]);
    meta.extend(extra_meta.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| werr(e.to_string()))?;
    write_atomic(path, &data).map_err(|e| werr(e.to_string()))
}

/// Loads weights saved for the same model. Nothing in `model` changes unless every parameter
/// is present with the right shape and only finite values.
pub fn load(model: &mut Sequential, path: &Path) -> Result<(), NnError> {
    let data = read(path)?;
    let (st, _) = open_native(&data, model, path)?;
    let staged = stage_parameters(model, &st, path)?;
    apply(model, staged);
    Ok(())
}

/// Loads a [`save_training`] checkpoint into `model` and `optimizer` and returns the training
/// state it carries. Nothing changes unless all of it loads.
pub fn load_training(
    model: &mut Sequential,
    optimizer: &mut dyn Optimizer,
    path: &Path,
) -> Result<String, NnError> {
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    let data = read(path)?;
    let (st, meta) = open_native(&data, model, path)?;
    let training = meta.get(TRAINING_KEY).cloned().ok_or_else(|| {
        rerr("a weights file, not a resumable checkpoint (it has no training state)".into())
    })?;
    let steps = meta
        .get("optimizer_steps")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| rerr("the optimiser's step count is missing".into()))?;
    let kind = meta.get("optimizer").cloned().unwrap_or_default();
    let staged = stage_parameters(model, &st, path)?;
    let ids: HashMap<&str, ParamId> = model
        .store
        .iter()
        .map(|(id, p)| (p.name.as_str(), id))
        .collect();
    let mut buffers = Vec::new();
    for (name, view) in st.tensors() {
        let Some(rest) = name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let (buffer, param) = rest
            .split_once('.')
            .ok_or_else(|| rerr(format!("optimiser tensor `{name}` has no parameter name")))?;
        let id = *ids.get(param).ok_or_else(|| {
            rerr(format!(
                "optimiser tensor `{name}` is for `{param}`, which model `{}` does not have",
                model.name()
            ))
        })?;
        let p = model.store.get(id);
        let t = to_tensor(&name, &view, p.value.dims(), path)?;
        buffers.push((buffer.to_string(), id, t.to_device(&p.value.device())?));
    }
    let state = OptimizerState {
        kind,
        steps,
        buffers,
    };
    optimizer
        .load_state(state)
        .map_err(|e| rerr(e.to_string()))?;
    apply(model, staged);
    Ok(training)
}

/// The metadata of a scratchnet weights file or checkpoint (`model`, `format`, and whatever
/// [`save_with_metadata`] added).
pub fn metadata(path: &Path) -> Result<HashMap<String, String>, NnError> {
    let data = read(path)?;
    let (_, meta) = SafeTensors::read_metadata(&data).map_err(|e| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail: format!(
            "damaged, or not a scratchnet weights file (safetensors header unreadable: {e})"
        ),
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// The whole file, if it is a regular file that fits in memory: a device such as /dev/zero
/// would be read forever, and a file larger than memory would abort the process.
fn read(path: &Path) -> Result<Vec<u8>, NnError> {
    use std::io::Read;
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| rerr(e.to_string()))?;
    if meta.is_dir() {
        return Err(rerr("is a directory, not a weights file".into()));
    }
    if !meta.is_file() {
        return Err(rerr("is not a regular file".into()));
    }
    let len = usize::try_from(meta.len()).map_err(|_| rerr("is too large".into()))?;
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| {
        rerr(format!(
            "is {len} bytes, more than this machine can hold in memory"
        ))
    })?;
    std::fs::File::open(path)
        .and_then(|f| f.take(len as u64).read_to_end(&mut data))
        .map_err(|e| rerr(e.to_string()))?;
    Ok(data)
}

/// The file's tensors and metadata, once its format tag and model name are checked.
fn open_native<'d>(
    data: &'d [u8],
    model: &Sequential,
    path: &Path,
) -> Result<(SafeTensors<'d>, HashMap<String, String>), NnError> {
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    let (_, meta) = SafeTensors::read_metadata(data).map_err(|e| {
        rerr(format!(
            "damaged, or not a scratchnet weights file (safetensors header unreadable: {e})"
        ))
    })?;
    let info = meta.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(rerr(
            "not a scratchnet weights file (no format tag in its header)".into(),
        ));
    }
    let saved_for = info.get("model").cloned().unwrap_or_default();
    if saved_for != model.name() {
        return Err(rerr(format!(
            "these weights are for model `{saved_for}`, not `{}`: pass --model {saved_for}",
            model.name()
        )));
    }
    let st =
        SafeTensors::deserialize(data).map_err(|e| rerr(format!("corrupt weights file: {e}")))?;
    Ok((st, info))
}

/// Every parameter of `model` from the file, checked, ready to be applied.
fn stage_parameters(
    model: &Sequential,
    st: &SafeTensors,
    path: &Path,
) -> Result<Vec<(ParamId, Tensor)>, NnError> {
    let mut loaded = Vec::with_capacity(model.store.len());
    for (id, p) in model.store.iter() {
        let view = st.tensor(&p.name).map_err(|_| NnError::CheckpointRead {
            path: path.to_path_buf(),
            detail: format!("parameter `{}` is missing", p.name),
        })?;
        let t = to_tensor(&p.name, &view, p.value.dims(), path)?;
        loaded.push((id, t.to_device(&p.value.device())?));
    }
    Ok(loaded)
}

/// A stored tensor as a host tensor of shape `dims`: an error unless it is F32 of that shape
/// with only finite values (a NaN would silently poison every later step).
fn to_tensor(
    name: &str,
    view: &TensorView,
    dims: &[usize],
    path: &Path,
) -> Result<Tensor, NnError> {
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    if view.dtype() != Dtype::F32 || view.shape() != dims {
        return Err(rerr(format!(
            "tensor `{name}` has shape {:?} ({:?}) in the file but the model needs {dims:?} (F32)",
            view.shape(),
            view.dtype(),
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(rerr(format!(
            "tensor `{name}` holds {bad}: these weights are damaged (a diverged run?); use an earlier checkpoint"
        )));
    }
    Ok(Tensor::from_vec(dims.to_vec(), values)?)
}

fn apply(model: &mut Sequential, staged: Vec<(ParamId, Tensor)>) {
    for (id, t) in staged {
        model.store.get_mut(id).value = t;
    }
}

/// Copies tensors from a safetensors file written by another framework into `model`, by an
/// explicit `(model parameter, file tensor)` name mapping; parameters not in the mapping keep
/// their values. Every mapped tensor must exist with the parameter's shape (f32), or nothing
/// changes. Used to start `vgg16_finetune` from Keras' ImageNet weights.
pub fn import_mapped(
    model: &mut Sequential,
    path: &Path,
    mapping: &[(String, String)],
) -> Result<usize, NnError> {
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    let data = read(path)?;
    let st = SafeTensors::deserialize(&data).map_err(|e| {
        rerr(format!(
            "not a safetensors file ({e}); see the README for the export script"
        ))
    })?;
    let mut loaded = Vec::with_capacity(mapping.len());
    for (ours, theirs) in mapping {
        let (id, p) = model
            .store
            .iter()
            .find(|(_, p)| &p.name == ours)
            .ok_or_else(|| {
                rerr(format!(
                    "model `{}` has no parameter `{ours}`",
                    model.name()
                ))
            })?;
        let view = st
            .tensor(theirs)
            .map_err(|_| rerr(format!("tensor `{theirs}` (for `{ours}`) is missing")))?;
        let t = to_tensor(theirs, &view, p.value.dims(), path)?;
        loaded.push((id, t.to_device(&p.value.device())?));
    }
    let n = loaded.len();
    apply(model, loaded);
    Ok(n)
}

/// Whether `path` is a scratchnet weights file (rather than an imported one).
pub fn is_native(path: &Path) -> bool {
    let Ok(data) = read(path) else {
        return false;
    };
    SafeTensors::read_metadata(&data)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .is_some_and(|m| m.get("format").map(String::as_str) == Some(FORMAT))
}
