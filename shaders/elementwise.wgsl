// Elementwise kernels and small reductions, the WGSL twins of crates/cpu/src/bias.rs and
// relu.rs, plus the vector helpers the training step needs (add, axpy, scale, sum of squares).
//
// Math (i runs over the n elements, a row-major rows x c matrix where a column matters):
//   bias_add          y[i] += bias[i % c]                       (in place on y)
//   bias_grad         db[j] = sum_r dy[r * c + j]               (overwrites db)
//   relu_forward      y[i] = x[i] if x[i] > 0 else 0            (-0.0 and NaN give +0.0)
//   relu_inplace      y[i] = y[i] if y[i] > 0 else 0
//   relu_backward     dx[i] = dy[i] if y[i] > 0 else 0          (y is the forward output)
//   add               y[i] = a[i] + b[i]
//   add_assign        y[i] += a[i]
//   axpy              y[i] += alpha * x[i]
//   scale             y[i] = alpha * x[i]
//   sum_squares       out[at] = sum_i x[i]^2                    (one scalar)
//
// Layout: every buffer is a flat contiguous f32 array; bias_add / bias_grad see it as a
// row-major rows x c matrix (NHWC activations with the channel as the column, or a dense
// layer's batch x units output).
//
// Why this shape is fast enough: the elementwise kernels do one or two flops per element
// loaded, so they are bound by memory bandwidth, and one thread per element with neighbouring
// threads touching neighbouring addresses (coalesced loads and stores) is the right shape;
// nothing cleverer would move fewer bytes. The thread index is flat over a 2-D grid of 256-wide
// workgroups (x up to 65,535, the rest along y), so any n fits one dispatch.
//
// The reductions are deterministic (no float atomics, fixed summation order for a given n):
// - bias_grad: a workgroup owns a tile of w adjacent columns (w = the next power of two >= c,
//   at most 64, chosen by the host) and 256 / w row lanes. Thread (lane, col) sums rows
//   lane, lane + lanes, ... of its column (each row of the tile is a contiguous, coalesced
//   load), then the lanes are added by a tree in workgroup memory. With few columns (c = 1)
//   all 256 threads walk the rows; with many, each workgroup covers 64 columns.
// - sum_squares: pass 1 (sum_squares_blocks) has each workgroup sum the squares of one block
//   of 4096 elements (each thread 16 values, strided by 256 so loads stay coalesced) and tree-
//   reduce them to one partial; pass 2 (sum_one_group) is a single workgroup summing the
//   partials the same way into out[at]. Inputs of at most 4096 elements skip pass 1.
//
// Binding 0 is the uniform `params`; each entry point uses bindings 1..k in the order the Rust
// wrapper passes its buffers (crates/gpu/src/elementwise.rs). Entry points that bind a slot with
// a different access mode declare their own variable for it: only the variables an entry point
// uses enter its pipeline layout.

struct Params {
    // Number of elements of the main operand (rows * c for the bias kernels).
    n: u32,
    // Columns of the matrix (bias_add, bias_grad).
    c: u32,
    // bias_grad: columns per workgroup tile (a power of two <= 64, so 256 / w lanes).
    // sum_one_group: 1 to square each value, 0 to sum them as they are.
    w: u32,
    // sum_squares: the element of `out` that receives the result.
    at: u32,
    // axpy, scale: the multiplier.
    alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// ---------------------------------------------------------------------------------------------
// Bias.

@group(0) @binding(1) var<storage, read_write> ba_y: array<f32>;
@group(0) @binding(2) var<storage, read> ba_bias: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        ba_y[i] += ba_bias[i % params.c];
    }
}

@group(0) @binding(1) var<storage, read> bg_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bg_db: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn bias_grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = params.w;
    let lanes = WORKGROUP / w;
    let col = lid % w;
    let lane = lid / w;
    let j = (wg.x + wg.y * nwg.x) * w + col;
    let rows = params.n / params.c;
    var acc = 0.0;
    if (j < params.c) {
        for (var r = lane; r < rows; r += lanes) {
            acc += bg_dy[r * params.c + j];
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    // Tree over the lanes: lane l adds lane l + s, for s = lanes / 2, lanes / 4, ..., 1.
    // `s` depends only on the uniform params, so every barrier is in uniform control flow.
    for (var s = lanes / 2u; s > 0u; s /= 2u) {
        if (lane < s) {
            partial[lid] += partial[lid + s * w];
        }
        workgroupBarrier();
    }
    if (lane == 0u && j < params.c) {
        bg_db[j] = partial[lid];
    }
}

// ---------------------------------------------------------------------------------------------
// ReLU. `select(0.0, v, v > 0.0)` is the CPU's compare-and-select: -0.0 and NaN give +0.0.

@group(0) @binding(1) var<storage, read> rf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> rf_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        let v = rf_x[i];
        rf_y[i] = select(0.0, v, v > 0.0);
    }
}

@group(0) @binding(1) var<storage, read_write> ri_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn relu_forward_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        let v = ri_y[i];
        ri_y[i] = select(0.0, v, v > 0.0);
    }
}

@group(0) @binding(1) var<storage, read> rb_y: array<f32>;
@group(0) @binding(2) var<storage, read> rb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_dx: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        rb_dx[i] = select(0.0, rb_dy[i], rb_y[i] > 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Vector arithmetic.

@group(0) @binding(1) var<storage, read> add_a: array<f32>;
@group(0) @binding(2) var<storage, read> add_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> add_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        add_y[i] = add_a[i] + add_b[i];
    }
}

// add_assign binds (y, a): y first, as read_write.
@group(0) @binding(1) var<storage, read_write> aa_y: array<f32>;
@group(0) @binding(2) var<storage, read> aa_a: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn add_assign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        aa_y[i] += aa_a[i];
    }
}

// axpy and scale bind (x, y): the same slots as relu_forward.
@compute @workgroup_size(WORKGROUP)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        rf_y[i] += params.alpha * rf_x[i];
    }
}

@compute @workgroup_size(WORKGROUP)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        rf_y[i] = params.alpha * rf_x[i];
    }
}

// ---------------------------------------------------------------------------------------------
// Sum of squares, in two deterministic passes (bindings (input, output) = rf_x, rf_y).

const BLOCK: u32 = 4096u; // elements per workgroup in pass 1: 16 per thread

// Tree-reduce `partial` (256 values, one per thread, already stored) into partial[0].
fn reduce_partial(lid: u32) {
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s /= 2u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
}

// Pass 1: rf_y[g] = sum of the squares of rf_x[g * BLOCK .. (g + 1) * BLOCK).
@compute @workgroup_size(WORKGROUP)
fn sum_squares_blocks(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wg.x + wg.y * nwg.x;
    let start = g * BLOCK;
    var acc = 0.0;
    for (var k = 0u; k < BLOCK / WORKGROUP; k++) {
        let i = start + k * WORKGROUP + lid;
        if (i < params.n) {
            let v = rf_x[i];
            acc += v * v;
        }
    }
    partial[lid] = acc;
    reduce_partial(lid);
    if (lid == 0u) {
        rf_y[g] = partial[0];
    }
}

// Pass 2 (one workgroup): rf_y[at] = sum of rf_x[0 .. n), squared first when w = 1.
@compute @workgroup_size(WORKGROUP)
fn sum_one_group(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < params.n; i += WORKGROUP) {
        let v = rf_x[i];
        acc += select(v, v * v, params.w == 1u);
    }
    partial[lid] = acc;
    reduce_partial(lid);
    if (lid == 0u) {
        rf_y[params.at] = partial[0];
    }
}
