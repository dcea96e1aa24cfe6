//! Direct convolution: the GEMM micro-kernels of version 4 reading each receptive field where
//! it lies in a zero-padded copy of the image, with no im2col matrix in between.
//!
//! Math: as [`crate::conv2d`] (NHWC input, HWIO kernel, NHWC output).
//!
//! Layout and why it works: for one output row `oy` of one image, the im2col rows of its
//! `out_w` pixels are, in the padded image `xp` (`hp x wp x c_in`, the border zeros written
//! once per image), `kh` runs of `kw * c_in` contiguous floats each, one per kernel row `ky`,
//! starting at `xp[(oy * stride + ky) * wp * c_in + ox * stride * c_in]`. So the im2col matrix
//! of that output row *is* a strided view of `xp`: row stride `stride * c_in`, and `kh`
//! segments one padded row (`wp * c_in` floats) apart. The micro-kernels of
//! [`gemm_packed`](crate::gemm_packed) walk A in such [`Segments`], so a direct convolution is one
//! `gemm_packed_segments` call per output row, with the kernel packed once per layer call
//! (its rows are already in `(ky, kx, ci)` order, the order the segments walk).
//!
//! Why it is faster than im2col + GEMM: the im2col matrix is `kh * kw` times the size of the
//! input (590 KB per 32x32x16 image); writing it and reading it back is memory traffic the
//! multiply does not need. The padded copy is the size of the input. The FMAs are the same.
//!
//! Weight gradient: `dw[(ky, kx), ci, co] = sum_pixels xp[pixel shifted by (ky, kx)][ci] *
//! dy[pixel][co]`: for each kernel position, a GEMM with M = c_in rows (`xp` read transposed:
//! row stride 1; narrow layers take a few positions of one kernel row together, see
//! [`conv2d_backward_weight_direct`]), K = the output pixels of a band of output rows, walked
//! in segments of `out_w` (the pixels of one output row are `stride * c_in` floats apart, the
//! rows `stride * wp * c_in`), and B = the band's `dy`, packed once per band.
//!
//! Fused passes built on these pieces (each image's padded copy is the unit of work):
//! - [`conv2d_backward_direct`]: all of a stride-1 layer's gradients in one pass over the
//!   images; each image's padded `dz` feeds the input gradient (a forward convolution of
//!   it) and then the weight gradient's bands. `dz` comes from `dy` (masked by a fused ReLU)
//!   or is routed from a max pool's gradient by the pool's recorded winners ([`DzFrom`]).
//! - [`conv2d_relu_maxpool_forward_direct`]: conv + ReLU + max pool, each image's output
//!   pooled from a scratch buffer while it is in cache and never written out.
//! - Both can convolve their images by Winograd F(2x2, 3x3) from the same padded copies
//!   (`crate::conv2d_winograd::forward_image_padded`), which is how the Winograd variant runs
//!   inside them.
//!
//! The reference these are tested against is `conv2d_*_reference` in [`crate::conv2d`].

use std::cell::Cell;

use rayon::prelude::*;

use crate::conv2d::{sum_partials_at, with_scratch, with_taken, Conv2dDims};
use crate::conv2d_winograd as winograd;
use crate::gemm::Mat;
use crate::gemm_packed::{gemm_packed_segments, Kernel, PackedB, Segments};
use crate::maxpool2d::Pool2dDims;
use crate::maxpool2d_argmax::{
    maxpool2d_forward_argmax_image, maxpool2d_relu_backward_routed_image_into,
};

thread_local! {
    /// A task's zero-padded image.
    static PADDED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The packed kernel matrix of one forward call.
    static PACKED_W: Cell<PackedB> = Cell::new(PackedB::default());
    /// One image's packed `dy`, for the weight gradient.
    static PACKED_DY: Cell<PackedB> = Cell::new(PackedB::default());
    /// Per-thread partial weight gradients of one call.
    static PARTIALS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// A task's padded image of `dz`, for the fused backward.
    static PADDED_DZ: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The rotated kernel of the fused backward's input gradient.
    static ROTATED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// One image's convolution output, pooled before it leaves the cache.
    static IMAGE_OUT: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

impl Conv2dDims {
    /// Rows and columns of the padded image a direct convolution reads: just enough for
    /// every window (`Valid` may leave input rows or columns that no window reaches out).
    pub fn padded_hw(&self) -> (usize, usize) {
        (
            (self.out_h - 1) * self.stride + self.kh,
            (self.out_w - 1) * self.stride + self.kw,
        )
    }
}

/// Copies one image (`h x w x c_in`) into `xp` (`hp x wp x c_in`, [`Conv2dDims::padded_hw`])
/// at `(pad_top, pad_left)`, zeros around it. With `relu_y` (an image of the same shape), the
/// copy is ReLU's backward: `img` where `relu_y > 0`, else 0.
fn pad_image(d: &Conv2dDims, img: &[f32], relu_y: Option<&[f32]>, xp: &mut [f32]) {
    let (_, wp) = d.padded_hw();
    let c = d.c_in;
    let left = d.pad_left.min(wp);
    let cols = d.w.min(wp - left); // image columns that land inside the padded row
    for (py, row) in xp.chunks_exact_mut(wp * c).enumerate() {
        let iy = py.checked_sub(d.pad_top).filter(|&iy| iy < d.h);
        let Some(iy) = iy else {
            row.fill(0.0);
            continue;
        };
        row[..left * c].fill(0.0);
        let (dst, src) = (&mut row[left * c..(left + cols) * c], iy * d.w * c);
        match relu_y {
            None => dst.copy_from_slice(&img[src..][..cols * c]),
            Some(y) => {
                crate::relu::backward_block(&y[src..][..cols * c], &img[src..][..cols * c], dst)
            }
        }
        row[(left + cols) * c..].fill(0.0);
    }
}

/// Forward pass, direct: `y = conv(x, w) + bias`, then `max(y, 0)` with `relu`, one task
/// per image, on the version-4 micro-kernel `kernel`. Panics if this CPU cannot run it.
// The forward convolution's arguments plus the micro-kernel.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_direct(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    forward(kernel, d, x, None, w, bias, relu, y)
}

/// [`conv2d_forward_direct`] with its ReLU, followed by the max pool `pool` over its output:
/// writes the pooled output `p` and each window's winner `arg` (see
/// [`crate::maxpool2d_argmax`]). Each image's convolution output goes to a scratch buffer
/// that stays in cache and is pooled from there: the full-size output is never written to
/// memory, and the backward ([`DzFrom::MaxPool`]) needs only `p` and `arg`. With
/// `winograd`, each image is convolved by Winograd F(2x2, 3x3) from the same padded copy
/// ([`winograd::forward_image_padded`]; needs [`winograd::reads_direct_padding`]).
// The forward convolution's arguments plus the pool and its two outputs.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_forward_direct(
    kernel: Kernel,
    d: &Conv2dDims,
    pool: &Pool2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    winograd: bool,
    p: &mut [f32],
    arg: &mut [u8],
) {
    check_pool(d, pool);
    d.check(x.len(), w.len(), d.output_len());
    assert_eq!(
        p.len(),
        pool.output_len(),
        "conv2d: p is not the pool's size"
    );
    assert_eq!(arg.len(), p.len(), "conv2d: arg and p differ in length");
    if p.is_empty() {
        return;
    }
    let (ci, (hp, wp)) = (d.c_in, d.padded_hw());
    let (in_img, out_img, p_img) = (d.h * d.w * ci, d.out_pixels() * d.c_out, p.len() / d.n);
    // Each image: padded, convolved into a scratch buffer, pooled from there.
    let mut run = |conv_image: &(dyn Fn(&[f32], &mut [f32]) + Sync)| {
        p.par_chunks_mut(p_img)
            .zip(arg.par_chunks_mut(p_img))
            .enumerate()
            .for_each(|(b, (pi, ai))| {
                with_scratch(&PADDED, hp * wp * ci, |xp| {
                    pad_image(d, &x[b * in_img..(b + 1) * in_img], None, xp);
                    with_scratch(&IMAGE_OUT, out_img, |yi| {
                        conv_image(xp, yi);
                        maxpool2d_forward_argmax_image(pool, yi, pi, ai);
                    })
                })
            })
    };
    if winograd {
        assert!(
            winograd::reads_direct_padding(d),
            "conv2d: Winograd cannot run on {d:?}"
        );
        winograd::with_packed_kernel(d, w, |u| {
            run(&|xp, yi| winograd::forward_image_padded(kernel, d, u, xp, wp, bias, true, yi))
        })
    } else {
        with_packed_kernel(d, w, bias, true, |pw| {
            run(&|xp, yi| forward_image(kernel, d, xp, pw, yi))
        })
    }
}

/// Panics unless `pool` pools `d`'s output.
fn check_pool(d: &Conv2dDims, pool: &Pool2dDims) {
    let input = (pool.n, pool.h, pool.w, pool.c);
    let output = (d.n, d.out_h, d.out_w, d.c_out);
    assert_eq!(input, output, "conv2d: the pool's input is not the output");
}

/// The forward convolution, direct, of `x ⊙ (x_relu_y > 0)` (no bias): a ReLU layer's
/// backward applied to its gradient `x` as each image is padded, for the input gradient of a
/// convolution with a fused ReLU taken as a forward convolution of the masked `dy`.
pub fn conv2d_forward_direct_relu_masked(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    x_relu_y: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    assert_eq!(
        x_relu_y.len(),
        x.len(),
        "conv2d: the mask and x differ in length"
    );
    forward(kernel, d, x, Some(x_relu_y), w, None, false, y)
}

/// [`conv2d_forward_direct`], with `x` masked by ReLU's backward as it is padded when
/// `x_relu_y` is given.
#[allow(clippy::too_many_arguments)]
fn forward(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    x_relu_y: Option<&[f32]>,
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    d.check(x.len(), w.len(), y.len());
    let (ci, co) = (d.c_in, d.c_out);
    let (hp, wp) = d.padded_hw();
    let (in_img, out_img) = (d.h * d.w * ci, d.out_h * d.out_w * co);
    with_packed_kernel(d, w, bias, relu, |pw| {
        y.par_chunks_mut(out_img).enumerate().for_each(|(b, yi)| {
            let xi = &x[b * in_img..(b + 1) * in_img];
            let mask = x_relu_y.map(|m| &m[b * in_img..(b + 1) * in_img]);
            with_scratch(&PADDED, hp * wp * ci, |xp| {
                pad_image(d, xi, mask, xp);
                forward_image(kernel, d, xp, pw, yi);
            })
        })
    });
}

/// Runs `f` with `w` (and `bias`, and the ReLU with `relu`: both applied in the
/// micro-kernel's epilogue) packed as the forward's B, in this thread's slot.
fn with_packed_kernel<R>(
    d: &Conv2dDims,
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    f: impl FnOnce(&PackedB) -> R,
) -> R {
    with_taken(&PACKED_W, |pw| {
        pw.pack(w, d.patch_len(), d.c_out, d.c_out, 1);
        if let Some(bias) = bias {
            pw.set_bias(bias);
        }
        pw.set_relu(relu);
        f(pw)
    })
}

/// One image's forward convolution from its padded copy `xp`: one GEMM per output row,
/// its im2col rows read in place as `kh` segments one padded row apart. `yi` (the image's
/// output) is overwritten; the bias, if any, is in `pw`.
fn forward_image(kernel: Kernel, d: &Conv2dDims, xp: &[f32], pw: &PackedB, yi: &mut [f32]) {
    let (ci, co) = (d.c_in, d.c_out);
    let (_, wp) = d.padded_hw();
    let seg = Segments {
        count: d.kh,
        len: d.kw * ci,
        stride: wp * ci,
    };
    for (oy, yr) in yi.chunks_exact_mut(d.out_w * co).enumerate() {
        let a = Mat {
            data: &xp[oy * d.stride * wp * ci..],
            rs: d.stride * ci,
            cs: 1,
        };
        gemm_packed_segments(kernel, d.out_w, a, seg, pw, 0.0, yr, co);
    }
}

/// Weight gradient, direct: `dw = sum over images and pixels of x (shifted) ⊗ dy`; `dw` is
/// overwritten. Each thread sums a contiguous range of images into its own partial, and the
/// partials are added in a fixed order (deterministic). Runs on the version-4 micro-kernel
/// `kernel`; panics if this CPU cannot run it.
pub fn conv2d_backward_weight_direct(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    backward_weight(kernel, d, x, dy, None, dw, None)
}

/// Weight and bias gradients, direct, of a convolution with a fused ReLU, `y = max(conv(x, w)
/// + b, 0)`: [`conv2d_backward_weight_direct`] of `dz = dy ⊙ (y > 0)`, and `db = Σ dz` over
/// every position when asked. The mask is applied as each band of `dy` is packed and `db`
/// summed from the packed band while it is in cache: `dz` is never written out.
pub fn conv2d_relu_backward_weight_direct(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    assert_eq!(y.len(), dy.len(), "conv2d: y and dy differ in length");
    backward_weight(kernel, d, x, dy, Some(y), dw, db)
}

/// The weight gradient of `dy`, or of `dy ⊙ (relu_y > 0)` with `relu_y`; and the bias
/// gradient (the same, summed over every position) into `db` when given.
fn backward_weight(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    dy: &[f32],
    relu_y: Option<&[f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    d.check(x.len(), dw.len(), dy.len());
    if let Some(db) = &db {
        assert_eq!(
            db.len(),
            d.c_out,
            "conv2d: db needs one value per output channel"
        );
    }
    let (ci, co) = (d.c_in, d.c_out);
    let (hp, wp) = d.padded_hw();
    let (in_img, out_img) = (d.h * d.w * ci, d.out_pixels() * co);
    let ranges = rayon::current_num_threads().clamp(1, d.n);
    let per_range = d.n.div_ceil(ranges);
    let ranges = d.n.div_ceil(per_range);
    // Each range's partial: its dw, then its db when asked.
    let len = dw.len() + if db.is_some() { co } else { 0 };
    with_scratch(&PARTIALS, ranges * len, |partials| {
        partials
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(r, part)| {
                part.fill(0.0);
                let (part, part_db) = part.split_at_mut(d.weight_len());
                let images = r * per_range..((r + 1) * per_range).min(d.n);
                with_scratch(&PADDED, hp * wp * ci, |xp| {
                    with_taken(&PACKED_DY, |pdy| {
                        for b in images {
                            pad_image(d, &x[b * in_img..(b + 1) * in_img], None, xp);
                            let dyi = &dy[b * out_img..(b + 1) * out_img];
                            let yi = relu_y.map(|y| &y[b * out_img..(b + 1) * out_img]);
                            let pack = |pdy: &mut PackedB, oy: usize, rows: usize| {
                                let (pixels, at) = (rows * d.out_w, oy * d.out_w * co);
                                match yi {
                                    None => pdy.pack(&dyi[at..], pixels, co, co, 1),
                                    Some(yi) => {
                                        pdy.pack_relu_masked(&dyi[at..], &yi[at..], pixels, co)
                                    }
                                }
                            };
                            add_image_weight_grad(kernel, d, xp, pdy, pack, part, part_db);
                        }
                    })
                });
            });
        sum_partials_at(partials, ranges, len, 0, dw);
        if let Some(db) = db {
            sum_partials_at(partials, ranges, len, d.weight_len(), db);
        }
    });
}

/// Where [`conv2d_backward_direct`] gets the gradient `dz` of the convolution's output
/// (before its ReLU, when it has one) from.
#[derive(Clone, Copy, Debug)]
pub enum DzFrom<'a> {
    /// `dy`, masked by ReLU's backward (`dy` where `relu_y > 0`, else 0) when a fused ReLU's
    /// output `relu_y` is given.
    Dy {
        dy: &'a [f32],
        relu_y: Option<&'a [f32]>,
    },
    /// A max pool over the fused ReLU's output `y` (windows that cannot overlap), given its
    /// output `p`, its winners `arg` ([`conv2d_relu_maxpool_forward_direct`]) and its output
    /// gradient `dp`: `dz = relu_backward(y, maxpool_backward(y, dp))`, made without `y`.
    MaxPool {
        pool: &'a Pool2dDims,
        p: &'a [f32],
        arg: &'a [u8],
        dp: &'a [f32],
    },
}

/// All the gradients of a stride-1 convolution in one pass over the images, direct: `dx`
/// (when given), `dw` and `db` (when given) of `dz` ([`DzFrom`]). The kernel `w` is read
/// only for `dx` (without it, `w` may be empty). `d` must have an input
/// gradient that is a forward convolution ([`Conv2dDims::input_gradient_as_forward`]);
/// panics otherwise, or if a pool's windows overlap or its input is not `d`'s output.
///
/// Why one pass: the input gradient pads each image of `dz` for its forward convolution,
/// and the weight gradient reads the same `dz` in bands. Run separately, each reads `dy`
/// (and the ReLU's output) from memory; here each image's padded `dz` is made once, and the
/// weight gradient packs its bands from it while it is in cache. After a max pool, `dz` is
/// routed from the pool's gradient straight into the padded image: the pool's input
/// gradient (as large as the convolution's output) is never written out or read back. The
/// weight gradient keeps its fixed summation order (one partial per range of images). With
/// `dx_winograd`, each image of `dx` is made by Winograd F(2x2, 3x3) from the padded `dz`
/// (needs [`winograd::reads_direct_padding`] of the input gradient's convolution); with
/// `dw_winograd`, the weight gradient by Winograd F(3x3, 2x2) from the same padded copies
/// ([`winograd::WeightGrad`]; needs [`winograd::reads_direct_padding`] of `d`).
// The convolution's tensors and its three gradients.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_direct(
    kernel: Kernel,
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    dz: DzFrom,
    dx: Option<&mut [f32]>,
    dx_winograd: bool,
    dw_winograd: bool,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    let t = d
        .input_gradient_as_forward()
        .expect("conv2d_backward_direct: the input gradient is not a forward convolution");
    d.check(x.len(), dw.len(), d.output_len());
    if let Some(dx) = &dx {
        assert_eq!(dx.len(), x.len(), "conv2d: dx and x differ in length");
        assert_eq!(w.len(), d.weight_len(), "conv2d: w.len()");
    }
    match dz {
        DzFrom::Dy { dy, relu_y } => {
            assert_eq!(
                dy.len(),
                d.output_len(),
                "conv2d: dy is not the output's size"
            );
            if let Some(y) = relu_y {
                assert_eq!(y.len(), dy.len(), "conv2d: y and dy differ in length");
            }
        }
        DzFrom::MaxPool { pool, p, arg, dp } => {
            check_pool(d, pool);
            assert!(pool.disjoint(), "conv2d: the pool's windows overlap");
            let len = pool.output_len();
            assert!(
                p.len() == len && arg.len() == len && dp.len() == len,
                "conv2d: p, arg and dp must be the pool's size"
            );
        }
    }
    if let Some(db) = &db {
        assert_eq!(
            db.len(),
            d.c_out,
            "conv2d: db needs one value per output channel"
        );
    }
    let (ci, co) = (d.c_in, d.c_out);
    let ((hp, wp), (thp, twp)) = (d.padded_hw(), t.padded_hw());
    let (in_img, out_img) = (d.h * d.w * ci, d.out_pixels() * co);
    let ranges = rayon::current_num_threads().clamp(1, d.n);
    let per_range = d.n.div_ceil(ranges);
    let ranges = d.n.div_ceil(per_range);
    let len = dw.len() + if db.is_some() { co } else { 0 };
    let wants_dx = dx.is_some();
    // Each range's share of dx, when asked.
    let mut dx_ranges: Vec<Option<&mut [f32]>> = match dx {
        Some(dx) => dx.chunks_mut(per_range * in_img).map(Some).collect(),
        None => (0..ranges).map(|_| None).collect(),
    };
    // dz's first output row inside its padded copy.
    let row0 = (t.pad_top * twp + t.pad_left) * co;
    // Image `b`'s dz into `dzp`, zero padded as the input gradient's convolution reads it.
    let fill_dz = |b: usize, dzp: &mut [f32]| match dz {
        DzFrom::Dy { dy, relu_y } => {
            let yi = relu_y.map(|y| &y[b * out_img..][..out_img]);
            pad_image(&t, &dy[b * out_img..][..out_img], yi, dzp)
        }
        DzFrom::MaxPool { pool, p, arg, dp } => {
            zero_border(&t, dzp);
            let n = pool.out_h * pool.out_w * pool.c;
            let (pi, ai, dpi) = (&p[b * n..][..n], &arg[b * n..][..n], &dp[b * n..][..n]);
            maxpool2d_relu_backward_routed_image_into(pool, pi, ai, dpi, &mut dzp[row0..], twp * co)
        }
    };
    // The whole pass, given how an image of dx is made from its padded dz.
    let run = |dx_image: &(dyn Fn(&[f32], &mut [f32]) + Sync)| {
        with_scratch(&PARTIALS, ranges * len, |partials| {
            partials
                .par_chunks_mut(len)
                .zip(dx_ranges.par_iter_mut())
                .enumerate()
                .for_each(|(r, (part, dx_range))| {
                    part.fill(0.0);
                    let (part, part_db) = part.split_at_mut(d.weight_len());
                    let images = r * per_range..((r + 1) * per_range).min(d.n);
                    // The range's images, each weight gradient gathered by `acc` (Winograd)
                    // or added directly.
                    let range = |mut acc: Option<&mut winograd::WeightGrad>| {
                        with_scratch(&PADDED, hp * wp * ci, |xp| {
                            with_scratch(&PADDED_DZ, thp * twp * co, |dzp| {
                                with_taken(&PACKED_DY, |pdy| {
                                    for (i, b) in images.enumerate() {
                                        fill_dz(b, dzp);
                                        if let Some(dx_range) = dx_range.as_deref_mut() {
                                            dx_image(dzp, &mut dx_range[i * in_img..][..in_img]);
                                        }
                                        pad_image(d, &x[b * in_img..][..in_img], None, xp);
                                        if let Some(acc) = acc.as_deref_mut() {
                                            let dz = &dzp[row0..];
                                            acc.add_image(kernel, d, xp, dz, twp, part_db);
                                            continue;
                                        }
                                        let pack = |pdy: &mut PackedB, oy: usize, rows: usize| {
                                            let at = row0 + oy * twp * co;
                                            pdy.pack_runs(&dzp[at..], rows, d.out_w, twp * co, co)
                                        };
                                        add_image_weight_grad(
                                            kernel, d, xp, pdy, pack, part, part_db,
                                        );
                                    }
                                })
                            })
                        });
                        if let Some(acc) = acc {
                            acc.finish(kernel, d, part, part_db);
                        }
                    };
                    if dw_winograd {
                        winograd::WeightGrad::with(d, |acc| range(Some(acc)))
                    } else {
                        range(None)
                    }
                });
            sum_partials_at(partials, ranges, len, 0, dw);
            if let Some(db) = db {
                sum_partials_at(partials, ranges, len, d.weight_len(), db);
            }
        })
    };
    if !wants_dx {
        return run(&|_, _| unreachable!("dx is not asked for"));
    }
    with_scratch(&ROTATED, w.len(), |r| {
        crate::conv2d::rotate_kernel(d, w, r);
        if dx_winograd {
            assert!(
                winograd::reads_direct_padding(&t),
                "conv2d: Winograd cannot run on {t:?}"
            );
            winograd::with_packed_kernel(&t, r, |u| {
                run(&|dzp, dxi| {
                    winograd::forward_image_padded(kernel, &t, u, dzp, twp, None, false, dxi)
                })
            })
        } else {
            with_taken(&PACKED_W, |pw| {
                pw.pack(r, t.patch_len(), t.c_out, t.c_out, 1);
                run(&|dzp, dxi| forward_image(kernel, &t, dzp, pw, dxi))
            })
        }
    })
}

/// Zeros the border of a padded image (`hp x wp x c_in`, [`Conv2dDims::padded_hw`]): every
/// element outside the image's `h x w` at `(pad_top, pad_left)`.
fn zero_border(d: &Conv2dDims, xp: &mut [f32]) {
    let (_, wp) = d.padded_hw();
    let c = d.c_in;
    let left = d.pad_left.min(wp);
    let cols = d.w.min(wp - left);
    for (py, row) in xp.chunks_exact_mut(wp * c).enumerate() {
        if py < d.pad_top || py >= d.pad_top + d.h {
            row.fill(0.0);
        } else {
            row[..left * c].fill(0.0);
            row[(left + cols) * c..].fill(0.0);
        }
    }
}

/// Adds one image's weight gradient (and bias gradient, unless `part_db` is empty) to
/// `part` / `part_db`: `xp` is the image padded, and `pack(pdy, oy, rows)` packs the
/// gradient `dz` of output rows `oy..oy + rows` (`rows * out_w` pixels by `c_out`) into `pdy`.
fn add_image_weight_grad(
    kernel: Kernel,
    d: &Conv2dDims,
    xp: &[f32],
    pdy: &mut PackedB,
    mut pack: impl FnMut(&mut PackedB, usize, usize),
    part: &mut [f32],
    part_db: &mut [f32],
) {
    let (ci, co) = (d.c_in, d.c_out);
    let (_, wp) = d.padded_hw();
    // K walks the output pixels of a band of output rows: out_w per row, rows `stride`
    // padded rows apart. A band's packed dy (32 floats per pixel) stays in L1 (~16 KB)
    // while the kernel positions run over it, instead of streaming a whole image's from L2
    // once per position.
    let band = (128 / d.out_w).clamp(1, d.out_h);
    let seg_of = |rows: usize| Segments {
        count: rows,
        len: d.out_w,
        stride: d.stride * wp * ci,
    };
    // Kernel positions of one kernel row taken together in one GEMM: their (kx, ci) lie side
    // by side in a padded row (and are consecutive rows of the HWIO dw), so `group`
    // positions are one A of `group * c_in` rows at row stride 1. With 3 input channels
    // this fills the 14-row tiles that 3 rows left mostly empty (`cargo bench --bench
    // conv2d`, Xeon AVX-512: resnet20's stem 1.4x, keras6's first layer 1.1x; 16 channels
    // within the noise); past 48 rows it measured slower (0.8-0.9x at 32-128 channels), so
    // wider layers keep one position per GEMM.
    let group = (48 / ci).clamp(1, d.kw);
    for oy in (0..d.out_h).step_by(band) {
        let rows = band.min(d.out_h - oy);
        pack(pdy, oy, rows);
        if !part_db.is_empty() {
            pdy.add_column_sums(part_db);
        }
        // The band's first input row, in the padded image.
        let top = oy * d.stride * wp * ci;
        for ky in 0..d.kh {
            for kx in (0..d.kw).step_by(group) {
                // The rows (kx.., ci) of `cols` kernel positions side by side: xp read
                // transposed (row stride 1).
                let cols = group.min(d.kw - kx);
                let a = Mat {
                    data: &xp[top + (ky * wp + kx) * ci..],
                    rs: 1,
                    cs: d.stride * ci,
                };
                let (m, at) = (cols * ci, (ky * d.kw + kx) * ci * co);
                let c = &mut part[at..at + m * co];
                gemm_packed_segments(kernel, m, a, seg_of(rows), pdy, 1.0, c, co);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{conv2d_backward_weight_reference, conv2d_forward_reference};
    use crate::testutil::{assert_close, random_vec, v4_kernels};
    use crate::Padding;

    /// Awkward shapes for the direct kernels: odd sizes and channel counts, kernels 1 to 5
    /// (a 1x1 with stride 2 too), strides 1 and 2, both paddings, rows wider than a tile.
    fn shapes() -> Vec<Conv2dDims> {
        let cases = [
            // n, h, w, c_in, k, c_out, stride
            (1, 5, 5, 1, 3, 1, 1),
            (2, 7, 5, 3, 3, 5, 1),
            (1, 9, 11, 3, 5, 6, 1),
            (2, 7, 7, 5, 3, 9, 2),
            (3, 6, 9, 2, 2, 3, 2),
            (1, 4, 4, 13, 4, 3, 1),
            (5, 6, 6, 17, 1, 3, 2),
            (2, 10, 10, 3, 5, 4, 2),
            (3, 5, 33, 16, 3, 16, 1),
            (2, 6, 30, 16, 3, 40, 1),
            (2, 8, 8, 32, 3, 33, 2),
            (1, 5, 6, 70, 3, 35, 1),
            // Row strides of A that the AVX-512 kernel specialises (c_in x stride = 32, 128).
            (2, 5, 7, 32, 3, 36, 1),
            (1, 6, 7, 64, 3, 40, 2),
            // Even sizes, 3x3 stride 1: Winograd can read the padded copies.
            (2, 6, 4, 64, 3, 64, 1),
            (1, 4, 8, 17, 3, 33, 1),
            // Winograd's weight gradient gathers 4 images of 20 tiles per block: a full
            // block and a partial one across the ranges of images.
            (7, 8, 10, 20, 3, 18, 1),
        ];
        let mut v = Vec::new();
        for &(n, h, w, c_in, k, c_out, s) in &cases {
            for p in [Padding::Same, Padding::Valid] {
                if let Some(d) = Conv2dDims::new(n, h, w, c_in, k, k, c_out, s, p) {
                    v.push(d);
                }
            }
        }
        v
    }

    #[test]
    fn padded_image_has_the_image_inside_and_zeros_around() {
        let d = Conv2dDims::new(1, 3, 4, 2, 3, 3, 1, 1, Padding::Same).unwrap();
        let img: Vec<f32> = (1..=24).map(|v| v as f32).collect();
        let (hp, wp) = d.padded_hw();
        assert_eq!((hp, wp), (5, 6));
        let mut xp = vec![f32::NAN; hp * wp * 2];
        pad_image(&d, &img, None, &mut xp);
        for py in 0..hp {
            for px in 0..wp {
                for c in 0..2 {
                    let inside = (1..4).contains(&py) && (1..5).contains(&px);
                    let want = if inside {
                        img[((py - 1) * 4 + px - 1) * 2 + c]
                    } else {
                        0.0
                    };
                    assert_eq!(xp[(py * wp + px) * 2 + c], want, "({py}, {px}, {c})");
                }
            }
        }
    }

    #[test]
    fn forward_direct_matches_reference() {
        for (kernel, (i, d)) in v4_kernels()
            .into_iter()
            .flat_map(|k| shapes().into_iter().enumerate().map(move |s| (k, s)))
        {
            let d = &d;
            let x = random_vec(d.input_len(), 10 + i as u64);
            let w = random_vec(d.weight_len(), 20 + i as u64);
            let bias = random_vec(d.c_out, 30 + i as u64);
            for b in [None, Some(bias.as_slice())] {
                let mut want = vec![f32::NAN; d.output_len()];
                conv2d_forward_reference(d, &x, &w, b, &mut want);
                let mut got = vec![f32::NAN; d.output_len()];
                conv2d_forward_direct(kernel, d, &x, &w, b, false, &mut got);
                let what = format!("{kernel:?} direct forward {d:?} bias={}", b.is_some());
                assert_close(&got, &want, 1e-5, &what);
                want.iter_mut().for_each(|v| *v = v.max(0.0));
                conv2d_forward_direct(kernel, d, &x, &w, b, true, &mut got);
                assert_close(&got, &want, 1e-5, &format!("{what} + relu"));
            }
        }
    }

    /// Whether to test a direct-family routine with its images convolved directly only, or
    /// by Winograd too (where Winograd can read the direct variant's padded copies: for the
    /// input gradient, the layer and its input-gradient convolution share that condition).
    fn winograd_options(d: &Conv2dDims) -> impl Iterator<Item = bool> + Clone {
        let both = crate::conv2d_winograd::reads_direct_padding(d);
        [false, true].into_iter().filter(move |&w| both || !w)
    }

    /// [`winograd_options`] for the backward's two convolutions: (input gradient, weight
    /// gradient), each direct or by Winograd.
    fn winograd_pairs(d: &Conv2dDims) -> impl Iterator<Item = (bool, bool)> + Clone {
        let d = *d;
        winograd_options(&d).flat_map(move |dx| winograd_options(&d).map(move |dw| (dx, dw)))
    }

    /// A ReLU output: half its values exactly 0.
    fn relu_output(len: usize, seed: u64) -> Vec<f32> {
        random_vec(len, seed)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect()
    }

    #[test]
    fn relu_masked_gradients_match_mask_then_reference() {
        use crate::bias::bias_grad_reference;
        use crate::relu::relu_backward_reference;
        for (kernel, (i, d)) in v4_kernels()
            .into_iter()
            .flat_map(|k| shapes().into_iter().enumerate().map(move |s| (k, s)))
        {
            let d = &d;
            let x = random_vec(d.input_len(), 80 + i as u64);
            let dy = random_vec(d.output_len(), 90 + i as u64);
            let y = relu_output(d.output_len(), 100 + i as u64);
            let mut dz = vec![f32::NAN; d.output_len()];
            relu_backward_reference(&y, &dy, &mut dz);
            let what = format!("{kernel:?} {d:?}");
            // dw and db from the masked packing.
            let (mut want_dw, mut want_db) = (vec![0.0; d.weight_len()], vec![0.0; d.c_out]);
            conv2d_backward_weight_reference(d, &x, &dz, &mut want_dw);
            bias_grad_reference(&dz, d.c_out, &mut want_db);
            let (mut dw, mut db) = (vec![f32::NAN; d.weight_len()], vec![f32::NAN; d.c_out]);
            conv2d_relu_backward_weight_direct(kernel, d, &x, &y, &dy, &mut dw, Some(&mut db));
            assert_close(&dw, &want_dw, 1e-4, &format!("{what} masked dw"));
            assert_close(&db, &want_db, 1e-4, &format!("{what} masked db"));
            conv2d_relu_backward_weight_direct(kernel, d, &x, &y, &dy, &mut dw, None);
            assert_close(&dw, &want_dw, 1e-4, &format!("{what} masked dw, no db"));
            // The forward of a masked input (the input gradient's form).
            let w = random_vec(d.weight_len(), 110 + i as u64);
            let xm = relu_output(d.input_len(), 120 + i as u64);
            let mut masked = vec![f32::NAN; d.input_len()];
            relu_backward_reference(&xm, &x, &mut masked);
            let mut want = vec![f32::NAN; d.output_len()];
            conv2d_forward_reference(d, &masked, &w, None, &mut want);
            let mut got = vec![f32::NAN; d.output_len()];
            conv2d_forward_direct_relu_masked(kernel, d, &x, &xm, &w, &mut got);
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("{what} forward of a masked input"),
            );
        }
    }

    #[test]
    fn fused_backward_matches_reference_gradients() {
        use crate::bias::bias_grad_reference;
        use crate::conv2d::conv2d_backward_input_reference;
        use crate::relu::relu_backward_reference;
        let stride_1 = shapes().into_iter().filter_map(|d| {
            d.input_gradient_as_forward()?;
            Some(d)
        });
        let mut tested = 0;
        for (kernel, (i, d)) in v4_kernels()
            .into_iter()
            .flat_map(|k| stride_1.clone().enumerate().map(move |s| (k, s)))
        {
            let d = &d;
            let x = random_vec(d.input_len(), 130 + i as u64);
            let w = random_vec(d.weight_len(), 140 + i as u64);
            let dy = random_vec(d.output_len(), 150 + i as u64);
            let y = relu_output(d.output_len(), 160 + i as u64);
            for relu in [false, true] {
                let mut dz = dy.clone();
                if relu {
                    relu_backward_reference(&y, &dy, &mut dz);
                }
                let mut want_dx = vec![f32::NAN; d.input_len()];
                conv2d_backward_input_reference(d, &dz, &w, &mut want_dx);
                let mut want_dw = vec![f32::NAN; d.weight_len()];
                conv2d_backward_weight_reference(d, &x, &dz, &mut want_dw);
                let mut want_db = vec![0.0; d.c_out];
                bias_grad_reference(&dz, d.c_out, &mut want_db);
                let relu_y = relu.then_some(y.as_slice());
                for (with_db, (wx, ww)) in winograd_pairs(d).flat_map(|o| [(false, o), (true, o)]) {
                    let mut dx = vec![f32::NAN; d.input_len()];
                    let mut dw = vec![f32::NAN; d.weight_len()];
                    let mut db = vec![f32::NAN; d.c_out];
                    let db_arg = with_db.then_some(db.as_mut_slice());
                    let dz = DzFrom::Dy { dy: &dy, relu_y };
                    let dx_arg = Some(dx.as_mut_slice());
                    conv2d_backward_direct(kernel, d, &x, &w, dz, dx_arg, wx, ww, &mut dw, db_arg);
                    let what =
                        format!("{kernel:?} {d:?} relu {relu} db {with_db} winograd {wx} {ww}");
                    assert_close(&dx, &want_dx, 1e-4, &format!("{what}: dx"));
                    assert_close(&dw, &want_dw, 1e-4, &format!("{what}: dw"));
                    if with_db {
                        assert_close(&db, &want_db, 1e-4, &format!("{what}: db"));
                    } else {
                        assert!(db.iter().all(|v| v.is_nan()), "{what}: db written");
                    }
                }
            }
            tested += 1;
        }
        assert!(tested >= 6 * v4_kernels().len(), "only {tested} shapes");
    }

    /// The pooled output against the references (conv, ReLU, pool); each recorded winner
    /// holds its window's maximum (up to the convolution's rounding: the kernel's sums and
    /// the reference's differ in the last bits, so an exact tie may resolve either way).
    #[test]
    fn forward_with_pool_matches_references() {
        use crate::conv2d::test_pools;
        use crate::maxpool2d::maxpool2d_forward_reference;
        for kernel in v4_kernels() {
            for (i, d) in shapes().iter().enumerate() {
                for pool in test_pools(d).into_iter().filter(|p| p.disjoint()) {
                    let x = random_vec(d.input_len(), 3000 + i as u64);
                    let w = random_vec(d.weight_len(), 3100 + i as u64);
                    let bias = random_vec(d.c_out, 3200 + i as u64);
                    let mut y = vec![f32::NAN; d.output_len()];
                    conv2d_forward_reference(d, &x, &w, Some(&bias), &mut y);
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                    let mut want_p = vec![f32::NAN; pool.output_len()];
                    maxpool2d_forward_reference(&pool, &y, &mut want_p);
                    let (mut p, mut arg) = (vec![f32::NAN; want_p.len()], vec![0u8; want_p.len()]);
                    let b = Some(bias.as_slice());
                    for wino in winograd_options(d) {
                        conv2d_relu_maxpool_forward_direct(
                            kernel, d, &pool, &x, &w, b, wino, &mut p, &mut arg,
                        );
                        let what = format!("{kernel:?} {d:?} {pool:?} winograd {wino}");
                        assert_close(&p, &want_p, 1e-5, &what);
                        let c = d.c_out;
                        for (o, (&a, &m)) in arg.iter().zip(&want_p).enumerate() {
                            let (ch, px) = (o % c, o / c);
                            let (img, rest) = (
                                px / (pool.out_h * pool.out_w),
                                px % (pool.out_h * pool.out_w),
                            );
                            let (oy, ox) = (rest / pool.out_w, rest % pool.out_w);
                            let (ky, kx) = (a as usize / pool.k, a as usize % pool.k);
                            let iy = pool.in_y(oy, ky).expect("a winner inside the image");
                            let ix = pool.in_x(ox, kx).expect("a winner inside the image");
                            let v = y[((img * d.out_h + iy) * d.out_w + ix) * c + ch];
                            assert!(
                                (v - m).abs() <= 1e-5 * m.abs().max(1.0),
                                "{what}: output {o}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dz_routed_from_a_max_pool_matches_references() {
        use crate::conv2d::{test_pools, PoolCase};
        let mut tested = 0;
        for kernel in v4_kernels() {
            for (i, d) in shapes().iter().enumerate() {
                if d.input_gradient_as_forward().is_none() {
                    continue;
                }
                for (j, pool) in test_pools(d).iter().filter(|p| p.disjoint()).enumerate() {
                    let c = PoolCase::new(d, pool, 2000 + 10 * i as u64 + j as u64);
                    let (x, w) = (&c.x, &c.w);
                    let [want_dx, want_dw, want_db] = &c.want;
                    let dz = DzFrom::MaxPool {
                        pool,
                        p: &c.p,
                        arg: &c.arg,
                        dp: &c.dp,
                    };
                    for (wx, ww) in winograd_pairs(d) {
                        let (mut dx, mut dw) = (
                            vec![f32::NAN; d.input_len()],
                            vec![f32::NAN; d.weight_len()],
                        );
                        let mut db = vec![f32::NAN; d.c_out];
                        conv2d_backward_direct(
                            kernel,
                            d,
                            x,
                            w,
                            dz,
                            Some(&mut dx),
                            wx,
                            ww,
                            &mut dw,
                            Some(&mut db),
                        );
                        let what = format!("{kernel:?} {d:?} {pool:?} winograd {wx} {ww}");
                        assert_close(&dx, want_dx, 1e-4, &format!("{what}: dx"));
                        assert_close(&dw, want_dw, 1e-4, &format!("{what}: dw"));
                        assert_close(&db, want_db, 1e-4, &format!("{what}: db"));
                    }
                    // Without dx (a network's first layer).
                    for ww in winograd_options(d) {
                        let mut dw = vec![f32::NAN; d.weight_len()];
                        conv2d_backward_direct(kernel, d, x, w, dz, None, false, ww, &mut dw, None);
                        assert_close(
                            &dw,
                            want_dw,
                            1e-4,
                            &format!("{kernel:?} {d:?} {pool:?}: dw without dx, winograd {ww}"),
                        );
                    }
                    tested += 1;
                }
            }
        }
        assert!(tested >= 10 * v4_kernels().len(), "only {tested} cases");
    }

    #[test]
    fn backward_weight_direct_matches_reference() {
        for (kernel, (i, d)) in v4_kernels()
            .into_iter()
            .flat_map(|k| shapes().into_iter().enumerate().map(move |s| (k, s)))
        {
            let d = &d;
            let x = random_vec(d.input_len(), 60 + i as u64);
            let dy = random_vec(d.output_len(), 70 + i as u64);
            let mut want = vec![f32::NAN; d.weight_len()];
            conv2d_backward_weight_reference(d, &x, &dy, &mut want);
            let mut got = vec![f32::NAN; d.weight_len()];
            conv2d_backward_weight_direct(kernel, d, &x, &dy, &mut got);
            assert_close(&got, &want, 1e-4, &format!("{kernel:?} direct dw {d:?}"));
        }
    }
}
