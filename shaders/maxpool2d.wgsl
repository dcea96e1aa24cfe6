// Max pooling on the GPU and its gradient: the WGSL twin of crates/cpu/src/maxpool2d.rs.
// Compiled after window2d.wgsl (the uniform `p`, `window`, `windows_of`).
//
// Math: y = max of the window (starting from -inf, NaNs never win). Its gradient goes wholly to
// the FIRST window element (row-major: smallest ky, then kx) equal to the maximum; the
// gradients of overlapping windows add up.
//
// Why it is fast: both kernels are one thread per OUTPUT element of their pass (y in the
// forward, dx in the backward) with the channel as the fastest-varying index, so neighbouring
// threads read and write neighbouring words (coalesced) and the window's other pixels come
// from the same cache lines. The backward is a gather: each dx thread visits the (at most
// ceil(k / stride)^2) windows that contain it and adds their contributions itself, so windows
// that overlap (stride < k, e.g. NIN's 3x3 stride 2) need no atomics, nothing has to be zeroed
// first, and the sum is formed in the same window order as the CPU's: the result is exact.
//
// The gradient recomputes each window's maximum from x instead of storing an argmax tensor in
// the forward (as the CPU does): k^2 reads per window, all from cache.

@group(0) @binding(1) var<storage, read> mp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mp_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn maxpool2d_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let o = nhwc(i, p.out_h, p.out_w);
    let b = o.x;
    let oy = o.y;
    let ox = o.z;
    let ch = o.w;
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

@compute @workgroup_size(WORKGROUP)
fn maxpool2d_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let e = nhwc(i, p.h, p.w);
    let b = e.x;
    let iy = e.y;
    let ix = e.z;
    let ch = e.w;
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
