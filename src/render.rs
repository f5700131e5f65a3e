// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Class map → pixels: an overlay blended into the frame, the palette image, or the class ids.

use crate::frame::{ClassMap, FrameMut};
use crate::palette::Rgb;
use crate::yuv::{YuvFormat, YuvMut};

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
    let a = alpha_fixed(alpha);
    let bpp = frame.format.bytes_per_pixel();
    let mut which = [None; 4];
    for (c, off) in frame.format.rgb_offsets().into_iter().enumerate() {
        which[off] = Some(c);
    }
    let plane = Plane {
        stride: frame.stride,
        bpp,
        width: frame.width,
        height: frame.height,
        data: &mut frame.data[..],
    };
    blend_plane(plane, classes, &paint.colours, which, a);
}

/// Alpha in 8-bit fixed point: 0 to 256.
fn alpha_fixed(alpha: f64) -> u16 {
    (alpha.clamp(0.0, 1.0) * 256.0).round() as u16
}

/// Rows of `width` samples of `bpp` bytes, `stride` bytes apart.
struct Plane<'a> {
    data: &'a mut [u8],
    stride: usize,
    bpp: usize,
    width: usize,
    height: usize,
}

/// Blends every sample of `plane` with the colour of its class in `classes` (one id per
/// sample). `which[j]` names the colour component (0 to 2) that byte `j` of a sample takes;
/// bytes without one are left alone.
fn blend_plane(
    plane: Plane,
    classes: &ClassMap,
    colours: &[Option<Rgb>],
    which: [Option<usize>; 4],
    a: u16,
) {
    match plane.bpp {
        1 | 2 => blend_lanes::<{ 4 * SPAN }>(plane, classes, colours, which, a),
        3 => blend_lanes::<{ 3 * SPAN }>(plane, classes, colours, which, a),
        _ => blend_lanes::<{ 4 * SPAN }>(plane, classes, colours, which, a),
    }
}

/// Pixels blended per vector step (for 3- and 4-byte pixels; narrower samples take more, 64
/// bytes a step).
const SPAN: usize = 16;

/// Per-byte multiplier and addend over `L` bytes for each class: a colour byte becomes
/// `(v * (256 - a) + colour * a + 128) >> 8`, any other byte `(v * 256 + 0) >> 8 = v`. The
/// sums stay below 2^16. `None` for classes left unpainted.
type Lanes<const L: usize> = ([u16; L], Vec<Option<[u16; L]>>);

fn lanes<const L: usize>(
    bpp: usize,
    colours: &[Option<Rgb>],
    which: [Option<usize>; 4],
    a: u16,
) -> Lanes<L> {
    let mul = std::array::from_fn(|j| {
        if which[j % bpp].is_some() {
            256 - a
        } else {
            256
        }
    });
    let adds = colours
        .iter()
        .map(|c| {
            c.map(|colour| {
                std::array::from_fn(|j| which[j % bpp].map_or(0, |ch| colour[ch] as u16 * a + 128))
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
fn blend_rows<const L: usize>(plane: Plane, classes: &ClassMap, (mul, adds): &Lanes<L>) {
    let bpp = plane.bpp;
    for y in 0..plane.height.min(classes.height) {
        let ids = classes.row(y);
        let ids = &ids[..ids.len().min(plane.width)];
        let row = &mut plane.data[y * plane.stride..y * plane.stride + ids.len() * bpp];
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

/// [`blend_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blend_rows_avx2<const L: usize>(plane: Plane, classes: &ClassMap, lanes: &Lanes<L>) {
    blend_rows(plane, classes, lanes)
}

fn blend_lanes<const L: usize>(
    plane: Plane,
    classes: &ClassMap,
    colours: &[Option<Rgb>],
    which: [Option<usize>; 4],
    a: u16,
) {
    let lanes = lanes::<L>(plane.bpp, colours, which, a);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { blend_rows_avx2(plane, classes, &lanes) };
    }
    blend_rows(plane, classes, &lanes)
}

/// The class of each 2x2 block (its top-left pixel), for painting 4:2:0 chroma.
fn chroma_classes(classes: &ClassMap, out: &mut ClassMap) {
    out.resize(classes.width.div_ceil(2), classes.height.div_ceil(2));
    for (y, row) in out.data.chunks_exact_mut(out.width.max(1)).enumerate() {
        for (d, s) in row.iter_mut().zip(classes.row(2 * y).iter().step_by(2)) {
            *d = *s;
        }
    }
}

/// [`overlay`] for a 4:2:0 YUV frame, without leaving YUV: the palette is converted once with
/// the frame's colorimetry; luma is blended per pixel, chroma per 2x2 block with the class of
/// the block's top-left pixel (a boundary through a block takes that pixel's side).
pub fn overlay_yuv(frame: &mut YuvMut, classes: &ClassMap, paint: &Paint, alpha: f64) {
    let a = alpha_fixed(alpha);
    let colours: Vec<Option<Rgb>> = paint
        .colours
        .iter()
        .map(|c| c.map(|c| frame.colorimetry.from_rgb(c)))
        .collect();
    let (w, h) = (frame.width, frame.height);
    let (cw, ch) = frame.chroma_size();
    let [y, u, v] = &mut frame.planes;
    let strides = frame.strides;
    fn plane(
        data: &mut [u8],
        stride: usize,
        bpp: usize,
        (width, height): (usize, usize),
    ) -> Plane<'_> {
        Plane {
            data,
            stride,
            bpp,
            width,
            height,
        }
    }
    blend_plane(
        plane(y, strides[0], 1, (w, h)),
        classes,
        &colours,
        [Some(0), None, None, None],
        a,
    );
    let mut sub = ClassMap::default();
    chroma_classes(classes, &mut sub);
    match frame.format {
        YuvFormat::I420 => {
            for (data, i) in [(&mut **u, 1), (&mut **v, 2)] {
                let which = [Some(i), None, None, None];
                blend_plane(
                    plane(data, strides[i], 1, (cw, ch)),
                    &sub,
                    &colours,
                    which,
                    a,
                );
            }
        }
        YuvFormat::Nv12 => {
            let which = [Some(1), Some(2), None, None];
            blend_plane(plane(u, strides[1], 2, (cw, ch)), &sub, &colours, which, a);
        }
    }
}

/// [`color`] for a 4:2:0 YUV frame: black (for the frame's range), then every drawn class in
/// its colour.
pub fn color_yuv(frame: &mut YuvMut, classes: &ClassMap, paint: &Paint) {
    let [black, neutral, _] = frame.colorimetry.from_rgb([0, 0, 0]);
    let (h, ch) = (frame.height, frame.chroma_size().1);
    for (i, (value, rows)) in [(black, h), (neutral, ch), (neutral, ch)]
        .into_iter()
        .enumerate()
    {
        let end = (frame.strides[i] * rows).min(frame.planes[i].len());
        frame.planes[i][..end].fill(value);
    }
    overlay_yuv(frame, classes, paint, 1.0);
}

#[cfg(any(test, feature = "bench"))]
/// [`overlay_yuv`] written plainly, one sample at a time: the reference for tests and
/// benchmarks.
pub fn overlay_yuv_reference(frame: &mut YuvMut, classes: &ClassMap, paint: &Paint, alpha: f64) {
    let a = alpha_fixed(alpha) as u32;
    let mix = |v: &mut u8, c: u8| *v = ((*v as u32 * (256 - a) + c as u32 * a + 128) >> 8) as u8;
    let cm = frame.colorimetry;
    let yuv = |x: usize, y: usize| {
        paint
            .colour(classes.data[y * classes.width + x])
            .map(|c| cm.from_rgb(c))
    };
    for y in 0..frame.height {
        for x in 0..frame.width {
            if let Some(c) = yuv(x, y) {
                mix(&mut frame.planes[0][y * frame.strides[0] + x], c[0]);
            }
        }
    }
    let (cw, ch) = frame.chroma_size();
    for cy in 0..ch {
        for cx in 0..cw {
            let Some(c) = yuv(2 * cx, 2 * cy) else {
                continue;
            };
            match frame.format {
                YuvFormat::I420 => {
                    mix(&mut frame.planes[1][cy * frame.strides[1] + cx], c[1]);
                    mix(&mut frame.planes[2][cy * frame.strides[2] + cx], c[2]);
                }
                YuvFormat::Nv12 => {
                    mix(&mut frame.planes[1][cy * frame.strides[1] + 2 * cx], c[1]);
                    mix(
                        &mut frame.planes[1][cy * frame.strides[1] + 2 * cx + 1],
                        c[2],
                    );
                }
            }
        }
    }
}

#[cfg(any(test, feature = "bench"))]
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

#[cfg(any(test, feature = "bench"))]
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
    fn yuv_overlay_equals_reference_for_both_layouts_and_odd_sizes() {
        use crate::yuv::{Colorimetry, Matrix, YuvFrame};
        let palette = crate::palette::ade20k_palette();
        let draw: Vec<bool> = (0..palette.len()).map(|c| c % 4 != 1).collect();
        let paint = Paint::new(&palette, &draw);
        let cm = Colorimetry {
            matrix: Matrix::Bt709,
            full_range: false,
        };
        for (w, h) in [(37, 11), (64, 8), (1, 1)] {
            let ids: Vec<u8> = (0..w * h).map(|i| ((i / 5 + i / w) % 150) as u8).collect();
            let classes = map(w, h, ids);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            for format in [YuvFormat::I420, YuvFormat::Nv12] {
                let strides = match format {
                    YuvFormat::I420 => [w + 3, cw + 1, cw + 2],
                    YuvFormat::Nv12 => [w + 1, 2 * cw + 4, 0],
                };
                let sizes = [strides[0] * h, strides[1] * ch, strides[2] * ch];
                let planes: Vec<Vec<u8>> = sizes
                    .iter()
                    .enumerate()
                    .map(|(p, &n)| (0..n).map(|i| (i * 7 + p * 50) as u8).collect())
                    .collect();
                for alpha in [0.0, 0.4, 1.0] {
                    let (mut fast, mut plain) = (planes.clone(), planes.clone());
                    let [a0, a1, a2] = &mut fast[..] else {
                        unreachable!()
                    };
                    let mut frame =
                        YuvFrame::new(format, cm, (w, h), [&mut a0[..], a1, a2], strides).unwrap();
                    overlay_yuv(&mut frame, &classes, &paint, alpha);
                    let [b0, b1, b2] = &mut plain[..] else {
                        unreachable!()
                    };
                    let mut frame =
                        YuvFrame::new(format, cm, (w, h), [&mut b0[..], b1, b2], strides).unwrap();
                    overlay_yuv_reference(&mut frame, &classes, &paint, alpha);
                    assert_eq!(fast, plain, "{format:?} {w}x{h} alpha {alpha}");
                }
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
