//! Weights files: safetensors, one tensor per parameter under its name (`conv2d.kernel`),
//! with the model name in the metadata so weights are never loaded into the wrong model.
//!
//! Saving writes a temporary file beside the target and renames it over the target, so a
//! crash or a full disk never leaves a half-written file where a good one was.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tensor::Tensor;

use crate::{NnError, Sequential};

const FORMAT: &str = "scratchnet-weights-1";

pub fn save(model: &Sequential, path: &Path) -> Result<(), NnError> {
    let werr = |detail: String| NnError::CheckpointWrite {
        path: path.to_path_buf(),
        detail,
    };
    // On the GPU each parameter is read back first.
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .store
        .iter()
        .map(|(_, p)| {
            let host = p.value.try_to_vec()?;
            let b = host.iter().flat_map(|v| v.to_le_bytes()).collect();
            Ok((p.name.clone(), p.value.dims().to_vec(), b))
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
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("model".to_string(), model.name().to_string()),
    ]);
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| werr(e.to_string()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, &data).map_err(|e| werr(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(e.to_string())
    })
}

/// Loads weights saved for the same model. Nothing in `model` changes unless every parameter
/// is present with the right shape.
pub fn load(model: &mut Sequential, path: &Path) -> Result<(), NnError> {
    let rerr = |detail: String| NnError::CheckpointRead {
        path: path.to_path_buf(),
        detail,
    };
    let data = std::fs::read(path).map_err(|e| rerr(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&data).map_err(|e| {
        rerr(format!(
            "not a scratchnet weights file (safetensors header unreadable: {e})"
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
        SafeTensors::deserialize(&data).map_err(|e| rerr(format!("corrupt weights file: {e}")))?;
    let mut loaded = Vec::with_capacity(model.store.len());
    for (id, p) in model.store.iter() {
        let view = st
            .tensor(&p.name)
            .map_err(|_| rerr(format!("parameter `{}` is missing", p.name)))?;
        if view.dtype() != Dtype::F32 || view.shape() != p.value.dims() {
            return Err(rerr(format!(
                "parameter `{}` has shape {:?} ({:?}) in the file but the model needs {:?} (F32)",
                p.name,
                view.shape(),
                view.dtype(),
                p.value.dims()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let t = Tensor::from_vec(p.value.shape().clone(), values)?;
        loaded.push((id, t.to_device(&p.value.device())?));
    }
    for (id, t) in loaded {
        model.store.get_mut(id).value = t;
    }
    Ok(())
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
    let data = std::fs::read(path).map_err(|e| rerr(e.to_string()))?;
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
        if view.dtype() != Dtype::F32 || view.shape() != p.value.dims() {
            return Err(rerr(format!(
                "tensor `{theirs}` has shape {:?} ({:?}) but `{ours}` needs {:?} (F32)",
                view.shape(),
                view.dtype(),
                p.value.dims()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let t = Tensor::from_vec(p.value.shape().clone(), values)?;
        loaded.push((id, t.to_device(&p.value.device())?));
    }
    let n = loaded.len();
    for (id, t) in loaded {
        model.store.get_mut(id).value = t;
    }
    Ok(n)
}

/// Whether `path` is a scratchnet weights file (rather than an imported one).
pub fn is_native(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    SafeTensors::read_metadata(&data)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .is_some_and(|m| m.get("format").map(String::as_str) == Some(FORMAT))
}
