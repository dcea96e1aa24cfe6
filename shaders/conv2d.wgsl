// 2-D convolution on the GPU: the data-movement kernels around the GEMMs of gemm.wgsl, and a
// direct kernel kept as the plain reference.
//
// Math (cross-correlation, as in every DL framework), with iy = oy * stride + ky - pad_top and
// ix = ox * stride + kx - pad_left, positions outside the image reading as zero:
//   forward:         y[b,oy,ox,co]   = bias[co] + sum_{ky,kx,ci} x[b,iy,ix,ci] * w[ky,kx,ci,co]
//   input gradient:  dx[b,iy,ix,ci]  = sum_{oy,ox,ky,kx,co} dy[b,oy,ox,co] * w[ky,kx,ci,co]
//   weight gradient: dw[ky,kx,ci,co] = sum_{b,oy,ox} x[b,iy,ix,ci] * dy[b,oy,ox,co]
//
// Layout: x and dx are NHWC, w and dw HWIO (Keras' layout), y and dy NHWC. Seen as matrices,
// HWIO w is already the [kh*kw*c_in][c_out] matrix of the GEMM, and NHWC y the
// [pixels][c_out] one, so no transposes are ever materialised.
//
// The fast path is im2col + GEMM, as on the CPU (crates/cpu/src/conv2d.rs):
//   forward:  cols = im2col(x)      (one row per output pixel, kh*kw*c_in values)
//             y    = cols . w  (+ bias, ReLU: the GEMM's epilogue)
//   dx:       dcols = dy . w^T, then col2im gathers each dx element from the rows that read it
//   dw:       dw  = cols^T . dy     (accumulated over chunks of images)
// Why: all the arithmetic then runs in the register-blocked GEMM, the one kernel worth tuning,
// and these two kernels are pure data movement (one thread per element, channel-fastest, so
// neighbouring threads touch neighbouring words). The cost is the cols buffer's traffic; the
// batch is cut into chunks of images so that it stays within a few tens of MB. An implicit
// GEMM (the index arithmetic of im2col done inside the GEMM's loads) would save that traffic
// and is the next step on real GPUs.
//
// col2im is a gather, not a scatter: one thread per dx element sums the (at most
// ceil(kh/stride) * ceil(kw/stride)) dcols entries that came from it, so no two threads write
// the same word and no atomics are needed (WGSL has no float atomics anyway).

struct Params {
    // Conv2dDims
    n: u32,
    h: u32,
    w: u32,
    c_in: u32,
    kh: u32,
    kw: u32,
    c_out: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
    // The chunk: images first_image .. first_image + images.
    first_image: u32,
    images: u32,
    // conv2d_1_direct only: 1 = add bias, 2 = ReLU (bit flags).
    flags: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// The input coordinate read by output coordinate `o` at kernel offset `k`, or -1 outside.
fn in_coord(o: u32, k: u32, pad: u32, size: u32) -> i32 {
    let i = i32(o * p.stride + k) - i32(pad);
    if (i < 0 || i >= i32(size)) {
        return -1;
    }
    return i;
}

// cols[r][q] for the chunk's rows r = (b - first_image) * out_h * out_w + oy * out_w + ox and
// columns q = (ky * kw + kx) * c_in + ci. src = x (whole batch), dst = cols.
@compute @workgroup_size(WORKGROUP)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let plen = p.kh * p.kw * p.c_in;
    let rows = p.images * p.out_h * p.out_w;
    if (e >= rows * plen) {
        return;
    }
    let r = e / plen;
    let q = e % plen;
    let ci = q % p.c_in;
    let kx = (q / p.c_in) % p.kw;
    let ky = q / (p.c_in * p.kw);
    let ox = r % p.out_w;
    let oy = (r / p.out_w) % p.out_h;
    let b = p.first_image + r / (p.out_w * p.out_h);
    let iy = in_coord(oy, ky, p.pad_top, p.h);
    let ix = in_coord(ox, kx, p.pad_left, p.w);
    var v = 0.0;
    if (iy >= 0 && ix >= 0) {
        v = src[((b * p.h + u32(iy)) * p.w + u32(ix)) * p.c_in + ci];
    }
    dst[e] = v;
}

// dx[b,iy,ix,ci] for the chunk's images = the sum of the dcols entries that im2col would have
// filled from x[b,iy,ix,ci]. src = dcols of the chunk, dst = dx (whole batch).
@compute @workgroup_size(WORKGROUP)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= p.images * p.h * p.w * p.c_in) {
        return;
    }
    let ci = e % p.c_in;
    let ix = (e / p.c_in) % p.w;
    let iy = (e / (p.c_in * p.w)) % p.h;
    let local_b = e / (p.c_in * p.w * p.h);
    let plen = p.kh * p.kw * p.c_in;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        // oy * stride = iy + pad_top - ky must be a non-negative multiple of stride.
        let ty = i32(iy + p.pad_top) - i32(ky);
        if (ty < 0 || ty % i32(p.stride) != 0) {
            continue;
        }
        let oy = u32(ty) / p.stride;
        if (oy >= p.out_h) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pad_left) - i32(kx);
            if (tx < 0 || tx % i32(p.stride) != 0) {
                continue;
            }
            let ox = u32(tx) / p.stride;
            if (ox >= p.out_w) {
                continue;
            }
            let row = (local_b * p.out_h + oy) * p.out_w + ox;
            acc += src[row * plen + (ky * p.kw + kx) * p.c_in + ci];
        }
    }
    dst[(p.first_image * p.h * p.w * p.c_in) + e] = acc;
}

// ---------------------------------------------------------------------------------------------
// conv2d_1_direct: the forward pass written out, one thread per output element, reading its
// whole receptive field and the matching column of w from global memory. The specification
// on the GPU and variant 1 of the benchmarks; no data reuse at all, so it is memory-bound.
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn conv2d_1_direct(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let e = flat(gid, nwg);
    if (e >= p.n * p.out_h * p.out_w * p.c_out) {
        return;
    }
    let co = e % p.c_out;
    let ox = (e / p.c_out) % p.out_w;
    let oy = (e / (p.c_out * p.out_w)) % p.out_h;
    let b = e / (p.c_out * p.out_w * p.out_h);
    var acc = 0.0;
    if ((p.flags & 1u) != 0u) {
        acc = bias[co];
    }
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = in_coord(oy, ky, p.pad_top, p.h);
        if (iy < 0) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = in_coord(ox, kx, p.pad_left, p.w);
            if (ix < 0) {
                continue;
            }
            let xo = ((b * p.h + u32(iy)) * p.w + u32(ix)) * p.c_in;
            let wo = (ky * p.kw + kx) * p.c_in * p.c_out + co;
            for (var ci = 0u; ci < p.c_in; ci++) {
                acc = fma(src[xo + ci], weight[wo + ci * p.c_out], acc);
            }
        }
    }
    if ((p.flags & 2u) != 0u) {
        acc = max(acc, 0.0);
    }
    dst[e] = acc;
}
