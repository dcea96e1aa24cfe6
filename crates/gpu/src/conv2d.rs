//! conv2d on the GPU: forward (with fused bias and ReLU), input gradient and weight gradient,
//! as im2col / col2im (`shaders/conv2d.wgsl`) around the GEMMs of `shaders/gemm.wgsl`.
//!
//! Same math, layouts (NHWC, HWIO) and [`Conv2dDims`] as `cpu::conv2d`; the shader file
//! explains the method. The batch is cut into chunks of whole images so that the im2col
//! buffer stays under [`GpuContext::scratch_budget`] (32 MiB by default); all chunks are recorded
//! into the one open encoder, so a chunk costs dispatches, not submits.

use cpu::conv2d::Conv2dDims;

use crate::buffer::GpuBuffer;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::gemm::{gemm_view, Epilogue, GemmVariant, View};
use crate::pipeline::Shader;
use crate::record::Kernel;

/// The WGSL source of the conv2d family.
pub const SHADER: Shader = Shader {
    name: "conv2d",
    source: include_str!("../../../shaders/conv2d.wgsl"),
    trusted: false,
};

/// How the forward pass is computed (the benchmarks compare them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// `conv2d_1_direct`: one thread per output element, no reuse. Forward only.
    Direct,
    /// im2col, then the given GEMM kernel.
    Im2colGemm(GemmVariant),
}

/// The uniform of conv2d.wgsl (`Params`).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
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
    first_image: u32,
    images: u32,
    flags: u32,
    _pad: u32,
}

impl Params {
    fn new(d: &Conv2dDims, first_image: usize, images: usize, flags: u32) -> Self {
        Params {
            n: d.n as u32,
            h: d.h as u32,
            w: d.w as u32,
            c_in: d.c_in as u32,
            kh: d.kh as u32,
            kw: d.kw as u32,
            c_out: d.c_out as u32,
            stride: d.stride as u32,
            pad_top: d.pad_top as u32,
            pad_left: d.pad_left as u32,
            out_h: d.out_h as u32,
            out_w: d.out_w as u32,
            first_image: first_image as u32,
            images: images as u32,
            flags,
            _pad: 0,
        }
    }
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: SHADER,
        entry,
    }
}

fn check(
    d: &Conv2dDims,
    x: usize,
    w: usize,
    y: usize,
    bias: Option<&GpuBuffer>,
) -> Result<(), GpuError> {
    let want = [d.input_len(), d.weight_len(), d.output_len()];
    if [x, w, y] != want {
        return Err(GpuError::Shape(format!(
            "conv2d: buffers hold {x}, {w} and {y} values; input, kernel and output need {}, {} and {}",
            want[0], want[1], want[2]
        )));
    }
    if let Some(b) = bias {
        if b.len() != d.c_out {
            return Err(GpuError::Shape(format!(
                "conv2d: bias holds {} values for {} channels",
                b.len(),
                d.c_out
            )));
        }
    }
    Ok(())
}

/// Images per chunk: as many as keep the im2col matrix under the budget (at least one).
fn chunk_images(ctx: &GpuContext, d: &Conv2dDims) -> Result<usize, GpuError> {
    let per_image = 4 * (d.out_pixels() * d.patch_len()) as u64;
    let budget = ctx.scratch_budget();
    if per_image > ctx.binding_limit() {
        return Err(GpuError::TooLarge {
            what: format!(
                "the im2col matrix of one {}x{}x{} image for a {}x{} kernel",
                d.h, d.w, d.c_in, d.kh, d.kw
            ),
            bytes: per_image,
            limit: ctx.binding_limit(),
        });
    }
    Ok(((budget / per_image.max(1)) as usize).clamp(1, d.n))
}

/// The image chunks `(first, count)` covering the batch.
fn chunks(n: usize, per: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(per).map(move |b| (b, per.min(n - b)))
}

/// Record im2col of images `b0 .. b0 + nb` of `x` into `cols` (one row per output pixel).
fn im2col(
    ctx: &GpuContext,
    d: &Conv2dDims,
    b0: usize,
    nb: usize,
    x: &GpuBuffer,
    cols: &GpuBuffer,
) -> Result<(), GpuError> {
    let len = nb * d.out_pixels() * d.patch_len();
    ctx.dispatch_threads(
        kernel("im2col"),
        &Params::new(d, b0, nb, 0),
        &[x, cols],
        len,
    )
}

/// Forward pass: `y = conv(x, w) + bias`, then ReLU when `relu`. `y` is overwritten.
// The arguments of `cpu::conv2d`'s forward plus the context, the variant and the fused ReLU.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    ctx: &GpuContext,
    v: ConvVariant,
    d: &Conv2dDims,
    x: &GpuBuffer,
    w: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    relu: bool,
    y: &GpuBuffer,
) -> Result<(), GpuError> {
    check(d, x.len(), w.len(), y.len(), bias)?;
    let gv = match v {
        ConvVariant::Direct => {
            let flags = u32::from(bias.is_some()) | if relu { 2 } else { 0 };
            let b = bias.unwrap_or(ctx.zero());
            return ctx.dispatch_threads(
                kernel("conv2d_1_direct"),
                &Params::new(d, 0, d.n, flags),
                &[x, y, w, b],
                d.output_len(),
            );
        }
        ConvVariant::Im2colGemm(gv) => gv,
    };
    let (patch, pixels) = (d.patch_len(), d.out_pixels());
    let epi = Epilogue {
        accumulate: false,
        bias,
        relu,
    };
    let wv = View::row_major(w, d.c_out);
    if d.is_pointwise() {
        let a = View::row_major(x, d.c_in);
        return gemm_view(ctx, gv, d.n * pixels, patch, d.c_out, a, wv, y, 0, epi);
    }
    let per = chunk_images(ctx, d)?;
    let cols = ctx.alloc(per * pixels * patch, "im2col matrix")?;
    let result = (|| {
        for (b0, nb) in chunks(d.n, per) {
            let rows = nb * pixels;
            im2col(ctx, d, b0, nb, x, &cols)?;
            let a = View::row_major(&cols, patch);
            gemm_view(
                ctx,
                gv,
                rows,
                patch,
                d.c_out,
                a,
                wv,
                y,
                b0 * pixels * d.c_out,
                epi,
            )?;
        }
        Ok(())
    })();
    ctx.release(cols);
    result
}

/// Input gradient: `dx` (overwritten) from the output gradient `dy` and the kernel `w`.
pub fn conv2d_backward_input(
    ctx: &GpuContext,
    gv: GemmVariant,
    d: &Conv2dDims,
    dy: &GpuBuffer,
    w: &GpuBuffer,
    dx: &GpuBuffer,
) -> Result<(), GpuError> {
    check(d, dx.len(), w.len(), dy.len(), None)?;
    let (patch, pixels) = (d.patch_len(), d.out_pixels());
    // w seen as [patch][c_out]; its transpose is [c_out][patch].
    let wt = View::row_major(w, d.c_out).t();
    let none = Epilogue::default();
    if d.is_pointwise() {
        let a = View::row_major(dy, d.c_out);
        return gemm_view(ctx, gv, d.n * pixels, d.c_out, patch, a, wt, dx, 0, none);
    }
    let per = chunk_images(ctx, d)?;
    let dcols = ctx.alloc(per * pixels * patch, "im2col gradient")?;
    let result = (|| {
        for (b0, nb) in chunks(d.n, per) {
            let rows = nb * pixels;
            let a = View::row_major(dy, d.c_out).at(b0 * pixels * d.c_out);
            gemm_view(ctx, gv, rows, d.c_out, patch, a, wt, &dcols, 0, none)?;
            ctx.dispatch_threads(
                kernel("col2im"),
                &Params::new(d, b0, nb, 0),
                &[&dcols, dx],
                nb * d.h * d.w * d.c_in,
            )?;
        }
        Ok(())
    })();
    ctx.release(dcols);
    result
}

/// Weight gradient: `dw` (overwritten) from the input `x` and the output gradient `dy`.
pub fn conv2d_backward_weight(
    ctx: &GpuContext,
    gv: GemmVariant,
    d: &Conv2dDims,
    x: &GpuBuffer,
    dy: &GpuBuffer,
    dw: &GpuBuffer,
) -> Result<(), GpuError> {
    check(d, x.len(), dw.len(), dy.len(), None)?;
    let (patch, pixels) = (d.patch_len(), d.out_pixels());
    if d.is_pointwise() {
        let a = View::row_major(x, d.c_in).t();
        let b = View::row_major(dy, d.c_out);
        let none = Epilogue::default();
        return gemm_view(ctx, gv, patch, d.n * pixels, d.c_out, a, b, dw, 0, none);
    }
    let per = chunk_images(ctx, d)?;
    let cols = ctx.alloc(per * pixels * patch, "im2col matrix")?;
    let result = (|| {
        for (i, (b0, nb)) in chunks(d.n, per).enumerate() {
            let rows = nb * pixels;
            im2col(ctx, d, b0, nb, x, &cols)?;
            let a = View::row_major(&cols, patch).t();
            let b = View::row_major(dy, d.c_out).at(b0 * pixels * d.c_out);
            let epi = Epilogue {
                accumulate: i > 0,
                ..Epilogue::default()
            };
            gemm_view(ctx, gv, patch, rows, d.c_out, a, b, dw, 0, epi)?;
        }
        Ok(())
    })();
    ctx.release(cols);
    result
}

crate::uniform_matches!(
    SHADER,
    "Params",
    Params {
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
        first_image,
        images,
        flags,
        _pad
    }
);
