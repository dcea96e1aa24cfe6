// Local response normalisation across channels (tf.nn.lrn) and its gradient: the WGSL twin of
// crates/cpu/src/lrn.rs.
//
// Math, per pixel (pixels are independent), with radius r = depth_radius and window
// W(d) = { d' : |d' - d| <= r, 0 <= d' < c }:
// - s[d] = bias + alpha * sum_{d' in W(d)} x[d']^2,  y[d] = x[d] * s[d]^-beta;
// - dx[i] = dy[i] * s[i]^-beta - 2 * alpha * beta * x[i] * sum_{j in W(i)} dy[j] * x[j] * s[j]^(-beta-1)
//   (the first term through x[i] itself, the second through every s[j] whose window holds
//   x[i]; windows are symmetric, so that is j in W(i)).
//
// Layout: x, y, dy, dx are pixels x c, contiguous, channels last (an NHWC tensor with
// pixels = n*h*w). Element d of pixel q is at q*c + d.
//
// Why it is fast: one thread per output element, channel fastest, so a workgroup covers a run
// of whole pixels and neighbouring threads read neighbouring words: every window read after
// the first hits cache. Each thread sums its window directly (2r + 1 squares; the backward
// sums the 2r + 1 windows of its neighbours, (2r + 1)^2 squares), with no running sum, so
// there is no drift and no sequential dependency along the channels; for the usual r <= 5
// that arithmetic is cheap next to the memory traffic. s^-beta uses inverseSqrt for the common
// beta of 0.5 (TF's default) and 0.75 (the CIFAR-10 tutorial), a division for 1, pow otherwise.

struct Lrn {
    c: u32,
    total: u32,
    // The radius, clamped to c by the host (a wider window changes nothing).
    r: u32,
    bias: f32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Lrn;

// The window W(d) as an inclusive range [lo, hi].
fn win(d: u32) -> vec2<u32> {
    return vec2<u32>(d - min(d, p.r), min(d + p.r, p.c - 1u));
}

fn pow_neg(s: f32) -> f32 {
    if (p.beta == 0.5) {
        return inverseSqrt(s);
    }
    if (p.beta == 0.75) {
        let q = inverseSqrt(s);
        return q * sqrt(q);
    }
    if (p.beta == 1.0) {
        return 1.0 / s;
    }
    return pow(s, -p.beta);
}

@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_y: array<f32>;

// s[d] of the pixel starting at base, read from f_x.
fn s_fwd(base: u32, d: u32) -> f32 {
    let w = win(d);
    var sum = 0.0;
    for (var j = w.x; j <= w.y; j++) {
        let v = f_x[base + j];
        sum += v * v;
    }
    return p.bias + p.alpha * sum;
}

@compute @workgroup_size(WORKGROUP)
fn lrn_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let d = i % p.c;
    f_y[i] = f_x[i] * pow_neg(s_fwd(i - d, d));
}

@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dx: array<f32>;

fn s_bwd(base: u32, d: u32) -> f32 {
    let w = win(d);
    var sum = 0.0;
    for (var j = w.x; j <= w.y; j++) {
        let v = b_x[base + j];
        sum += v * v;
    }
    return p.bias + p.alpha * sum;
}

@compute @workgroup_size(WORKGROUP)
fn lrn_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = flat(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let d = i % p.c;
    let base = i - d;
    let w = win(d);
    var t = 0.0;
    var own = 0.0;
    for (var j = w.x; j <= w.y; j++) {
        let s = s_bwd(base, j);
        let q = pow_neg(s);
        if (j == d) {
            own = q;
        }
        t += b_dy[base + j] * b_x[base + j] * (q / s);
    }
    b_dx[i] = b_dy[i] * own - 2.0 * p.alpha * p.beta * b_x[i] * t;
}
