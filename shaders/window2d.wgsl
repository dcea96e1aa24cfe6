// Window geometry shared by maxpool2d.wgsl and avgpool2d.wgsl (the Rust side is
// crates/gpu/src/window2d.rs): the uniform both read, and the two range functions.
//
// Output pixel (oy, ox) of image b, channel ch, covers the input positions
// iy = oy * stride + ky - pad_top, ix = ox * stride + kx - pad_left (0 <= ky, kx < k) that lie
// INSIDE the image; padded positions are left out (TensorFlow semantics).
//
// Layout: NHWC, contiguous. x and dx are n x h x w x c, y and dy n x out_h x out_w x c (n x c
// for the global pool). Element (b, y, x, ch) of an image tensor sits at ((b*H + y)*W + x)*C + ch.

struct Window2d {
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

@group(0) @binding(0) var<uniform> p: Window2d;

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

// The coordinates (b, y, x, ch) of flat element i of an n x rows x cols x c NHWC tensor.
fn nhwc(i: u32, rows: u32, cols: u32) -> vec4<u32> {
    let pix = i / p.c;
    return vec4<u32>(pix / (cols * rows), (pix / cols) % rows, pix % cols, i % p.c);
}
