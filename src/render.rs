// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Class map → pixels: an overlay blended into the frame, the palette image, or the class ids.

use crate::frame::{ClassMap, FrameMut, PixelFormat};
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
///
/// Works on runs of equal class ids: each drawn run is blended with its class's precomputed
/// per-byte multiplier and premultiplied colour in 16-bit lanes, a loop that vectorises (AVX2
/// where the CPU has it). Identical to [`overlay_reference`].
pub fn overlay(frame: &mut FrameMut, classes: &ClassMap, paint: &Paint, alpha: f64) {
    let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u16;
    match frame.format.bytes_per_pixel() {
        4 => overlay_lanes::<{ 4 * SPAN }>(frame, classes, paint, a),
        _ => overlay_lanes::<{ 3 * SPAN }>(frame, classes, paint, a),
    }
}

/// Pixels blended per vector step.
const SPAN: usize = 16;

/// Per-byte multiplier and addend over `L` bytes (`SPAN` pixels) for each class: a colour byte
/// becomes `(v * (256 - a) + colour * a + 128) >> 8`, any other byte `(v * 256 + 0) >> 8 = v`.
/// The sums stay below 2^16. `None` for classes left unpainted.
fn lanes<const L: usize>(
    format: PixelFormat,
    paint: &Paint,
    a: u16,
) -> ([u16; L], Vec<Option<[u16; L]>>) {
    let bpp = format.bytes_per_pixel();
    let offsets = format.rgb_offsets();
    let channel = |j: usize| offsets.iter().position(|&o| o == j % bpp);
    let mul = std::array::from_fn(|j| if channel(j).is_some() { 256 - a } else { 256 });
    let adds = paint
        .colours
        .iter()
        .map(|c| {
            c.map(|colour| {
                std::array::from_fn(|j| channel(j).map_or(0, |ch| colour[ch] as u16 * a + 128))
            })
        })
        .collect();
    (mul, adds)
}

#[inline(always)]
fn blend_span<const L: usize>(span: &mut [u8], mul: &[u16; L], add: &[u16; L]) {
    let mut chunks = span.chunks_exact_mut(L);
    for chunk in &mut chunks {
        for j in 0..L {
            chunk[j] = ((chunk[j] as u16 * mul[j] + add[j]) >> 8) as u8;
        }
    }
    // Spans start on a pixel, so the pattern stays aligned in the remainder too.
    for ((v, m), d) in chunks.into_remainder().iter_mut().zip(mul).zip(add) {
        *v = ((*v as u16 * m + d) >> 8) as u8;
    }
}

/// The end of the run of `ids[start]` that starts at `start`, eight ids at a time.
#[inline(always)]
fn run_end(ids: &[u8], start: usize) -> usize {
    let k = ids[start];
    let pattern = u64::from_ne_bytes([k; 8]);
    let mut x = start + 1;
    while let Some(eight) = ids.get(x..x + 8) {
        let word = u64::from_ne_bytes(eight.try_into().expect("eight bytes"));
        if word != pattern {
            break;
        }
        x += 8;
    }
    while x < ids.len() && ids[x] == k {
        x += 1;
    }
    x
}

#[inline(always)]
fn overlay_rows<const L: usize>(
    frame: &mut FrameMut,
    classes: &ClassMap,
    mul: &[u16; L],
    adds: &[Option<[u16; L]>],
) {
    let bpp = frame.format.bytes_per_pixel();
    for y in 0..frame.height {
        let ids = classes.row(y);
        let ids = &ids[..ids.len().min(frame.width)];
        let row = frame.row_mut(y);
        let mut x = 0;
        while x < ids.len() {
            let end = run_end(ids, x);
            if let Some(Some(add)) = adds.get(ids[x] as usize) {
                blend_span(&mut row[x * bpp..end * bpp], mul, add);
            }
            x = end;
        }
    }
}

/// [`overlay_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn overlay_rows_avx2<const L: usize>(
    frame: &mut FrameMut,
    classes: &ClassMap,
    mul: &[u16; L],
    adds: &[Option<[u16; L]>],
) {
    overlay_rows(frame, classes, mul, adds)
}

fn overlay_lanes<const L: usize>(frame: &mut FrameMut, classes: &ClassMap, paint: &Paint, a: u16) {
    let (mul, adds) = lanes::<L>(frame.format, paint, a);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { overlay_rows_avx2(frame, classes, &mul, &adds) };
    }
    overlay_rows(frame, classes, &mul, &adds)
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
    fn overlay_equals_reference_for_every_format_alpha_and_run_length() {
        let palette = crate::palette::ade20k_palette();
        let draw: Vec<bool> = (0..palette.len()).map(|c| c % 3 != 0).collect();
        let paint = Paint::new(&palette, &draw);
        let (w, h) = (101, 9);
        let mut s = 5u64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        // Rows of single pixels, short runs and long runs.
        let mut ids = Vec::new();
        for y in 0..h {
            let mut x = 0;
            while x < w {
                let len = (1 + next() % (1 + 40 * (y % 3))).min(w - x);
                ids.extend(std::iter::repeat_n((next() % 150) as u8, len));
                x += len;
            }
        }
        let classes = map(w, h, ids);
        for format in PixelFormat::ALL {
            let stride = w * format.bytes_per_pixel() + 7;
            let pixels: Vec<u8> = (0..stride * h).map(|_| next() as u8).collect();
            for alpha in [0.0, 0.3, 0.5, 0.77, 1.0] {
                let (mut fast, mut plain) = (pixels.clone(), pixels.clone());
                overlay(
                    &mut FrameMut::new(format, w, h, stride, &mut fast).unwrap(),
                    &classes,
                    &paint,
                    alpha,
                );
                overlay_reference(
                    &mut FrameMut::new(format, w, h, stride, &mut plain).unwrap(),
                    &classes,
                    &paint,
                    alpha,
                );
                assert_eq!(fast, plain, "{format:?} alpha {alpha}");
            }
        }
    }

    #[test]
    fn mask_equals_reference() {
        let classes = map(3, 2, vec![4, 5, 6, 7, 8, 9]);
        let (mut a, mut b) = (vec![1u8; 10], vec![1u8; 10]);
        mask(&mut a, 5, &classes);
        mask_reference(&mut b, 5, &classes);
        assert_eq!(a, b);
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
