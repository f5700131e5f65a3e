// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Frame → model input, as Hugging Face's PIL-backed image processors do it: resize with PIL's
//! filters (bit-exact, see [`crate::resample`]), rescale, normalise per channel, RGB order, NCHW
//! or NHWC.

use anyhow::Result;

#[cfg(any(test, feature = "bench"))]
use crate::frame::PixelFormat;
use crate::frame::{FrameRef, Picture};
use crate::model::{Layout, ModelInfo, Preprocessing, Resample, ResizeMode};
use crate::resample::Resizer;
use crate::yuv::{planes_to_rgb, YuvFormat, YuvRef};

/// Where the picture sits inside the model input, in model pixels. With `stretch` it fills it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

pub struct Preprocessor {
    width: usize,
    height: usize,
    layout: Layout,
    resize: ResizeMode,
    resample: Resample,
    /// Normalised value of each 8-bit level, per RGB channel.
    lut: [[f32; 256]; 3],
    resizer: Resizer,
    chroma_resizer: Resizer,
    rgb: Vec<u8>,
    resized: Vec<u8>,
    chroma: [Vec<u8>; 2],
}

impl Preprocessor {
    pub fn new(info: &ModelInfo) -> Self {
        Self::with(info.width, info.height, info.layout, &info.preprocessing)
    }

    /// A preprocessor for a `width` x `height` model input, without a loaded model.
    pub fn with(width: usize, height: usize, layout: Layout, p: &Preprocessing) -> Self {
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                // transformers rescales in float64, casts to float32, then normalises in float32.
                let x = (v as f64 * p.rescale) as f32;
                *out = (x - p.mean[c]) / p.std[c];
            }
        }
        Self {
            width,
            height,
            layout,
            resize: p.resize,
            resample: p.resample,
            lut,
            resizer: Resizer::new(),
            chroma_resizer: Resizer::new(),
            rgb: Vec::new(),
            resized: Vec::new(),
            chroma: Default::default(),
        }
    }

    /// Number of f32 values one image takes in the model input.
    pub fn image_len(&self) -> usize {
        3 * self.width * self.height
    }

    pub fn placement(&self, frame_width: usize, frame_height: usize) -> Placement {
        match self.resize {
            ResizeMode::Stretch => Placement {
                x: 0,
                y: 0,
                width: self.width,
                height: self.height,
            },
            ResizeMode::Letterbox => {
                let scale = f64::min(
                    self.width as f64 / frame_width as f64,
                    self.height as f64 / frame_height as f64,
                );
                let w = ((frame_width as f64 * scale).round() as usize).clamp(1, self.width);
                let h = ((frame_height as f64 * scale).round() as usize).clamp(1, self.height);
                Placement {
                    x: (self.width - w) / 2,
                    y: (self.height - h) / 2,
                    width: w,
                    height: h,
                }
            }
        }
    }

    /// Writes the normalised model input for `frame` into `out` (one image, [`Self::image_len`]
    /// values) and returns where the picture went. Resizes straight from the frame's own layout
    /// with the vectorised resampler, then normalises through the lookup table.
    pub fn run(&mut self, frame: &FrameRef, out: &mut [f32]) -> Result<Placement> {
        assert_eq!(out.len(), self.image_len(), "one image slot");
        let place = self.placement(frame.width, frame.height);
        let bpp = frame.format.bytes_per_pixel();
        let same_size = frame.width == place.width && frame.height == place.height;
        let (pixels, stride): (&[u8], usize) = if same_size {
            // PIL returns a copy when the size does not change; so do we (no filtering).
            (frame.data, frame.stride)
        } else {
            self.resized.resize(place.width * place.height * bpp, 0);
            self.resizer.resize_pixels(
                frame.data,
                (frame.width, frame.height),
                frame.stride,
                bpp,
                &mut self.resized,
                (place.width, place.height),
                self.resample,
            );
            (&self.resized, place.width * bpp)
        };
        self.normalise(pixels, stride, bpp, frame.format.rgb_offsets(), place, out);
        Ok(place)
    }

    /// [`Self::run`] for a picture in any supported layout.
    pub fn run_picture(&mut self, picture: &Picture, out: &mut [f32]) -> Result<Placement> {
        match picture {
            Picture::Packed(frame) => self.run(frame, out),
            Picture::Yuv(frame) => self.run_yuv(frame, out),
        }
    }

    /// Writes the model input for a 4:2:0 YUV frame: luma and chroma planes are resized to the
    /// placement with the same Pillow filter as RGB frames, then converted to RGB (see
    /// [`crate::yuv`]) and normalised. Resizing before converting touches 1.5 bytes a frame
    /// pixel instead of 4; the result differs from convert-then-resize by rounding only.
    pub fn run_yuv(&mut self, frame: &YuvRef, out: &mut [f32]) -> Result<Placement> {
        assert_eq!(out.len(), self.image_len(), "one image slot");
        let place = self.placement(frame.width, frame.height);
        let to = (place.width, place.height);
        let pixels = place.width * place.height;
        let (cw, ch) = frame.chroma_size();
        self.resized.resize(pixels, 0);
        self.resizer.resize_pixels(
            frame.planes[0],
            (frame.width, frame.height),
            frame.strides[0],
            1,
            &mut self.resized,
            to,
            self.resample,
        );
        let [u, v] = &mut self.chroma;
        let (u, v, step): (&[u8], &[u8], usize) = match frame.format {
            YuvFormat::I420 => {
                for (plane, buf) in [(1, &mut *u), (2, &mut *v)] {
                    buf.resize(pixels, 0);
                    self.chroma_resizer.resize_pixels(
                        frame.planes[plane],
                        (cw, ch),
                        frame.strides[plane],
                        1,
                        buf,
                        to,
                        self.resample,
                    );
                }
                (u, v, 1)
            }
            YuvFormat::Nv12 => {
                u.resize(2 * pixels, 0);
                self.chroma_resizer.resize_pixels(
                    frame.planes[1],
                    (cw, ch),
                    frame.strides[1],
                    2,
                    u,
                    to,
                    self.resample,
                );
                (&u[..], &u[1..], 2)
            }
        };
        self.rgb.resize(pixels * 3, 0);
        planes_to_rgb(
            frame.colorimetry,
            &self.resized,
            (u, v, step),
            &mut self.rgb,
        );
        let rgb = std::mem::take(&mut self.rgb);
        self.normalise(&rgb, place.width * 3, 3, [0, 1, 2], place, out);
        self.rgb = rgb;
        Ok(place)
    }

    #[cfg(any(test, feature = "bench"))]
    /// [`Self::run_yuv`] the plain way, for tests and benchmarks: every frame pixel converted
    /// to RGB in floating point ([`crate::yuv::Colorimetry::to_rgb`]), then
    /// [`Self::run_reference`].
    pub fn run_yuv_reference(&mut self, frame: &YuvRef, out: &mut [f32]) -> Result<Placement> {
        let mut rgb = Vec::with_capacity(frame.width * frame.height * 3);
        for y in 0..frame.height {
            for x in 0..frame.width {
                let [l, u, v] = frame.sample(x, y);
                rgb.extend_from_slice(&frame.colorimetry.to_rgb(l, u, v));
            }
        }
        let packed = FrameRef::new(
            PixelFormat::Rgb,
            frame.width,
            frame.height,
            frame.width * 3,
            &rgb[..],
        )?;
        self.run_reference(&packed, out)
    }

    #[cfg(any(test, feature = "bench"))]
    /// [`Self::run`] the plain way, for tests and benchmarks: the frame packed to RGB, resized
    /// with the one-pixel-at-a-time reference resampler ([`Resizer::resize`]), then normalised.
    pub fn run_reference(&mut self, frame: &FrameRef, out: &mut [f32]) -> Result<Placement> {
        assert_eq!(out.len(), self.image_len(), "one image slot");
        let place = self.placement(frame.width, frame.height);
        self.rgb.clear();
        let bpp = frame.format.bytes_per_pixel();
        let [r, g, b] = frame.format.rgb_offsets();
        for y in 0..frame.height {
            for px in frame.row(y).chunks_exact(bpp) {
                self.rgb.extend_from_slice(&[px[r], px[g], px[b]]);
            }
        }
        let pixels = if frame.width == place.width && frame.height == place.height {
            std::mem::take(&mut self.rgb)
        } else {
            let mut resized = vec![0; place.width * place.height * 3];
            self.resizer.resize(
                &self.rgb,
                (frame.width, frame.height),
                &mut resized,
                (place.width, place.height),
                self.resample,
            );
            resized
        };
        self.normalise(&pixels, place.width * 3, 3, [0, 1, 2], place, out);
        Ok(place)
    }

    /// Looks each resized pixel's channels up in the normalisation table and writes them at
    /// their place in the model input; the rest (letterbox padding) is the mean colour, zero
    /// after normalisation.
    fn normalise(
        &self,
        pixels: &[u8],
        stride: usize,
        bpp: usize,
        offsets: [usize; 3],
        place: Placement,
        out: &mut [f32],
    ) {
        if place.width != self.width || place.height != self.height {
            out.fill(0.0);
        }
        let plane = self.width * self.height;
        for y in 0..place.height {
            let row = &pixels[y * stride..y * stride + place.width * bpp];
            let base = (y + place.y) * self.width + place.x;
            match self.layout {
                Layout::Nchw => {
                    for (c, (table, &off)) in self.lut.iter().zip(&offsets).enumerate() {
                        let start = c * plane + base;
                        let dst = &mut out[start..start + place.width];
                        for (d, px) in dst.iter_mut().zip(row.chunks_exact(bpp)) {
                            *d = table[px[off] as usize];
                        }
                    }
                }
                Layout::Nhwc => {
                    let dst = &mut out[base * 3..(base + place.width) * 3];
                    for (d, px) in dst.chunks_exact_mut(3).zip(row.chunks_exact(bpp)) {
                        for c in 0..3 {
                            d[c] = self.lut[c][px[offsets[c]] as usize];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_equals_reference_for_every_format_layout_and_mode() {
        for format in PixelFormat::ALL {
            for layout in [Layout::Nchw, Layout::Nhwc] {
                for resize in [ResizeMode::Stretch, ResizeMode::Letterbox] {
                    for resample in [Resample::Bilinear, Resample::Bicubic] {
                        let p = Preprocessing {
                            mean: [0.485, 0.456, 0.406],
                            std: [0.229, 0.224, 0.225],
                            rescale: 1.0 / 255.0,
                            resample,
                            resize,
                        };
                        let (w, h) = (83, 47);
                        let stride = w * format.bytes_per_pixel() + 3;
                        // Enough bytes for `h` padded rows.
                        let data = crate::bench::test_picture(format, stride / 3, h);
                        let frame = FrameRef::new(format, w, h, stride, &data[..]).unwrap();
                        let mut pre = Preprocessor::with(32, 24, layout, &p);
                        let mut fast = vec![1f32; pre.image_len()];
                        let mut plain = vec![2f32; pre.image_len()];
                        let a = pre.run(&frame, &mut fast).unwrap();
                        let b = pre.run_reference(&frame, &mut plain).unwrap();
                        assert_eq!(a, b);
                        assert_eq!(fast, plain, "{format:?} {layout:?} {resize:?} {resample:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn yuv_input_is_within_conversion_rounding_of_the_rgb_reference() {
        use crate::yuv::{Colorimetry, Matrix, YuvFormat, YuvFrame};
        let (w, h) = (96, 54);
        let rgb = crate::bench::test_picture(PixelFormat::Rgb, w, h);
        for format in [YuvFormat::I420, YuvFormat::Nv12] {
            let cm = Colorimetry {
                matrix: Matrix::Bt601,
                full_range: false,
            };
            let planes = crate::bench::yuv_planes(format, cm, w, h, &rgb);
            let strides = crate::bench::yuv_strides(format, w);
            let frame = YuvFrame::new(
                format,
                cm,
                (w, h),
                [&planes[0][..], &planes[1], &planes[2]],
                strides,
            )
            .unwrap();
            let p = Preprocessing {
                mean: [0.5; 3],
                std: [0.5; 3],
                rescale: 1.0 / 255.0,
                resample: Resample::Bilinear,
                resize: ResizeMode::Stretch,
            };
            let mut pre = Preprocessor::with(32, 32, Layout::Nchw, &p);
            let mut fast = vec![0f32; pre.image_len()];
            let mut plain = vec![0f32; pre.image_len()];
            pre.run_yuv(&frame, &mut fast).unwrap();
            pre.run_yuv_reference(&frame, &mut plain).unwrap();
            // One 8-bit level is 2/255 after normalisation with std 0.5. The picture has
            // pixel-sized colour noise, which 4:2:0 chroma and the two orders (resize then
            // convert, convert then resize) treat differently at its edges.
            let level = 2.0 / 255.0;
            let diffs: Vec<f32> = fast
                .iter()
                .zip(&plain)
                .map(|(a, b)| (a - b).abs())
                .collect();
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32 / level;
            let within = diffs.iter().filter(|&&d| d <= 3.01 * level).count();
            assert!(mean <= 1.0, "{format:?}: mean difference {mean} levels");
            assert!(
                within as f64 >= 0.95 * diffs.len() as f64,
                "{format:?}: {within} of {} within three levels",
                diffs.len()
            );
            let worst = diffs.iter().fold(0f32, |m, &d| m.max(d));
            assert!(worst <= 32.0 * level, "{format:?}: worst {}", worst / level);
        }
    }
}
