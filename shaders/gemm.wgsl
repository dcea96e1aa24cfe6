// GEMM on the GPU: C = op(A) · op(B), the WGSL twin of crates/cpu/src/gemm.rs.
//
// Math: C[i][j] = sum_p A[i][p] * B[p][j] for an m x k matrix A and a k x n matrix B, where
// A and B may each be the transpose of what is stored (op(X) = X or X^T). C is overwritten, or accumulated
// into, with an optional bias and ReLU fused into the store (the conv forward's epilogue).
//
// Layout: A, B and C are flat f32 storage buffers. C is row-major and contiguous (m x n,
// element (i, j) at c_off + i * n + j). A and B are strided views like the CPU's `Mat`: element (i, p)
// of A is a[i * a_rs + p * a_cs], element (p, j) of B is b[p * b_rs + j * b_cs]. A transpose is
// just swapped strides (a stored row-major k x m matrix read as A = stored^T has a_rs = 1,
// a_cs = m), so no transposed copy is ever made.
//
// Sizes and strides arrive in a small uniform buffer (`Dims`), not as baked constants. One
// compiled pipeline then serves every shape, which matters because compiling one costs
// 50-500 ms on lavapipe and a network has dozens of GEMM shapes. The alternative (wgpu-mm,
// wonnx) bakes m, k, n into the source or as pipeline-overridable constants, which lets the
// compiler unroll the k loop and drop bounds checks, at one compile per shape.
//
// Dispatch: workgroups are laid out on a 2-D grid of (min(T, 65535), ceil(T / 65535)) where T
// is the number of output tiles; each workgroup turns its flat index back into a (tile row,
// tile column). Any m * n fits under the 65,535-workgroups-per-dimension limit this way.
// m, k and n can be any size (odd ones included): kernels 1-4 bounds-check every load and
// store (out-of-range elements of a tile load as 0 and contribute nothing); kernel 5 checks
// only the edge tiles and runs interior tiles, which lie wholly inside C, unchecked (see it).
//
// Lineage: the numbered kernels follow siboehm, "How to Optimize a CUDA Matmul Kernel for
// cuBLAS-like Performance" (2022, kernels 1, 3 and 5) and FL33TW00D's wgpu-mm (gemm_1..5.wgsl),
// which ports that ladder to WGSL. The code here is written from the ideas, not copied.
// Accumulation is always in f32.

struct Dims {
    m: u32,
    k: u32,
    n: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    // Element offsets of A, B and C in their buffers (a GEMM on part of a larger tensor).
    a_off: u32,
    b_off: u32,
    c_off: u32,
    // The epilogue, applied as each element of C is stored: ACCUMULATE adds the old C
    // (beta = 1), BIAS adds bias[j], RELU clamps at 0, in that order.
    flags: u32,
}

const ACCUMULATE: u32 = 1u;
const BIAS: u32 = 2u;
const RELU: u32 = 4u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// A(i, p) and B(p, j), or 0 outside the matrix.
fn load_a(i: u32, p: u32) -> f32 {
    if (i < dims.m && p < dims.k) {
        return a[dims.a_off + i * dims.a_rs + p * dims.a_cs];
    }
    return 0.0;
}

fn load_b(p: u32, j: u32) -> f32 {
    if (p < dims.k && j < dims.n) {
        return b[dims.b_off + p * dims.b_rs + j * dims.b_cs];
    }
    return 0.0;
}

// Store v as C(i, j) through the epilogue; nothing outside the matrix.
fn store(i: u32, j: u32, v: f32) {
    if (i >= dims.m || j >= dims.n) {
        return;
    }
    let at = dims.c_off + i * dims.n + j;
    var r = v;
    if ((dims.flags & ACCUMULATE) != 0u) {
        r += c[at];
    }
    if ((dims.flags & BIAS) != 0u) {
        r += bias[j];
    }
    if ((dims.flags & RELU) != 0u) {
        r = max(r, 0.0);
    }
    c[at] = r;
}

// The (row, column) of the first element of this workgroup's tile of C, or a row >= m when
// the workgroup lies past the last tile (the grid is rounded up to a rectangle).
fn tile_origin(wg: vec3<u32>, nwg: vec3<u32>, tile_m: u32, tile_n: u32) -> vec2<u32> {
    let tiles_n = (dims.n + tile_n - 1u) / tile_n;
    let t = wg.y * nwg.x + wg.x;
    return vec2<u32>((t / tiles_n) * tile_m, (t % tiles_n) * tile_n);
}

// ---------------------------------------------------------------------------------------------
// Kernel 1: naive. One thread per element of C, each reading a whole row of A and a whole
// column of B from global memory: 2k loads per 2k FLOPs, so it is bound by memory traffic.
// The specification on the GPU, and the fallback.

@compute @workgroup_size(16, 16)
fn gemm_1_naive(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let origin = tile_origin(wg, nwg, 16u, 16u);
    let i = origin.x + lid.y;
    let j = origin.y + lid.x;
    if (i >= dims.m || j >= dims.n) {
        return;
    }
    var acc = 0.0;
    for (var p = 0u; p < dims.k; p++) {
        acc = fma(a[dims.a_off + i * dims.a_rs + p * dims.a_cs], b[dims.b_off + p * dims.b_rs + j * dims.b_cs], acc);
    }
    store(i, j, acc);
}

// ---------------------------------------------------------------------------------------------
// Kernel 2: shared-memory tiling (siboehm kernel 3). A 16x16 workgroup computes a 16x16 tile
// of C. It walks k in steps of 16: the 256 threads each copy one element of a 16x16 tile of A
// and one of B into workgroup memory, wait, then each thread does 16 multiply-adds from it.
// Every element fetched from global memory is now used 16 times instead of once, cutting
// global traffic 16-fold; workgroup memory is on-chip and much faster.

const T2: u32 = 16u;
var<workgroup> tile2_a: array<f32, 256>; // [T2 rows of C][T2 values of p]
var<workgroup> tile2_b: array<f32, 256>; // [T2 values of p][T2 columns of C]

@compute @workgroup_size(16, 16)
fn gemm_2_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let origin = tile_origin(wg, nwg, T2, T2);
    // Uniform across the workgroup, so returning here keeps the barriers below uniform.
    if (origin.x >= dims.m) {
        return;
    }
    let i = origin.x + lid.y;
    let j = origin.y + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += T2) {
        tile2_a[lid.y * T2 + lid.x] = load_a(i, k0 + lid.x);
        tile2_b[lid.y * T2 + lid.x] = load_b(k0 + lid.y, j);
        workgroupBarrier();
        for (var p = 0u; p < T2; p++) {
            acc = fma(tile2_a[lid.y * T2 + p], tile2_b[p * T2 + lid.x], acc);
        }
        workgroupBarrier();
    }
    store(i, j, acc);
}

// ---------------------------------------------------------------------------------------------
// Kernel 3: register blocking (siboehm kernel 5, "2D blocktiling"). A 16x16 workgroup computes
// a 64x64 tile of C, each thread a 4x4 block held in registers. Per step of 16 along k, the
// workgroup stages a 64x16 tile of A and a 16x64 tile of B in workgroup memory (4 elements per
// thread each); then for each p every thread reads 4 values of A and 4 of B into registers and
// does 16 multiply-adds with them. That is 2 workgroup-memory reads per FMA in kernel 2 and
// 0.5 here, and each global element is reused 64 times instead of 16.
//
// A thread's 4x4 block is strided, not contiguous: rows ly + 16r and columns lx + 16c. Then
// neighbouring threads read neighbouring workgroup-memory words (no bank conflicts) and write
// neighbouring words of C (coalesced stores). Tiles are loaded with the fastest-moving thread
// index along p for A and along j for B, which is the contiguous direction when A and B are
// stored untransposed (the forward pass); transposed operands still work, less coalesced.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> tile3_a: array<f32, 1024>; // [BK][BM]: A transposed, so a column is contiguous
var<workgroup> tile3_b: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16)
fn gemm_3_register_blocked(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let origin = tile_origin(wg, nwg, BM, BN);
    if (origin.x >= dims.m) {
        return;
    }
    let t = lid.y * 16u + lid.x;
    // acc[r][c] is C(origin.x + lid.y + 16r, origin.y + lid.x + 16c).
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < dims.k; k0 += BK) {
        for (var l = 0u; l < 4u; l++) {
            let e = t + 256u * l;
            // A: p fastest. e = row * BK + p.
            let ar = e / BK;
            let ap = e % BK;
            tile3_a[ap * BM + ar] = load_a(origin.x + ar, k0 + ap);
            // B: j fastest. e = p * BN + col.
            let bp = e / BN;
            let bc = e % BN;
            tile3_b[e] = load_b(k0 + bp, origin.y + bc);
        }
        workgroupBarrier();
        for (var p = 0u; p < BK; p++) {
            let ao = p * BM + lid.y;
            let bo = p * BN + lid.x;
            let bv = vec4<f32>(tile3_b[bo], tile3_b[bo + 16u], tile3_b[bo + 32u], tile3_b[bo + 48u]);
            acc[0] = fma(vec4<f32>(tile3_a[ao]), bv, acc[0]);
            acc[1] = fma(vec4<f32>(tile3_a[ao + 16u]), bv, acc[1]);
            acc[2] = fma(vec4<f32>(tile3_a[ao + 32u]), bv, acc[2]);
            acc[3] = fma(vec4<f32>(tile3_a[ao + 48u]), bv, acc[3]);
        }
        workgroupBarrier();
    }
    // Constant indices into acc (no loop over r) let the compiler keep it in registers.
    let i0 = origin.x + lid.y;
    let j0 = origin.y + lid.x;
    store_row(i0, j0, acc[0]);
    store_row(i0 + 16u, j0, acc[1]);
    store_row(i0 + 32u, j0, acc[2]);
    store_row(i0 + 48u, j0, acc[3]);
}

// Columns j0, j0 + 16, j0 + 32, j0 + 48 of row i of C, where they exist.
fn store_row(i: u32, j0: u32, v: vec4<f32>) {
    for (var q = 0u; q < 4u; q++) {
        store(i, j0 + 16u * q, v[q]);
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel 4: register blocking without workgroup memory. An 8x8 workgroup computes a 32x32 tile
// of C; each thread keeps its own 4x4 block as four vec4 accumulators and, for every p, reads 4
// values of A and 4 of B straight from global memory, then does 16 multiply-adds (4 vector
// FMAs). Each loaded value is reused 4 times from registers, with no barriers at all.
// On a GPU kernel 3 should win (shared memory cuts global traffic further); on lavapipe, where
// "workgroup memory" is ordinary memory behind a barrier that serialises the SIMD lanes, the
// barrier-free kernel is faster (2.8 against 2.4 GFLOP/s at 1024^3); kernel 5 below goes further.

@compute @workgroup_size(8, 8)
fn gemm_4_register_global(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let origin = tile_origin(wg, nwg, 32u, 32u);
    let i0 = origin.x + lid.y * 4u;
    let j0 = origin.y + lid.x * 4u;
    if (i0 >= dims.m || j0 >= dims.n) {
        return;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var p = 0u; p < dims.k; p++) {
        let bv = vec4<f32>(load_b(p, j0), load_b(p, j0 + 1u), load_b(p, j0 + 2u), load_b(p, j0 + 3u));
        acc0 = fma(vec4<f32>(load_a(i0, p)), bv, acc0);
        acc1 = fma(vec4<f32>(load_a(i0 + 1u, p)), bv, acc1);
        acc2 = fma(vec4<f32>(load_a(i0 + 2u, p)), bv, acc2);
        acc3 = fma(vec4<f32>(load_a(i0 + 3u, p)), bv, acc3);
    }
    store_row_contiguous(i0, j0, acc0);
    store_row_contiguous(i0 + 1u, j0, acc1);
    store_row_contiguous(i0 + 2u, j0, acc2);
    store_row_contiguous(i0 + 3u, j0, acc3);
}

// Columns j0 .. j0 + 4 of row i of C, where they exist.
fn store_row_contiguous(i: u32, j0: u32, v: vec4<f32>) {
    for (var q = 0u; q < 4u; q++) {
        store(i, j0 + q, v[q]);
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel 5: register blocking with lane-contiguous columns, for SIMD-across-invocations
// compilers. An 8x8 workgroup computes a 32x64 tile of C; thread (lx, ly) owns rows
// ly*4 .. ly*4+4 and the strided columns lx, lx+8, ..., lx+56 (32 accumulators, as eight vec4).
// Per step along k it loads 4 values of A and 8 of B and does 32 multiply-adds.
// Why strided columns: lavapipe (llvmpipe) runs 8 consecutive invocations as the 8 lanes of
// one AVX register. With kernel 4's contiguous 4-column blocks, the 8 lanes read B at a
// stride of 4 floats (a gather); here lane lx reads column lx + 8q, so the 8 lanes read 8
// consecutive floats (one vector load), and A(i, p) is the same for all 8 lanes (a
// broadcast). On a GPU the same pattern gives coalesced loads of B across a warp.
// Interior tiles (the whole 32x64 block inside C) skip the per-element bounds checks.

fn load_a_unchecked(i: u32, p: u32) -> f32 {
    return a[dims.a_off + i * dims.a_rs + p * dims.a_cs];
}

fn load_b_unchecked(p: u32, j: u32) -> f32 {
    return b[dims.b_off + p * dims.b_rs + j * dims.b_cs];
}

@compute @workgroup_size(8, 8)
fn gemm_5_lane_columns(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let origin = tile_origin(wg, nwg, 32u, 64u);
    if (origin.x >= dims.m) {
        return;
    }
    let i0 = origin.x + lid.y * 4u;
    let j0 = origin.y + lid.x;
    var acc: array<vec4<f32>, 8>; // acc[2r + h][q] is C(i0 + r, j0 + 8 * (4h + q))
    let interior = origin.x + 32u <= dims.m && origin.y + 64u <= dims.n;
    if (interior) {
        for (var p = 0u; p < dims.k; p++) {
            let b0 = vec4<f32>(load_b_unchecked(p, j0), load_b_unchecked(p, j0 + 8u),
                               load_b_unchecked(p, j0 + 16u), load_b_unchecked(p, j0 + 24u));
            let b1 = vec4<f32>(load_b_unchecked(p, j0 + 32u), load_b_unchecked(p, j0 + 40u),
                               load_b_unchecked(p, j0 + 48u), load_b_unchecked(p, j0 + 56u));
            let a0 = load_a_unchecked(i0, p);
            let a1 = load_a_unchecked(i0 + 1u, p);
            let a2 = load_a_unchecked(i0 + 2u, p);
            let a3 = load_a_unchecked(i0 + 3u, p);
            acc[0] = fma(vec4<f32>(a0), b0, acc[0]);
            acc[1] = fma(vec4<f32>(a0), b1, acc[1]);
            acc[2] = fma(vec4<f32>(a1), b0, acc[2]);
            acc[3] = fma(vec4<f32>(a1), b1, acc[3]);
            acc[4] = fma(vec4<f32>(a2), b0, acc[4]);
            acc[5] = fma(vec4<f32>(a2), b1, acc[5]);
            acc[6] = fma(vec4<f32>(a3), b0, acc[6]);
            acc[7] = fma(vec4<f32>(a3), b1, acc[7]);
        }
    } else {
        for (var p = 0u; p < dims.k; p++) {
            let b0 = vec4<f32>(load_b(p, j0), load_b(p, j0 + 8u), load_b(p, j0 + 16u), load_b(p, j0 + 24u));
            let b1 = vec4<f32>(load_b(p, j0 + 32u), load_b(p, j0 + 40u), load_b(p, j0 + 48u), load_b(p, j0 + 56u));
            let a0 = load_a(i0, p);
            let a1 = load_a(i0 + 1u, p);
            let a2 = load_a(i0 + 2u, p);
            let a3 = load_a(i0 + 3u, p);
            acc[0] = fma(vec4<f32>(a0), b0, acc[0]);
            acc[1] = fma(vec4<f32>(a0), b1, acc[1]);
            acc[2] = fma(vec4<f32>(a1), b0, acc[2]);
            acc[3] = fma(vec4<f32>(a1), b1, acc[3]);
            acc[4] = fma(vec4<f32>(a2), b0, acc[4]);
            acc[5] = fma(vec4<f32>(a2), b1, acc[5]);
            acc[6] = fma(vec4<f32>(a3), b0, acc[6]);
            acc[7] = fma(vec4<f32>(a3), b1, acc[7]);
        }
    }
    for (var r = 0u; r < 4u; r++) {
        for (var q = 0u; q < 4u; q++) {
            store(i0 + r, j0 + 8u * q, acc[2u * r][q]);
            store(i0 + r, j0 + 8u * (4u + q), acc[2u * r + 1u][q]);
        }
    }
}
