// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Class map → pixels: an overlay blended into the frame, the palette image, or the class ids.

use crate::frame::{ClassMap, FrameMut};
use crate::palette::Rgb;

/// Per-class colours in the frame's byte order, with a flag for classes that are not drawn.
pub struct Paint {
    /// `None` for classes left unpainted.
    colours: Vec<Option<Rgb>>,
}

impl Paint {
    pub fn new(palette: &[Rgb], draw: &[bool]) -> Self {
        Self {
            colours: palette
                .iter()
                .zip(draw)
                .map(|(c, d)| d.then_some(*c))
                .collect(),
        }
    }

    fn colour(&self, class: u8) -> Option<Rgb> {
        self.colours.get(class as usize).copied().flatten()
    }
}

/// Blends each drawn pixel with its class colour: `out = frame * (1 - alpha) + colour * alpha`,
/// in 8-bit fixed point with rounding. Unpainted classes keep the frame.
pub fn overlay(frame: &mut FrameMut, classes: &ClassMap, paint: &Paint, alpha: f64) {
    let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
    let bpp = frame.format.bytes_per_pixel();
    let offsets = frame.format.rgb_offsets();
    let inv = 256 - a;
    for y in 0..frame.height {
        let ids = classes.row(y);
        let row = frame.row_mut(y);
        for (px, &k) in row.chunks_exact_mut(bpp).zip(ids) {
            if let Some(colour) = paint.colour(k) {
                for (ch, &off) in offsets.iter().enumerate() {
                    let v = px[off] as u32 * inv + colour[ch] as u32 * a + 128;
                    px[off] = (v >> 8) as u8;
                }
            }
        }
    }
}

/// [`overlay`] written plainly, one pixel and channel at a time: the reference for tests and
/// benchmarks.
pub fn overlay_reference(frame: &mut FrameMut, classes: &ClassMap, paint: &Paint, alpha: f64) {
    let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
    let bpp = frame.format.bytes_per_pixel();
    let offsets = frame.format.rgb_offsets();
    for y in 0..frame.height {
        for x in 0..frame.width {
            let Some(colour) = paint.colour(classes.data[y * classes.width + x]) else {
                continue;
            };
            let row = frame.row_mut(y);
            for (ch, &off) in offsets.iter().enumerate() {
                let v = &mut row[x * bpp + off];
                *v = ((*v as u32 * (256 - a) + colour[ch] as u32 * a + 128) >> 8) as u8;
            }
        }
    }
}

/// Writes the palette image: each pixel its class colour, unpainted classes black, alpha (or
/// padding byte) opaque.
pub fn color(frame: &mut FrameMut, classes: &ClassMap, paint: &Paint) {
    let bpp = frame.format.bytes_per_pixel();
    let offsets = frame.format.rgb_offsets();
    let fourth = frame.format.fourth_offset();
    for y in 0..frame.height {
        let ids = classes.row(y);
        let row = frame.row_mut(y);
        for (px, &k) in row.chunks_exact_mut(bpp).zip(ids) {
            let colour = paint.colour(k).unwrap_or([0, 0, 0]);
            for (ch, &off) in offsets.iter().enumerate() {
                px[off] = colour[ch];
            }
            if let Some(off) = fourth {
                px[off] = 255;
            }
        }
    }
}

/// Copies class ids into an 8-bit plane with the given row stride.
pub fn mask(out: &mut [u8], stride: usize, classes: &ClassMap) {
    for y in 0..classes.height {
        out[y * stride..y * stride + classes.width].copy_from_slice(classes.row(y));
    }
}

/// [`mask`], one pixel at a time: the reference for tests and benchmarks.
pub fn mask_reference(out: &mut [u8], stride: usize, classes: &ClassMap) {
    for y in 0..classes.height {
        for x in 0..classes.width {
            out[y * stride + x] = classes.data[y * classes.width + x];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;

    fn map(w: usize, h: usize, data: Vec<u8>) -> ClassMap {
        ClassMap {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn overlay_blends_in_frame_byte_order_and_skips_unpainted() {
        let mut data = vec![100u8, 0, 200, 7, 100, 0, 200, 7];
        let classes = map(2, 1, vec![0, 1]);
        let paint = Paint::new(&[[255, 0, 0], [0, 255, 0]], &[true, false]);
        let mut frame = FrameMut::new(PixelFormat::Bgrx, 2, 1, 8, &mut data).unwrap();
        overlay(&mut frame, &classes, &paint, 0.5);
        // B=100→50, G=0→0, R=200→228 (half-way to 255, rounded); padding byte untouched.
        assert_eq!(data, vec![50, 0, 228, 7, 100, 0, 200, 7]);
    }

    #[test]
    fn alpha_zero_and_one_are_exact() {
        let classes = map(1, 1, vec![0]);
        let paint = Paint::new(&[[10, 20, 30]], &[true]);
        for (alpha, expect) in [(0.0, [200u8, 100, 50]), (1.0, [10, 20, 30])] {
            let mut data = vec![200u8, 100, 50];
            overlay(
                &mut FrameMut::new(PixelFormat::Rgb, 1, 1, 3, &mut data).unwrap(),
                &classes,
                &paint,
                alpha,
            );
            assert_eq!(data, expect);
        }
    }

    #[test]
    fn color_and_mask_respect_stride() {
        let classes = map(2, 2, vec![0, 1, 1, 0]);
        let paint = Paint::new(&[[1, 2, 3], [4, 5, 6]], &[true, true]);
        let mut data = vec![9u8; 2 * 12];
        color(
            &mut FrameMut::new(PixelFormat::Rgba, 2, 2, 12, &mut data).unwrap(),
            &classes,
            &paint,
        );
        assert_eq!(&data[..8], &[1, 2, 3, 255, 4, 5, 6, 255]);
        assert_eq!(&data[8..12], &[9, 9, 9, 9]);
        let mut plane = vec![7u8; 2 * 4];
        mask(&mut plane, 4, &classes);
        assert_eq!(plane, vec![0, 1, 7, 7, 1, 0, 7, 7]);
    }
}
