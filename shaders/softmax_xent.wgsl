// Softmax fused with cross-entropy, its gradient, and accuracy counting: the WGSL twins of
// crates/cpu/src/softmax_xent.rs and argmax.rs (count_correct).
//
// Math, for row r with logits z (length `classes`) and label t:
//   m = max_j z_j,  s = sum_j exp(z_j - m)
//   probs[r][j] = exp(z_j - m) * (1 / s)
//   loss_r      = log(s) - (z_t - m)                  (log-sum-exp: finite even when p_t = 0)
//   loss        = (sum_r loss_r) / rows               -> out[at] (or added to it)
//   backward    dx[r][j] = (probs[r][j] - [j == t]) * (scale / rows)
//   correct_r   = 1 if the FIRST largest logit of row r is at t (ties go to the lower index,
//                 comparisons are `>`, so a NaN never replaces the current best), else 0
//   count       = sum_r correct_r                     -> out[at] (or added to it), as f32
// Labels arrive as f32 values in a GPU buffer (one per row). A label that is not an integer in
// [0, classes) makes that row's loss NaN (so a loss guard skips the optimiser step), counts as
// incorrect, and gives the row's gradient without the one-hot term.
//
// Layout: logits, probs and dx are row-major rows x classes, contiguous; labels has rows values.
//
// Why this shape: a classifier has few classes (10 here, 1000 at most), so one thread per row
// walking its row three times (max, exponentials, normalise) is simple and keeps every exp in a
// register; rows are independent, so the batch fills the threads. The backward is elementwise
// (one thread per element, coalesced). The mean loss and the count must be deterministic, so the
// per-row values go to a scratch buffer and one workgroup adds them (reduce_rows: each thread
// sums a strided slice, then a fixed tree in workgroup memory): the same order every run, no
// float atomics. Counts are exact in f32 up to 2^24.

struct Params {
    rows: u32,
    classes: u32,
    // reduce_rows: the element of `out` that receives the result, and ACCUMULATE to add to it.
    at: u32,
    flags: u32,
    // backward: scale / rows, the multiplier of every element.
    factor: f32,
    // reduce_rows: the sum is divided by it (rows for the mean loss, 1 for a count).
    divisor: f32,
}

const ACCUMULATE: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;

// The row's label as an index, or `classes` (out of range) when it is not a valid class.
fn label_index(label: f32) -> u32 {
    if (label >= 0.0 && label < f32(params.classes) && label == floor(label)) {
        return u32(label);
    }
    return params.classes;
}

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> fw_probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> fw_row_loss: array<f32>;

// One thread per row: probs and the row's loss.
@compute @workgroup_size(WORKGROUP)
fn softmax_xent_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= params.rows) {
        return;
    }
    let c = params.classes;
    let base = r * c;
    var m = logits[base];
    for (var j = 1u; j < c; j++) {
        let v = logits[base + j];
        if (v > m) {
            m = v;
        }
    }
    var s = 0.0;
    for (var j = 0u; j < c; j++) {
        let e = exp(logits[base + j] - m);
        fw_probs[base + j] = e;
        s += e;
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < c; j++) {
        fw_probs[base + j] *= inv;
    }
    let t = label_index(labels[r]);
    // NaN for an invalid label (built at run time: a NaN constant expression is invalid WGSL).
    var loss = bitcast<f32>(0x7fc00000u | (r & 0u));
    if (t < c) {
        loss = log(s) - (logits[base + t] - m);
    }
    fw_row_loss[r] = loss;
}

@group(0) @binding(3) var<storage, read_write> cc_hits: array<f32>;

// One thread per row: 1 where the first maximum of the row is at its label, else 0.
@compute @workgroup_size(WORKGROUP)
fn correct_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= params.rows) {
        return;
    }
    let c = params.classes;
    let base = r * c;
    var best = 0u;
    var best_value = logits[base];
    for (var j = 1u; j < c; j++) {
        let v = logits[base + j];
        if (v > best_value) {
            best = j;
            best_value = v;
        }
    }
    cc_hits[r] = select(0.0, 1.0, best == label_index(labels[r]));
}

@group(0) @binding(1) var<storage, read> bw_probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_dx: array<f32>;

// One thread per element: dx = (p - onehot) * (scale / rows), as the CPU's fast backward.
@compute @workgroup_size(WORKGROUP)
fn softmax_xent_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= params.rows * params.classes) {
        return;
    }
    let r = i / params.classes;
    let j = i % params.classes;
    let p = bw_probs[i];
    let k = params.factor;
    bw_dx[i] = select(p * k, (p - 1.0) * k, j == label_index(labels[r]));
}

@group(0) @binding(1) var<storage, read> rd_values: array<f32>;
@group(0) @binding(2) var<storage, read_write> rd_out: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP>;

// One workgroup: out[at] (=|+=) (sum_r values[r]) / divisor, in a fixed order.
@compute @workgroup_size(WORKGROUP)
fn reduce_rows(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var r = lid; r < params.rows; r += WORKGROUP) {
        acc += rd_values[r];
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s /= 2u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var v = partial[0] / params.divisor;
        if ((params.flags & ACCUMULATE) != 0u) {
            v += rd_out[params.at];
        }
        rd_out[params.at] = v;
    }
}
