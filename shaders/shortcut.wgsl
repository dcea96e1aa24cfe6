// The "option A" residual shortcut (He et al. 2016, section 4.2) on the GPU: subsample with a
// stride and zero-pad the channels; the WGSL twin of crates/cpu/src/shortcut.rs.
//
// Math: y[b, i, j, pad_before + ch] = x[b, i*stride, j*stride, ch], every other channel of y
// is 0. Backward: dx[b, i*stride, j*stride, ch] = dy[b, i, j, pad_before + ch], and 0 at the
// pixels the stride skips.
//
// Layout: NHWC. x and dx are n x h x w x c; y and dy are n x out_h x out_w x c_out with
// out_h = ceil(h / stride), out_w = ceil(w / stride), c_out = pad_before + c + pad_after.
//
// Why it is fast: a pure copy, one thread per element WRITTEN (y in the forward, dx in the
// backward), channel fastest, so both the writes and the reads of a pixel's channels are
// contiguous runs across neighbouring threads; every element is written exactly once (zeros
// included), so nothing needs clearing first and there are no races.

struct Shortcut {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    stride: u32,
    pad_before: u32,
    out_h: u32,
    out_w: u32,
    c_out: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Shortcut;

@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn subsample_pad(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let oc = i % p.c_out;
    let pix = i / p.c_out;
    let ox = pix % p.out_w;
    let oy = (pix / p.out_w) % p.out_h;
    let b = pix / (p.out_w * p.out_h);
    var v = 0.0;
    if (oc >= p.pad_before && oc < p.pad_before + p.c) {
        v = f_x[((b * p.h + oy * p.stride) * p.w + ox * p.stride) * p.c + oc - p.pad_before];
    }
    f_y[i] = v;
}

@group(0) @binding(1) var<storage, read> b_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_dx: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn subsample_pad_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pix = i / p.c;
    let ix = pix % p.w;
    let iy = (pix / p.w) % p.h;
    let b = pix / (p.w * p.h);
    var g = 0.0;
    if (iy % p.stride == 0u && ix % p.stride == 0u) {
        let oy = iy / p.stride;
        let ox = ix / p.stride;
        g = b_dy[((b * p.out_h + oy) * p.out_w + ox) * p.c_out + p.pad_before + ch];
    }
    b_dx[i] = g;
}
