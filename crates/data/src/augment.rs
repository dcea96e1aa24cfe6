//! Input normalisation and data augmentation on `f32` NHWC images.
//!
//! Every function here works on images already converted to `f32` (e.g. by
//! [`fill_batch`](crate::fill_batch)), **channels last**: one image is `h * w * c` floats, row by
//! row, and within a pixel its `c` channels. A batch is `n` such images back to back.
//!
//! What each piece reproduces (`docs/models.md`, sections B, D and E):
//!
//! | function | reproduces |
//! | --- | --- |
//! | [`normalize_per_channel`] + [`NIN_MEAN`]/[`NIN_STD`] | the NIN article's `(x[..., ch] - mean[ch]) / std[ch]` on 0..255 pixels (numpy, float32) |
//! | [`standardize_per_image`] | TensorFlow's `tf.image.per_image_standardization` (article 004's "whitening") |
//! | [`flip_horizontal`] | Keras `ImageDataGenerator(horizontal_flip=True)` / `tf.image.random_flip_left_right` |
//! | [`shift`] | Keras `ImageDataGenerator(width_shift_range, height_shift_range, fill_mode='constant', cval)`, i.e. `scipy.ndimage.affine_transform(order=1, mode='constant')` |
//! | [`pad_crop`] | zero padding then a fixed window: article 004 (pad 4, 24x24 crops) and He et al. 2016 (pad 4, 32x32 crops) |
//! | [`augment_batch`] | the per-image random draws of those generators, over a whole batch, in parallel |
//!
//! Recipes, as [`Augment`] values (normalise or standardise with the functions above, at the
//! point the recipe says):
//!
//! * NIN (section D): normalise with [`NIN_MEAN`]/[`NIN_STD`] first, then
//!   `Augment { flip: true, shift: Some(0.125), shift_fill: 0.0, crop: None }` (the fill of 0 is
//!   applied to normalised values, as in the article, where the generator runs after the
//!   normalisation).
//! * Keras cifar10_cnn example (section B.3): `shift: Some(0.1)`, `flip: true`. Note that the
//!   example leaves Keras' default `fill_mode='nearest'`, which [`shift`] does not implement
//!   (constant fill only).
//! * Article 004 `+augment` (section E.2): `Augment { flip: true, shift: None, shift_fill: 0.0,
//!   crop: Some(Crop { pad: 4, size: 24 }) }` on raw 0..255 floats, then
//!   [`standardize_per_image`] on the 24x24 output with `image_len = 24 * 24 * 3`, in both
//!   [`Mode::Train`] and [`Mode::Eval`] (which takes the centre crop).
//! * He et al. ResNets (section E.6): `crop: Some(Crop { pad: 4, size: 32 })`, `flip: true`.

use rayon::prelude::*;

/// Per-channel mean (R, G, B) of the CIFAR-10 training set on 0..255 pixels, as used by the NIN
/// article (`docs/models.md`, section D).
pub const NIN_MEAN: [f32; 3] = [125.307, 122.95, 113.865];
/// Per-channel standard deviation (R, G, B) on 0..255 pixels, as used by the NIN article.
pub const NIN_STD: [f32; 3] = [62.9932, 62.0887, 66.7048];

/// Normalises every pixel channel by channel, in place: `x = (x - mean[ch]) / std[ch]`, where
/// `ch` is the channel index (channels last, `c` per pixel).
///
/// Reproduces the NIN article's numpy code
/// `x[:, :, :, i] = (x[:, :, :, i] - mean[i]) / std[i]` on a float32 array: one f32
/// subtraction then one f32 division, so results match it bit for bit.
///
/// Panics if `mean.len() != c`, `std.len() != c`, `c == 0`, or `images.len()` is not a multiple
/// of `c`.
pub fn normalize_per_channel(images: &mut [f32], c: usize, mean: &[f32], std: &[f32]) {
    assert!(c > 0, "normalize_per_channel: c must be positive");
    assert_eq!(
        mean.len(),
        c,
        "normalize_per_channel: mean needs {c} values"
    );
    assert_eq!(std.len(), c, "normalize_per_channel: std needs {c} values");
    assert_eq!(
        images.len() % c,
        0,
        "normalize_per_channel: {} floats are not whole pixels of {c} channels",
        images.len()
    );
    for px in images.chunks_exact_mut(c) {
        for ((x, &m), &s) in px.iter_mut().zip(mean).zip(std) {
            *x = (*x - m) / s;
        }
    }
}

/// Standardises each image on its own, in place, as TensorFlow's
/// `tf.image.per_image_standardization`:
///
/// `x = (x - mean) / max(std, 1 / sqrt(N))`, with `N = image_len` (all pixels and channels of
/// one image), `mean` and `std` taken over those `N` values, `std` the population standard
/// deviation (divided by `N`, not `N - 1`).
///
/// The floor `1 / sqrt(N)` keeps constant images finite: they map to all zeros. The statistics
/// and the division are computed in `f64` (two-pass mean then variance) and rounded to `f32` at
/// the end; TensorFlow computes `E[x²] - E[x]²` in float32, so the two agree to f32 rounding.
/// Images are processed in parallel (rayon).
///
/// Panics if `image_len == 0` or `images.len()` is not a multiple of it.
pub fn standardize_per_image(images: &mut [f32], image_len: usize) {
    assert!(
        image_len > 0,
        "standardize_per_image: image_len must be positive"
    );
    assert_eq!(
        images.len() % image_len,
        0,
        "standardize_per_image: {} floats are not whole images of {image_len}",
        images.len()
    );
    let n = image_len as f64;
    let min_std = 1.0 / n.sqrt();
    images.par_chunks_exact_mut(image_len).for_each(|img| {
        let mean = img.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = img
            .iter()
            .map(|&x| {
                let d = f64::from(x) - mean;
                d * d
            })
            .sum::<f64>()
            / n;
        let scale = var.sqrt().max(min_std);
        for x in img {
            *x = ((f64::from(*x) - mean) / scale) as f32;
        }
    });
}

/// Mirrors one `h x w x c` image left to right: `dst[i][j] = src[i][w - 1 - j]` (all channels
/// of a pixel move together). Same as Keras' `flip_axis(x, col_axis)` and TensorFlow's
/// `tf.image.flip_left_right`.
///
/// Panics if `src` or `dst` is not `h * w * c` long.
pub fn flip_horizontal(src: &[f32], h: usize, w: usize, c: usize, dst: &mut [f32]) {
    check_image("flip_horizontal", src, dst, h * w * c, h * w * c);
    if w == 0 || c == 0 {
        return;
    }
    for (s_row, d_row) in src.chunks_exact(w * c).zip(dst.chunks_exact_mut(w * c)) {
        for (d_px, s_px) in d_row.chunks_exact_mut(c).zip(s_row.chunks_exact(c).rev()) {
            d_px.copy_from_slice(s_px);
        }
    }
}

/// [`flip_horizontal`] in place (one image of `h * w * c` floats).
pub fn flip_horizontal_in_place(img: &mut [f32], h: usize, w: usize, c: usize) {
    assert_eq!(
        img.len(),
        h * w * c,
        "flip_horizontal_in_place: image is not {h}x{w}x{c}"
    );
    if w < 2 || c == 0 {
        return;
    }
    for row in img.chunks_exact_mut(w * c) {
        let (left, right) = row.split_at_mut((w / 2) * c);
        // With w odd the middle pixel starts `right` and stays where it is.
        let right = &mut right[(w % 2) * c..];
        for (l_px, r_px) in left
            .chunks_exact_mut(c)
            .zip(right.chunks_exact_mut(c).rev())
        {
            l_px.swap_with_slice(r_px);
        }
    }
}

/// Translates one `h x w x c` image by `(dy, dx)` pixels, as Keras' width/height shift does.
///
/// **Semantics.** Output pixel `(i, j)` is the input sampled at the point `(i - dy, j - dx)`,
/// so the content moves **down by `dy` and right by `dx`** (negative values move it up/left).
/// Keras builds the matrix `[[1, 0, tx], [0, 1, ty]]` and scipy maps output `o` to input
/// `o + (tx, ty)`, so Keras' `(tx, ty)` is `(-dy, -dx)` here; the random draws are symmetric,
/// so the distribution of shifts is the same.
///
/// **Interpolation** is bilinear, reproducing `scipy.ndimage.affine_transform(order=1,
/// mode='constant', cval=fill)` (what Keras' `apply_affine_transform` calls per channel):
///
/// * along each axis, a sample point `p` inside `[0, n - 1]` takes
///   `(1 - f) * x[floor(p)] + f * x[floor(p) + 1]` with `f = p - floor(p)`, and the two axes
///   combine as the product of their weights (summed in scipy's order, in `f64`, then rounded
///   to `f32`);
/// * a sample point outside `[0, n - 1]` on either axis gives `fill`, **whole**: scipy's
///   `'constant'` mode does not interpolate beyond the edge. So a point between the last pixel
///   and the outside (e.g. `p = n - 0.5` after a half-pixel shift) is `fill`, not a mix of
///   `x[n - 1]` and `fill`: a half-pixel shift fills the uncovered edge row or column
///   entirely with `fill`. (Mixing with `cval` there is scipy's other mode,
///   `'grid-constant'`, which Keras does not use; this was checked against scipy 1.17.1,
///   whose C code treats `'constant'` this way in older releases too.)
///
/// An integer shift (both `dy` and `dx` whole numbers) is an exact copy of the overlapping part
/// with `fill` elsewhere, done with row copies.
///
/// Panics if `src` or `dst` is not `h * w * c` long, or `dy`/`dx` is not finite.
// An image (src, h, w, c), the shift and its fill, and the output: each is used once, and a
// struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn shift(
    src: &[f32],
    h: usize,
    w: usize,
    c: usize,
    dy: f32,
    dx: f32,
    fill: f32,
    dst: &mut [f32],
) {
    check_image("shift", src, dst, h * w * c, h * w * c);
    assert!(
        dy.is_finite() && dx.is_finite(),
        "shift: shifts must be finite, got dy = {dy}, dx = {dx}"
    );
    if h == 0 || w == 0 || c == 0 {
        return;
    }
    let row_len = w * c;
    let ty = Taps::new(dy, h);
    let tx = Taps::new(dx, w);
    if ty.frac == 0.0 && tx.frac == 0.0 {
        // Exact copy: output columns j in [j_lo, j_hi) read input column j + base.
        let j_lo = (-tx.base).clamp(0, w as i64) as usize;
        let j_hi = (w as i64 - tx.base).clamp(0, w as i64) as usize;
        let j_hi = j_hi.max(j_lo);
        for (i, d_row) in dst.chunks_exact_mut(row_len).enumerate() {
            match ty.at(i, h) {
                None => d_row.fill(fill),
                Some((y, _)) => {
                    let s_row = &src[y * row_len..(y + 1) * row_len];
                    d_row[..j_lo * c].fill(fill);
                    if j_hi > j_lo {
                        let x0 = (j_lo as i64 + tx.base) as usize;
                        d_row[j_lo * c..j_hi * c]
                            .copy_from_slice(&s_row[x0 * c..(x0 + j_hi - j_lo) * c]);
                    }
                    d_row[j_hi * c..].fill(fill);
                }
            }
        }
        return;
    }
    let (wy0, wy1) = (1.0 - ty.frac, ty.frac);
    let (wx0, wx1) = (1.0 - tx.frac, tx.frac);
    for (i, d_row) in dst.chunks_exact_mut(row_len).enumerate() {
        let Some((y0, y1)) = ty.at(i, h) else {
            d_row.fill(fill);
            continue;
        };
        let r0 = &src[y0 * row_len..(y0 + 1) * row_len];
        let r1 = &src[y1 * row_len..(y1 + 1) * row_len];
        for (j, d_px) in d_row.chunks_exact_mut(c).enumerate() {
            let Some((x0, x1)) = tx.at(j, w) else {
                d_px.fill(fill);
                continue;
            };
            for (k, d) in d_px.iter_mut().enumerate() {
                let p00 = f64::from(r0[x0 * c + k]);
                let p01 = f64::from(r0[x1 * c + k]);
                let p10 = f64::from(r1[x0 * c + k]);
                let p11 = f64::from(r1[x1 * c + k]);
                // scipy's footprint order (last axis fastest), weights applied y then x.
                let mut t = 0.0;
                t += p00 * wy0 * wx0;
                t += p01 * wy0 * wx1;
                t += p10 * wy1 * wx0;
                t += p11 * wy1 * wx1;
                *d = t as f32;
            }
        }
    }
}

/// Where one axis of a shifted image samples its input: output index `i` reads the point
/// `i + base + frac` (`base` integer, `0 <= frac < 1`).
struct Taps {
    base: i64,
    frac: f64,
}

impl Taps {
    /// The taps for content moved by `d` along an axis of `n` pixels (sample at `i - d`).
    fn new(d: f32, n: usize) -> Taps {
        let p = -f64::from(d);
        let base = p.floor();
        let frac = p - base;
        // Beyond +-(n + 1) every sample is outside anyway; clamping keeps the cast in range.
        let limit = n as f64 + 1.0;
        Taps {
            base: base.clamp(-limit, limit) as i64,
            frac,
        }
    }

    /// The two input indices that output index `i` interpolates between, or `None` when its
    /// sample point lies outside `[0, n - 1]` (scipy `mode='constant'`: pure fill). With
    /// `frac == 0` both indices are the same pixel.
    fn at(&self, i: usize, n: usize) -> Option<(usize, usize)> {
        let y0 = i as i64 + self.base;
        // The last index the lower tap may take: n - 1 for a whole sample, n - 2 when the upper
        // tap y0 + 1 must exist too.
        let max = n as i64 - if self.frac == 0.0 { 1 } else { 2 };
        if y0 < 0 || y0 > max {
            return None;
        }
        let y0 = y0 as usize;
        Some((y0, if self.frac == 0.0 { y0 } else { y0 + 1 }))
    }
}

/// Zero-pads one `h x w x c` image by `pad` pixels on every side (giving
/// `(h + 2 pad) x (w + 2 pad)`) and copies the `out_h x out_w` window whose top-left corner is
/// `(top, left)` in the padded image into `dst`:
/// `dst[i][j] = padded[top + i][left + j]`, where `padded[r][s] = src[r - pad][s - pad]` inside
/// the original and `0.0` outside.
///
/// Used for article 004 (`pad = 4`, 24x24 windows at random offsets `0..=16` for training, the
/// centre `top = left = (h + 2 pad - 24) / 2 = 8` for evaluation) and He et al. 2016 (`pad = 4`,
/// 32x32 windows at offsets `0..=8`). Nothing is allocated; the padded image is never built.
///
/// Panics if `src` is not `h * w * c` long, `dst` is not `out_h * out_w * c` long, or the window
/// does not fit (`top + out_h > h + 2 pad` or `left + out_w > w + 2 pad`).
// An image (src, h, w, c), the padding, the crop window (size and corner) and the output.
#[allow(clippy::too_many_arguments)]
pub fn pad_crop(
    src: &[f32],
    h: usize,
    w: usize,
    c: usize,
    pad: usize,
    out_h: usize,
    out_w: usize,
    top: usize,
    left: usize,
    dst: &mut [f32],
) {
    check_image("pad_crop", src, dst, h * w * c, out_h * out_w * c);
    assert!(
        top + out_h <= h + 2 * pad && left + out_w <= w + 2 * pad,
        "pad_crop: a {out_h}x{out_w} window at ({top}, {left}) does not fit in the \
         {}x{} padded image",
        h + 2 * pad,
        w + 2 * pad
    );
    if out_w == 0 || c == 0 {
        return;
    }
    // Output columns [j_lo, j_hi) fall inside the original image, at column left + j - pad.
    let j_lo = pad.saturating_sub(left).min(out_w);
    let j_hi = (pad + w).saturating_sub(left).min(out_w).max(j_lo);
    let row_len = w * c;
    for (i, d_row) in dst.chunks_exact_mut(out_w * c).enumerate() {
        let r = top + i;
        if r < pad || r >= pad + h {
            d_row.fill(0.0);
            continue;
        }
        let s_row = &src[(r - pad) * row_len..(r - pad + 1) * row_len];
        d_row[..j_lo * c].fill(0.0);
        if j_hi > j_lo {
            let x0 = left + j_lo - pad;
            d_row[j_lo * c..j_hi * c].copy_from_slice(&s_row[x0 * c..(x0 + j_hi - j_lo) * c]);
        }
        d_row[j_hi * c..].fill(0.0);
    }
}

/// A random crop after zero padding (see [`pad_crop`]): pad by `pad`, keep `size x size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    /// Zero padding added on every side before cropping.
    pub pad: usize,
    /// Side of the square output (e.g. 24 for article 004, 32 for He et al.).
    pub size: usize,
}

/// The augmentations [`augment_batch`] applies in [`Mode::Train`].
///
/// `shift` and `crop` are alternatives (no recipe uses both); [`augment_batch`] panics when both
/// are set. `Augment::default()` does nothing (an exact copy).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
    /// Random shift: the largest shift as a fraction of the height and width (e.g. 0.125 or
    /// 0.1). `dy` is drawn uniformly in `[-f * h, f * h)` and `dx` in `[-f * w, f * w)`, both
    /// fractional, then applied with [`shift`]. Unlike Keras, a value >= 1 is still a fraction,
    /// never a pixel count.
    pub shift: Option<f32>,
    /// The value [`shift`] puts where the image has no content (Keras `cval`).
    pub shift_fill: f32,
    /// Zero padding then a random crop (centre crop in [`Mode::Eval`]).
    pub crop: Option<Crop>,
}

impl Augment {
    /// The `(height, width)` of [`augment_batch`]'s output images for `h x w` inputs:
    /// `(crop.size, crop.size)` with a crop, else `(h, w)`.
    pub fn output_hw(&self, h: usize, w: usize) -> (usize, usize) {
        match self.crop {
            Some(crop) => (crop.size, crop.size),
            None => (h, w),
        }
    }
}

/// Training (random augmentation) or evaluation (deterministic) preprocessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Random crop (or shift), then random flip.
    Train,
    /// No flip, no shift; the centre crop when `crop` is set, else an exact copy.
    Eval,
}

/// Augments a batch of `n` images (`h x w x c` each, `src.len() == n * h * w * c`) into `dst`
/// (`n * out_h * out_w * c` floats, `(out_h, out_w) = aug.output_hw(h, w)`).
///
/// [`Mode::Train`], per image, in this order:
/// 1. with `crop`: [`pad_crop`] at a random corner, `top` and `left` each uniform in
///    `0..=h + 2 pad - size` (resp. `w`); or, with `shift = Some(f)`: [`shift`] by `dy` uniform
///    in `[-f h, f h)` and `dx` uniform in `[-f w, f w)` with `aug.shift_fill`; else a copy;
/// 2. with `flip`: a horizontal flip with probability 1/2 (Keras: `random() < 0.5`).
///
/// [`Mode::Eval`]: the centre crop (`top = (h + 2 pad - size) / 2`, same for `left`, rounded
/// down) when `crop` is set, else an exact copy; `flip` and `shift` are ignored.
///
/// **Randomness.** Image `k` of the batch draws from its own generator (splitmix64) seeded by
/// `(seed, step, k)` alone, in the fixed order above (crop offsets or shifts, then the flip
/// coin), so the output depends only on the inputs and never on the number of threads or the
/// scheduling. Pass a `step` that is unique over the whole run (e.g. the global iteration
/// count): the same `(seed, step)` repeats the same augmentations. Generated streams are this
/// crate's own, stable across `rand` releases. Integer offsets use a multiply-shift reduction
/// whose bias (below `range / 2^64`) is negligible.
///
/// Images are processed in parallel with rayon. Nothing is allocated per call beyond what
/// rayon's work splitting needs (and its global pool, once per process).
///
/// Panics on wrong buffer lengths, `h`, `w` or `c` zero, a crop larger than the padded image,
/// a negative or non-finite shift fraction, or `shift` and `crop` both set.
// A batch (src, n, h, w, c), what to do (aug, mode), the randomness (seed, step) and the output.
#[allow(clippy::too_many_arguments)]
pub fn augment_batch(
    src: &[f32],
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    aug: &Augment,
    mode: Mode,
    seed: u64,
    step: u64,
    dst: &mut [f32],
) {
    assert!(
        h > 0 && w > 0 && c > 0,
        "augment_batch: empty image shape {h}x{w}x{c}"
    );
    let (out_h, out_w) = aug.output_hw(h, w);
    let (in_len, out_len) = (h * w * c, out_h * out_w * c);
    assert_eq!(
        src.len(),
        n * in_len,
        "augment_batch: source holds {} floats, {n} images of {h}x{w}x{c} need {}",
        src.len(),
        n * in_len
    );
    assert_eq!(
        dst.len(),
        n * out_len,
        "augment_batch: destination holds {} floats, {n} images of {out_h}x{out_w}x{c} need {}",
        dst.len(),
        n * out_len
    );
    assert!(
        aug.shift.is_none() || aug.crop.is_none(),
        "augment_batch: shift and crop cannot both be set"
    );
    if let Some(f) = aug.shift {
        assert!(
            f.is_finite() && f >= 0.0,
            "augment_batch: shift fraction must be finite and >= 0, got {f}"
        );
    }
    if let Some(crop) = aug.crop {
        assert!(
            crop.size > 0 && crop.size <= h + 2 * crop.pad && crop.size <= w + 2 * crop.pad,
            "augment_batch: a {0}x{0} crop does not fit in the {1}x{2} padded image",
            crop.size,
            h + 2 * crop.pad,
            w + 2 * crop.pad
        );
    }
    if n == 0 {
        return;
    }
    let images = dst
        .par_chunks_exact_mut(out_len)
        .zip(src.par_chunks_exact(in_len))
        .enumerate();
    match mode {
        Mode::Eval => images.for_each(|(_, (d, s))| match aug.crop {
            Some(crop) => {
                let top = (h + 2 * crop.pad - crop.size) / 2;
                let left = (w + 2 * crop.pad - crop.size) / 2;
                pad_crop(s, h, w, c, crop.pad, crop.size, crop.size, top, left, d);
            }
            None => d.copy_from_slice(s),
        }),
        Mode::Train => images.for_each(|(k, (d, s))| {
            let mut rng = SplitMix64::for_image(seed, step, k as u64);
            if let Some(crop) = aug.crop {
                let top = rng.below(h + 2 * crop.pad - crop.size + 1);
                let left = rng.below(w + 2 * crop.pad - crop.size + 1);
                pad_crop(s, h, w, c, crop.pad, crop.size, crop.size, top, left, d);
            } else if let Some(f) = aug.shift {
                let f = f64::from(f);
                let dy = (rng.uniform(-f, f) * h as f64) as f32;
                let dx = (rng.uniform(-f, f) * w as f64) as f32;
                shift(s, h, w, c, dy, dx, aug.shift_fill, d);
            } else {
                d.copy_from_slice(s);
            }
            if aug.flip && rng.unit() < 0.5 {
                flip_horizontal_in_place(d, out_h, out_w, c);
            }
        }),
    }
}

/// Checks one image's source and destination lengths.
fn check_image(what: &str, src: &[f32], dst: &[f32], src_len: usize, dst_len: usize) {
    assert_eq!(
        src.len(),
        src_len,
        "{what}: source holds {} floats, expected {src_len}",
        src.len()
    );
    assert_eq!(
        dst.len(),
        dst_len,
        "{what}: destination holds {} floats, expected {dst_len}",
        dst.len()
    );
}

/// splitmix64: a tiny, fast generator whose seeding is free, so each image can have its own.
struct SplitMix64(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijection on u64 that spreads nearby inputs apart.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// The generator of image `index` in the batch of `step` under `seed`.
    fn for_image(seed: u64, step: u64, index: u64) -> SplitMix64 {
        let s = mix(seed.wrapping_add(GOLDEN));
        let s = mix(s ^ step.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        SplitMix64(mix(s ^ index.wrapping_mul(0xA076_1D64_78BD_642F)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`, 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_covers_range_and_stays_inside() {
        let mut rng = SplitMix64::for_image(1, 2, 3);
        let mut seen = [0usize; 17];
        for _ in 0..2000 {
            seen[rng.below(17)] += 1;
        }
        assert!(seen.iter().all(|&k| k > 60), "{seen:?}");
    }

    #[test]
    fn unit_is_in_unit_interval_with_mean_half() {
        let mut rng = SplitMix64::for_image(0, 0, 0);
        let xs: Vec<f64> = (0..10_000).map(|_| rng.unit()).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn flip_in_place_matches_flip_for_odd_and_even_widths() {
        for w in 1..6 {
            let (h, c) = (2, 3);
            let src: Vec<f32> = (0..h * w * c).map(|v| v as f32).collect();
            let mut a = vec![0.0; src.len()];
            flip_horizontal(&src, h, w, c, &mut a);
            let mut b = src.clone();
            flip_horizontal_in_place(&mut b, h, w, c);
            assert_eq!(a, b, "w = {w}");
        }
    }
}
