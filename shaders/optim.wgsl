// Optimiser updates, the WGSL twins of crates/cpu/src/adam.rs, sgd.rs and rmsprop.rs, each
// skipped entirely when this step's loss is not finite.
//
// Math (per element i; g = grad[i]; lr_t and the hyper-parameters arrive in the uniform):
//   sgd_plain      p -= lr * g                                       (momentum 0)
//   sgd_momentum   v = mom * v - lr * g;  p += v                     (NESTEROV clear)
//                                         p += mom * v - lr * g      (NESTEROV set)
//   rmsprop        a = rho * a + (1 - rho) * (g * g);  p -= lr_t * g / (sqrt(a) + eps)
//   adam           m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);
//                  p -= m * lr_t / (sqrt(v) + eps)
// The operations are the CPU's in the CPU's order, with 1 - rho, 1 - beta1 and 1 - beta2
// computed on the host in f32 exactly as the CPU does; only fused multiply-adds the GPU compiler
// may form can differ by an ulp.
//
// The guard: guard[0] holds this step's loss (or 0 for no guard). If it is not finite the
// kernel returns before touching anything, so a NaN or inf step leaves param and the optimiser
// state as they were, without reading the loss back to the host. Finiteness is tested on the
// bit pattern (exponent all ones means inf or NaN), because compilers may assume `x != x` is
// false under fast-math rules.
//
// Layout: param, grad and each state buffer are flat arrays of the same length, element i of
// each belonging to the same scalar parameter. Bindings, shared by all four entry points so
// each uses a prefix of them: 1 guard (read), 2 grad (read), 3 param, 4 first state (velocity,
// accumulator or m), 5 second state (v).
//
// Why this shape: the update is independent per element and does a handful of flops per 12-20
// bytes moved, so it is memory-bound: one thread per element, coalesced, is the right shape.

struct Params {
    n: u32,
    flags: u32,
    // sgd: lr. rmsprop, adam: lr_t.
    lr: f32,
    // sgd_momentum: momentum. rmsprop: rho. adam: 1 - beta1.
    c1: f32,
    // rmsprop: 1 - rho. adam: 1 - beta2.
    c2: f32,
    eps: f32,
}

const NESTEROV: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> guard: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;
@group(0) @binding(5) var<storage, read_write> state2: array<f32>;

// The element this thread updates, or n (no element) when out of range or the guard is not
// finite.
fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    let i = gid.x + gid.y * nwg.x * 256u;
    let finite = (bitcast<u32>(guard[0]) & 0x7f800000u) != 0x7f800000u;
    return select(params.n, i, finite && i < params.n);
}

@compute @workgroup_size(256)
fn sgd_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    param[i] -= params.lr * grad[i];
}

@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let mom = params.c1;
    let v = mom * state1[i] - params.lr * g;
    state1[i] = v;
    if ((params.flags & NESTEROV) != 0u) {
        param[i] += mom * v - params.lr * g;
    } else {
        param[i] += v;
    }
}

@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let a = params.c1 * state1[i] + params.c2 * (g * g);
    state1[i] = a;
    param[i] -= params.lr * g / (sqrt(a) + params.eps);
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let m = state1[i] + (g - state1[i]) * params.c1;
    let v = state2[i] + (g * g - state2[i]) * params.c2;
    state1[i] = m;
    state2[i] = v;
    param[i] -= m * params.lr / (sqrt(v) + params.eps);
}
