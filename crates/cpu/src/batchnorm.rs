//! Batch normalisation over the last axis (channels), as Keras `BatchNormalization(axis=-1)`.
//!
//! Math, with `R` rows and per channel `j`:
//! - training forward: `mean_j = (1/R) sum_r x[r][j]`, the BIASED variance
//!   `var_j = (1/R) sum_r (x[r][j] - mean_j)^2`, `inv_std_j = 1 / sqrt(var_j + eps)` and
//!   `y[r][j] = gamma_j * (x[r][j] - mean_j) * inv_std_j + beta_j`. The batch mean and variance
//!   are written out for the backward pass and the moving averages. The reference accumulates
//!   in `f64` and computes the variance in a second pass around the mean (not as
//!   `E[x^2] - mean^2`, which cancels catastrophically when `|mean| >> std`).
//! - inference forward: the same with the moving mean and variance in place of the batch ones.
//! - backward of the training forward (the batch statistics depend on `x`), with
//!   `xhat = (x - mean) * inv_std`: `dbeta_j = sum_r dy`, `dgamma_j = sum_r dy * xhat`,
//!   `dx = gamma * inv_std / R * (R * dy - dbeta - xhat * dgamma)`.
//! - moving statistics: `moving = momentum * moving + (1 - momentum) * batch`, with the biased
//!   batch variance for the moving variance, as Keras 3 does (no `R / (R - 1)` correction).
//!
//! Layout: `x`, `y`, `dy`, `dx` are `rows x c`, row-major, contiguous; every per-channel vector
//! (`gamma`, `beta`, `mean`, `var`, ...) has length `c`. Every kernel takes these sizes and
//! `eps` as a [`BatchNormDims`] first, then its inputs, then its outputs. An NHWC `[n, h, w, c]` activation is
//! such a matrix with `rows = n * h * w` (channels last, so the channel is the column); a dense
//! `[n, c]` activation is one with `rows = n`. With no rows the batch statistics are defined
//! as 0 (and the gradients of `gamma`, `beta` as 0).
//!
//! Why the fast versions are faster: the references walk down one column at a time (stride
//! `c`), one channel after another. The fast versions split the rows into blocks of
//! [`BLOCK_ROWS`] rows that rayon runs in parallel; each block sums its rows in `f32` over
//! short runs of `RUN_ROWS` (8) rows (a contiguous row-by-row loop the compiler vectorises) and
//! adds each run's sums into its own `f64` per-channel partial sums. The partial sums (one
//! `c`-long slice per block, in one buffer allocated per call) are then added up in block
//! order, so the result does not depend on the thread count. (Summing every element in `f64`
//! as before ran at half the speed: 10.6 against 18.9 GiB/s for the backward at resnet20's
//! first stage, `cargo bench --bench batchnorm`, Intel Xeon, 2 threads.) The statistics take
//! one pass (sums of `x - shift` and of its square, around each channel's first value, so
//! `E[(x-k)^2] - E[x-k]^2` does not cancel when `|mean| >> std`); the backward takes one
//! (both sums at once).
//! The element-wise passes (normalise, `dx`) run over blocks of rows in parallel with the
//! per-channel factors precomputed once (small `c`-long vectors allocated per call), so each
//! element costs a subtract and a multiply-add. The fast versions agree with the references
//! to rounding (about 1e-6 relative), not bit for bit.

use rayon::prelude::*;

use crate::simd::multiversion;

/// Rows per block in the fast reductions (each block has its own `f64` partial sums).
pub const BLOCK_ROWS: usize = 256;

/// Rows per run of `f32` sums inside a block of the reductions: short enough that the
/// `f32` rounding stays near one ulp per run (8 terms), long enough that the `f64` additions
/// (one per run and channel) cost little beside the vectorised `f32` work.
const RUN_ROWS: usize = 8;

/// About how many elements one parallel task of an element-wise pass touches.
const CHUNK: usize = 1 << 14;

/// The shape of one batch normalisation and its epsilon: activations are a `rows x c` matrix
/// (channels last), every per-channel vector has length `c`, and `eps` is added to the
/// variance under the square root. Build it as a literal, or with [`BatchNormDims::from_len`]
/// from a flat activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormDims {
    /// `n * h * w` for an NHWC activation, `n` for a dense `[n, c]` one; may be 0.
    pub rows: usize,
    /// Channels: the last axis.
    pub c: usize,
    pub eps: f32,
}

impl BatchNormDims {
    /// The dims of a flat activation of `len` elements with `c` channels per row.
    /// Panics if `c` is 0 or does not divide `len`.
    pub fn from_len(len: usize, c: usize, eps: f32) -> Self {
        assert!(c > 0, "batchnorm: c is 0");
        assert_eq!(len % c, 0, "batchnorm: length is not a multiple of c");
        BatchNormDims {
            rows: len / c,
            c,
            eps,
        }
    }

    /// `rows * c`: the length of `x`, `y`, `dy` and `dx`.
    pub fn input_len(&self) -> usize {
        self.rows * self.c
    }

    /// Panics unless `c > 0`, every activation slice holds `rows * c` values and every
    /// per-channel slice `c`.
    fn check(&self, what: &str, activations: &[&[f32]], per_channel: &[&[f32]]) {
        assert!(self.c > 0, "{what}: c is 0");
        for v in activations {
            assert_eq!(
                v.len(),
                self.input_len(),
                "{what}: an activation's length != rows * c"
            );
        }
        for v in per_channel {
            assert_eq!(
                v.len(),
                self.c,
                "{what}: a per-channel vector's length != c"
            );
        }
    }
}

/// Reference training forward: batch mean and biased variance (in `f64`, written to `mean`
/// and `var`), then `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
pub fn batchnorm_forward_train_reference(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    d.check("batchnorm", &[x, y], &[gamma, beta, mean, var]);
    let (rows, c) = (d.rows, d.c);
    for j in 0..c {
        let mut sum = 0.0f64;
        for r in 0..rows {
            sum += x[r * c + j] as f64;
        }
        let m = if rows > 0 { sum / rows as f64 } else { 0.0 };
        let mut sq = 0.0f64;
        for r in 0..rows {
            let dev = x[r * c + j] as f64 - m;
            sq += dev * dev;
        }
        mean[j] = m as f32;
        var[j] = if rows > 0 {
            (sq / rows as f64) as f32
        } else {
            0.0
        };
    }
    for r in 0..rows {
        for j in 0..c {
            let i = r * c + j;
            y[i] = gamma[j] * (x[i] - mean[j]) / (var[j] + d.eps).sqrt() + beta[j];
        }
    }
}

/// Per channel `sum (x - shift)` and `sum (x - shift)^2` in f64: each block of [`BLOCK_ROWS`]
/// rows into its own partial sums in parallel, then the partials added in block order (so the
/// result does not depend on the thread count).
fn shifted_moments(x: &[f32], c: usize, shift: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let blocks = x.len().div_ceil(BLOCK_ROWS * c);
    // Per block: the sums in the first `c` slots, the sums of squares in the next `c`.
    let mut partial = vec![0.0f64; blocks * 2 * c];
    partial
        .par_chunks_mut(2 * c)
        .zip(x.par_chunks(BLOCK_ROWS * c))
        .for_each(|(acc, block)| {
            let (s1, s2) = acc.split_at_mut(c);
            moments_block(block, shift, s1, s2);
        });
    let (mut s1, mut s2) = (vec![0.0f64; c], vec![0.0f64; c]);
    for p in partial.chunks_exact(2 * c) {
        for j in 0..c {
            s1[j] += p[j];
            s2[j] += p[c + j];
        }
    }
    (s1, s2)
}

multiversion! {
    /// One block of [`shifted_moments`]: `f32` sums over runs of [`RUN_ROWS`] rows (the
    /// vectorised part), each run then added into the block's `f64` sums `s1`, `s2`.
    fn moments_block(block: &[f32], shift: &[f32], s1: &mut [f64], s2: &mut [f64]) {
        let c = shift.len();
        let (mut r1, mut r2) = (vec![0.0f32; c], vec![0.0f32; c]);
        for run in block.chunks(RUN_ROWS * c) {
            r1.fill(0.0);
            r2.fill(0.0);
            for row in run.chunks_exact(c) {
                for (((a1, a2), &v), &k) in r1.iter_mut().zip(r2.iter_mut()).zip(row).zip(shift) {
                    let dev = v - k;
                    *a1 += dev;
                    *a2 += dev * dev;
                }
            }
            for (((a1, a2), &t1), &t2) in s1.iter_mut().zip(s2.iter_mut()).zip(&r1).zip(&r2) {
                *a1 += t1 as f64;
                *a2 += t2 as f64;
            }
        }
    }
}

/// `y = (x - shift) * scale + offset` per channel (then `max(y, 0)` with `relu`), in
/// parallel over blocks of rows.
fn affine(x: &[f32], c: usize, t: Affine, relu: bool, y: &mut [f32]) {
    let rows_per_task = (CHUNK / c).max(1);
    y.par_chunks_mut(rows_per_task * c)
        .zip(x.par_chunks(rows_per_task * c))
        .for_each(|(y_blk, x_blk)| affine_block(x_blk, t, relu, y_blk));
}

multiversion! {
    /// One block of rows of [`affine`].
    fn affine_block(x_blk: &[f32], t: Affine, relu: bool, y_blk: &mut [f32]) {
        let c = t.shift.len();
        for (y_row, x_row) in y_blk.chunks_exact_mut(c).zip(x_blk.chunks_exact(c)) {
            for ((((o, &v), &m), &s), &b) in y_row
                .iter_mut()
                .zip(x_row)
                .zip(t.shift)
                .zip(t.scale)
                .zip(t.offset)
            {
                let z = (v - m) * s + b;
                *o = if relu { z.max(0.0) } else { z };
            }
        }
    }
}

/// The per-channel map of a forward pass: `y = (x - shift) * scale + offset`. The fused
/// backward recomputes `y` with it, in the same operations, so its ReLU mask is the
/// forward's bit for bit.
#[derive(Clone, Copy)]
struct Affine<'a> {
    shift: &'a [f32],
    scale: &'a [f32],
    offset: &'a [f32],
}

/// `gamma / sqrt(var + eps)` per channel.
fn scales(gamma: &[f32], var: &[f32], eps: f32) -> Vec<f32> {
    gamma
        .iter()
        .zip(var)
        .map(|(&g, &v)| g / (v + eps).sqrt())
        .collect()
}

/// Fast training forward; agrees with [`batchnorm_forward_train_reference`] to rounding.
pub fn batchnorm_forward_train(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    forward_train(d, x, gamma, beta, false, y, mean, var)
}

/// Fast training forward of batch norm followed by ReLU, `y = max(0, batchnorm(x))`, in the
/// passes of batch norm alone (the ReLU is applied as `y` is written, not in a pass of its
/// own); agrees with [`batchnorm_relu_forward_train_reference`] to rounding.
pub fn batchnorm_relu_forward_train(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    forward_train(d, x, gamma, beta, true, y, mean, var)
}

/// Reference for [`batchnorm_relu_forward_train`]: [`batchnorm_forward_train_reference`],
/// then `max(y, 0)`.
pub fn batchnorm_relu_forward_train_reference(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    batchnorm_forward_train_reference(d, x, gamma, beta, y, mean, var);
    y.iter_mut().for_each(|v| *v = v.max(0.0));
}

// The training forward's arguments plus whether a ReLU follows.
#[allow(clippy::too_many_arguments)]
fn forward_train(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    relu: bool,
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    d.check("batchnorm", &[x, y], &[gamma, beta, mean, var]);
    let (rows, c) = (d.rows, d.c);
    if rows == 0 {
        mean.fill(0.0);
        var.fill(0.0);
        return;
    }
    // One pass for both statistics (the reference takes two): sums of `x - shift` and of its
    // square, in f64, around each channel's first value. The shift keeps the subtraction in
    // `E[(x-k)^2] - E[x-k]^2` from cancelling when |mean| >> std; f64 keeps what is left
    // far below f32 rounding. One read of `x` fewer: the forward is two passes, not three.
    let inv_rows = 1.0 / rows as f64;
    let shift = &x[..c];
    let (s1, s2) = shifted_moments(x, c, shift);
    for j in 0..c {
        let m = s1[j] * inv_rows;
        mean[j] = (shift[j] as f64 + m) as f32;
        var[j] = (s2[j] * inv_rows - m * m).max(0.0) as f32;
    }
    let scale = scales(gamma, var, d.eps);
    let t = Affine {
        shift: mean,
        scale: &scale,
        offset: beta,
    };
    affine(x, c, t, relu, y);
}

/// Reference inference forward: `y = gamma * (x - moving_mean) / sqrt(moving_var + eps) + beta`.
pub fn batchnorm_forward_infer_reference(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    moving_mean: &[f32],
    moving_var: &[f32],
    y: &mut [f32],
) {
    d.check(
        "batchnorm",
        &[x, y],
        &[gamma, beta, moving_mean, moving_var],
    );
    let c = d.c;
    for r in 0..d.rows {
        for j in 0..c {
            let i = r * c + j;
            y[i] = gamma[j] * (x[i] - moving_mean[j]) / (moving_var[j] + d.eps).sqrt() + beta[j];
        }
    }
}

/// Fast inference forward; agrees with [`batchnorm_forward_infer_reference`] to rounding, and
/// with [`batchnorm_forward_train`] bit for bit when the moving statistics equal the batch ones.
pub fn batchnorm_forward_infer(
    d: &BatchNormDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    moving_mean: &[f32],
    moving_var: &[f32],
    y: &mut [f32],
) {
    d.check(
        "batchnorm",
        &[x, y],
        &[gamma, beta, moving_mean, moving_var],
    );
    let scale = scales(gamma, moving_var, d.eps);
    let t = Affine {
        shift: moving_mean,
        scale: &scale,
        offset: beta,
    };
    affine(x, d.c, t, false, y);
}

/// Reference backward of the training forward (computed in `f64`): overwrites `dx`, `dgamma`
/// and `dbeta`. `mean` and `var` are the batch statistics the forward wrote.
// Eight flat slices (x, dy, gamma, mean, var in; dx, dgamma, dbeta out) read best as such.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward_reference(
    d: &BatchNormDims,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let what = "batchnorm backward";
    d.check(what, &[x, dy, dx], &[gamma, mean, var, dgamma, dbeta]);
    let (rows, c) = (d.rows, d.c);
    let big_r = rows as f64;
    for j in 0..c {
        let inv_std = 1.0 / (var[j] as f64 + d.eps as f64).sqrt();
        let xhat = |r: usize| (x[r * c + j] as f64 - mean[j] as f64) * inv_std;
        let mut db = 0.0f64;
        let mut dg = 0.0f64;
        for r in 0..rows {
            db += dy[r * c + j] as f64;
            dg += dy[r * c + j] as f64 * xhat(r);
        }
        for r in 0..rows {
            let i = r * c + j;
            dx[i] = (gamma[j] as f64 * inv_std / big_r * (big_r * dy[i] as f64 - db - xhat(r) * dg))
                as f32;
        }
        dgamma[j] = dg as f32;
        dbeta[j] = db as f32;
    }
}

/// Fast backward; agrees with [`batchnorm_backward_reference`] to rounding.
// Eight flat slices (x, dy, gamma, mean, var in; dx, dgamma, dbeta out) read best as such.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    d: &BatchNormDims,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    backward(d, x, dy, gamma, None, mean, var, dx, dgamma, dbeta)
}

/// Fast backward of [`batchnorm_relu_forward_train`]: batch norm's backward applied to
/// `dz = dy * (y > 0)`, where the mask is recomputed from `x` (and `beta`, `mean`, `var`) in
/// the forward's own operations instead of read from `y`, and `dz` is never stored: the
/// passes and the memory traffic of batch norm's backward alone. Agrees with
/// [`batchnorm_relu_backward_reference`] to rounding.
// The backward's slices plus beta (the mask needs the forward's offset).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_backward(
    d: &BatchNormDims,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    assert_eq!(beta.len(), d.c, "batchnorm backward: beta's length != c");
    backward(d, x, dy, gamma, Some(beta), mean, var, dx, dgamma, dbeta)
}

/// Reference for [`batchnorm_relu_backward`]: `y` from [`batchnorm_forward_train_reference`]'s
/// formula with the given statistics, `dz = dy * (y > 0)`, then
/// [`batchnorm_backward_reference`] of `dz`.
// As `batchnorm_relu_backward`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_backward_reference(
    d: &BatchNormDims,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let c = d.c;
    let dz: Vec<f32> = (0..dy.len())
        .map(|i| {
            let j = i % c;
            let y = gamma[j] * (x[i] - mean[j]) / (var[j] + d.eps).sqrt() + beta[j];
            if y > 0.0 {
                dy[i]
            } else {
                0.0
            }
        })
        .collect();
    batchnorm_backward_reference(d, x, &dz, gamma, mean, var, dx, dgamma, dbeta)
}

/// Both backwards; `relu_beta` is the forward's `beta` when a ReLU followed it.
#[allow(clippy::too_many_arguments)]
fn backward(
    d: &BatchNormDims,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    relu_beta: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let what = "batchnorm backward";
    d.check(what, &[x, dy, dx], &[gamma, mean, var, dgamma, dbeta]);
    let (rows, c) = (d.rows, d.c);
    if rows == 0 {
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        return;
    }
    let scale = scales(gamma, var, d.eps);
    let mask = relu_beta.map(|beta| Affine {
        shift: mean,
        scale: &scale,
        offset: beta,
    });
    let (db, dy_dev) = dy_column_sums(c, x, dy, mean, mask);
    let inv_rows = 1.0 / rows as f64;
    let mut f = DxFactors {
        a: vec![0.0; c],
        mdb: vec![0.0; c],
        k: vec![0.0; c],
    };
    for j in 0..c {
        let inv_std = 1.0 / (var[j] as f64 + d.eps as f64).sqrt();
        let dg = dy_dev[j] * inv_std;
        f.a[j] = (gamma[j] as f64 * inv_std) as f32;
        f.mdb[j] = (db[j] * inv_rows) as f32;
        f.k[j] = (inv_std * dg * inv_rows) as f32;
        dgamma[j] = dg as f32;
        dbeta[j] = db[j] as f32;
    }
    backward_dx(c, x, dy, mean, &f, mask, dx);
}

/// The backward's one reduction pass: per channel `sum dy` (= dbeta) and
/// `sum dy * (x - mean)` (= dgamma / inv_std), each block of [`BLOCK_ROWS`] rows into its own
/// `f64` partial sums in parallel, then the partials added in block order. With a `mask`,
/// `dy` is first masked by the forward's ReLU.
fn dy_column_sums(
    c: usize,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    mask: Option<Affine>,
) -> (Vec<f64>, Vec<f64>) {
    // Per block: `sum dy` in the first `c` slots, `sum dy * (x - mean)` in the next `c`.
    let blocks = (x.len() / c).div_ceil(BLOCK_ROWS);
    let mut partial = vec![0.0f64; blocks * 2 * c];
    partial
        .par_chunks_mut(2 * c)
        .zip(x.par_chunks(BLOCK_ROWS * c))
        .zip(dy.par_chunks(BLOCK_ROWS * c))
        .for_each(|((acc, x_blk), dy_blk)| {
            let (acc_db, acc_dg) = acc.split_at_mut(c);
            dy_sums_block(x_blk, dy_blk, mean, mask, acc_db, acc_dg);
        });
    let mut db = vec![0.0f64; c];
    let mut dg = vec![0.0f64; c];
    for p in partial.chunks_exact(2 * c) {
        for j in 0..c {
            db[j] += p[j];
            dg[j] += p[c + j];
        }
    }
    (db, dg)
}

multiversion! {
    /// One block of [`dy_column_sums`] into its `f64` sums `acc_db`, `acc_dg`.
    fn dy_sums_block(
        x_blk: &[f32],
        dy_blk: &[f32],
        mean: &[f32],
        mask: Option<Affine>,
        acc_db: &mut [f64],
        acc_dg: &mut [f64],
    ) {
        let c = mean.len();
        // As in `shifted_moments`: f32 over runs of RUN_ROWS rows, then into f64.
        let (mut r_db, mut r_dg) = (vec![0.0f32; c], vec![0.0f32; c]);
        for (x_run, dy_run) in x_blk.chunks(RUN_ROWS * c).zip(dy_blk.chunks(RUN_ROWS * c)) {
            r_db.fill(0.0);
            r_dg.fill(0.0);
            for (x_row, dy_row) in x_run.chunks_exact(c).zip(dy_run.chunks_exact(c)) {
                match mask {
                    None => {
                        for ((((db, dg), &v), &g), &m) in r_db
                            .iter_mut()
                            .zip(r_dg.iter_mut())
                            .zip(x_row)
                            .zip(dy_row)
                            .zip(mean)
                        {
                            *db += g;
                            *dg += g * (v - m);
                        }
                    }
                    Some(t) => {
                        // Zipped slices, no indexing: this loop vectorises like the one
                        // above (indexing the factors by channel kept it scalar, 2x slower).
                        for (((db, dg), (&v, &g)), ((&m, &s), &b)) in r_db
                            .iter_mut()
                            .zip(r_dg.iter_mut())
                            .zip(x_row.iter().zip(dy_row))
                            .zip(t.shift.iter().zip(t.scale).zip(t.offset))
                        {
                            let g = if (v - m) * s + b > 0.0 { g } else { 0.0 };
                            *db += g;
                            *dg += g * (v - m);
                        }
                    }
                }
            }
            for (((db, dg), &t1), &t2) in acc_db
                .iter_mut()
                .zip(acc_dg.iter_mut())
                .zip(&r_db)
                .zip(&r_dg)
            {
                *db += t1 as f64;
                *dg += t2 as f64;
            }
        }
    }
}

/// The backward's `dx = gamma * inv_std * (dy - dbeta/R - xhat * dgamma/R)` with
/// `xhat = (x - mean) * inv_std`, as `dx = a * (dy - mdb - (x - mean) * k)` with these
/// per-channel factors, so each element costs two subtractions and two multiplications.
struct DxFactors {
    /// `gamma * inv_std`.
    a: Vec<f32>,
    /// `dbeta / R`.
    mdb: Vec<f32>,
    /// `inv_std * dgamma / R`.
    k: Vec<f32>,
}

/// `dx` from the factors, in parallel over blocks of rows (`dy` masked first with a `mask`).
fn backward_dx(
    c: usize,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    f: &DxFactors,
    mask: Option<Affine>,
    dx: &mut [f32],
) {
    let rows_per_task = (CHUNK / c).max(1);
    dx.par_chunks_mut(rows_per_task * c)
        .zip(x.par_chunks(rows_per_task * c))
        .zip(dy.par_chunks(rows_per_task * c))
        .for_each(|((dx_blk, x_blk), dy_blk)| dx_block(x_blk, dy_blk, mean, f, mask, dx_blk));
}

multiversion! {
    /// One block of rows of [`backward_dx`].
    fn dx_block(
        x_blk: &[f32],
        dy_blk: &[f32],
        mean: &[f32],
        f: &DxFactors,
        mask: Option<Affine>,
        dx_blk: &mut [f32],
    ) {
        let (c, a, mdb, k) = (mean.len(), &f.a, &f.mdb, &f.k);
        for ((dx_row, x_row), dy_row) in dx_blk
            .chunks_exact_mut(c)
            .zip(x_blk.chunks_exact(c))
            .zip(dy_blk.chunks_exact(c))
        {
            if let Some(t) = mask {
                for ((((o, &g), &v), (&a, (&mdb, &k))), ((&m, &s), &b)) in dx_row
                    .iter_mut()
                    .zip(dy_row)
                    .zip(x_row)
                    .zip(a.iter().zip(mdb.iter().zip(k)))
                    .zip(t.shift.iter().zip(t.scale).zip(t.offset))
                {
                    let g = if (v - m) * s + b > 0.0 { g } else { 0.0 };
                    *o = a * (g - mdb - (v - m) * k);
                }
                continue;
            }
            for (((((o, &g), &v), &m), &a), (&mdb, &k)) in dx_row
                .iter_mut()
                .zip(dy_row)
                .zip(x_row)
                .zip(mean)
                .zip(a)
                .zip(mdb.iter().zip(k))
            {
                *o = a * (g - mdb - (v - m) * k);
            }
        }
    }
}

/// `moving = momentum * moving + (1 - momentum) * batch`, element-wise (Keras; pass the biased
/// batch variance for the moving variance, as Keras 3 does).
pub fn update_moving_average(momentum: f32, batch: &[f32], moving: &mut [f32]) {
    assert_eq!(
        moving.len(),
        batch.len(),
        "update_moving_average: lengths differ"
    );
    for (m, &b) in moving.iter_mut().zip(batch) {
        *m = momentum * *m + (1.0 - momentum) * b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, assert_grad_matches_fd, random_vec};

    const EPS: f32 = 1e-3;

    /// Random input with a different offset and scale per channel, so that statistics matter.
    fn input(rows: usize, c: usize, seed: u64) -> Vec<f32> {
        let mut x = random_vec(rows * c, seed);
        for (i, v) in x.iter_mut().enumerate() {
            let j = (i % c) as f32;
            *v = *v * (0.5 + j * 0.3) + (j - 2.0) * 0.7;
        }
        x
    }

    struct Train {
        y: Vec<f32>,
        mean: Vec<f32>,
        var: Vec<f32>,
    }

    fn train(x: &[f32], c: usize, gamma: &[f32], beta: &[f32], fast: bool) -> Train {
        let mut t = Train {
            y: vec![f32::NAN; x.len()],
            mean: vec![f32::NAN; c],
            var: vec![f32::NAN; c],
        };
        let f = if fast {
            batchnorm_forward_train
        } else {
            batchnorm_forward_train_reference
        };
        let d = BatchNormDims::from_len(x.len(), c, EPS);
        f(&d, x, gamma, beta, &mut t.y, &mut t.mean, &mut t.var);
        t
    }

    /// `(dx, dgamma, dbeta)`.
    fn backward(
        x: &[f32],
        dy: &[f32],
        c: usize,
        gamma: &[f32],
        t: &Train,
        fast: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut dx = vec![f32::NAN; x.len()];
        let mut dg = vec![f32::NAN; c];
        let mut db = vec![f32::NAN; c];
        let f = if fast {
            batchnorm_backward
        } else {
            batchnorm_backward_reference
        };
        let d = BatchNormDims::from_len(x.len(), c, EPS);
        f(&d, x, dy, gamma, &t.mean, &t.var, &mut dx, &mut dg, &mut db);
        (dx, dg, db)
    }

    #[test]
    fn fast_matches_reference() {
        let mut s = 0;
        for rows in [1, 2, 7, 300, 1000] {
            for c in [1, 3, 5, 17, 64] {
                s += 1;
                let what = format!("rows {rows} c {c}");
                let x = input(rows, c, 100 + s);
                let gamma = random_vec(c, 200 + s);
                let beta = random_vec(c, 300 + s);
                let want = train(&x, c, &gamma, &beta, false);
                let got = train(&x, c, &gamma, &beta, true);
                assert_close(&got.mean, &want.mean, 1e-6, &format!("mean {what}"));
                assert_close(&got.var, &want.var, 1e-6, &format!("var {what}"));
                assert_close(&got.y, &want.y, 1e-5, &format!("y {what}"));

                let mut yi_ref = vec![f32::NAN; x.len()];
                let mut yi = vec![f32::NAN; x.len()];
                let (mm, mv) = (random_vec(c, 400 + s), random_vec(c, 500 + s));
                let mv: Vec<f32> = mv.iter().map(|v| v.abs() + 0.1).collect();
                let d = BatchNormDims { rows, c, eps: EPS };
                batchnorm_forward_infer_reference(&d, &x, &gamma, &beta, &mm, &mv, &mut yi_ref);
                batchnorm_forward_infer(&d, &x, &gamma, &beta, &mm, &mv, &mut yi);
                assert_close(&yi, &yi_ref, 1e-5, &format!("infer {what}"));

                let dy = random_vec(x.len(), 600 + s);
                let (dx_r, dg_r, db_r) = backward(&x, &dy, c, &gamma, &want, false);
                let (dx, dg, db) = backward(&x, &dy, c, &gamma, &want, true);
                assert_close(&dx, &dx_r, 1e-5, &format!("dx {what}"));
                assert_close(&dg, &dg_r, 1e-5, &format!("dgamma {what}"));
                assert_close(&db, &db_r, 1e-5, &format!("dbeta {what}"));
                // dbeta is the plain column sum of dy.
                let col0: f64 = dy.iter().step_by(c).map(|&v| v as f64).sum();
                assert!((db_r[0] as f64 - col0).abs() < 1e-4, "{what}");
            }
        }
    }

    /// The one-pass statistics where a naive `E[x^2] - E[x]^2` would cancel: a mean 10^4
    /// times the standard deviation, the first row far from the mean (a poor shift).
    #[test]
    fn one_pass_statistics_hold_when_the_mean_dwarfs_the_spread() {
        let (rows, c) = (5000, 3);
        let mut x = random_vec(rows * c, 9);
        for (i, v) in x.iter_mut().enumerate() {
            *v = 1000.0 + 0.1 * *v + if i < c { 0.4 } else { 0.0 };
        }
        let (g, b) = (vec![1.0; c], vec![0.0; c]);
        let (fast, reference) = (train(&x, c, &g, &b, true), train(&x, c, &g, &b, false));
        assert_close(&fast.mean, &reference.mean, 1e-7, "mean");
        for (f, r) in fast.var.iter().zip(&reference.var) {
            assert!((f - r).abs() <= 1e-4 * r, "var {f} vs reference {r}");
        }
    }

    #[test]
    fn output_is_normalised_per_channel() {
        let (rows, c) = (500, 5);
        // Variances well above `eps` (>= 1.3), so the output variance `var / (var + eps)` is ~1.
        let x: Vec<f32> = input(rows, c, 1).iter().map(|v| v * 4.0).collect();
        let t = train(&x, c, &[1.0; 5], &[0.0; 5], true);
        for j in 0..c {
            let col: Vec<f64> = t.y.iter().skip(j).step_by(c).map(|&v| v as f64).collect();
            let m = col.iter().sum::<f64>() / rows as f64;
            let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / rows as f64;
            let want_v = t.var[j] as f64 / (t.var[j] as f64 + EPS as f64);
            assert!(m.abs() < 1e-5, "channel {j}: mean {m}");
            assert!(
                (v - want_v).abs() < 1e-4,
                "channel {j}: var {v} vs {want_v}"
            );
            assert!((v - 1.0).abs() < 1e-3, "channel {j}: var {v}");
            // The statistics themselves against a direct computation.
            let xc: Vec<f64> = x.iter().skip(j).step_by(c).map(|&v| v as f64).collect();
            let xm = xc.iter().sum::<f64>() / rows as f64;
            let xv = xc.iter().map(|a| (a - xm) * (a - xm)).sum::<f64>() / rows as f64;
            assert!((t.mean[j] as f64 - xm).abs() < 1e-6);
            assert!((t.var[j] as f64 - xv).abs() < 1e-6 * xv.max(1.0));
        }
    }

    #[test]
    fn known_case() {
        // One channel, x = [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
        let x = [1.0, 2.0, 3.0, 6.0];
        for fast in [false, true] {
            let t = train(&x, 1, &[2.0], &[0.5], fast);
            assert_eq!(t.mean, [3.0]);
            assert_eq!(t.var, [3.5]);
            let s = (3.5f32 + EPS).sqrt();
            let want: Vec<f32> = x.iter().map(|v| 2.0 * (v - 3.0) / s + 0.5).collect();
            assert_close(&t.y, &want, 1e-6, "known");
        }
    }

    #[test]
    fn inference_with_batch_stats_equals_training() {
        let (rows, c) = (37, 6);
        let x = input(rows, c, 2);
        let gamma = random_vec(c, 3);
        let beta = random_vec(c, 4);
        for fast in [false, true] {
            let t = train(&x, c, &gamma, &beta, fast);
            let mut y = vec![f32::NAN; x.len()];
            let d = BatchNormDims { rows, c, eps: EPS };
            if fast {
                batchnorm_forward_infer(&d, &x, &gamma, &beta, &t.mean, &t.var, &mut y);
            } else {
                batchnorm_forward_infer_reference(&d, &x, &gamma, &beta, &t.mean, &t.var, &mut y);
            }
            assert_eq!(y, t.y, "fast {fast}");
        }
    }

    #[test]
    fn moving_average_update() {
        let mut moving = [1.0f32, -2.0, 0.0];
        update_moving_average(0.9, &[3.0, 2.0, 10.0], &mut moving);
        let want = [0.9f32 * 1.0 + 0.1 * 3.0, 0.9 * -2.0 + 0.1 * 2.0, 0.1 * 10.0];
        assert_close(&moving, &want, 1e-6, "moving");
        assert_close(&moving, &[1.2, -1.6, 1.0], 1e-6, "moving by hand");
        // Keras default momentum 0.99: barely moves.
        let mut m = [0.0f32];
        update_moving_average(0.99, &[1.0], &mut m);
        assert!((m[0] - 0.01).abs() < 1e-7);
    }

    #[test]
    fn constant_channel_is_finite() {
        let (rows, c) = (300, 3);
        let mut x = input(rows, c, 5);
        for r in 0..rows {
            x[r * c + 1] = 4.25;
        }
        let gamma = [1.5, 2.0, 0.5];
        let beta = [0.1, -0.3, 0.2];
        let dy = random_vec(x.len(), 6);
        for fast in [false, true] {
            let t = train(&x, c, &gamma, &beta, fast);
            assert_eq!(t.var[1], 0.0);
            assert_eq!(t.mean[1], 4.25);
            assert!(t.y.iter().all(|v| v.is_finite()));
            assert!(t.y.iter().skip(1).step_by(c).all(|&v| v == -0.3));
            let (dx, dg, db) = backward(&x, &dy, c, &gamma, &t, fast);
            assert!(dx.iter().chain(&dg).chain(&db).all(|v| v.is_finite()));
            assert_eq!(dg[1], 0.0);
        }
    }

    /// `L = sum(y * g)` through the TRAINING forward (batch statistics depend on `x`), against
    /// the backward with `dy = g`, for `x`, `gamma` and `beta`, both versions.
    #[test]
    fn backward_matches_finite_differences() {
        for (s, &(rows, c)) in [(7, 3), (2, 2), (16, 1), (5, 4)].iter().enumerate() {
            let s = s as u64;
            let x = input(rows, c, 700 + s);
            let gamma: Vec<f32> = random_vec(c, 710 + s).iter().map(|v| v + 1.5).collect();
            let beta = random_vec(c, 720 + s);
            let g = random_vec(x.len(), 730 + s);
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
                let t = train(x, c, gamma, beta, false);
                t.y.iter().zip(&g).map(|(&a, &b)| a as f64 * b as f64).sum()
            };
            for fast in [false, true] {
                let what = format!("rows {rows} c {c} fast {fast}");
                let t = train(&x, c, &gamma, &beta, fast);
                let (dx, dg, db) = backward(&x, &g, c, &gamma, &t, fast);
                assert!(dx.iter().any(|v| v.abs() > 1e-2), "{what}: dx all ~0");
                assert_grad_matches_fd(&x, &dx, 1e-2, 2e-3, 1e-2, &format!("dx {what}"), |x| {
                    loss(x, &gamma, &beta)
                });
                assert_grad_matches_fd(&gamma, &dg, 1e-2, 2e-3, 1e-2, &format!("dg {what}"), |p| {
                    loss(&x, p, &beta)
                });
                assert_grad_matches_fd(&beta, &db, 1e-2, 2e-3, 1e-2, &format!("db {what}"), |p| {
                    loss(&x, &gamma, p)
                });
            }
        }
    }

    /// The fused batch norm + ReLU, fast and reference, on awkward sizes: the forward is the
    /// unfused forward then ReLU, the backward the unfused backward of `dy * (y > 0)`.
    #[test]
    fn fused_relu_matches_batchnorm_then_relu() {
        let mut s = 0;
        for rows in [1, 2, 7, 300, 1000] {
            for c in [1, 3, 5, 17, 64] {
                s += 1;
                let what = format!("rows {rows} c {c}");
                let d = BatchNormDims { rows, c, eps: EPS };
                let x = input(rows, c, 900 + s);
                let gamma = random_vec(c, 910 + s);
                let beta = random_vec(c, 920 + s);
                let dy = random_vec(x.len(), 930 + s);
                let plain = train(&x, c, &gamma, &beta, false);
                let relu_y: Vec<f32> = plain.y.iter().map(|v| v.max(0.0)).collect();
                let dz: Vec<f32> = dy
                    .iter()
                    .zip(&plain.y)
                    .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
                    .collect();
                let (dx_want, dg_want, db_want) = backward(&x, &dz, c, &gamma, &plain, false);
                for (fast, forward, back) in [
                    (
                        false,
                        batchnorm_relu_forward_train_reference as Forward,
                        batchnorm_relu_backward_reference as Backward,
                    ),
                    (true, batchnorm_relu_forward_train, batchnorm_relu_backward),
                ] {
                    let what = format!("{what} fast {fast}");
                    let (mut y, mut mean, mut var) = (
                        vec![f32::NAN; x.len()],
                        vec![f32::NAN; c],
                        vec![f32::NAN; c],
                    );
                    forward(&d, &x, &gamma, &beta, &mut y, &mut mean, &mut var);
                    assert_close(&y, &relu_y, 1e-5, &format!("y {what}"));
                    assert_close(&mean, &plain.mean, 1e-6, &format!("mean {what}"));
                    let (mut dx, mut dg, mut db) = (
                        vec![f32::NAN; x.len()],
                        vec![f32::NAN; c],
                        vec![f32::NAN; c],
                    );
                    let (m, v) = (&plain.mean, &plain.var);
                    back(&d, &x, &dy, &gamma, &beta, m, v, &mut dx, &mut dg, &mut db);
                    assert_close(&dx, &dx_want, 1e-5, &format!("dx {what}"));
                    assert_close(&dg, &dg_want, 1e-5, &format!("dgamma {what}"));
                    assert_close(&db, &db_want, 1e-5, &format!("dbeta {what}"));
                }
            }
        }
    }

    type Forward = fn(&BatchNormDims, &[f32], &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32]);
    type Backward = fn(
        &BatchNormDims,
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        &[f32],
        &mut [f32],
        &mut [f32],
        &mut [f32],
    );

    /// `L = sum(max(0, batchnorm(x)) * g)` against the fused backward, by finite differences,
    /// for `x`, `gamma` and `beta`. The points are drawn again until none lies within the
    /// step of the ReLU's kink (where a difference quotient is not a derivative).
    #[test]
    fn fused_relu_backward_matches_finite_differences() {
        for (s, &(rows, c)) in [(7, 3), (9, 2), (16, 1), (5, 4)].iter().enumerate() {
            let d = BatchNormDims { rows, c, eps: EPS };
            let forward = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let (mut y, mut m, mut v) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
                batchnorm_forward_train_reference(&d, x, gamma, beta, &mut y, &mut m, &mut v);
                (y, m, v)
            };
            let (mut x, mut gamma, mut beta) = (vec![], vec![], vec![]);
            let clear = (0..200u64).any(|attempt| {
                let seed = 1000 + 10 * (s as u64) + 1000 * attempt;
                x = input(rows, c, seed);
                gamma = random_vec(c, seed + 1).iter().map(|v| v + 1.5).collect();
                beta = random_vec(c, seed + 2);
                // Every pre-activation at least 0.05 from zero: a step of 2e-3 in one input
                // moves each by under 0.02 (gamma <= 2.5 over a channel's spread >= 0.25).
                forward(&x, &gamma, &beta).0.iter().all(|v| v.abs() > 0.05)
            });
            assert!(
                clear,
                "no draw kept every pre-activation away from the kink"
            );
            let g = random_vec(x.len(), 1100 + s as u64);
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
                let y = forward(x, gamma, beta).0;
                y.iter()
                    .zip(&g)
                    .map(|(&a, &b)| a.max(0.0) as f64 * b as f64)
                    .sum()
            };
            let (_, m, v) = forward(&x, &gamma, &beta);
            let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
            batchnorm_relu_backward(&d, &x, &g, &gamma, &beta, &m, &v, &mut dx, &mut dg, &mut db);
            let what = format!("rows {rows} c {c}");
            assert!(dx.iter().any(|v| v.abs() > 1e-2), "{what}: dx all ~0");
            assert_grad_matches_fd(&x, &dx, 2e-3, 2e-3, 1e-2, &format!("dx {what}"), |x| {
                loss(x, &gamma, &beta)
            });
            assert_grad_matches_fd(&gamma, &dg, 2e-3, 2e-3, 1e-2, &format!("dg {what}"), |p| {
                loss(&x, p, &beta)
            });
            assert_grad_matches_fd(&beta, &db, 2e-3, 2e-3, 1e-2, &format!("db {what}"), |p| {
                loss(&x, &gamma, p)
            });
        }
    }

    #[test]
    fn empty_batch_gives_zero_statistics() {
        let d = BatchNormDims {
            rows: 0,
            c: 2,
            eps: EPS,
        };
        let (gamma, beta) = ([1.0f32; 2], [0.0f32; 2]);
        let (mut mean, mut var) = ([7.0f32; 2], [7.0f32; 2]);
        batchnorm_forward_train(&d, &[], &gamma, &beta, &mut [], &mut mean, &mut var);
        assert_eq!((mean, var), ([0.0; 2], [0.0; 2]));
        let (mut m2, mut v2) = ([7.0f32; 2], [7.0f32; 2]);
        batchnorm_forward_train_reference(&d, &[], &gamma, &beta, &mut [], &mut m2, &mut v2);
        assert_eq!((m2, v2), ([0.0; 2], [0.0; 2]));
    }
}
