// What the optimiser updates share (adam.wgsl, sgd.wgsl and rmsprop.wgsl are each compiled after
// this file; the Rust side is crates/gpu/src/optim.rs): the uniform, the bindings, and the
// guard that skips a whole update when this step's loss is not finite.
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
// bit pattern (the prelude's is_finite).
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

const NESTEROV: u32 = 1u; // flags bit: Nesterov momentum (sgd_momentum)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> guard: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;
@group(0) @binding(5) var<storage, read_write> state2: array<f32>;

// The element this thread updates, or n (no element) when out of range or the guard is not
// finite.
fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    let i = flat(gid, nwg);
    return select(params.n, i, is_finite(guard[0]) && i < params.n);
}
