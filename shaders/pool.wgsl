// Pooling on the GPU: max and average pooling over k x k windows, global average pooling, and
// their gradients; the WGSL twins of crates/cpu/src/maxpool2d.rs and avgpool2d.rs.
//
// Math: output pixel (oy, ox) of image b, channel ch, covers the input positions
// iy = oy * stride + ky - pad_top, ix = ox * stride + kx - pad_left (0 <= ky, kx < k) that lie
// INSIDE the image; padded positions are left out (TensorFlow semantics).
// - max:  y = max of the window (starting from -inf, NaNs never win). Its gradient goes wholly
//   to the FIRST window element (row-major: smallest ky, then kx) equal to the maximum; the
//   gradients of overlapping windows add up.
// - avg:  y = (sum of the window) / (number of in-image positions); the gradient spreads
//   dy / count over every in-image position of the window.
// - global avg: y[b][ch] = (sum over the hw pixels of x[b][p][ch]) / hw; dx = dy / hw.
//
// Layout: NHWC, contiguous. x and dx are n x h x w x c, y and dy n x out_h x out_w x c (n x c
// for the global pool). Element (b, y, x, ch) of an image tensor sits at ((b*H + y)*W + x)*C + ch.
//
// Why it is fast: every kernel is one thread per OUTPUT element of its pass (y in the forward,
// dx in the backward) with the channel as the fastest-varying index, so neighbouring threads
// read and write neighbouring words (coalesced) and the window's other pixels come from the
// same cache lines. The backward passes are gathers: each dx thread visits the (at most
// ceil(k / stride)^2) windows that contain it and adds their contributions itself, so windows
// that overlap (stride < k, e.g. NIN's 3x3 stride 2) need no atomics, nothing has to be zeroed
// first, and the sum is formed in the same window order as the CPU's. Max pooling is then exact
// (comparisons and additions only); average pooling agrees to rounding (Vulkan allows 2.5 ulp
// in a division), and the global pool sums in f32 where the CPU uses f64.
//
// The max-pool gradient recomputes each window's maximum from x instead of storing an argmax
// tensor in the forward (as the CPU does): k^2 reads per window, all from cache.

struct Pool {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
    // Number of threads doing work (the length of the pass's output).
    total: u32,
    // -inf, passed in because WGSL constant expressions may not be infinite.
    neg_inf: f32,
}

@group(0) @binding(0) var<uniform> p: Pool;

// The flat thread index of a 1-D dispatch (the grid spills into y past 65,535 workgroups).
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The in-image range [lo, hi) of window o along one axis of length size, with padding pad.
fn window(o: u32, pad: u32, size: u32) -> vec2<u32> {
    let start = o * p.stride; // the window's start, shifted right by pad
    let lo = max(start, pad) - pad;
    let hi = max(min(start + p.k, size + pad), pad) - pad;
    return vec2<u32>(lo, max(hi, lo));
}

// The windows along one axis that contain input coordinate i: [lo, hi) in output coordinates.
// Window o holds i when o * stride <= i + pad < o * stride + k.
fn windows_of(i: u32, pad: u32, out: u32) -> vec2<u32> {
    let t = i + pad;
    var lo = 0u;
    if (t + 1u > p.k) {
        lo = (t + 1u - p.k + p.stride - 1u) / p.stride;
    }
    let hi = min(t / p.stride + 1u, out);
    return vec2<u32>(lo, max(hi, lo));
}

// ---------------------------------------------------------------------------------------------
// Max pooling

@group(0) @binding(1) var<storage, read> mp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mp_y: array<f32>;

@compute @workgroup_size(256)
fn maxpool_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pix = i / p.c;
    let ox = pix % p.out_w;
    let oy = (pix / p.out_w) % p.out_h;
    let b = pix / (p.out_w * p.out_h);
    let rows = window(oy, p.pad_top, p.h);
    let cols = window(ox, p.pad_left, p.w);
    var best = p.neg_inf;
    for (var iy = rows.x; iy < rows.y; iy++) {
        for (var ix = cols.x; ix < cols.y; ix++) {
            let v = mp_x[((b * p.h + iy) * p.w + ix) * p.c + ch];
            if (v > best) {
                best = v;
            }
        }
    }
    mp_y[i] = best;
}

@group(0) @binding(1) var<storage, read> mpb_x: array<f32>;
@group(0) @binding(2) var<storage, read> mpb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> mpb_dx: array<f32>;

// The flat input index that takes window (b, oy, ox)'s gradient for channel ch: the first
// in-image element, row-major, equal to the window's maximum; 0xffffffff when there is none
// (a window of NaNs only). One pass: an element replaces the current winner only when it is
// strictly greater, so the winner is the first occurrence of the final maximum; the extra
// "nothing yet and equal" test lets a window whose maximum is -inf pick its first -inf.
fn max_winner(b: u32, oy: u32, ox: u32, ch: u32) -> u32 {
    let rows = window(oy, p.pad_top, p.h);
    let cols = window(ox, p.pad_left, p.w);
    var best = p.neg_inf;
    var at = 0xffffffffu;
    for (var iy = rows.x; iy < rows.y; iy++) {
        for (var ix = cols.x; ix < cols.y; ix++) {
            let e = ((b * p.h + iy) * p.w + ix) * p.c + ch;
            let v = mpb_x[e];
            if (v > best || (at == 0xffffffffu && v == best)) {
                best = v;
                at = e;
            }
        }
    }
    return at;
}

@compute @workgroup_size(256)
fn maxpool_backward(
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
    let oys = windows_of(iy, p.pad_top, p.out_h);
    let oxs = windows_of(ix, p.pad_left, p.out_w);
    var acc = 0.0;
    // Windows in (oy, ox) row-major order: the order in which the CPU adds them up.
    for (var oy = oys.x; oy < oys.y; oy++) {
        for (var ox = oxs.x; ox < oxs.y; ox++) {
            if (max_winner(b, oy, ox, ch) == i) {
                acc += mpb_dy[((b * p.out_h + oy) * p.out_w + ox) * p.c + ch];
            }
        }
    }
    mpb_dx[i] = acc;
}

// ---------------------------------------------------------------------------------------------
// Average pooling (padding excluded from the count)

@group(0) @binding(1) var<storage, read> ap_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ap_y: array<f32>;

@compute @workgroup_size(256)
fn avgpool_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pix = i / p.c;
    let ox = pix % p.out_w;
    let oy = (pix / p.out_w) % p.out_h;
    let b = pix / (p.out_w * p.out_h);
    let rows = window(oy, p.pad_top, p.h);
    let cols = window(ox, p.pad_left, p.w);
    var sum = 0.0;
    for (var iy = rows.x; iy < rows.y; iy++) {
        for (var ix = cols.x; ix < cols.y; ix++) {
            sum += ap_x[((b * p.h + iy) * p.w + ix) * p.c + ch];
        }
    }
    ap_y[i] = sum / f32((rows.y - rows.x) * (cols.y - cols.x));
}

@group(0) @binding(1) var<storage, read> apb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> apb_dx: array<f32>;

@compute @workgroup_size(256)
fn avgpool_backward(
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
    let oys = windows_of(iy, p.pad_top, p.out_h);
    let oxs = windows_of(ix, p.pad_left, p.out_w);
    var acc = 0.0;
    for (var oy = oys.x; oy < oys.y; oy++) {
        let rows = window(oy, p.pad_top, p.h);
        for (var ox = oxs.x; ox < oxs.y; ox++) {
            let cols = window(ox, p.pad_left, p.w);
            let count = f32((rows.y - rows.x) * (cols.y - cols.x));
            acc += apb_dy[((b * p.out_h + oy) * p.out_w + ox) * p.c + ch] / count;
        }
    }
    apb_dx[i] = acc;
}

// ---------------------------------------------------------------------------------------------
// Global average pooling: the uniform's h holds hw (w is 1); total is n * c in the forward and
// n * hw * c in the backward.

@group(0) @binding(1) var<storage, read> gp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gp_y: array<f32>;

@compute @workgroup_size(256)
fn global_avgpool_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let b = i / p.c;
    let base = b * p.h * p.c + ch;
    var sum = 0.0;
    for (var q = 0u; q < p.h; q++) {
        sum += gp_x[base + q * p.c];
    }
    gp_y[i] = sum / f32(p.h);
}

@group(0) @binding(1) var<storage, read> gpb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gpb_dx: array<f32>;

@compute @workgroup_size(256)
fn global_avgpool_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let b = i / (p.h * p.c);
    gpb_dx[i] = gpb_dy[b * p.c + ch] / f32(p.h);
}
