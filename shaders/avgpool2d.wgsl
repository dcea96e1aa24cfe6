// Average pooling and global average pooling on the GPU, and their gradients: the WGSL twin of
// crates/cpu/src/avgpool2d.rs. Compiled after window2d.wgsl (the uniform `p`, `window`,
// `windows_of`).
//
// Math:
// - avg: y = (sum of the window) / (number of in-image positions); the gradient spreads
//   dy / count over every in-image position of the window.
// - global avg: y[b][ch] = (sum over the hw pixels of x[b][p][ch]) / hw; dx = dy / hw.
//
// Why it is fast: one thread per OUTPUT element of each pass, channel fastest (coalesced); the
// backward is a gather over the windows holding each dx element (see maxpool2d.wgsl), so no
// atomics and no zeroing. Results agree with the CPU to rounding (Vulkan allows 2.5 ulp in a
// division), and the global pool sums in f32 where the CPU uses f64.

@group(0) @binding(1) var<storage, read> ap_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ap_y: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn avgpool2d_forward(
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

@compute @workgroup_size(WORKGROUP)
fn avgpool2d_backward(
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

@compute @workgroup_size(WORKGROUP)
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

@compute @workgroup_size(WORKGROUP)
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
