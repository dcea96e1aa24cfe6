"""PyTorch training with a scratchnet recipe, from scratchnet's own initial weights (the seeds
experiment of parity/README.md).

usage: train_torch.py INIT.safetensors [--epochs 10] [--seed S] [--data DIR] [--batch 128]
                      [--lr 0.1] [--momentum 0.9] [--wd 1e-4] [--no-augment]

INIT is a `step_000.safetensors` written by `parity_dump MODEL 0 DIR --seed S` (the model's
initial weights; the model name is in its metadata). Training: the resnet/nin recipe's SGD with
momentum and Keras L2 (2 * wd * w on kernels), batch 128, per-channel normalisation with the NIN
constants, then (unless --no-augment) pad 4 with zeros + random 32x32 crop and a random
horizontal flip, as scratchnet does (padding after normalisation); a new shuffle every epoch.
The model is the functional PyTorch program of torch_models.py (TensorFlow 'same' padding, Keras
batch norm). Validation on DIR/test_batch.bin with the moving statistics.
"""
import argparse
import os
import sys
import time

import numpy as np

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "2")
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Recipe, Torch, load_st  # noqa: E402
from torch_models import Net  # noqa: E402

MEAN = np.array([125.307, 122.95, 113.865], dtype=np.float32)
STD = np.array([62.9932, 62.0887, 66.7048], dtype=np.float32)


def read_bin(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    y = raw[:, 0].astype(np.int64)
    x = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32)  # NHWC
    return (x - MEAN) / STD, y


def augment(x, rng):
    n = x.shape[0]
    padded = np.zeros((n, 40, 40, 3), dtype=np.float32)
    padded[:, 4:36, 4:36] = x
    out = np.empty_like(x)
    tops, lefts = rng.integers(0, 9, n), rng.integers(0, 9, n)
    flips = rng.random(n) < 0.5
    for i in range(n):
        img = padded[i, tops[i]:tops[i] + 32, lefts[i]:lefts[i] + 32]
        out[i] = img[:, ::-1] if flips[i] else img
    return out


def evaluate(t, x, y):
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + 500])).permute(0, 3, 1, 2)
            yb = torch.from_numpy(y[i:i + 500])
            net = Net({**t.params, **t.stats}, training=False)
            logits = t.forward(net, xb)
            loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    return loss / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("init")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="../shared/cifar10-subset")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--no-augment", action="store_true")
    a = ap.parse_args()
    state, meta = load_st(a.init)
    meta = dict(meta)
    meta["optimizer"] = f"SGD(lr={a.lr}, momentum={a.momentum}, nesterov=false)"
    meta["weight_decay"] = str(a.wd)
    r = Recipe(meta)
    t = Torch(r, state, torch.float32)
    parts = [read_bin(os.path.join(a.data, f"data_batch_{i}.bin")) for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_bin(os.path.join(a.data, "test_batch.bin"))
    rng = np.random.default_rng(a.seed)
    step = 0
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        order = rng.permutation(len(x_train))
        loss_sum, seen = 0.0, 0
        for i in range(0, len(order), a.batch):
            idx = order[i:i + a.batch]
            xb = x_train[idx] if a.no_augment else augment(x_train[idx], rng)
            step += 1
            loss_sum += t.step(np.ascontiguousarray(xb), y_train[idx], step) * len(idx)
            seen += len(idx)
        val_loss, val_acc = evaluate(t, x_test, y_test)
        print(f"epoch {epoch}/{a.epochs} - {time.time() - t0:.0f}s - loss {loss_sum / seen:.4f} - "
              f"val_loss {val_loss:.4f} - val_acc {val_acc:.4f}", flush=True)
    print(f"final val_acc {val_acc:.4f}")


if __name__ == "__main__":
    main()
