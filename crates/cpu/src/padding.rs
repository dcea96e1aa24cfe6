//! The geometry of a sliding window (convolution, pooling) along one axis, with TensorFlow /
//! Keras semantics. The one place conv2d, maxpool2d and avgpool2d get it from.
//!
//! Output size and padding ([`Padding::output_and_pad`]):
//! - `Valid`: no padding; `out = (in - k) / stride + 1` (floor).
//! - `Same`: `out = ceil(in / stride)`; the total padding `max((out - 1) * stride + k - in, 0)`
//!   is split with the smaller half before (top/left) and the larger half after, exactly as
//!   TensorFlow does, so weights trained in Keras give the same outputs here.
//!
//! Where a window reads: offset `kk` of output `o`'s window reads input `o * stride + kk - pad`
//! ([`input_coord`]), and `None` there means the padding; [`window`] gives all of a window's
//! in-image coordinates as one range.

use std::ops::Range;

/// How a convolution or pooling window treats the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Same,
    Valid,
}

impl Padding {
    /// `(output size, padding before)` along one axis of length `input` for window `k`.
    /// Returns `None` when the window does not fit (`Valid` with `k > input`) or `stride == 0`.
    pub fn output_and_pad(self, input: usize, k: usize, stride: usize) -> Option<(usize, usize)> {
        if stride == 0 || k == 0 || input == 0 {
            return None;
        }
        match self {
            Padding::Valid => {
                if k > input {
                    None
                } else {
                    Some(((input - k) / stride + 1, 0))
                }
            }
            Padding::Same => {
                let out = input.div_ceil(stride);
                let total = ((out - 1) * stride + k).saturating_sub(input);
                Some((out, total / 2))
            }
        }
    }
}

/// The input coordinate `o * stride + kk - pad` that offset `kk` of output `o`'s window reads
/// along an axis of length `size`, or `None` where that falls in the padding (outside
/// `0..size`).
#[inline]
pub fn input_coord(o: usize, kk: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + kk).checked_sub(pad).filter(|&i| i < size)
}

/// The input coordinates covered by the `k`-wide window of output `o`, clipped to `0..size`:
/// `o*stride - pad .. o*stride - pad + k` intersected with the axis, i.e. every
/// [`input_coord`] of the window that is not `None`, in order.
pub fn window(o: usize, stride: usize, pad: usize, k: usize, size: usize) -> Range<usize> {
    let start = o * stride; // window start, shifted right by `pad`
    let lo = start.max(pad) - pad;
    let hi = (start + k).min(size + pad).saturating_sub(pad);
    lo..hi.max(lo)
}

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_valid_match_tensorflow() {
        // TF: 32 with k3 s1 same -> 32, pad 1; k3 s2 same on 32 -> 16, total pad 1, before 0.
        assert_eq!(Padding::Same.output_and_pad(32, 3, 1), Some((32, 1)));
        assert_eq!(Padding::Same.output_and_pad(32, 3, 2), Some((16, 0)));
        assert_eq!(Padding::Same.output_and_pad(16, 3, 2), Some((8, 0)));
        assert_eq!(Padding::Same.output_and_pad(7, 3, 2), Some((4, 1)));
        assert_eq!(Padding::Same.output_and_pad(32, 5, 1), Some((32, 2)));
        assert_eq!(Padding::Same.output_and_pad(32, 2, 1), Some((32, 0)));
        assert_eq!(Padding::Valid.output_and_pad(32, 3, 1), Some((30, 0)));
        assert_eq!(Padding::Valid.output_and_pad(15, 2, 2), Some((7, 0)));
        assert_eq!(Padding::Valid.output_and_pad(2, 3, 1), None);
        assert_eq!(Padding::Same.output_and_pad(5, 3, 0), None);
    }

    #[test]
    fn window_matches_input_coord() {
        for size in 1..=9 {
            for k in 1..=4 {
                for stride in 1..=3 {
                    for padding in [Padding::Same, Padding::Valid] {
                        let Some((out, pad)) = padding.output_and_pad(size, k, stride) else {
                            continue;
                        };
                        for o in 0..out {
                            let r = window(o, stride, pad, k, size);
                            let want: Vec<usize> = (0..k)
                                .filter_map(|kk| input_coord(o, kk, stride, pad, size))
                                .collect();
                            let what = format!("size {size} k {k} stride {stride} {padding}");
                            assert_eq!(r.collect::<Vec<_>>(), want, "{what} o {o}");
                        }
                    }
                }
            }
        }
    }
}
