"""PyTorch-style initial weights for a scratchnet model (a diagnostic for the seeds experiment).

usage: torch_init.py TEMPLATE.safetensors SEED OUT_DIR

TEMPLATE is a `step_000.safetensors` of `parity_dump` (for the names and shapes). Writes
OUT_DIR/step_000.safetensors (for train_torch.py) and OUT_DIR/weights.safetensors (a scratchnet
weights file for `scratchnet train --init-weights`) with the initialisation the issue's PyTorch
runs used: conv kernels He-normal, not truncated (`kaiming_normal_`, std sqrt(2 / fan_in)),
conv biases 0, the dense layer PyTorch's default (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for the
weights and the bias), batch norm gamma 1, beta 0, moving mean 0, moving variance 1.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import load_st  # noqa: E402


def write_st(path, tensors, meta):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    template, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    state, meta = load_st(template)
    rng = np.random.default_rng(seed)
    params = {}
    for key, a in state.items():
        if not key.startswith("param."):
            continue
        name = key[len("param."):]
        if name.endswith(".kernel") and a.ndim == 4:  # HWIO
            fan_in = a.shape[0] * a.shape[1] * a.shape[2]
            v = rng.normal(0.0, np.sqrt(2.0 / fan_in), a.shape)
        elif name.endswith(".kernel"):  # dense [in, out]
            fan_in = a.shape[0]
            v = rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), a.shape)
        elif name.endswith(".bias") and name.startswith("dense"):
            fan_in = state["param." + name[: -len(".bias")] + ".kernel"].shape[0]
            v = rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), a.shape)
        else:  # conv biases 0, BN gamma 1 / beta 0 / moving 0 and 1: as scratchnet's
            v = a
        params[name] = np.asarray(v, dtype=np.float32)
    os.makedirs(out, exist_ok=True)
    write_st(os.path.join(out, "step_000.safetensors"), {"param." + k: v for k, v in params.items()}, meta)
    write_st(os.path.join(out, "weights.safetensors"), params,
             {"format": "scratchnet-weights-1", "model": meta["model"]})


if __name__ == "__main__":
    main()
