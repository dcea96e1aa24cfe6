// Inverted dropout, the WGSL twin of crates/cpu/src/dropout.rs, with the counter hash of
// crates/cpu/src/rng.rs ported to u32 arithmetic so the mask is bit-identical to the CPU's.
//
// Math, with u_i = uniform(seed, i) in [0, 1) and scale = 1 / (1 - p) (computed on the host in
// f32, exactly as the CPU does):
//   mask[i] = scale if u_i >= p else 0
//   y[i]    = x[i] * scale where kept, else 0 (a dropped inf or NaN gives 0, not NaN)
//   dx[i]   = dy[i] * mask[i]                                   (backward)
// uniform(seed, i) = (pcg_hash(i ^ pcg_hash(seed)) >> 8) * 2^-24: PCG-RXS-M-XS (O'Neill 2014,
// as in Jarzynski & Olano, JCGT 2020). WGSL u32 multiplication and addition wrap modulo 2^32
// like Rust's wrapping_mul / wrapping_add, shifts of u32 are logical, the 24-bit integer
// converts to f32 exactly and the multiply by 2^-24 is exact, so u_i is the CPU's to the bit;
// `>=` against the same f32 p then gives the same mask, and x * scale is one correctly rounded
// multiply on both sides.
//
// Layout: any shape, as one flat contiguous array; i is the flat index.
//
// Why this shape: memory-bound (a few integer ops per element against 8-12 bytes moved), so one
// thread per element with coalesced access; the hash depends only on (seed, i), so no state is
// carried between threads and any split of the work gives the same mask.

struct Params {
    n: u32,
    seed: u32,
    p: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// PCG-RXS-M-XS 32-bit hash (cpu::rng::pcg_hash).
fn pcg_hash(input: u32) -> u32 {
    let state = input * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// cpu::rng::uniform.
fn uniform01(seed: u32, i: u32) -> f32 {
    let h = pcg_hash(i ^ pcg_hash(seed));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

@group(0) @binding(1) var<storage, read> fw_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fw_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> fw_mask: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let keep = uniform01(params.seed, i) >= params.p;
    fw_mask[i] = select(0.0, params.scale, keep);
    fw_y[i] = select(0.0, fw_x[i] * params.scale, keep);
}

@group(0) @binding(1) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bw_mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_dx: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i < params.n) {
        bw_dx[i] = bw_dy[i] * bw_mask[i];
    }
}
