"""scratchnet's resnet20, keras6 and nin_bn as functional PyTorch (NCHW) programs.

Each model is a function `forward(net, x)` that calls `net.conv`, `net.bn`, ... in exactly the
order scratchnet's `SequentialBuilder` creates the layers (crates/models/src/{tuning,keras6,nin}.rs),
so the Keras-style layer names (`conv2d_3`, `batch_normalization_2`, ...) come out the same and
index the parameters that `parity_dump` exported. The parameters live in PyTorch's own layouts
(conv OIHW, dense `[out, in]`); `to_torch` / `to_scratch` convert from and to scratchnet's HWIO
and `[in, out]`.

Keras definitions imposed on the PyTorch side (see parity/README.md):
- 'same' padding is TensorFlow's: `out = ceil(in / stride)`, total padding
  `max((out - 1) * stride + k - in, 0)`, the smaller half before (top/left). For a stride-2 3x3
  conv on 32x32 that is 0 before and 1 after, where `nn.Conv2d(padding=1)` pads 1 on both sides.
  Max pooling pads with -inf (TensorFlow ignores the padding).
- batch norm: PyTorch's own `F.batch_norm` kernel (forward and backward) with the batch
  statistics and eps 1e-3; the moving statistics are updated here with Keras' rule
  `moving = moving * 0.99 + batch * (1 - 0.99)` and the BIASED batch variance (PyTorch's
  `running_var` would use the unbiased one).
- Flatten in NHWC order (keras6): the activation is permuted to NHWC before flattening.
- dropout: the exact mask scratchnet draws (its counter-based PCG hash over the NHWC flat index,
  seeded per layer as `crates/nn/src/layers/mod.rs` `Ctx::next_seed` does), scaled by 1 / (1 - p).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def to_torch(name, a):
    """A scratchnet parameter (numpy) in PyTorch's layout."""
    t = torch.from_numpy(np.array(a))
    if name.endswith(".kernel"):
        if t.dim() == 4:  # HWIO -> OIHW
            return t.permute(3, 2, 0, 1).contiguous()
        if t.dim() == 2:  # [in, out] -> [out, in]
            return t.t().contiguous()
    return t


def to_scratch(name, t):
    """A PyTorch-layout tensor back in scratchnet's layout (numpy float64)."""
    t = t.detach().to(torch.float64)
    if name.endswith(".kernel"):
        if t.dim() == 4:  # OIHW -> HWIO
            t = t.permute(2, 3, 1, 0)
        elif t.dim() == 2:
            t = t.t()
    return t.contiguous().numpy()


def pcg_hash(x):
    x = np.asarray(x, dtype=np.uint32)
    with np.errstate(over="ignore"):
        state = x * np.uint32(747796405) + np.uint32(2891336453)
        word = ((state >> ((state >> np.uint32(28)) + np.uint32(4))) ^ state) * np.uint32(277803737)
        return (word >> np.uint32(22)) ^ word


def dropout_mask(seed, shape_nhwc, p):
    """scratchnet's inverted-dropout multiplier (`1/(1-p)` kept, 0 dropped), NHWC, float32."""
    n = int(np.prod(shape_nhwc))
    h = pcg_hash(np.arange(n, dtype=np.uint32) ^ pcg_hash(np.array(seed, dtype=np.uint32)))
    u = (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(p))
    return np.where(u >= np.float32(p), scale, np.float32(0.0)).astype(np.float32).reshape(shape_nhwc)


def same_pad(size, k, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class Net:
    """One training-mode forward pass over a parameter dict (`name -> torch tensor`)."""

    def __init__(self, params, dropout_seed=0, bn_momentum=0.99, bn_eps=1e-3, training=True):
        self.p = params
        self.training = training
        self.counters = {}
        self.seed = dropout_seed
        self.draws = 0
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        # (moving_mean name, moving_var name, batch mean, biased batch var) per BN layer.
        self.bn_batches = []
        # Biases of convs whose output goes straight into batch norm: their gradient is
        # mathematically 0, so their values are rounding noise in any framework.
        self.pre_bn_biases = set()
        self._last = None

    def name(self, base):
        n = self.counters.get(base, 0)
        self.counters[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def conv(self, x, k, stride=1, relu=False):
        name = self.name("conv2d")
        w, b = self.p[name + ".kernel"], self.p[name + ".bias"]
        (t, bo), (l, r) = same_pad(x.shape[2], k, stride), same_pad(x.shape[3], k, stride)
        if t == bo and l == r:  # symmetric: let the convolution pad
            y = F.conv2d(x, w, b, stride, padding=(t, l))
        else:
            y = F.conv2d(F.pad(x, (l, r, t, bo)), w, b, stride)
        y = F.relu(y) if relu else y
        self._last = (y, name + ".bias")
        return y

    def bn(self, x):
        name = self.name("batch_normalization")
        g, b = self.p[name + ".gamma"], self.p[name + ".beta"]
        if self._last is not None and self._last[0] is x:
            self.pre_bn_biases.add(self._last[1])
        if not self.training:
            mm, mv = self.p[name + ".moving_mean"], self.p[name + ".moving_variance"]
            return F.batch_norm(x, mm, mv, g, b, training=False, eps=self.bn_eps)
        y = F.batch_norm(x, None, None, g, b, training=True, eps=self.bn_eps)
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        self.bn_batches.append((name + ".moving_mean", name + ".moving_variance", mean, var))
        return y

    def act(self, x):
        self.name("activation")
        return F.relu(x)

    def maxpool(self, x, k, stride, same=False):
        self.name("max_pooling2d")
        if same:
            (t, bo), (l, r) = same_pad(x.shape[2], k, stride), same_pad(x.shape[3], k, stride)
            x = F.pad(x, (l, r, t, bo), value=-math.inf)
        return F.max_pool2d(x, k, stride)

    def dropout(self, x, rate):
        self.name("dropout")
        if not self.training:
            return x
        self.draws += 1
        layer_seed = pcg_hash(np.array(self.seed, dtype=np.uint32) ^ pcg_hash(np.array(self.draws, dtype=np.uint32)))
        n, c, h, w = x.shape
        mask = dropout_mask(int(layer_seed), (n, h, w, c), rate)
        mask = torch.from_numpy(mask).permute(0, 3, 1, 2).to(x.dtype)
        return x * mask

    def flatten(self, x):
        self.name("flatten")
        return x.permute(0, 2, 3, 1).flatten(1)  # Keras' NHWC order

    def dense(self, x, relu=False):
        name = self.name("dense")
        y = F.linear(x, self.p[name + ".kernel"], self.p[name + ".bias"])
        return F.relu(y) if relu else y

    def gap(self, x):
        self.name("global_average_pooling2d")
        return x.mean(dim=(2, 3))

    def update_moving_statistics(self, state):
        """Keras: `moving = moving * momentum + batch * (1 - momentum)`, biased variance."""
        m = self.bn_momentum
        with torch.no_grad():
            for mean_name, var_name, mean, var in self.bn_batches:
                state[mean_name] = state[mean_name] * m + mean * (1 - m)
                state[var_name] = state[var_name] * m + var * (1 - m)


def resnet(depth):
    n = (depth - 2) // 6

    def forward(net, x):
        x = net.act(net.bn(net.conv(x, 3)))
        cin = 16
        for stage, f in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                net.name("residual_block")
                h = net.act(net.bn(net.conv(x, 3, stride)))
                h = net.bn(net.conv(h, 3))
                s = x
                if stride != 1 or cin != f:  # option A: subsample, zero-pad the channels
                    before = (f - cin) // 2
                    s = F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, before, f - cin - before))
                x = F.relu(h + s)
                cin = f
        return net.dense(net.gap(x))

    return forward


def keras6(net, x):
    for f, rate in ((32, 0.2), (64, 0.3), (128, 0.4)):
        x = net.conv(x, 3, relu=True)
        x = net.conv(x, 3, relu=True)
        x = net.dropout(net.maxpool(x, 2, 2), rate)
    return net.dense(net.flatten(x))


def nin_bn(net, x):
    def cbr(x, k):
        return net.act(net.bn(net.conv(x, k)))

    x = cbr(x, 5)
    x = cbr(x, 1)
    x = cbr(x, 1)
    x = net.dropout(net.maxpool(x, 3, 2, same=True), 0.5)
    x = cbr(x, 5)
    x = cbr(x, 1)
    x = cbr(x, 1)
    x = net.dropout(net.maxpool(x, 3, 2, same=True), 0.5)
    x = cbr(x, 3)
    x = cbr(x, 1)
    x = cbr(x, 1)
    return net.gap(x)


MODELS = {
    "resnet20": resnet(20),
    "resnet56": resnet(56),
    "keras6": keras6,
    "nin_bn": nin_bn,
}
