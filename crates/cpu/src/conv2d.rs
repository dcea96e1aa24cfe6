//! 2-D convolution (cross-correlation, as in every DL framework), forward and both backward passes.
//!
//! Layout: input `x` is NHWC `[n][h][w][c_in]`, kernel `w` is HWIO `[kh][kw][c_in][c_out]`
//! (Keras' own layout), output `y` is NHWC `[n][out_h][out_w][c_out]`.
//!
//! Math, with `iy = oy * stride + ky - pad_top` and `ix = ox * stride + kx - pad_left`
//! (positions outside the image read as zero):
//! - forward:         `y[b,oy,ox,co]  = bias[co] + sum_{ky,kx,ci} x[b,iy,ix,ci] * w[ky,kx,ci,co]`
//! - input gradient:  `dx[b,iy,ix,ci] = sum_{oy,ox,ky,kx,co} dy[b,oy,ox,co] * w[ky,kx,ci,co]`
//! - weight gradient: `dw[ky,kx,ci,co] = sum_{b,oy,ox} x[b,iy,ix,ci] * dy[b,oy,ox,co]`
//!
//! The variants ([`ConvVariant`]; `conv2d_forward`, `conv2d_backward_input` and
//! `conv2d_backward_weight` run the one chosen for each layer, direct by default where a
//! version-4 GEMM kernel is active):
//! 1. `*_reference`: the loops above, written out. The specification.
//! 2. im2col + GEMM (`*_im2col`, below; Chellapilla et al., "High Performance Convolutional Neural
//!    Networks for Document Processing", 2006). `im2col` copies each output pixel's receptive
//!    field into one row of a `[pixels][kh*kw*c_in]` matrix; the convolution is then one GEMM
//!    with the HWIO kernel seen as a `[kh*kw*c_in][c_out]` matrix, and its result is already
//!    NHWC. NHWC makes this cheap: a window row `x[iy][ix..ix+kw][..]` is one contiguous run of
//!    `kw*c_in` floats, so im2col is a few `memcpy`s per pixel. A 1x1 stride-1 convolution needs
//!    no im2col at all: NHWC input *is* the `[pixels][c_in]` matrix.
//!    The batch is cut into chunks of images, one rayon task each, so the im2col buffer of a
//!    task (about 1 MB) stays in cache between being written and being multiplied, instead of
//!    one 75 MB matrix for a whole batch streaming through memory.
//!    - input gradient, stride 1 with symmetric padding (3x3 `Same`: most layers): a forward
//!      convolution of `dy` with the kernel rotated by 180 degrees and its channel axes swapped
//!      (`Conv2dDims::input_gradient_as_forward`), so it is im2col + one GEMM straight into dx.
//!      On resnet20 (batch 128) this took the step from 418 to 434 images/s: the general path
//!      below multiplies with K = c_out (16 in the first stage) and writes a dcols matrix
//!      kh*kw times the size of dx before scattering it back.
//!    - input gradient otherwise (strided layers): `dcols = dy · wᵀ` (GEMM), then `col2im`
//!      adds each row back onto the pixels it came from.
//!    - weight gradient: `dw = colsᵀ · dy`, summed over chunks: each task accumulates into its
//!      own partial `dw`, and the partials are added at the end (no locks, deterministic).
//!
//! Variants 3, direct (`crate::conv2d_direct`), and 4, Winograd F(2x2, 3x3)
//! (`crate::conv2d_winograd`), live in their own files, each with a header like this one.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::LocalKey;

use rayon::prelude::*;

use crate::conv2d_direct::{
    conv2d_backward_direct, conv2d_backward_weight_direct, conv2d_forward_direct,
    conv2d_forward_direct_relu_masked, conv2d_relu_backward_weight_direct,
    conv2d_relu_maxpool_forward_direct, DzFrom,
};
use crate::conv2d_winograd::{conv2d_forward_winograd, reads_direct_padding, winograd_applies};
use crate::gemm::{gemm, gemm_serial, Mat};
use crate::gemm_packed::{self, PackedB};
use crate::maxpool2d::Pool2dDims;
use crate::padding::{input_coord, window};
use crate::Padding;

/// Sizes of one convolution. Build with [`Conv2dDims::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dDims {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c_in: usize,
    pub kh: usize,
    pub kw: usize,
    pub c_out: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Conv2dDims {
    /// `None` when the kernel does not fit the input (`Valid` with `k > h`) or a size is zero.
    // The sizes in the order of the NHWC input and HWIO kernel shapes, as callers read them off.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        h: usize,
        w: usize,
        c_in: usize,
        kh: usize,
        kw: usize,
        c_out: usize,
        stride: usize,
        padding: Padding,
    ) -> Option<Self> {
        if n == 0 || c_in == 0 || c_out == 0 {
            return None;
        }
        let (out_h, pad_top) = padding.output_and_pad(h, kh, stride)?;
        let (out_w, pad_left) = padding.output_and_pad(w, kw, stride)?;
        Some(Conv2dDims {
            n,
            h,
            w,
            c_in,
            kh,
            kw,
            c_out,
            stride,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }

    /// The convolution whose forward pass is this one's input gradient, where one exists:
    /// stride 1 with symmetric padding (an odd kernel under `Same`, or a 1x1 under `Valid`).
    /// Then `dx[iy][ix][ci] = sum dy[iy + ky - pad][ix + kx - pad][co] * w'[ky][kx][co][ci]`
    /// with `w'` the kernel rotated by 180 degrees and its channel axes swapped
    /// (`rotate_kernel`): a convolution of `dy` with `c_out` inputs and `c_in` outputs and
    /// the same padding. `None` for pointwise layers, whose input gradient is one GEMM already.
    pub fn input_gradient_as_forward(&self) -> Option<Conv2dDims> {
        let symmetric = self.kh == 2 * self.pad_top + 1 && self.kw == 2 * self.pad_left + 1;
        let same_size = self.out_h == self.h && self.out_w == self.w;
        if self.stride != 1 || !symmetric || !same_size || self.is_pointwise() {
            return None;
        }
        Some(Conv2dDims {
            c_in: self.c_out,
            c_out: self.c_in,
            ..*self
        })
    }

    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c_in
    }
    pub fn weight_len(&self) -> usize {
        self.patch_len() * self.c_out
    }
    pub fn output_len(&self) -> usize {
        self.n * self.out_pixels() * self.c_out
    }
    /// Length of one im2col row: `kh * kw * c_in`.
    pub fn patch_len(&self) -> usize {
        self.kh * self.kw * self.c_in
    }
    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }
    /// Forward floating-point operations (2 per multiply-add).
    pub fn flops(&self) -> u64 {
        2 * (self.n * self.out_pixels()) as u64 * self.patch_len() as u64 * self.c_out as u64
    }
    /// A 1x1, stride-1 convolution without padding is a plain GEMM on the NHWC input (which
    /// is already the `[pixels][c_in]` matrix): no im2col needed.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad_top == 0 && self.pad_left == 0
    }
    /// The input row `iy` read by output row `oy` at kernel row `ky`, if inside the image.
    #[inline]
    fn in_y(&self, oy: usize, ky: usize) -> Option<usize> {
        input_coord(oy, ky, self.stride, self.pad_top, self.h)
    }
    /// The input column `ix` read by output column `ox` at kernel column `kx`, if inside.
    #[inline]
    fn in_x(&self, ox: usize, kx: usize) -> Option<usize> {
        input_coord(ox, kx, self.stride, self.pad_left, self.w)
    }
    pub(crate) fn check(&self, x: usize, w: usize, y: usize) {
        assert_eq!(x, self.input_len(), "conv2d: input length");
        assert_eq!(w, self.weight_len(), "conv2d: weight length");
        assert_eq!(y, self.output_len(), "conv2d: output length");
    }
}

// ---------------------------------------------------------------------------------------------
// Version 1: reference loops.

/// Forward pass, plain loops. `y` is overwritten.
pub fn conv2d_forward_reference(
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    d.check(x.len(), w.len(), y.len());
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for co in 0..d.c_out {
                    let mut acc = bias.map_or(0.0, |bias| bias[co]);
                    for ky in 0..d.kh {
                        let Some(iy) = d.in_y(oy, ky) else { continue };
                        for kx in 0..d.kw {
                            let Some(ix) = d.in_x(ox, kx) else { continue };
                            for ci in 0..d.c_in {
                                let xv = x[((b * d.h + iy) * d.w + ix) * d.c_in + ci];
                                let wv = w[((ky * d.kw + kx) * d.c_in + ci) * d.c_out + co];
                                acc += xv * wv;
                            }
                        }
                    }
                    y[((b * d.out_h + oy) * d.out_w + ox) * d.c_out + co] = acc;
                }
            }
        }
    }
}

/// Input gradient, plain loops. `dx` is overwritten.
pub fn conv2d_backward_input_reference(d: &Conv2dDims, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    d.check(dx.len(), w.len(), dy.len());
    dx.fill(0.0);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ky in 0..d.kh {
                    let Some(iy) = d.in_y(oy, ky) else { continue };
                    for kx in 0..d.kw {
                        let Some(ix) = d.in_x(ox, kx) else { continue };
                        for ci in 0..d.c_in {
                            let mut acc = 0.0;
                            for co in 0..d.c_out {
                                let g = dy[((b * d.out_h + oy) * d.out_w + ox) * d.c_out + co];
                                acc += g * w[((ky * d.kw + kx) * d.c_in + ci) * d.c_out + co];
                            }
                            dx[((b * d.h + iy) * d.w + ix) * d.c_in + ci] += acc;
                        }
                    }
                }
            }
        }
    }
}

/// Weight gradient, plain loops. `dw` is overwritten.
pub fn conv2d_backward_weight_reference(d: &Conv2dDims, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    d.check(x.len(), dw.len(), dy.len());
    dw.fill(0.0);
    for b in 0..d.n {
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                for ky in 0..d.kh {
                    let Some(iy) = d.in_y(oy, ky) else { continue };
                    for kx in 0..d.kw {
                        let Some(ix) = d.in_x(ox, kx) else { continue };
                        for ci in 0..d.c_in {
                            let xv = x[((b * d.h + iy) * d.w + ix) * d.c_in + ci];
                            for co in 0..d.c_out {
                                let g = dy[((b * d.out_h + oy) * d.out_w + ox) * d.c_out + co];
                                dw[((ky * d.kw + kx) * d.c_in + ci) * d.c_out + co] += xv * g;
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The variants, and the entry points that run the chosen one.

/// A CPU convolution algorithm, numbered as `cargo bench --bench conv2d` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// 1: the loops of the definition (`conv2d_*_reference`): the specification, slow.
    Reference,
    /// 2: im2col + GEMM (`conv2d_*_im2col`): version 4 when a micro-kernel of it is active
    /// ([`gemm_packed::active`]), else version 2 (matrixmultiply).
    Im2col,
    /// 3: direct (`crate::conv2d_direct`): the version-4 micro-kernels read the receptive
    /// fields from a zero-padded copy of each image, no im2col matrix. Needs a version-4
    /// kernel; a pointwise layer (no windows to gather) runs as im2col's single GEMM.
    Direct,
    /// 4: Winograd F(2x2, 3x3) (`crate::conv2d_winograd`) for 3x3 stride-1 `Same` layers
    /// (and their input gradients), on the version-4 kernels; its weight gradient, and every
    /// other layer, is direct's.
    Winograd,
}

/// The variant chosen for the process: 0 = automatic, else 1 + the index in `ALL`.
static CONV_CHOICE: AtomicU8 = AtomicU8::new(0);

impl ConvVariant {
    pub const ALL: [ConvVariant; 4] = [
        ConvVariant::Reference,
        ConvVariant::Im2col,
        ConvVariant::Direct,
        ConvVariant::Winograd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::Reference => "reference",
            ConvVariant::Im2col => "im2col",
            ConvVariant::Direct => "direct",
            ConvVariant::Winograd => "winograd",
        }
    }

    /// The variant that runs `d`'s forward pass and weight gradient now: the chosen one
    /// ([`choose_variant`]) or, by default, where a version-4 kernel is active, Winograd for
    /// the wide 3x3 stride-1 layers where it measured faster ([`winograd_wins`]) and direct
    /// for the other layers with windows to gather; im2col otherwise.
    pub fn for_dims(d: &Conv2dDims) -> ConvVariant {
        let direct_runs = gemm_packed::available() && !d.is_pointwise();
        let winograd_runs = gemm_packed::available() && winograd_applies(d);
        match CONV_CHOICE.load(Ordering::Relaxed) {
            1 => ConvVariant::Reference,
            2 => ConvVariant::Im2col,
            4 if winograd_runs => ConvVariant::Winograd,
            0 if winograd_runs && winograd_wins(d) => ConvVariant::Winograd,
            _ if direct_runs => ConvVariant::Direct,
            _ => ConvVariant::Im2col,
        }
    }

    /// Whether `d` runs on the direct variant's machinery (its padded images, packed bands
    /// and fused backward passes): direct, or Winograd, whose images are convolved from the
    /// same padded copies where [`reads_direct_padding`] holds.
    fn direct_family(d: &Conv2dDims) -> bool {
        match ConvVariant::for_dims(d) {
            ConvVariant::Direct => true,
            ConvVariant::Winograd => reads_direct_padding(d),
            _ => false,
        }
    }

    /// Whether the direct family convolves `d`'s images by Winograd.
    fn winograd_images(d: &Conv2dDims) -> bool {
        ConvVariant::for_dims(d) == ConvVariant::Winograd && reads_direct_padding(d)
    }

    /// How `bench` names what runs for `d`: the variant and the GEMM under it.
    pub fn describe(d: &Conv2dDims) -> String {
        let gemm = gemm_packed::active().map_or("matrixmultiply", |k| k.name());
        match ConvVariant::for_dims(d) {
            ConvVariant::Reference => "reference".into(),
            v => format!("{} {gemm}", v.name()),
        }
    }
}

/// Where Winograd is the default (F(2x2, 3x3) for the forward and the input gradient,
/// F(3x3, 2x2) for the weight gradient): 3x3 stride-1 `Same` layers with at least 32 input
/// and output channels, 64 on one side, and an even output size (which lets it read the
/// direct variant's padded copies, so the fused passes keep it). Measured (layers in
/// isolation, batch 64 unless said, Xeon AVX-512, 2 threads, medians of alternated runs,
/// Winograd vs direct), after the transforms' matrices were spaced off 4 KB multiples
/// (`conv2d_winograd::plane`) and the input transform kept in registers: forward + pool
/// 16x16 32 -> 64 1.56-1.65 vs 1.93-2.01 ms, 64 -> 32 1.69-1.76 vs 1.93-1.95, 64 -> 64
/// 2.60-2.64 vs 4.1; weight gradient 16x16 32 -> 64 1.69-1.84 vs 2.17, 64 -> 64 3.9 vs
/// 4.7-5.2; batch 128: 16x16 64 -> 128 weight gradient 16.4-16.7 vs 20.7-21.0, 8x8 128 ->
/// 256 14.2-15.3 vs 21.6-21.9. 32 -> 32 at 32x32 (keras6's conv2d_1) wins in isolation
/// since the transforms were made faster still (whole vectors without lane tests: forward +
/// pool 3.49-3.81 vs 3.79-4.18 ms, weight gradient 4.09-4.23 vs 4.78-5.01) but not in a
/// keras6 step (1,222-1,349 vs 1,280-1,327 images/s, alternated), so it stays direct; 16
/// channels lose even in isolation (32x32 16 -> 16 forward + pool 3.23-3.39 vs 2.58-2.62,
/// weight gradient 4.64-5.08 vs 3.42-3.62).
pub fn winograd_wins(d: &Conv2dDims) -> bool {
    reads_direct_padding(d) && d.c_in.min(d.c_out) >= 32 && d.c_in.max(d.c_out) >= 64
}

/// Whether the direct family's input gradient of `d` (a forward convolution) runs by
/// Winograd, as that convolution would on its own.
fn dx_winograd(d: &Conv2dDims) -> bool {
    d.input_gradient_as_forward()
        .is_some_and(|t| ConvVariant::winograd_images(&t))
}

/// Whether the direct family's weight gradient of `d` runs by Winograd F(3x3, 2x2): where
/// the layer's own convolution does.
fn dw_winograd(d: &Conv2dDims) -> bool {
    ConvVariant::winograd_images(d)
}

/// Chooses the variant every convolution uses from now on (`None`: automatic, see
/// [`ConvVariant::for_dims`]), for benchmarks. Direct needs a version-4 kernel to be active:
/// choose the GEMM first.
pub fn choose_variant(choice: Option<ConvVariant>) -> Result<(), String> {
    let needs_v4 = matches!(choice, Some(ConvVariant::Direct | ConvVariant::Winograd));
    if needs_v4 && !gemm_packed::available() {
        return Err("the direct and Winograd variants run on the version-4 GEMM kernels (AVX-512F or AVX2 + FMA), and none is active".into());
    }
    let code = match choice {
        None => 0,
        Some(v) => 1 + ConvVariant::ALL.iter().position(|&a| a == v).unwrap_or(0) as u8,
    };
    CONV_CHOICE.store(code, Ordering::Relaxed);
    Ok(())
}

/// Forward pass with the variant for `d` ([`ConvVariant::for_dims`]): `y = conv(x, w) +
/// bias`, and `max(y, 0)` with `relu`. `y` is overwritten.
pub fn conv2d_forward(
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    match (ConvVariant::for_dims(d), gemm_packed::active()) {
        (ConvVariant::Reference, _) => {
            conv2d_forward_reference(d, x, w, bias, y);
            if relu {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        (ConvVariant::Direct, Some(kernel)) => {
            conv2d_forward_direct(kernel, d, x, w, bias, relu, y)
        }
        (ConvVariant::Winograd, Some(kernel)) => {
            conv2d_forward_winograd(kernel, d, x, w, bias, relu, y)
        }
        _ => conv2d_forward_im2col(d, x, w, bias, relu, y),
    }
}

/// Input gradient with the variant for `d`. A stride-1, symmetrically padded layer's input
/// gradient is a forward convolution of `dy` (see [`Conv2dDims::input_gradient_as_forward`])
/// and runs as one, with the variant for that convolution; strided layers run im2col's
/// `dcols = dy · wᵀ` and col2im. `dx` is overwritten.
pub fn conv2d_backward_input(d: &Conv2dDims, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    if ConvVariant::for_dims(d) == ConvVariant::Reference {
        return conv2d_backward_input_reference(d, dy, w, dx);
    }
    if let Some(t) = d.input_gradient_as_forward() {
        d.check(dx.len(), w.len(), dy.len());
        // A forward convolution of dy: straight into dx, where im2col's path makes a
        // k-times larger dcols matrix (K = c_out, often just 16) and scatters it back.
        return with_scratch(&ROTATED, w.len(), |r| {
            rotate_kernel(d, w, r);
            conv2d_forward(&t, dy, r, None, false, dx)
        });
    }
    conv2d_backward_input_im2col(d, dy, w, dx)
}

/// Weight gradient with the variant for `d`. `dw` is overwritten.
pub fn conv2d_backward_weight(d: &Conv2dDims, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    match (ConvVariant::for_dims(d), gemm_packed::active()) {
        (ConvVariant::Reference, _) => conv2d_backward_weight_reference(d, x, dy, dw),
        // F(3x3, 2x2) on the direct variant's padded copies (see `conv2d_winograd`).
        (ConvVariant::Winograd, Some(kernel)) if ConvVariant::winograd_images(d) => {
            let dz = DzFrom::Dy { dy, relu_y: None };
            conv2d_backward_direct(kernel, d, x, &[], dz, None, false, true, dw, None)
        }
        // Strided and odd-sized layers run direct under the Winograd variant.
        (ConvVariant::Direct | ConvVariant::Winograd, Some(kernel)) => {
            conv2d_backward_weight_direct(kernel, d, x, dy, dw)
        }
        _ => conv2d_backward_weight_im2col(d, x, dy, dw),
    }
}

/// The gradients of a convolution without a fused ReLU, `y = conv(x, w) + b`, from `dy`:
/// [`conv2d_backward_input`], [`conv2d_backward_weight`] and the bias gradient `Σ dy`, each
/// written only where asked. When `dx` and `dw` are both asked of a stride-1 layer on the
/// direct variant, they come from one pass over the images ([`conv2d_backward_direct`]:
/// each image of `dy` is padded once and feeds both).
pub fn conv2d_backward(
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
) {
    d.check(x.len(), w.len(), dy.len());
    let one_pass = ConvVariant::direct_family(d) && d.input_gradient_as_forward().is_some();
    match (gemm_packed::active(), dx, dw) {
        (Some(kernel), Some(dx), Some(dw)) if one_pass => {
            let dz = DzFrom::Dy { dy, relu_y: None };
            let (wx, ww) = (dx_winograd(d), dw_winograd(d));
            conv2d_backward_direct(kernel, d, x, w, dz, Some(dx), wx, ww, dw, db)
        }
        (_, dx, dw) => {
            if let Some(dx) = dx {
                conv2d_backward_input(d, dy, w, dx);
            }
            if let Some(dw) = dw {
                conv2d_backward_weight(d, x, dy, dw);
            }
            if let Some(db) = db {
                crate::bias::bias_grad(dy, d.c_out, db);
            }
        }
    }
}

/// The gradients of a convolution with a fused ReLU, `y = max(conv(x, w) + b, 0)`, given its
/// output `y` and `dy`: with `dz = dy` where `y > 0`, else 0, writes `dx` (the input gradient
/// of `dz`), `dw` and `db` (`Σ dz` over every position), each only where asked.
///
/// On the direct variant the mask is applied where `dy` is read: as each band of `dy` is
/// packed for `dw` (and `db` summed from the packed band), and as each image of `dy` is
/// padded for `dx` (stride 1). `dz` is never written out, which saves a pass over the
/// output-sized tensor and its allocation, and `db`'s pass. When both `dx` and `dw` are
/// asked (stride 1), one pass over the images makes both: each image's padded `dz` feeds the
/// input gradient and then the weight gradient's bands ([`conv2d_backward_direct`]; keras6
/// +2%, medians of 4 alternated `bench` runs). Other variants, and strided input gradients,
/// make `dz` first and run the plain gradients on it.
// The three gradients and what they are computed from.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_backward(
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
) {
    d.check(x.len(), w.len(), dy.len());
    assert_eq!(y.len(), dy.len(), "conv2d: y and dy differ in length");
    let kernel = gemm_packed::active();
    let direct = ConvVariant::direct_family;
    let dx_as_forward = d.input_gradient_as_forward().filter(direct);
    let fused =
        direct(d) && (dx.is_none() || dx_as_forward.is_some()) && (dw.is_some() || db.is_none());
    match kernel {
        Some(kernel) if fused && dx.is_some() && dw.is_some() => {
            // All three from one pass over the images (dz padded once per image).
            let (dx, dw) = (dx.unwrap(), dw.unwrap());
            let dz = DzFrom::Dy {
                dy,
                relu_y: Some(y),
            };
            let (wx, ww) = (dx_winograd(d), dw_winograd(d));
            conv2d_backward_direct(kernel, d, x, w, dz, Some(dx), wx, ww, dw, db)
        }
        Some(kernel) if fused => {
            if let (Some(dx), Some(t)) = (dx, dx_as_forward) {
                with_scratch(&ROTATED, w.len(), |r| {
                    rotate_kernel(d, w, r);
                    conv2d_forward_direct_relu_masked(kernel, &t, dy, y, r, dx)
                });
            }
            if let Some(dw) = dw {
                conv2d_relu_backward_weight_direct(kernel, d, x, y, dy, dw, db);
            }
        }
        _ => with_scratch(&MASKED_DY, dy.len(), |dz| {
            crate::relu::relu_backward(y, dy, dz);
            if let Some(dx) = dx {
                conv2d_backward_input(d, dz, w, dx);
            }
            if let Some(dw) = dw {
                conv2d_backward_weight(d, x, dz, dw);
            }
            if let Some(db) = db {
                crate::bias::bias_grad(dz, d.c_out, db);
            }
        }),
    }
}

/// Whether a convolution with a fused ReLU followed by `pool` runs routed, keeping the pool's
/// output and its winners instead of the convolution's output
/// ([`conv2d_relu_maxpool_forward_routed`], [`conv2d_relu_maxpool_backward_routed`]): on the
/// direct variant, for a stride-1 layer whose input gradient is a forward convolution, under
/// a pool whose windows cannot overlap (2x2 / stride 2, as in keras6, basic3 and VGG16).
pub fn conv2d_relu_maxpool_routes(d: &Conv2dDims, pool: &Pool2dDims) -> bool {
    ConvVariant::direct_family(d)
        && gemm_packed::active().is_some()
        && pool.disjoint()
        && pool.k * pool.k < crate::maxpool2d_argmax::NONE as usize
        && d.input_gradient_as_forward().is_some()
}

/// Forward pass of a convolution with a fused ReLU followed by a max pool, routed (see
/// [`conv2d_relu_maxpool_routes`], which must hold; panics otherwise): the pooled output `p`
/// and each window's winner `arg` ([`crate::maxpool2d_argmax`]), both overwritten. Each
/// image's convolution output is pooled while it is in cache and never written out: for
/// basic3's first layer at batch 128 that is 33.5 MB the forward does not write and the
/// backward does not read.
// The forward convolution's arguments plus the pool and its two outputs.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_forward_routed(
    d: &Conv2dDims,
    pool: &Pool2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    p: &mut [f32],
    arg: &mut [u8],
) {
    assert!(
        conv2d_relu_maxpool_routes(d, pool),
        "conv2d: this conv + pool is not routed"
    );
    let kernel = gemm_packed::active().expect("checked by conv2d_relu_maxpool_routes");
    let wino = ConvVariant::winograd_images(d);
    conv2d_relu_maxpool_forward_direct(kernel, d, pool, x, w, bias, wino, p, arg)
}

/// The gradients of [`conv2d_relu_maxpool_forward_routed`] from its `p`, `arg` and the
/// pool's output gradient `dp`: those of `p = maxpool(max(conv(x, w) + b, 0))`, written to
/// `dx`, `dw` and `db` only where asked. Each image's `dz` is routed from `dp` straight into
/// the padded image both convolution gradients read ([`DzFrom::MaxPool`]); the pool's input
/// gradient is never made. Panics unless [`conv2d_relu_maxpool_routes`] holds.
// The convolution, its pool's results, and the three gradients.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_backward_routed(
    d: &Conv2dDims,
    pool: &Pool2dDims,
    x: &[f32],
    w: &[f32],
    p: &[f32],
    arg: &[u8],
    dp: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
) {
    assert!(
        conv2d_relu_maxpool_routes(d, pool),
        "conv2d: this conv + pool is not routed"
    );
    let kernel = gemm_packed::active().expect("checked by conv2d_relu_maxpool_routes");
    if dw.is_none() && db.is_none() && dx.is_none() {
        return;
    }
    let dz = DzFrom::MaxPool { pool, p, arg, dp };
    let (wx, ww) = (dx_winograd(d), dw_winograd(d));
    match dw {
        Some(dw) => conv2d_backward_direct(kernel, d, x, w, dz, dx, wx, ww, dw, db),
        // A frozen kernel: its gradient is made and dropped (the pass that makes it gives db).
        None => with_scratch(&POOL_DW, d.weight_len(), |dw| {
            conv2d_backward_direct(kernel, d, x, w, dz, dx, wx, ww, dw, db)
        }),
    }
}

/// The gradients of a convolution with a fused ReLU followed by a max pool, from the ReLU's
/// output `y` (the pool's input) and the pool's output gradient `dp`, where the pair is not
/// routed: [`conv2d_relu_backward`] of `dy = maxpool2d_backward(y, dp)`.
// The convolution, its pool, and the three gradients.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool_backward(
    d: &Conv2dDims,
    pool: &Pool2dDims,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dp: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
) {
    d.check(x.len(), w.len(), y.len());
    with_scratch(&POOL_DY, y.len(), |dy| {
        crate::maxpool2d::maxpool2d_backward(pool, y, dp, dy);
        conv2d_relu_backward(d, x, w, y, dy, dx, dw, db)
    })
}

// ---------------------------------------------------------------------------------------------
// Version 2: im2col + GEMM, parallel over chunks of images.

// Scratch space. Each thread keeps the buffers of its last call in thread-locals, so a
// training loop allocates nothing here after its first step. A call TAKES a buffer out of its
// slot for as long as it needs it ([`with_taken`]) instead of borrowing it: while a thread
// waits inside a parallel loop, rayon may hand it another task (work stealing), and that task
// may be another conv2d on the same thread; it then finds the slot empty and allocates its
// own buffer, where a `RefCell` borrow held across the loop would panic.
thread_local! {
    /// A task's im2col (or `dcols`) matrix.
    static COLS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The per-range partial weight gradients of one weight-gradient call.
    static PARTIALS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The packed kernel matrix of one call, shared read-only by all its tasks.
    static PACKED: Cell<PackedB> = Cell::new(PackedB::default());
    /// A task's packed chunk of `dy`, for the weight gradient.
    static PACKED_DY: Cell<PackedB> = Cell::new(PackedB::default());
    /// The rotated kernel of an input gradient taken as a forward convolution.
    static ROTATED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// `dy` masked by a fused ReLU, where [`conv2d_relu_backward`] cannot mask it in place.
    static MASKED_DY: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// A max pool's input gradient, for [`conv2d_relu_maxpool_backward`].
    static POOL_DY: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// A frozen kernel's discarded gradient in [`conv2d_relu_maxpool_backward_routed`].
    static POOL_DW: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's cached value from `slot`, taken out for the call (a fresh default
/// if a call further up this thread's stack holds it), then puts it back for the next call.
/// Nothing stays borrowed while `f` runs, so `f` may run parallel loops that re-enter conv2d.
pub(crate) fn with_taken<T: Default, R>(
    slot: &'static LocalKey<Cell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    let mut value = slot.take();
    let result = f(&mut value);
    slot.set(value);
    result
}

/// Runs `f` with a scratch slice of `len` floats from `slot` (contents unspecified).
pub(crate) fn with_scratch<R>(
    slot: &'static LocalKey<Cell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    with_taken(slot, |buf| {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}

/// The B operand of the per-chunk GEMMs: packed once per call for GEMM version 4 when a
/// version-4 kernel is active (AVX-512 or AVX2 + FMA), else the plain matrix for version 2
/// (matrixmultiply packs it per call).
#[derive(Clone, Copy)]
enum KernelMatrix<'a> {
    /// Packed for [`gemm_packed`], the bias (if any) inside it.
    Packed(&'a PackedB),
    /// For [`gemm_serial`], with the bias (if any) to pre-fill C with.
    Plain(Mat<'a>, Option<&'a [f32]>),
}

impl KernelMatrix<'_> {
    /// `c[rows x n] = a[rows x k] · B (+ bias)` for contiguous row-major `a` and `c`.
    fn multiply(self, rows: usize, k: usize, n: usize, a: &[f32], c: &mut [f32]) {
        match self {
            // The bias is added in the micro-kernel's epilogue (`PackedB::set_bias`).
            KernelMatrix::Packed(pb) => {
                gemm_packed::gemm_packed(rows, Mat::row_major(a, k), pb, 0.0, c, n)
            }
            KernelMatrix::Plain(b, bias) => {
                let beta = init_with_bias(c, bias);
                gemm_serial(rows, k, n, Mat::row_major(a, k), b, beta, c)
            }
        }
    }
}

/// Runs `f` with the kernel matrix `b` (`k x n`, element `(p, j)` at `b[p * rs + j * cs]`)
/// and an optional bias per column, in the fastest form this CPU supports.
fn with_kernel_matrix<R>(
    b: &[f32],
    (k, n): (usize, usize),
    (rs, cs): (usize, usize),
    bias: Option<&[f32]>,
    f: impl FnOnce(KernelMatrix) -> R,
) -> R {
    if gemm_packed::available() {
        with_taken(&PACKED, |pb| {
            pb.pack(b, k, n, rs, cs);
            if let Some(bias) = bias {
                pb.set_bias(bias);
            }
            f(KernelMatrix::Packed(pb))
        })
    } else {
        f(KernelMatrix::Plain(Mat { data: b, rs, cs }, bias))
    }
}

/// Images per task: enough rows (about 256 output pixels) for the GEMM to amortise packing the
/// kernel matrix, but at least two tasks per thread so the pool stays balanced.
fn images_per_task(d: &Conv2dDims) -> usize {
    let by_rows = 256usize.div_ceil(d.out_pixels().max(1));
    let by_balance = d.n.div_ceil(2 * rayon::current_num_threads());
    by_rows.min(by_balance).max(1)
}

/// Copies the receptive fields of `imgs` images (`x` starts at the first) into `cols`,
/// one row of `kh*kw*c_in` per output pixel, zeros where the window hangs over the border.
fn im2col(d: &Conv2dDims, x: &[f32], imgs: usize, cols: &mut [f32]) {
    let k = d.patch_len();
    let run = d.kw * d.c_in; // one window row, contiguous in NHWC when fully inside
    let mut rows = cols.chunks_exact_mut(k);
    for b in 0..imgs {
        let img = &x[b * d.h * d.w * d.c_in..(b + 1) * d.h * d.w * d.c_in];
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let row = rows.next().expect("cols sized for imgs * out_pixels rows");
                let in_xs = window(ox, d.stride, d.pad_left, d.kw, d.w);
                let inside = in_xs.len() == d.kw; // no column of the window in the padding
                for ky in 0..d.kh {
                    let dst = &mut row[ky * run..(ky + 1) * run];
                    let Some(iy) = d.in_y(oy, ky) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let line = &img[iy * d.w * d.c_in..(iy + 1) * d.w * d.c_in];
                    if inside {
                        let s = in_xs.start * d.c_in;
                        dst.copy_from_slice(&line[s..s + run]);
                    } else {
                        for (kx, px) in dst.chunks_exact_mut(d.c_in).enumerate() {
                            match d.in_x(ox, kx) {
                                Some(ix) => {
                                    px.copy_from_slice(&line[ix * d.c_in..(ix + 1) * d.c_in])
                                }
                                None => px.fill(0.0),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The inverse scatter of [`im2col`]: adds every row of `cols` onto the pixels it was read
/// from. `dx` (the chunk's images) must be zeroed by the caller.
fn col2im_add(d: &Conv2dDims, cols: &[f32], imgs: usize, dx: &mut [f32]) {
    let k = d.patch_len();
    let mut rows = cols.chunks_exact(k);
    for b in 0..imgs {
        let img = &mut dx[b * d.h * d.w * d.c_in..(b + 1) * d.h * d.w * d.c_in];
        for oy in 0..d.out_h {
            for ox in 0..d.out_w {
                let row = rows.next().expect("cols sized for imgs * out_pixels rows");
                for ky in 0..d.kh {
                    let Some(iy) = d.in_y(oy, ky) else { continue };
                    for kx in 0..d.kw {
                        let Some(ix) = d.in_x(ox, kx) else { continue };
                        let src = &row[(ky * d.kw + kx) * d.c_in..(ky * d.kw + kx + 1) * d.c_in];
                        let dst = &mut img[(iy * d.w + ix) * d.c_in..(iy * d.w + ix + 1) * d.c_in];
                        for (o, s) in dst.iter_mut().zip(src) {
                            *o += s;
                        }
                    }
                }
            }
        }
    }
}

/// Writes `bias` into every row of `y` (so the GEMM can accumulate onto it), or zeros.
/// Returns the `beta` to pass to the GEMM.
fn init_with_bias(y: &mut [f32], bias: Option<&[f32]>) -> f32 {
    match bias {
        Some(bias) => {
            for row in y.chunks_exact_mut(bias.len()) {
                row.copy_from_slice(bias);
            }
            1.0
        }
        None => 0.0,
    }
}

/// Forward pass: im2col + GEMM per chunk of images, bias fused into the GEMM's accumulator.
///
/// With `relu`, each chunk's output is clamped at zero right after its GEMM, while it is
/// still in cache: the same result as a separate ReLU pass, without reading and writing the
/// whole activation tensor again.
pub fn conv2d_forward_im2col(
    d: &Conv2dDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    d.check(x.len(), w.len(), y.len());
    if let Some(bias) = bias {
        assert_eq!(bias.len(), d.c_out, "conv2d: bias length");
    }
    let (k, co) = (d.patch_len(), d.c_out);
    let imgs = images_per_task(d);
    let in_img = d.h * d.w * d.c_in;
    let out_img = d.out_pixels() * co;
    with_kernel_matrix(w, (k, co), (co, 1), bias, |wm| {
        y.par_chunks_mut(imgs * out_img)
            .zip(x.par_chunks(imgs * in_img))
            .for_each(|(yc, xc)| {
                let nb = xc.len() / in_img;
                let rows = nb * d.out_pixels();
                if d.is_pointwise() {
                    // A 1x1 stride-1 convolution: the NHWC input is already the matrix.
                    wm.multiply(rows, k, co, xc, yc);
                } else {
                    with_scratch(&COLS, rows * k, |cols| {
                        im2col(d, xc, nb, cols);
                        wm.multiply(rows, k, co, cols, yc);
                    });
                }
                if relu {
                    yc.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            });
    });
}

/// Input gradient: `dcols = dy · wᵀ` per chunk, then col2im. `dx` is overwritten.
/// (Stride-1 symmetrically padded layers take [`conv2d_backward_input`]'s forward path.)
pub fn conv2d_backward_input_im2col(d: &Conv2dDims, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    d.check(dx.len(), w.len(), dy.len());
    let (k, co) = (d.patch_len(), d.c_out);
    let imgs = images_per_task(d);
    let in_img = d.h * d.w * d.c_in;
    let out_img = d.out_pixels() * co;
    // wᵀ as a `c_out x k` matrix: element (p, j) is w[j * c_out + p].
    with_kernel_matrix(w, (co, k), (1, co), None, |wt| {
        dx.par_chunks_mut(imgs * in_img)
            .zip(dy.par_chunks(imgs * out_img))
            .for_each(|(dxc, dyc)| {
                let nb = dxc.len() / in_img;
                let rows = nb * d.out_pixels();
                if d.is_pointwise() {
                    wt.multiply(rows, co, k, dyc, dxc);
                } else {
                    with_scratch(&COLS, rows * k, |dcols| {
                        wt.multiply(rows, co, k, dyc, dcols);
                        dxc.fill(0.0);
                        col2im_add(d, dcols, nb, dxc);
                    });
                }
            });
    });
}

/// The kernel for [`Conv2dDims::input_gradient_as_forward`]: `w` (HWIO, `kh x kw x c_in x
/// c_out`) rotated by 180 degrees with its channel axes swapped, written to `r` as
/// `kh x kw x c_out x c_in`.
pub(crate) fn rotate_kernel(d: &Conv2dDims, w: &[f32], r: &mut [f32]) {
    let (kh, kw, ci, co) = (d.kh, d.kw, d.c_in, d.c_out);
    for ky in 0..kh {
        for kx in 0..kw {
            let src = &w[((kh - 1 - ky) * kw + (kw - 1 - kx)) * ci * co..][..ci * co];
            let dst = &mut r[(ky * kw + kx) * co * ci..][..co * ci];
            for i in 0..ci {
                for o in 0..co {
                    dst[o * ci + i] = src[i * co + o];
                }
            }
        }
    }
}

/// Weight gradient: `dw = Σ_chunks colsᵀ · dy`. `dw` is overwritten.
///
/// The batch is split into one contiguous range of images per thread; each range accumulates
/// into its own partial `dw` (chunk by chunk, reusing one im2col buffer), then the partials are
/// summed. The sum order is fixed, so the result does not depend on scheduling.
pub fn conv2d_backward_weight_im2col(d: &Conv2dDims, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    d.check(x.len(), dw.len(), dy.len());
    let (k, co) = (d.patch_len(), d.c_out);
    if d.is_pointwise() {
        let rows = d.n * d.out_pixels();
        let xt = Mat::row_major(x, k).t();
        return gemm(k, rows, co, xt, Mat::row_major(dy, co), 0.0, dw);
    }
    // Version 4 needs enough rows of dw (k = kh*kw*c_in) to fill its 14-row tiles: measured
    // at keras6's shapes, it is 10% slower than matrixmultiply for the first layer (k = 27)
    // and up to 10% faster from k = 288.
    let use_packed = gemm_packed::available() && k >= 64;
    let ranges = rayon::current_num_threads().min(d.n);
    let per_range = d.n.div_ceil(ranges);
    let ranges = d.n.div_ceil(per_range);
    let chunk = images_per_task(d).min(per_range);
    let in_img = d.h * d.w * d.c_in;
    let out_img = d.out_pixels() * co;
    with_scratch(&PARTIALS, ranges * k * co, |partials| {
        partials
            .par_chunks_mut(k * co)
            .enumerate()
            .for_each(|(r, part)| {
                part.fill(0.0);
                let first = r * per_range;
                let last = (first + per_range).min(d.n);
                let mut b = first;
                while b < last {
                    let nb = chunk.min(last - b);
                    let rows = nb * d.out_pixels();
                    let xc = &x[b * in_img..(b + nb) * in_img];
                    let dyc = &dy[b * out_img..(b + nb) * out_img];
                    with_scratch(&COLS, rows * k, |cols| {
                        im2col(d, xc, nb, cols);
                        if use_packed {
                            // Version 4: dy's chunk is B (packed, 1/k of the multiply's cost)
                            // and colsᵀ is A, read 14 contiguous floats per step.
                            with_taken(&PACKED_DY, |pb| {
                                pb.pack(dyc, rows, co, co, 1);
                                let colst = Mat::row_major(cols, k).t();
                                gemm_packed::gemm_packed(k, colst, pb, 1.0, part, co);
                            });
                        } else {
                            let colst = Mat::row_major(cols, k).t();
                            gemm_serial(k, rows, co, colst, Mat::row_major(dyc, co), 1.0, part);
                        }
                    });
                    b += nb;
                }
            });
        sum_partials(partials, ranges, dw);
    });
}

/// `out[i] = Σ_r partials[r * len + i]`, parallel over blocks of `out`.
pub(crate) fn sum_partials(partials: &[f32], ranges: usize, out: &mut [f32]) {
    sum_partials_at(partials, ranges, out.len(), 0, out)
}

/// [`sum_partials`] of `out.len()` floats from offset `from` of partials `stride` floats apart
/// (one part of partials that hold more than one result each).
pub(crate) fn sum_partials_at(
    partials: &[f32],
    ranges: usize,
    stride: usize,
    from: usize,
    out: &mut [f32],
) {
    const BLOCK: usize = 4096;
    out.par_chunks_mut(BLOCK).enumerate().for_each(|(blk, o)| {
        let s = from + blk * BLOCK;
        o.copy_from_slice(&partials[s..s + o.len()]);
        for r in 1..ranges {
            let p = &partials[r * stride + s..r * stride + s + o.len()];
            for (a, b) in o.iter_mut().zip(p) {
                *a += b;
            }
        }
    });
}

/// The reference gradients `(dx, dw, db)` of `p = maxpool(y)` with `y = max(conv(x, w) + b,
/// 0)`, given `y` and `dp`: the pool's, ReLU's and the convolution's references in turn.
#[cfg(test)]
fn relu_maxpool_reference_grads(
    d: &Conv2dDims,
    pool: &Pool2dDims,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dp: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dy = vec![f32::NAN; d.output_len()];
    crate::maxpool2d::maxpool2d_backward_reference(pool, y, dp, &mut dy);
    let mut dz = vec![f32::NAN; d.output_len()];
    crate::relu::relu_backward_reference(y, &dy, &mut dz);
    let mut dx = vec![f32::NAN; d.input_len()];
    conv2d_backward_input_reference(d, &dz, w, &mut dx);
    let mut dw = vec![f32::NAN; d.weight_len()];
    conv2d_backward_weight_reference(d, x, &dz, &mut dw);
    let mut db = vec![0.0; d.c_out];
    crate::bias::bias_grad_reference(&dz, d.c_out, &mut db);
    (dx, dw, db)
}

/// A test case for the gradients of conv + ReLU + max pool on `d` under `pool`, drawn from
/// `seed`: the convolution's `x` and `w`, a ReLU output `y` with coarse values (so windows
/// have ties and zeros), the pool's gradient `dp`, the pool's output `p` and winners `arg`
/// as the routed forward records them, and the reference gradients `want` (dx, dw, db).
#[cfg(test)]
pub(crate) struct PoolCase {
    pub x: Vec<f32>,
    pub w: Vec<f32>,
    pub y: Vec<f32>,
    pub dp: Vec<f32>,
    pub p: Vec<f32>,
    pub arg: Vec<u8>,
    pub want: [Vec<f32>; 3],
}

#[cfg(test)]
impl PoolCase {
    pub fn new(d: &Conv2dDims, pool: &Pool2dDims, seed: u64) -> Self {
        use crate::testutil::random_vec;
        let x = random_vec(d.input_len(), seed);
        let w = random_vec(d.weight_len(), seed + 1);
        let y = coarse_relu_output(d.output_len(), seed + 2);
        let dp = random_vec(pool.output_len(), seed + 3);
        let (dx, dw, db) = relu_maxpool_reference_grads(d, pool, &x, &w, &y, &dp);
        let (mut p, mut arg) = (vec![0.0; dp.len()], vec![0u8; dp.len()]);
        crate::maxpool2d_argmax::maxpool2d_forward_argmax_reference(pool, &y, &mut p, &mut arg);
        PoolCase {
            x,
            w,
            y,
            dp,
            p,
            arg,
            want: [dx, dw, db],
        }
    }

    /// The reference gradients, as slices.
    pub fn want(&self) -> [&[f32]; 3] {
        [&self.want[0], &self.want[1], &self.want[2]]
    }
}

/// The max pools a test puts on top of a convolution's output `d`: 2x2 / 2 and 3x3 / 3
/// (disjoint), a 2x2 / 3 with gaps, and an overlapping 3x3 / 2, each where it fits.
#[cfg(test)]
pub(crate) fn test_pools(d: &Conv2dDims) -> Vec<Pool2dDims> {
    [
        (2, 2, Padding::Valid),
        (2, 2, Padding::Same),
        (3, 3, Padding::Valid),
        (2, 3, Padding::Same),
        (3, 2, Padding::Same),
    ]
    .into_iter()
    .filter_map(|(k, s, p)| Pool2dDims::new(d.n, d.out_h, d.out_w, d.c_out, k, s, p))
    .collect()
}

/// A ReLU's output with coarse values (so a pool's windows have ties and zeros).
#[cfg(test)]
pub(crate) fn coarse_relu_output(len: usize, seed: u64) -> Vec<f32> {
    crate::testutil::random_vec(len, seed)
        .into_iter()
        .map(|v| (v * 3.0).round().max(0.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, random_vec};

    /// Runs `run` for every combination of wanted gradients (dx, dw, db; at least one) with
    /// NaN-filled outputs, and checks each asked one against `want` (relative 1e-4) and the
    /// others untouched: how the tests check the backward entry points that take `wants`.
    fn check_every_wanted(
        what: &str,
        want: [&[f32]; 3],
        run: impl Fn(Option<&mut [f32]>, Option<&mut [f32]>, Option<&mut [f32]>),
    ) {
        for wants in 1..8u32 {
            let asked = [wants & 1 != 0, wants & 2 != 0, wants & 4 != 0];
            let mut got = want.map(|w| vec![f32::NAN; w.len()]);
            let [dx, dw, db] = &mut got;
            let [wx, ww, wb] = asked;
            run(
                wx.then_some(dx.as_mut_slice()),
                ww.then_some(dw.as_mut_slice()),
                wb.then_some(db.as_mut_slice()),
            );
            let what = format!("{what} wants dx {wx} dw {ww} db {wb}");
            let names = ["dx", "dw", "db"];
            for (((got, want), name), on) in got.iter().zip(want).zip(names).zip(asked) {
                if on {
                    assert_close(got, want, 1e-4, &format!("{what}: {name}"));
                } else {
                    // What was not asked for is not touched.
                    assert!(got.iter().all(|v| v.is_nan()), "{what}: {name} written");
                }
            }
        }
    }

    /// The routed backward (where this CPU routes: direct, stride 1, disjoint pools) for
    /// every combination of wanted gradients, from the pool's output and winners of a
    /// given ReLU output, against the pool's, ReLU's and the convolution's references.
    #[test]
    fn routed_relu_maxpool_backward_matches_references() {
        let mut routed = 0;
        for (i, d) in shapes().iter().enumerate() {
            for (j, pool) in test_pools(d).iter().enumerate() {
                if !conv2d_relu_maxpool_routes(d, pool) {
                    continue;
                }
                routed += 1;
                let c = PoolCase::new(d, pool, 4000 + 10 * i as u64 + j as u64);
                check_every_wanted(&format!("{d:?} {pool:?}"), c.want(), |dx, dw, db| {
                    let (x, w) = (&c.x, &c.w);
                    conv2d_relu_maxpool_backward_routed(
                        d, pool, x, w, &c.p, &c.arg, &c.dp, dx, dw, db,
                    )
                });
            }
        }
        let any_kernel = gemm_packed::active().is_some();
        assert!(!any_kernel || routed >= 10, "only {routed} shapes routed");
        if !any_kernel {
            eprintln!("skipped: no version-4 GEMM kernel on this CPU, nothing is routed");
        }
    }

    /// The unrouted backward (the pool's backward, then the convolution's with its ReLU) for
    /// every combination of wanted gradients, every shape and pool, against the pool's,
    /// ReLU's and the convolution's references in turn.
    #[test]
    fn relu_maxpool_backward_matches_references() {
        for (i, d) in shapes().iter().enumerate() {
            for (j, pool) in test_pools(d).iter().enumerate() {
                let c = PoolCase::new(d, pool, 1000 + 10 * i as u64 + j as u64);
                check_every_wanted(&format!("{d:?} {pool:?}"), c.want(), |dx, dw, db| {
                    conv2d_relu_maxpool_backward(d, pool, &c.x, &c.w, &c.y, &c.dp, dx, dw, db)
                });
            }
        }
    }

    /// Awkward shapes: batch 1, odd sizes, channel counts that are not multiples of 8,
    /// kernels 1..5, strides 1 and 2, both paddings.
    fn shapes() -> Vec<Conv2dDims> {
        let mut v = Vec::new();
        let cases = [
            // n, h, w, c_in, k, c_out, stride
            (1, 5, 5, 1, 3, 1, 1),
            (2, 7, 5, 3, 3, 5, 1),
            (3, 8, 8, 4, 1, 7, 1),
            (1, 9, 11, 3, 5, 6, 1),
            (2, 7, 7, 5, 3, 9, 2),
            (3, 6, 9, 2, 2, 3, 2),
            (1, 4, 4, 13, 4, 3, 1),
            (5, 6, 6, 17, 1, 3, 2),
            (2, 10, 10, 3, 5, 4, 2),
            (9, 4, 4, 7, 3, 11, 1),
            // 64 and 128 channels, even sizes: Winograd by default where a version-4
            // kernel runs (`winograd_wins`), inside the fused passes too.
            (1, 4, 4, 64, 3, 128, 1),
        ];
        for &(n, h, w, c_in, k, c_out, s) in &cases {
            for p in [Padding::Same, Padding::Valid] {
                if let Some(d) = Conv2dDims::new(n, h, w, c_in, k, k, c_out, s, p) {
                    v.push(d);
                }
            }
        }
        v
    }

    /// The relative tolerance of the default variant on `d`'s forward convolution against the
    /// reference: Winograd's transforms round more (see `conv2d_winograd`) than the direct
    /// sums.
    fn tolerance(d: &Conv2dDims) -> f32 {
        if ConvVariant::for_dims(d) == ConvVariant::Winograd {
            1e-4
        } else {
            1e-5
        }
    }

    type ForwardFn = fn(&Conv2dDims, &[f32], &[f32], Option<&[f32]>, bool, &mut [f32]);
    type BackwardFn = fn(&Conv2dDims, &[f32], &[f32], &mut [f32]);

    /// The fast forward (with and without bias, with and without the fused ReLU) against the
    /// reference on `d`, inputs drawn from `seed`.
    fn check_forward(d: &Conv2dDims, seed: u64) {
        let x = random_vec(d.input_len(), 10 + seed);
        let w = random_vec(d.weight_len(), 20 + seed);
        let bias = random_vec(d.c_out, 30 + seed);
        for b in [None, Some(bias.as_slice())] {
            let mut want = vec![f32::NAN; d.output_len()];
            conv2d_forward_reference(d, &x, &w, b, &mut want);
            let relu_want: Vec<f32> = want.iter().map(|v| v.max(0.0)).collect();
            let tol = tolerance(d);
            // The entry point (direct where a version-4 kernel runs) and im2col.
            for (name, f) in [
                ("default", conv2d_forward as ForwardFn),
                ("im2col", conv2d_forward_im2col),
            ] {
                let mut got = vec![f32::NAN; d.output_len()];
                f(d, &x, &w, b, false, &mut got);
                let what = format!("{name} forward {d:?} bias={}", b.is_some());
                assert_close(&got, &want, tol, &what);
                // The fused ReLU equals ReLU applied to the reference output.
                f(d, &x, &w, b, true, &mut got);
                assert_close(&got, &relu_want, tol, &format!("{what} + relu"));
            }
        }
    }

    fn check_backward_input(d: &Conv2dDims, seed: u64) {
        let dy = random_vec(d.output_len(), 40 + seed);
        let w = random_vec(d.weight_len(), 50 + seed);
        let mut want = vec![f32::NAN; d.input_len()];
        conv2d_backward_input_reference(d, &dy, &w, &mut want);
        for (name, f) in [
            ("default", conv2d_backward_input as BackwardFn),
            ("im2col", conv2d_backward_input_im2col),
        ] {
            let mut got = vec![f32::NAN; d.input_len()];
            f(d, &dy, &w, &mut got);
            let tol = d
                .input_gradient_as_forward()
                .map_or(1e-5, |t| tolerance(&t));
            assert_close(&got, &want, tol, &format!("{name} backward input {d:?}"));
        }
    }

    fn check_backward_weight(d: &Conv2dDims, seed: u64) {
        let x = random_vec(d.input_len(), 60 + seed);
        let dy = random_vec(d.output_len(), 70 + seed);
        let mut want = vec![f32::NAN; d.weight_len()];
        conv2d_backward_weight_reference(d, &x, &dy, &mut want);
        for (name, f) in [
            ("default", conv2d_backward_weight as BackwardFn),
            ("im2col", conv2d_backward_weight_im2col),
        ] {
            let mut got = vec![f32::NAN; d.weight_len()];
            f(d, &x, &dy, &mut got);
            assert_close(&got, &want, 1e-4, &format!("{name} backward weight {d:?}"));
        }
    }

    /// Every combination of wanted gradients of a convolution without ReLU, on every shape
    /// (stride-1 layers asked for dx and dw take one pass), against the references.
    #[test]
    fn backward_matches_reference_for_every_wanted_combination() {
        use crate::bias::bias_grad_reference;
        for (i, d) in shapes().iter().enumerate() {
            let x = random_vec(d.input_len(), 600 + i as u64);
            let w = random_vec(d.weight_len(), 610 + i as u64);
            let dy = random_vec(d.output_len(), 620 + i as u64);
            let mut want_dx = vec![0.0; d.input_len()];
            let mut want_dw = vec![0.0; d.weight_len()];
            let mut want_db = vec![0.0; d.c_out];
            conv2d_backward_input_reference(d, &dy, &w, &mut want_dx);
            conv2d_backward_weight_reference(d, &x, &dy, &mut want_dw);
            bias_grad_reference(&dy, d.c_out, &mut want_db);
            check_every_wanted(
                &format!("{d:?}"),
                [&want_dx, &want_dw, &want_db],
                |dx, dw, db| conv2d_backward(d, &x, &w, &dy, dx, dw, db),
            );
        }
    }

    /// Every combination of wanted gradients, on every shape (strided ones take the path
    /// that makes dz first), against ReLU's backward followed by the reference gradients.
    #[test]
    fn relu_backward_matches_mask_then_reference() {
        use crate::bias::bias_grad_reference;
        use crate::relu::relu_backward_reference;
        for (i, d) in shapes().iter().enumerate() {
            let x = random_vec(d.input_len(), 300 + i as u64);
            let w = random_vec(d.weight_len(), 310 + i as u64);
            let dy = random_vec(d.output_len(), 320 + i as u64);
            let y: Vec<f32> = random_vec(d.output_len(), 330 + i as u64)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect();
            let mut dz = vec![0.0; d.output_len()];
            relu_backward_reference(&y, &dy, &mut dz);
            let mut want_dx = vec![0.0; d.input_len()];
            let mut want_dw = vec![0.0; d.weight_len()];
            let mut want_db = vec![0.0; d.c_out];
            conv2d_backward_input_reference(d, &dz, &w, &mut want_dx);
            conv2d_backward_weight_reference(d, &x, &dz, &mut want_dw);
            bias_grad_reference(&dz, d.c_out, &mut want_db);
            check_every_wanted(
                &format!("{d:?}"),
                [&want_dx, &want_dw, &want_db],
                |dx, dw, db| conv2d_relu_backward(d, &x, &w, &y, &dy, dx, dw, db),
            );
        }
    }

    #[test]
    fn forward_matches_reference() {
        for (i, d) in shapes().iter().enumerate() {
            check_forward(d, i as u64);
        }
    }

    #[test]
    fn backward_input_matches_reference() {
        for (i, d) in shapes().iter().enumerate() {
            check_backward_input(d, i as u64);
        }
    }

    /// Which layers take the forward-convolution path for their input gradient (the shapes
    /// above cover both paths).
    #[test]
    fn input_gradient_as_forward_only_for_stride_1_symmetric_padding() {
        let dims = |h, k, s, p| Conv2dDims::new(2, h, h + 2, 3, k, k, 5, s, p).unwrap();
        let t = dims(7, 3, 1, Padding::Same)
            .input_gradient_as_forward()
            .unwrap();
        assert_eq!((t.c_in, t.c_out, t.pad_top, t.out_h), (5, 3, 1, 7));
        assert!(dims(9, 5, 1, Padding::Same)
            .input_gradient_as_forward()
            .is_some());
        for d in [
            dims(7, 3, 2, Padding::Same),  // strided
            dims(8, 4, 1, Padding::Same),  // even kernel: asymmetric padding
            dims(7, 3, 1, Padding::Valid), // output smaller than the input
            dims(7, 1, 1, Padding::Same),  // pointwise: one GEMM already
        ] {
            assert!(d.input_gradient_as_forward().is_none(), "{d:?}");
        }
    }

    #[test]
    fn backward_weight_matches_reference() {
        for (i, d) in shapes().iter().enumerate() {
            check_backward_weight(d, i as u64);
        }
    }

    /// One shape's inputs and its reference outputs, for running the fast kernels repeatedly.
    struct Case {
        d: Conv2dDims,
        x: Vec<f32>,
        w: Vec<f32>,
        bias: Vec<f32>,
        dy: Vec<f32>,
        y: Vec<f32>,
        dx: Vec<f32>,
        dw: Vec<f32>,
    }

    impl Case {
        fn new(d: Conv2dDims, seed: u64) -> Case {
            let x = random_vec(d.input_len(), 110 + seed);
            let w = random_vec(d.weight_len(), 120 + seed);
            let bias = random_vec(d.c_out, 130 + seed);
            let dy = random_vec(d.output_len(), 140 + seed);
            let mut y = vec![f32::NAN; d.output_len()];
            conv2d_forward_reference(&d, &x, &w, Some(&bias), &mut y);
            let mut dx = vec![f32::NAN; d.input_len()];
            conv2d_backward_input_reference(&d, &dy, &w, &mut dx);
            let mut dw = vec![f32::NAN; d.weight_len()];
            conv2d_backward_weight_reference(&d, &x, &dy, &mut dw);
            Case {
                d,
                x,
                w,
                bias,
                dy,
                y,
                dx,
                dw,
            }
        }

        fn forward(&self) {
            let mut y = vec![f32::NAN; self.d.output_len()];
            conv2d_forward(&self.d, &self.x, &self.w, Some(&self.bias), false, &mut y);
            let tol = tolerance(&self.d);
            assert_close(&y, &self.y, tol, &format!("forward {:?}", self.d));
        }

        fn backward_input(&self) {
            let mut dx = vec![f32::NAN; self.d.input_len()];
            conv2d_backward_input(&self.d, &self.dy, &self.w, &mut dx);
            let tol = self
                .d
                .input_gradient_as_forward()
                .map_or(1e-5, |t| tolerance(&t));
            assert_close(&dx, &self.dx, tol, &format!("backward input {:?}", self.d));
        }

        fn backward_weight(&self) {
            let mut dw = vec![f32::NAN; self.d.weight_len()];
            conv2d_backward_weight(&self.d, &self.x, &self.dy, &mut dw);
            assert_close(
                &dw,
                &self.dw,
                1e-4,
                &format!("backward weight {:?}", self.d),
            );
        }
    }

    /// The fast kernels called from inside rayon tasks, many at once and nested, as a caller
    /// that runs several layers or models in parallel would. A thread that waits inside one
    /// conv2d's parallel loop can be handed another rayon task (work stealing), which may be
    /// another conv2d on the same thread: no scratch buffer may stay borrowed across a
    /// parallel loop, or that second call panics. (With the scratch in `RefCell`s borrowed
    /// across the loops, this failed within a few rounds.)
    #[test]
    fn fast_kernels_nest_inside_rayon_tasks() {
        let mut dims = shapes();
        // Batches large enough that every pass splits into several parallel tasks, and kernels
        // wide enough (k = 3*3*16 >= 64) for the weight gradient's packed path.
        for (n, c_in, c_out, stride) in [(16, 16, 24, 1), (12, 8, 40, 2), (24, 16, 16, 1)] {
            dims.push(Conv2dDims::new(n, 8, 8, c_in, 3, 3, c_out, stride, Padding::Same).unwrap());
        }
        let cases: Vec<Case> = dims
            .into_iter()
            .enumerate()
            .map(|(i, d)| Case::new(d, i as u64))
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool.install(|| {
            for _round in 0..20 {
                // Every shape's three passes at once, each pass itself parallel.
                rayon::scope(|s| {
                    for case in &cases {
                        s.spawn(move |_| case.forward());
                        s.spawn(move |_| case.backward_input());
                        s.spawn(move |_| case.backward_weight());
                    }
                });
                // Nested two deep: a parallel loop over shapes whose tasks join two more.
                cases.par_iter().for_each(|case| {
                    rayon::join(
                        || case.forward(),
                        || rayon::join(|| case.backward_input(), || case.backward_weight()),
                    );
                });
            }
        });
    }

    /// The reference backward passes agree with central finite differences of the reference
    /// forward pass, through the scalar loss `L = Σ y ⊙ g` for a fixed random `g`.
    #[test]
    fn reference_backward_matches_finite_differences() {
        let eps = 1e-2f32;
        for (i, d) in shapes().iter().enumerate().step_by(3) {
            let x = random_vec(d.input_len(), 80 + i as u64);
            let w = random_vec(d.weight_len(), 90 + i as u64);
            let g = random_vec(d.output_len(), 100 + i as u64);
            let loss = |x: &[f32], w: &[f32]| -> f64 {
                let mut y = vec![0.0; d.output_len()];
                conv2d_forward_reference(d, x, w, None, &mut y);
                y.iter()
                    .zip(&g)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            };
            let mut dx = vec![0.0; d.input_len()];
            conv2d_backward_input_reference(d, &g, &w, &mut dx);
            let mut dw = vec![0.0; d.weight_len()];
            conv2d_backward_weight_reference(d, &x, &g, &mut dw);
            for idx in (0..x.len()).step_by(7) {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[idx] += eps;
                xm[idx] -= eps;
                let fd = (loss(&xp, &w) - loss(&xm, &w)) / (2.0 * eps as f64);
                assert!(
                    (fd - dx[idx] as f64).abs() < 1e-2 * fd.abs().max(1.0),
                    "dx[{idx}] {d:?}"
                );
            }
            for idx in (0..w.len()).step_by(5) {
                let (mut wp, mut wm) = (w.clone(), w.clone());
                wp[idx] += eps;
                wm[idx] -= eps;
                let fd = (loss(&x, &wp) - loss(&x, &wm)) / (2.0 * eps as f64);
                assert!(
                    (fd - dw[idx] as f64).abs() < 1e-2 * fd.abs().max(1.0),
                    "dw[{idx}] {d:?}"
                );
            }
        }
    }

    #[test]
    fn dims_reject_kernels_that_do_not_fit() {
        assert!(Conv2dDims::new(1, 2, 2, 1, 3, 3, 1, 1, Padding::Valid).is_none());
        assert!(Conv2dDims::new(1, 2, 2, 1, 3, 3, 1, 1, Padding::Same).is_some());
        assert!(Conv2dDims::new(0, 2, 2, 1, 1, 1, 1, 1, Padding::Same).is_none());
    }
}
