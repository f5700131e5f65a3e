// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! 4:2:0 YUV frames (I420: three planes; NV12: Y and interleaved UV) and their colour
//! conversion, so that a decoder's output reaches the model and comes back painted without a
//! `videoconvert`.
//!
//! The matrix is BT.601 or BT.709 as the caps' colorimetry says; where it says nothing,
//! GStreamer's own default applies (BT.709 from 720 lines up, BT.601 below). Video range
//! (Y 16–235, U/V 16–240) unless the caps say full range. Chroma samples are treated as centred
//! on their 2x2 block.

use anyhow::{bail, Result};

use crate::palette::Rgb;

/// The 4:2:0 layouts beitseg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YuvFormat {
    /// Y, then U, then V, each plane of its own.
    I420,
    /// Y, then one plane of interleaved U and V.
    Nv12,
}

/// The luma weights of a colour matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

impl Matrix {
    /// GStreamer's default for caps without colorimetry.
    pub fn default_for_height(height: usize) -> Self {
        if height >= 720 {
            Self::Bt709
        } else {
            Self::Bt601
        }
    }

    /// (Kr, Kb).
    fn k(self) -> (f64, f64) {
        match self {
            Self::Bt601 => (0.299, 0.114),
            Self::Bt709 => (0.2126, 0.0722),
        }
    }
}

/// How YUV values map to RGB: matrix and range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colorimetry {
    pub matrix: Matrix,
    /// Y and chroma use 0–255 rather than video range.
    pub full_range: bool,
}

/// Fixed-point precision of [`Coefficients`].
const BITS: u32 = 16;

/// YUV → RGB in 16-bit fixed point: `R = (y·Y + rv·V + r0) >> 16` and so on, offsets and
/// rounding folded into the constants.
#[derive(Clone, Copy, Debug)]
struct Coefficients {
    y: i32,
    rv: i32,
    gu: i32,
    gv: i32,
    bu: i32,
    r0: i32,
    g0: i32,
    b0: i32,
}

impl Colorimetry {
    /// (luma scale, chroma scale, luma offset): video range stretches 16–235 and 16–240.
    fn range(self) -> (f64, f64, f64) {
        if self.full_range {
            (1.0, 1.0, 0.0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16.0)
        }
    }

    /// One pixel to RGB, in floating point: the plain reference.
    pub fn to_rgb(self, y: u8, u: u8, v: u8) -> Rgb {
        let (kr, kb) = self.matrix.k();
        let kg = 1.0 - kr - kb;
        let (sy, sc, oy) = self.range();
        let yy = (y as f64 - oy) * sy;
        let (uu, vv) = ((u as f64 - 128.0) * sc, (v as f64 - 128.0) * sc);
        let r = yy + 2.0 * (1.0 - kr) * vv;
        let g = yy - 2.0 * kb * (1.0 - kb) / kg * uu - 2.0 * kr * (1.0 - kr) / kg * vv;
        let b = yy + 2.0 * (1.0 - kb) * uu;
        [r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8)
    }

    /// One RGB colour to YUV (for painting): the inverse of [`Self::to_rgb`], rounded.
    pub fn from_rgb(self, [r, g, b]: Rgb) -> [u8; 3] {
        let (kr, kb) = self.matrix.k();
        let kg = 1.0 - kr - kb;
        let (sy, sc, oy) = self.range();
        let (r, g, b) = (r as f64, g as f64, b as f64);
        let luma = kr * r + kg * g + kb * b;
        let u = (b - luma) / (2.0 * (1.0 - kb));
        let v = (r - luma) / (2.0 * (1.0 - kr));
        [luma / sy + oy, u / sc + 128.0, v / sc + 128.0].map(|c| c.round().clamp(0.0, 255.0) as u8)
    }

    fn coefficients(self) -> Coefficients {
        let (kr, kb) = self.matrix.k();
        let kg = 1.0 - kr - kb;
        let (sy, sc, oy) = self.range();
        let one = (1u32 << BITS) as f64;
        let fix = |v: f64| (v * one).round() as i32;
        let (rv, gu, gv, bu) = (
            2.0 * (1.0 - kr) * sc,
            -2.0 * kb * (1.0 - kb) / kg * sc,
            -2.0 * kr * (1.0 - kr) / kg * sc,
            2.0 * (1.0 - kb) * sc,
        );
        let half = one / 2.0;
        Coefficients {
            y: fix(sy),
            rv: fix(rv),
            gu: fix(gu),
            gv: fix(gv),
            bu: fix(bu),
            r0: (-oy * sy * one - 128.0 * rv * one + half).round() as i32,
            g0: (-oy * sy * one - 128.0 * (gu + gv) * one + half).round() as i32,
            b0: (-oy * sy * one - 128.0 * bu * one + half).round() as i32,
        }
    }
}

/// A 4:2:0 frame over borrowed planes: `planes[i]` with rows `strides[i]` bytes apart (NV12
/// leaves the third plane empty).
#[derive(Clone, Copy, Debug)]
pub struct YuvFrame<D> {
    pub format: YuvFormat,
    pub colorimetry: Colorimetry,
    pub width: usize,
    pub height: usize,
    pub planes: [D; 3],
    pub strides: [usize; 3],
}

pub type YuvRef<'a> = YuvFrame<&'a [u8]>;
pub type YuvMut<'a> = YuvFrame<&'a mut [u8]>;

impl<D: AsRef<[u8]>> YuvFrame<D> {
    /// Checks that every plane holds its rows.
    pub fn new(
        format: YuvFormat,
        colorimetry: Colorimetry,
        (width, height): (usize, usize),
        planes: [D; 3],
        strides: [usize; 3],
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            bail!("empty frame {width}x{height}");
        }
        let frame = Self {
            format,
            colorimetry,
            width,
            height,
            planes,
            strides,
        };
        for (i, (row, rows)) in frame.plane_sizes().into_iter().enumerate() {
            let (len, stride) = (frame.planes[i].as_ref().len(), frame.strides[i]);
            if row == 0 {
                continue;
            }
            if stride < row || len < stride * (rows - 1) + row {
                bail!(
                    "plane {i} ({len} bytes, stride {stride}) cannot hold {rows} rows of {row} \
                     bytes of a {width}x{height} {format:?} frame"
                );
            }
        }
        Ok(frame)
    }

    /// Width and height of the chroma planes, in samples.
    pub fn chroma_size(&self) -> (usize, usize) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// Bytes per row and rows of each plane (zero bytes for an absent plane).
    fn plane_sizes(&self) -> [(usize, usize); 3] {
        let (cw, ch) = self.chroma_size();
        match self.format {
            YuvFormat::I420 => [(self.width, self.height), (cw, ch), (cw, ch)],
            YuvFormat::Nv12 => [(self.width, self.height), (2 * cw, ch), (0, 0)],
        }
    }

    /// `Y`, `U`, `V` of pixel (x, y): the plain reference accessor.
    pub fn sample(&self, x: usize, y: usize) -> [u8; 3] {
        let p = |i: usize, off: usize| self.planes[i].as_ref()[off];
        let (cx, cy) = (x / 2, y / 2);
        let luma = p(0, y * self.strides[0] + x);
        match self.format {
            YuvFormat::I420 => [
                luma,
                p(1, cy * self.strides[1] + cx),
                p(2, cy * self.strides[2] + cx),
            ],
            YuvFormat::Nv12 => [
                luma,
                p(1, cy * self.strides[1] + 2 * cx),
                p(1, cy * self.strides[1] + 2 * cx + 1),
            ],
        }
    }
}

/// Converts resized planes to packed RGB: `y` one byte a pixel; `u` and `v` every `step`-th
/// byte (1 for planar chroma, 2 for interleaved), all the same number of pixels.
pub fn planes_to_rgb(
    colorimetry: Colorimetry,
    y: &[u8],
    (u, v, step): (&[u8], &[u8], usize),
    rgb: &mut [u8],
) {
    let c = colorimetry.coefficients();
    let clamp = |v: i32| (v >> BITS).clamp(0, 255) as u8;
    let chroma = u.iter().step_by(step).zip(v.iter().step_by(step));
    for ((out, &yy), (&u, &v)) in rgb.chunks_exact_mut(3).zip(y).zip(chroma) {
        let (l, u, v) = (yy as i32 * c.y, u as i32, v as i32);
        out[0] = clamp(l + c.rv * v + c.r0);
        out[1] = clamp(l + c.gu * u + c.gv * v + c.g0);
        out[2] = clamp(l + c.bu * u + c.b0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_conversion_is_within_one_level_of_the_reference() {
        for matrix in [Matrix::Bt601, Matrix::Bt709] {
            for full_range in [false, true] {
                let cm = Colorimetry { matrix, full_range };
                for y in (0..=255u8).step_by(5) {
                    for u in (0..=255u8).step_by(15) {
                        for v in (0..=255u8).step_by(15) {
                            let mut got = [0u8; 3];
                            planes_to_rgb(cm, &[y], (&[u], &[v], 1), &mut got);
                            let want = cm.to_rgb(y, u, v);
                            for c in 0..3 {
                                assert!(
                                    (got[c] as i32 - want[c] as i32).abs() <= 1,
                                    "{cm:?} {y} {u} {v}: {got:?} vs {want:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rgb_round_trips_through_yuv() {
        for matrix in [Matrix::Bt601, Matrix::Bt709] {
            let cm = Colorimetry {
                matrix,
                full_range: false,
            };
            for rgb in [[0, 0, 0], [255, 255, 255], [120, 120, 120], [200, 30, 90]] {
                let [y, u, v] = cm.from_rgb(rgb);
                let back = cm.to_rgb(y, u, v);
                for c in 0..3 {
                    assert!(
                        (back[c] as i32 - rgb[c] as i32).abs() <= 2,
                        "{rgb:?} {back:?}"
                    );
                }
            }
            assert_eq!(cm.from_rgb([0, 0, 0]), [16, 128, 128]);
            assert_eq!(cm.from_rgb([255, 255, 255]), [235, 128, 128]);
        }
    }

    #[test]
    fn short_planes_are_refused() {
        let cm = Colorimetry {
            matrix: Matrix::Bt601,
            full_range: false,
        };
        let (y, u) = (vec![0u8; 16], vec![0u8; 4]);
        assert!(YuvFrame::new(YuvFormat::I420, cm, (4, 4), [&y[..], &u, &u], [4, 2, 2]).is_ok());
        assert!(YuvFrame::new(
            YuvFormat::I420,
            cm,
            (4, 4),
            [&y[..], &u, &u[..3]],
            [4, 2, 2]
        )
        .is_err());
        assert!(YuvFrame::new(
            YuvFormat::Nv12,
            cm,
            (4, 4),
            [&y[..], &y[..8], &[]],
            [4, 4, 0]
        )
        .is_ok());
    }
}
