"""The PyTorch half of the parity harness: replays scratchnet's training steps and compares.

usage: run.py DUMP_DIR [DUMP_DIR ...] [--json OUT.json] [--f64] [--f64-every N]
       run.py --table OUT.json      (reprint the tables of a saved run)

Each DUMP_DIR was written by `cargo run --release --example parity_dump -- MODEL STEPS DIR`
(see examples/parity_dump.rs): the fixed batches, scratchnet's initial state and its state after
every step. For each step K this script compares, with the Keras definitions imposed on the
PyTorch side (torch_models.py and README.md):

- resync:  PyTorch (float32) starts from scratchnet's own state after step K-1 (parameters,
           optimiser buffers, moving statistics), takes step K, and is compared with scratchnet's
           state after step K. This is the per-step error, without any accumulation.
- free:    PyTorch float32 and float64 runs start from scratchnet's initial state and take all
           steps on their own; after every step each is compared with scratchnet, and the two
           PyTorch runs with each other. float32-vs-float64 shows how fast float32 rounding alone
           drifts, the yardstick for scratchnet-vs-PyTorch.

Errors are relative, per tensor `|a - b|_2 / max(|a|_2, |b|_2)`, the largest over the tensors of
a kind (trainable parameters, optimiser buffers, batch-norm moving statistics); the loss error is
`|a - b| / |b|` on the step's loss (mean cross-entropy plus the L2 penalty).
"""
import json
import os
import re
import struct
import sys
import time

import numpy as np

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "2")
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import MODELS, Net, to_scratch, to_torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


def load_st(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", (path, k, v["dtype"])
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(v["shape"])
    return out, meta


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = np.linalg.norm((a - b).ravel())
    s = max(np.linalg.norm(a.ravel()), np.linalg.norm(b.ravel()))
    return 0.0 if d == 0 else d / s if s > 0 else float("inf")


class Recipe:
    def __init__(self, meta):
        self.model = meta["model"]
        self.wd = float(meta["weight_decay"])
        desc = meta["optimizer"]
        nums = dict((k, v) for k, v in re.findall(r"(\w+)=([^,)]+)", desc))
        if desc.startswith("SGD"):
            self.kind = "sgd"
            self.lr = float(nums["lr"])
            self.momentum = float(nums["momentum"])
            self.nesterov = nums["nesterov"] == "true"
        elif desc.startswith("Adam"):
            self.kind = "adam"
            self.lr = float(nums["lr"])
            self.betas = (float(nums["beta_1"]), float(nums["beta_2"]))
            self.eps = float(nums["epsilon"])
        else:
            raise SystemExit(f"unsupported optimiser {desc}")


class Torch:
    """A PyTorch copy of the model state, its optimiser, and one training step."""

    def __init__(self, recipe, state, dtype, t=0, perturb=False):
        self.r = recipe
        self.pre_bn = set()
        rng = np.random.default_rng(0)
        self.dtype = dtype
        self.forward = MODELS[recipe.model]
        self.params, self.stats = {}, {}
        for key, a in state.items():
            if not key.startswith("param."):
                continue
            name = key[len("param."):]
            if perturb and "moving_" not in name:
                # One unit in the last place, up or down at random, on every trainable value.
                up = rng.random(a.shape) < 0.5
                a = np.where(up, np.nextafter(a, np.float32(np.inf)), np.nextafter(a, np.float32(-np.inf)))
            t_ = to_torch(name, a).to(dtype)
            if "moving_" in name:
                self.stats[name] = t_
            else:
                self.params[name] = t_.requires_grad_(True)
        self.kernels = [n for n in self.params if n.endswith(".kernel")]
        others = [n for n in self.params if not n.endswith(".kernel")]
        r = recipe
        if r.kind == "sgd":
            # Keras' l2(wd) adds 2 * wd * w to the kernels' gradients only.
            groups = [
                {"params": [self.params[n] for n in self.kernels], "weight_decay": 2 * r.wd},
                {"params": [self.params[n] for n in others], "weight_decay": 0.0},
            ]
            self.opt = torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)
        else:
            assert r.wd == 0.0
            self.opt = torch.optim.Adam(list(self.params.values()), lr=r.lr, betas=r.betas, eps=r.eps)
        self.t = t
        # Optimiser buffers from scratchnet's state (resync).
        for name, p in self.params.items():
            if r.kind == "sgd":
                v = state.get(f"opt.{name}.velocity")
                if v is not None:
                    # Keras' velocity holds -lr * (PyTorch's momentum buffer).
                    buf = to_torch(name, v).to(dtype) / (-r.lr)
                    self.opt.state[p]["momentum_buffer"] = buf
            else:
                m, v = state.get(f"opt.{name}.m"), state.get(f"opt.{name}.v")
                if m is not None:
                    self.opt.state[p]["step"] = torch.tensor(float(t))
                    self.opt.state[p]["exp_avg"] = to_torch(name, m).to(dtype)
                    self.opt.state[p]["exp_avg_sq"] = to_torch(name, v).to(dtype)

    def step(self, x_nhwc, y, dropout_seed):
        r = self.r
        self.t += 1
        x = torch.from_numpy(np.array(x_nhwc)).permute(0, 3, 1, 2).to(self.dtype)
        y = torch.from_numpy(y.astype(np.int64))
        with torch.no_grad():
            penalty = r.wd * sum(float((self.params[n].double() ** 2).sum()) for n in self.kernels)
        net = Net({**self.params, **self.stats}, dropout_seed)
        logits = self.forward(net, x)
        loss = F.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if r.kind == "adam":
            # Keras: p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps); PyTorch divides by
            # sqrt(v) / sqrt(1-b2^t) + eps, so its eps must be eps / sqrt(1-b2^t) at step t.
            self.opt.param_groups[0]["eps"] = r.eps / (1 - r.betas[1] ** self.t) ** 0.5
        self.opt.step()
        net.update_moving_statistics(self.stats)
        self.pre_bn = net.pre_bn_biases
        return float(loss.detach()) + penalty

    def state(self):
        """name -> float64 numpy in scratchnet's layout, keyed like the dump."""
        out = {}
        for name, p in self.params.items():
            out["param." + name] = to_scratch(name, p)
            st = self.opt.state.get(p, {})
            if self.r.kind == "sgd" and "momentum_buffer" in st:
                out[f"opt.{name}.velocity"] = -self.r.lr * to_scratch(name, st["momentum_buffer"])
            if self.r.kind == "adam" and "exp_avg" in st:
                out[f"opt.{name}.m"] = to_scratch(name, st["exp_avg"])
                out[f"opt.{name}.v"] = to_scratch(name, st["exp_avg_sq"])
        for name, s in self.stats.items():
            out["param." + name] = to_scratch(name, s)
        return out


def kind_of(key, pre_bn):
    name = key.split(".", 1)[1]
    if key.startswith("opt."):
        name = name.rsplit(".", 1)[0]
    if name in pre_bn:
        return "prebn"
    if key.startswith("opt."):
        return "opt"
    return "stat" if "moving_" in key else "param"


def compare(a, b, pre_bn):
    """Largest relative error per kind, and the tensor where it is. The biases of convs that feed
    batch norm (`pre_bn`), whose exact gradient is 0, get the largest absolute difference
    instead (kind `prebn`): their values are rounding noise on both sides."""
    worst = {}
    sq = {}  # kind -> (sum of squared differences, sum of squared magnitudes)
    missing = sorted((set(a) ^ set(b)) - {"loss", "penalty"})
    if missing:
        raise SystemExit(f"tensors present on one side only: {missing[:8]}")
    for key in a:
        if key in ("loss", "penalty"):
            continue
        k = kind_of(key, pre_bn)
        if k == "prebn":
            e = float(np.abs(np.asarray(a[key], np.float64) - np.asarray(b[key], np.float64)).max())
        else:
            e = rel(a[key], b[key])
            x, y = np.asarray(a[key], np.float64), np.asarray(b[key], np.float64)
            d2, m2 = sq.get(k, (0.0, 0.0))
            sq[k] = (d2 + float(((x - y) ** 2).sum()), m2 + max(float((x * x).sum()), float((y * y).sum())))
        if e > worst.get(k, (-1.0, ""))[0]:
            worst[k] = (e, key)
    for k, (d2, m2) in sq.items():
        worst["all_" + k] = ((d2 / m2) ** 0.5 if m2 > 0 else 0.0, "")
    return worst


def run_model(d, f64, f64_every):
    batches, meta = load_st(os.path.join(d, "batches.safetensors"))
    r = Recipe(meta)
    steps = int(meta["steps"])
    scratch = [load_st(os.path.join(d, f"step_{k:03d}.safetensors")) for k in range(steps + 1)]
    free32 = Torch(r, scratch[0][0], torch.float32)
    # The yardstick: the same PyTorch float32 run from weights one ulp away (float64 with --f64).
    ref = Torch(r, scratch[0][0], torch.float64) if f64 else Torch(r, scratch[0][0], torch.float32, perturb=True)
    rows = []
    t0 = time.time()
    for k in range(1, steps + 1):
        x, y = batches[f"x.{k}"], batches[f"y.{k}"]
        s_state, s_meta = scratch[k]
        seed = int(s_meta["dropout_seed"])
        s_loss = float(s_state["loss"][0])
        row = {"step": k, "loss_scratch": s_loss}
        # resync: one PyTorch step from scratchnet's previous state
        prev = scratch[k - 1][0]
        res = Torch(r, prev, torch.float32, t=k - 1)
        l32 = res.step(x, y, seed)
        pre_bn = res.pre_bn
        row["resync_loss"] = abs(s_loss - l32) / abs(l32)
        row["resync"] = compare(s_state, res.state(), pre_bn)
        if f64_every and (k == 1 or k % f64_every == 0):
            # The same step in float64: how far float32 rounding alone takes each side.
            res64 = Torch(r, prev, torch.float64, t=k - 1)
            l64 = res64.step(x, y, seed)
            st, st64 = res.state(), res64.state()
            row["resync64_torch_loss"] = abs(l32 - l64) / abs(l64)
            row["resync64_scratch_loss"] = abs(s_loss - l64) / abs(l64)
            row["resync64_torch"] = compare(st, st64, pre_bn)
            row["resync64_scratch"] = compare(s_state, st64, pre_bn)
        # free runs
        f32l = free32.step(x, y, seed)
        refl = ref.step(x, y, seed)
        st32, stref = free32.state(), ref.state()
        row["free_loss"] = abs(s_loss - f32l) / abs(f32l)
        row["free_ref_loss"] = abs(f32l - refl) / abs(refl)
        row["free"] = compare(s_state, st32, pre_bn)
        row["free_ref"] = compare(st32, stref, pre_bn)
        rows.append(row)
        g = lambda key, kind: row[key].get(kind, (0.0,))[0]  # noqa: E731
        print(
            f"{r.model} step {k:3d}  loss {s_loss:.6f}  resync: loss {row['resync_loss']:.1e} "
            f"param {g('resync', 'param'):.1e} opt {g('resync', 'opt'):.1e} "
            f"stat {g('resync', 'stat'):.1e}  free: loss {row['free_loss']:.1e} [{row['free_ref_loss']:.1e}] "
            f"params {g('free', 'all_param'):.1e} [{g('free_ref', 'all_param'):.1e}]"
            f"  [{time.time() - t0:.0f}s]",
            flush=True,
        )
    return r, rows


def fmt(e):
    return f"{e:.1e}"


def summary(model, rows):
    n = len(rows)

    def mx(key, kind=None):
        return max((row[key] if kind is None else row[key].get(kind, (0.0, ""))[0]) for row in rows)

    at = [k for k in (1, 10, 25, 50, 100, 200) if k <= n]
    if n not in at:
        at.append(n)
    kinds = ("param", "opt", "stat", "all_param", "all_opt", "all_stat")
    r64 = [row for row in rows if "resync64_torch" in row]

    def mx64(key):
        if not r64:
            return None
        if key.endswith("loss"):
            return max(row[key] for row in r64)
        return {kind: max(row[key].get(kind, (0.0,))[0] for row in r64) for kind in kinds}

    return {
        "f64_steps": [row["step"] for row in r64],
        "resync64_scratch_loss": mx64("resync64_scratch_loss"),
        "resync64_torch_loss": mx64("resync64_torch_loss"),
        "resync64_scratch": mx64("resync64_scratch"),
        "resync64_torch": mx64("resync64_torch"),
        "model": model,
        "steps": n,
        "resync_loss": mx("resync_loss"),
        "resync": {kind: mx("resync", kind) for kind in kinds},
        "resync_prebn": mx("resync", "prebn"),
        "growth": {
            k: (rows[k - 1]["free_loss"], rows[k - 1]["free_ref_loss"],
                rows[k - 1]["free"]["all_param"][0], rows[k - 1]["free_ref"]["all_param"][0])
            for k in (1, 2, 3, 5, 10, 20, 30, 40, 50, 100, 200) if k <= n
        },
        "free_loss": {k: rows[k - 1]["free_loss"] for k in at},
        "free_loss_ref": {k: rows[k - 1]["free_ref_loss"] for k in at},
        "free": {kind: {k: rows[k - 1]["free"].get(kind, (0.0,))[0] for k in at} for kind in kinds},
        "free_ref": {kind: {k: rows[k - 1]["free_ref"].get(kind, (0.0,))[0] for k in at} for kind in kinds},
    }


def print_table(sums, f64):
    ref = "PyTorch float32 vs float64" if f64 else "PyTorch float32 vs PyTorch float32 from weights 1 ulp away"
    print()
    print("Per step (resync: PyTorch float32 takes step K from scratchnet's state after step K-1), largest")
    print("relative error over all steps:")
    print("| model | steps | loss | parameters: worst tensor / all | optimiser buffers: worst / all | "
          "BN moving stats: worst / all | pre-BN conv biases (abs) |")
    print("|---|---|---|---|---|---|---|")
    for s in sums:
        r = s["resync"]
        print(f"| {s['model']} | {s['steps']} | {fmt(s['resync_loss'])} | "
              + " | ".join(f"{fmt(r[k])} / {fmt(r['all_' + k])}" for k in ("param", "opt", "stat"))
              + f" | {fmt(s['resync_prebn'])} |")
    if any(s["f64_steps"] for s in sums):
        print()
        print("The same single steps against PyTorch float64 (at steps " + ", ".join(str(k) for k in sums[0]["f64_steps"]) + "),")
        print("largest relative error: scratchnet float32 vs float64 [PyTorch float32 vs float64]:")
        print("| model | loss | parameters | optimiser buffers | BN moving stats |")
        print("|---|---|---|---|---|")
        for s in sums:
            if not s["f64_steps"]:
                continue
            a, b = s["resync64_scratch"], s["resync64_torch"]
            print(f"| {s['model']} | {fmt(s['resync64_scratch_loss'])} [{fmt(s['resync64_torch_loss'])}] | "
                  + " | ".join(f"{fmt(a[kind])} [{fmt(b[kind])}]" for kind in ("param", "opt", "stat")) + " |")
    print()
    print("Free-running (each framework alone from the same initial state), scratchnet vs PyTorch float32")
    print(f"at steps {' / '.join(str(k) for k in sums[0]['free_loss'])}, all tensors of a kind together;")
    print(f"in brackets the yardstick, {ref}:")
    print("| model | loss | parameters | optimiser buffers | BN moving stats |")
    print("|---|---|---|---|---|")
    for s in sums:
        ks = list(s["free_loss"])

        def cell(a, b):
            return " / ".join(f"{fmt(a[k])} [{fmt(b[k])}]" for k in ks)

        print(f"| {s['model']} | {cell(s['free_loss'], s['free_loss_ref'])} | "
              + " | ".join(cell(s["free"][kind], s["free_ref"][kind]) for kind in ("all_param", "all_opt", "all_stat"))
              + " |")
    print()
    print("Free-running, step by step: loss error and all-parameter error, scratchnet vs PyTorch float32")
    print(f"[yardstick: {ref}]:")
    print("| step | " + " | ".join(f"{s['model']} loss | {s['model']} parameters" for s in sums) + " |")
    print("|---" * (1 + 2 * len(sums)) + "|")
    for k in sums[0]["growth"]:
        cells = []
        for s in sums:
            g = s["growth"].get(k) or s["growth"].get(str(k))
            cells.append(f"{fmt(g[0])} [{fmt(g[1])}] | {fmt(g[2])} [{fmt(g[3])}]" if g else " | ")
        print(f"| {k} | " + " | ".join(cells) + " |")


def main():
    args = sys.argv[1:]
    out_json, f64, f64_every = None, False, 10
    dirs = []
    i = 0
    while i < len(args):
        if args[i] == "--table":
            dirs = args[i:i + 2]
            break
        if args[i] == "--json":
            out_json = args[i + 1]
            i += 2
        elif args[i] == "--f64":
            f64 = True
            i += 1
        elif args[i] == "--f64-every":
            f64_every = int(args[i + 1])
            i += 2
        else:
            dirs.append(args[i])
            i += 1
    if dirs and dirs[0] == "--table":
        # Reprint the tables of a saved run: run.py --table parity.json [--f64]
        with open(dirs[1]) as f:
            saved = json.load(f)
        sums = [summary(m, rows) for m, rows in saved["steps"].items()]
        print_table(sums, f64)
        return
    if not dirs:
        raise SystemExit(__doc__)
    sums, full = [], {}
    for d in dirs:
        r, rows = run_model(d, f64, f64_every)
        sums.append(summary(r.model, rows))
        full[r.model] = rows
        if out_json:
            with open(out_json, "w") as f:
                json.dump({"summary": sums, "steps": full}, f, indent=1)
    print_table(sums, f64)
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"summary": sums, "steps": full}, f, indent=1)


if __name__ == "__main__":
    main()
