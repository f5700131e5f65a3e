// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `resize=slide`: mmsegmentation's sliding-window inference (`EncoderDecoder.slide_inference`),
//! which BEiT's published ADE20k numbers come from. The frame is resized keeping its aspect ratio
//! so that it covers the model input (the short side at the model size for a square model);
//! windows of the model size at a stride of 2/3 of it cover it (the last one of each row and
//! column flush with the edge); all windows of a frame run as one batch. Each window's logits
//! are upsampled bilinearly to the window, summed where windows overlap and divided by the number
//! of windows covering each pixel; the result is upsampled to the frame and the argmax taken, as
//! usual.
//!
//! The averaged logits at the resized size (150 classes x 640 x 1138 floats for a 16:9 frame:
//! 437 MB) are never held whole: the frame is decoded in bands of output rows, each from the
//! few rows of averaged logits it needs, by the exact decoder of [`crate::decode`].

use crate::decode::{Axis, Decoder, Window};
use crate::frame::ClassMap;
use crate::model::Logits;

/// The windows of one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The frame's size once resized, `(width, height)`.
    pub resized: (usize, usize),
    /// The model input size, `(width, height)`: the size of every window.
    pub crop: (usize, usize),
    /// Each window's top-left corner in the resized frame, row by row (mmseg's order).
    pub windows: Vec<(usize, usize)>,
    /// Starts of the window columns and rows.
    xs: Vec<usize>,
    ys: Vec<usize>,
}

/// Window starts along one axis: mmseg's `(size - crop + stride - 1) // stride + 1` windows at
/// multiples of the stride, each moved back to end at the edge if it would cross it.
fn starts(size: usize, crop: usize) -> Vec<usize> {
    let stride = (2 * crop / 3).max(1);
    let n = (size.max(crop) - crop).div_ceil(stride) + 1;
    (0..n)
        .map(|i| (i * stride + crop).min(size).saturating_sub(crop))
        .collect()
}

impl Plan {
    pub fn new(resized: (usize, usize), crop: (usize, usize)) -> Self {
        let xs = starts(resized.0, crop.0);
        let ys = starts(resized.1, crop.1);
        let windows = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .collect();
        Self {
            resized,
            crop,
            windows,
            xs,
            ys,
        }
    }

    /// How many windows cover each position along one axis.
    fn cover(starts: &[usize], size: usize, crop: usize) -> Vec<f32> {
        let mut count = vec![0f32; size];
        for &s in starts {
            for c in &mut count[s..(s + crop).min(size)] {
                *c += 1.0;
            }
        }
        count
    }
}

/// Rows of averaged logits a band is decoded from (at most about this many).
const BAND_ROWS: f64 = 64.0;

/// Reusable state for decoding slid frames.
#[derive(Default)]
pub struct SlideDecoder {
    decoder: Decoder,
    band: Vec<f32>,
    upsampled: Vec<f32>,
    rows: ClassMap,
}

impl SlideDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the logits of `plan`'s windows (in its order) into a `width` x `height` class map.
    pub fn decode(
        &mut self,
        plan: &Plan,
        logits: &[Logits],
        width: usize,
        height: usize,
        out: &mut ClassMap,
    ) {
        out.resize(width, height);
        let Some(first) = logits.first() else {
            out.data.fill(0);
            return;
        };
        let (classes, lw, lh) = (first.classes, first.width, first.height);
        let (rw, rh) = plan.resized;
        let (cw, ch) = plan.crop;
        if width == 0 || height == 0 || lw * lh == 0 || logits.len() != plan.windows.len() {
            out.data.fill(0);
            return;
        }
        let (ax, ay) = (Axis::torch(lw, cw), Axis::torch(lh, ch));
        let count_x = Plan::cover(&plan.xs, rw, cw);
        let count_y = Plan::cover(&plan.ys, rh, ch);
        let scale = rh as f64 / height as f64;
        let per_band = ((BAND_ROWS - 2.0) / scale).floor().max(1.0) as usize;
        let mut top = 0;
        while top < height {
            let bottom = (top + per_band).min(height);
            // The rows of averaged logits the output rows top..bottom sample from.
            let first_src = scale * (top as f64 + 0.5) - 0.5;
            let last_src = scale * (bottom as f64 - 0.5) - 0.5;
            let r0 = (first_src.max(0.0).floor() as usize).min(rh - 1);
            let r1 = (last_src.max(0.0).floor() as usize + 2).min(rh).max(r0 + 1);
            let rows = r1 - r0;
            self.band.clear();
            self.band.resize(classes * rows * rw, 0.0);
            for (&(x0, y0), l) in plan.windows.iter().zip(logits) {
                let (a, b) = (r0.max(y0), r1.min(y0 + ch));
                if a >= b || l.classes != classes || l.width != lw || l.height != lh {
                    continue;
                }
                // The logit rows these output rows blend, upsampled along x first (as PyTorch
                // computes a bilinear sample), then blended along y into the band.
                let (i_lo, i_hi) = (ay.i0[a - y0] as usize, ay.i1[b - 1 - y0] as usize);
                let n = i_hi - i_lo + 1;
                self.upsampled.resize(classes * n * cw, 0.0);
                for c in 0..classes {
                    for i in 0..n {
                        let src = &l.data[(c * lh + i_lo + i) * lw..][..lw];
                        let dst = &mut self.upsampled[(c * n + i) * cw..][..cw];
                        for (u, d) in dst.iter_mut().enumerate() {
                            *d = src[ax.i0[u] as usize] * ax.l0[u]
                                + src[ax.i1[u] as usize] * ax.l1[u];
                        }
                    }
                }
                for r in a..b {
                    let v = r - y0;
                    let (i0, i1) = (ay.i0[v] as usize - i_lo, ay.i1[v] as usize - i_lo);
                    let (l0, l1) = (ay.l0[v], ay.l1[v]);
                    for c in 0..classes {
                        let top_row = &self.upsampled[(c * n + i0) * cw..][..cw];
                        let bottom_row = &self.upsampled[(c * n + i1) * cw..][..cw];
                        let dst = &mut self.band[(c * rows + r - r0) * rw + x0..][..cw];
                        for ((d, &p), &q) in dst.iter_mut().zip(top_row).zip(bottom_row) {
                            *d += p * l0 + q * l1;
                        }
                    }
                }
            }
            for c in 0..classes {
                for r in 0..rows {
                    let cy = count_y[r0 + r];
                    let row = &mut self.band[(c * rows + r) * rw..][..rw];
                    for (v, &cx) in row.iter_mut().zip(&count_x) {
                        *v /= cx * cy;
                    }
                }
            }
            let band = Logits {
                classes,
                height: rows,
                width: rw,
                data: std::mem::take(&mut self.band),
            };
            let start = scale * top as f64 - r0 as f64;
            let window = Window {
                x0: 0.0,
                x1: rw as f64,
                y0: start,
                y1: start + scale * (bottom - top) as f64,
            };
            self.decoder
                .decode(&band, width, bottom - top, Some(window), &mut self.rows);
            self.band = band.data;
            out.data[top * width..bottom * width].copy_from_slice(&self.rows.data);
            top = bottom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_mmseg() {
        // 1280x720 at 640: resized to 1138x640, three windows in a row, the last flush right.
        let p = Plan::new((1138, 640), (640, 640));
        assert_eq!(p.windows, vec![(0, 0), (426, 0), (498, 0)]);
        // A square frame: one window.
        assert_eq!(Plan::new((640, 640), (640, 640)).windows, vec![(0, 0)]);
        // Portrait 640x962: two rows.
        assert_eq!(
            Plan::new((640, 962), (640, 640)).windows,
            vec![(0, 0), (0, 322)]
        );
        // Wider frames take more: up to 1066 wide two, up to 1492 three, then four.
        for (width, n) in [(1066, 2), (1067, 3), (1492, 3), (1493, 4)] {
            assert_eq!(Plan::new((width, 640), (640, 640)).windows.len(), n);
        }
    }

    /// One window covering the whole frame is plain decoding of its logits.
    #[test]
    fn one_window_is_plain_decoding() {
        // Planes of different slopes: bilinear sampling of a plane is the plane, so upsampling
        // twice (to the window, then to the frame) gives what upsampling once gives, away from
        // the clamped border and up to rounding.
        let mut data = Vec::new();
        for (a, b, d) in [(1.0f32, 0.0f32, 0.0f32), (-0.5, 1.0, 1.0), (0.2, -0.7, 2.5)] {
            for y in 0..8 {
                for x in 0..8 {
                    data.push(a * x as f32 + b * y as f32 + d);
                }
            }
        }
        let logits = Logits {
            classes: 3,
            height: 8,
            width: 8,
            data,
        };
        let plan = Plan::new((32, 32), (32, 32));
        let (mut slid, mut plain) = (ClassMap::default(), ClassMap::default());
        SlideDecoder::new().decode(&plan, std::slice::from_ref(&logits), 45, 29, &mut slid);
        Decoder::new().decode(&logits, 45, 29, None, &mut plain);
        let differ = slid
            .data
            .iter()
            .zip(&plain.data)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            differ * 50 < slid.data.len(),
            "{differ} of {}",
            slid.data.len()
        );
        let classes: std::collections::BTreeSet<u8> = slid.data.iter().copied().collect();
        assert_eq!(classes.len(), 3);
    }
}
