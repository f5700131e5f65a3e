// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Frame → model input, as Hugging Face's PIL-backed image processors do it: resize with PIL's
//! filters (bit-exact, see [`crate::resample`]), rescale, normalise per channel, RGB order, NCHW
//! or NHWC.

use anyhow::Result;

#[cfg(any(test, feature = "bench"))]
use crate::frame::PixelFormat;
use crate::frame::{FrameRef, Picture};
use crate::model::{ChannelOrder, Layout, ModelInfo, Preprocessing, Resample, ResizeMode};
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

/// Where the resized pixels of the current picture are.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The frame itself: it already has the size.
    Frame(FrameRef<'a>),
    /// `Preprocessor::resized`, in the frame's own packed layout.
    Resized { bpp: usize, offsets: [usize; 3] },
    /// `Preprocessor::rgb`, packed RGB (converted from YUV).
    Rgb,
}

pub struct Preprocessor {
    width: usize,
    height: usize,
    layout: Layout,
    resize: ResizeMode,
    resample: Resample,
    channel_order: ChannelOrder,
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
            channel_order: p.channel_order,
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

    /// Where the logits map onto the frame: the whole model input, except with `letterbox`.
    pub fn placement(&self, frame_width: usize, frame_height: usize) -> Placement {
        let full = Placement {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        };
        match self.resize {
            // With `crop` transformers stretches the logits over the whole frame; so do we.
            ResizeMode::Stretch | ResizeMode::Crop { .. } | ResizeMode::Slide => full,
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

    /// The size the frame is resized to before the model input is taken from it.
    pub fn resized_size(&self, frame_width: usize, frame_height: usize) -> (usize, usize) {
        let (fw, fh) = (frame_width.max(1), frame_height.max(1));
        match self.resize {
            ResizeMode::Stretch | ResizeMode::Letterbox => {
                let p = self.placement(fw, fh);
                (p.width, p.height)
            }
            // transformers' get_resize_output_image_size(default_to_square=False): the short side
            // becomes `s`, the long one int(s * long / short).
            ResizeMode::Crop { shortest_edge: s } => {
                let long = |long: usize, short: usize| ((s * long) as f64 / short as f64) as usize;
                if fw <= fh {
                    (s, long(fh, fw).max(1))
                } else {
                    (long(fw, fh).max(1), s)
                }
            }
            // mmcv's rescale: int(size * scale + 0.5), the scale that makes the frame cover the
            // model input.
            ResizeMode::Slide => {
                let scale = f64::max(
                    self.height as f64 / fh as f64,
                    self.width as f64 / fw as f64,
                );
                (
                    ((fw as f64 * scale + 0.5) as usize).max(self.width),
                    ((fh as f64 * scale + 0.5) as usize).max(self.height),
                )
            }
        }
    }

    /// Where the model input starts in the resized frame (`crop`: the centre, rounded down as
    /// transformers' center_crop does).
    fn origin(&self, resized: (usize, usize)) -> (usize, usize) {
        match self.resize {
            ResizeMode::Crop { .. } => (
                resized.0.saturating_sub(self.width) / 2,
                resized.1.saturating_sub(self.height) / 2,
            ),
            _ => (0, 0),
        }
    }

    /// The windows of a frame with `resize=slide`, see [`crate::slide`].
    pub fn slide_plan(&self, frame_width: usize, frame_height: usize) -> crate::slide::Plan {
        crate::slide::Plan::new(
            self.resized_size(frame_width, frame_height),
            (self.width, self.height),
        )
    }

    /// Writes the normalised model input for `frame` into `out` (one image, [`Self::image_len`]
    /// values) and returns where the picture went. Resizes straight from the frame's own layout
    /// with the vectorised resampler, then normalises through the lookup table.
    pub fn run(&mut self, frame: &FrameRef, out: &mut [f32]) -> Result<Placement> {
        self.run_picture(&Picture::Packed(*frame), out)
    }

    /// [`Self::run`] for a picture in any supported layout.
    pub fn run_picture(&mut self, picture: &Picture, out: &mut [f32]) -> Result<Placement> {
        assert_eq!(out.len(), self.image_len(), "one image slot");
        anyhow::ensure!(
            self.resize != ResizeMode::Slide,
            "resize=slide takes several windows a frame (Preprocessor::run_windows)"
        );
        let (width, height) = picture.size();
        let size = self.resized_size(width, height);
        let place = self.placement(width, height);
        let source = self.resize_picture(picture, size);
        self.cut(source, size, self.origin(size), place, out);
        Ok(place)
    }

    /// [`Self::run_picture`] for a YUV frame.
    pub fn run_yuv(&mut self, frame: &YuvRef, out: &mut [f32]) -> Result<Placement> {
        self.run_picture(&Picture::Yuv(*frame), out)
    }

    /// Writes the model input of every window of `plan` (from [`Self::slide_plan`]) into `out`,
    /// one image slot after another.
    pub fn run_windows(
        &mut self,
        picture: &Picture,
        plan: &crate::slide::Plan,
        out: &mut [f32],
    ) -> Result<()> {
        let len = self.image_len();
        assert_eq!(out.len(), len * plan.windows.len(), "one slot per window");
        let source = self.resize_picture(picture, plan.resized);
        let place = self.placement(plan.resized.0, plan.resized.1);
        for (&origin, slot) in plan.windows.iter().zip(out.chunks_exact_mut(len)) {
            self.cut(source, plan.resized, origin, place, slot);
        }
        Ok(())
    }

    /// Resizes `picture` to `size` (into `self.resized`, or for YUV into `self.rgb` as packed
    /// RGB) and says where the resized pixels are.
    fn resize_picture<'a>(&mut self, picture: &Picture<'a>, size: (usize, usize)) -> Source<'a> {
        match picture {
            Picture::Packed(frame) => {
                let bpp = frame.format.bytes_per_pixel();
                if (frame.width, frame.height) == size {
                    // PIL returns a copy when the size does not change; so do we (no filtering).
                    return Source::Frame(*frame);
                }
                self.resized.resize(size.0 * size.1 * bpp, 0);
                self.resizer.resize_pixels(
                    frame.data,
                    (frame.width, frame.height),
                    frame.stride,
                    bpp,
                    &mut self.resized,
                    size,
                    self.resample,
                );
                Source::Resized {
                    bpp,
                    offsets: frame.format.rgb_offsets(),
                }
            }
            Picture::Yuv(frame) => {
                self.yuv_to_rgb(frame, size);
                Source::Rgb
            }
        }
    }

    /// Normalises the model-size region at `origin` of the resized picture into `out`.
    fn cut(
        &self,
        source: Source,
        size: (usize, usize),
        (x, y): (usize, usize),
        place: Placement,
        out: &mut [f32],
    ) {
        let (pixels, stride, bpp, offsets): (&[u8], usize, usize, [usize; 3]) = match source {
            Source::Frame(frame) => (
                frame.data,
                frame.stride,
                frame.format.bytes_per_pixel(),
                frame.format.rgb_offsets(),
            ),
            Source::Resized { bpp, offsets } => (&self.resized, size.0 * bpp, bpp, offsets),
            Source::Rgb => (&self.rgb, size.0 * 3, 3, [0, 1, 2]),
        };
        let start = y * stride + x * bpp;
        self.normalise(&pixels[start..], stride, bpp, offsets, place, out);
    }

    /// Resizes a 4:2:0 YUV frame's luma and chroma planes to `to` with the same Pillow filter as
    /// RGB frames, then converts them to packed RGB in `self.rgb` (see [`crate::yuv`]). Resizing
    /// before converting touches 1.5 bytes a frame pixel instead of 4; the result differs from
    /// convert-then-resize by rounding only.
    fn yuv_to_rgb(&mut self, frame: &YuvRef, to: (usize, usize)) {
        let pixels = to.0 * to.1;
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
        // The model's channel k reads the picture's channel k (RGB) or 2 - k (BGR).
        let offsets = match self.channel_order {
            ChannelOrder::Rgb => offsets,
            ChannelOrder::Bgr => [offsets[2], offsets[1], offsets[0]],
        };
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
                            channel_order: Default::default(),
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
                channel_order: Default::default(),
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
