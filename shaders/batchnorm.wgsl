// Batch normalisation on the GPU, over the last axis (channels): the WGSL twin of
// crates/cpu/src/batchnorm.rs (Keras BatchNormalization(axis=-1)).
//
// Math, with R rows and per channel j:
// - statistics (training): mean_j = (1/R) sum_r x[r][j], the BIASED variance
//   var_j = (1/R) sum_r (x[r][j] - mean_j)^2;
// - normalise (training and inference): y = (x - mean_j) * gamma_j / sqrt(var_j + eps) + beta_j,
//   with the batch statistics or the moving ones;
// - backward of the training forward: dbeta_j = sum_r dy, dgamma_j = sum_r dy * xhat with
//   xhat = (x - mean_j) * inv_std_j, and
//   dx = gamma_j * inv_std_j * (dy - dbeta_j / R - (x - mean_j) * inv_std_j * dgamma_j / R);
// - moving averages: moving = momentum * moving + (1 - momentum) * batch, skipped entirely when
//   guard[0] is not finite (a step whose loss overflowed must not poison the statistics).
//
// Layout: x, y, dy, dx are R x c row-major (an NHWC activation with R = n*h*w: channels last,
// so the channel is the column); every per-channel vector has length c.
//
// Why it is fast and accurate:
// - The reductions run one workgroup per channel: its WORKGROUP (256) threads stride down the
//   rows, each keeping a private partial sum of R/256 terms, and then a tree reduction in
//   workgroup memory (8 halving steps with barriers) adds the 256 partials. The order of
//   additions is fixed by the thread layout, so results are deterministic without atomics.
//   The error still grows with R, but only through the serial part: each partial's error
//   grows like R/256 ulps (not R, as one serial sum would), and the tree adds log2(256) more.
// - The CPU accumulates in f64; in f32 the sum of x would lose digits when |mean| >> std. So
//   the mean is accumulated around a shift (the channel's first value, which is close to the
//   mean in scale), and the variance in a second pass around the mean itself (never as
//   E[x^2] - mean^2, which cancels catastrophically).
// - The element-wise passes are one thread per element, channel fastest, so neighbouring
//   threads touch neighbouring words; the per-channel factors are a few reads from cache.

struct Bn {
    rows: u32,
    c: u32,
    eps: f32,
    // Elements of the element-wise passes (rows * c, or the vector length for the moving
    // averages).
    total: u32,
    momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Bn;

var<workgroup> red_a: array<f32, WORKGROUP>;
var<workgroup> red_b: array<f32, WORKGROUP>;

// ---------------------------------------------------------------------------------------------
// Statistics: one workgroup per channel (the grid may spill into y past 65,535 channels).

@group(0) @binding(1) var<storage, read> st_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_var: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bn_stats(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let j = wg.x + wg.y * nwg.x;
    // The same for the whole workgroup, so the barriers below stay in uniform control flow.
    if (j >= p.c) {
        return;
    }
    let shift = st_x[j];
    var s = 0.0;
    for (var r = lid; r < p.rows; r += WORKGROUP) {
        s += st_x[r * p.c + j] - shift;
    }
    red_a[lid] = s;
    workgroupBarrier();
    for (var w = WORKGROUP / 2u; w > 0u; w >>= 1u) {
        if (lid < w) {
            red_a[lid] += red_a[lid + w];
        }
        workgroupBarrier();
    }
    let mean = shift + red_a[0] / f32(p.rows);
    var q = 0.0;
    for (var r = lid; r < p.rows; r += WORKGROUP) {
        let d = st_x[r * p.c + j] - mean;
        q += d * d;
    }
    // A second array: thread 0 must not overwrite red_a[0] while others still read it.
    red_b[lid] = q;
    workgroupBarrier();
    for (var w = WORKGROUP / 2u; w > 0u; w >>= 1u) {
        if (lid < w) {
            red_b[lid] += red_b[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        st_mean[j] = mean;
        st_var[j] = red_b[0] / f32(p.rows);
    }
}

// ---------------------------------------------------------------------------------------------
// Normalise with given statistics: one thread per element.

@group(0) @binding(1) var<storage, read> nm_x: array<f32>;
@group(0) @binding(2) var<storage, read> nm_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> nm_beta: array<f32>;
@group(0) @binding(4) var<storage, read> nm_mean: array<f32>;
@group(0) @binding(5) var<storage, read> nm_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> nm_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bn_normalize(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let j = i % p.c;
    let scale = nm_gamma[j] / sqrt(nm_var[j] + p.eps);
    nm_y[i] = (nm_x[i] - nm_mean[j]) * scale + nm_beta[j];
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 1: dbeta and dgamma, one workgroup per channel.

@group(0) @binding(1) var<storage, read> br_x: array<f32>;
@group(0) @binding(2) var<storage, read> br_dy: array<f32>;
@group(0) @binding(3) var<storage, read> br_mean: array<f32>;
@group(0) @binding(4) var<storage, read> br_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> br_dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> br_dbeta: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bn_backward_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let j = wg.x + wg.y * nwg.x;
    if (j >= p.c) {
        return;
    }
    let m = br_mean[j];
    var db = 0.0;
    var dg = 0.0;
    for (var r = lid; r < p.rows; r += WORKGROUP) {
        let g = br_dy[r * p.c + j];
        db += g;
        dg += g * (br_x[r * p.c + j] - m);
    }
    red_a[lid] = db;
    red_b[lid] = dg;
    workgroupBarrier();
    for (var w = WORKGROUP / 2u; w > 0u; w >>= 1u) {
        if (lid < w) {
            red_a[lid] += red_a[lid + w];
            red_b[lid] += red_b[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        br_dgamma[j] = red_b[0] / sqrt(br_var[j] + p.eps);
        br_dbeta[j] = red_a[0];
    }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 2: dx, one thread per element.

@group(0) @binding(1) var<storage, read> bx_x: array<f32>;
@group(0) @binding(2) var<storage, read> bx_dy: array<f32>;
@group(0) @binding(3) var<storage, read> bx_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> bx_mean: array<f32>;
@group(0) @binding(5) var<storage, read> bx_var: array<f32>;
@group(0) @binding(6) var<storage, read> bx_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> bx_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> bx_dx: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bn_backward_dx(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let j = i % p.c;
    let inv_std = 1.0 / sqrt(bx_var[j] + p.eps);
    let inv_rows = 1.0 / f32(p.rows);
    let k = inv_std * bx_dgamma[j] * inv_rows;
    bx_dx[i] = bx_gamma[j] * inv_std * (bx_dy[i] - bx_dbeta[j] * inv_rows - (bx_x[i] - bx_mean[j]) * k);
}

// ---------------------------------------------------------------------------------------------
// Moving averages, guarded.

@group(0) @binding(1) var<storage, read_write> ma_moving: array<f32>;
@group(0) @binding(2) var<storage, read> ma_batch: array<f32>;
@group(0) @binding(3) var<storage, read> ma_guard: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bn_moving_average(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    // Exponent bits all ones: inf or NaN. Tested on the bits because a compiler may assume
    // floats are never NaN and fold `g != g` to false.
    if ((bitcast<u32>(ma_guard[0]) & 0x7f800000u) == 0x7f800000u) {
        return;
    }
    ma_moving[i] = p.momentum * ma_moving[i] + (1.0 - p.momentum) * ma_batch[i];
}
