// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The element's formats and caps: which video formats it takes, how a mapped frame becomes an
//! engine picture, and the caps of the `src` and `mask` pads.

use anyhow::{Context, Result};
use gst_video::prelude::*;
use gst_video::VideoFormat;

use crate::frame::{Frame, Picture, PixelFormat};
use crate::yuv::{Colorimetry, Matrix, YuvFormat, YuvFrame};

/// Every format the sink and the frame-carrying src accept: packed RGB, and 4:2:0 YUV as
/// decoders output it (no videoconvert needed).
pub(super) const RGB_FORMATS: [VideoFormat; 8] = [
    VideoFormat::Rgb,
    VideoFormat::Rgba,
    VideoFormat::Bgr,
    VideoFormat::Bgra,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

pub(super) fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    Some(match f {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Rgba => PixelFormat::Rgba,
        VideoFormat::Bgra => PixelFormat::Bgra,
        VideoFormat::Rgbx => PixelFormat::Rgbx,
        VideoFormat::Bgrx => PixelFormat::Bgrx,
        _ => return None,
    })
}

pub(super) fn yuv_format(f: VideoFormat) -> Option<YuvFormat> {
    match f {
        VideoFormat::I420 => Some(YuvFormat::I420),
        VideoFormat::Nv12 => Some(YuvFormat::Nv12),
        _ => None,
    }
}

/// The caps' matrix and range; where they leave the matrix open, GStreamer's default for the
/// frame height.
pub(super) fn colorimetry(info: &gst_video::VideoInfo) -> Colorimetry {
    let c = info.colorimetry();
    let matrix = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => Matrix::Bt709,
        gst_video::VideoColorMatrix::Bt601 => Matrix::Bt601,
        _ => Matrix::default_for_height(info.height() as usize),
    };
    Colorimetry {
        matrix,
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
    }
}

/// A read-only view of a mapped frame, packed RGB or YUV.
pub(super) fn picture<'a>(f: &'a gst_video::VideoFrameRef<&gst::BufferRef>) -> Result<Picture<'a>> {
    let info = f.info();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = |i: usize| f.plane_stride().get(i).map_or(0, |s| *s as usize);
    if let Some(format) = yuv_format(info.format()) {
        let third = if format == YuvFormat::I420 {
            f.plane_data(2)?
        } else {
            &[]
        };
        let planes = [f.plane_data(0)?, f.plane_data(1)?, third];
        let strides = [stride(0), stride(1), stride(2)];
        return Ok(Picture::Yuv(
            YuvFrame::new(format, colorimetry(info), (w, h), planes, strides)
                .context("bad input frame")?,
        ));
    }
    let format =
        pixel_format(info.format()).context("caps are restricted to RGB and YUV formats")?;
    Ok(Picture::Packed(
        Frame::new(format, w, h, stride(0), f.plane_data(0)?).context("bad input frame")?,
    ))
}

pub(super) fn rgb_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(RGB_FORMATS)
        .width_range(1..=i32::MAX)
        .height_range(1..=i32::MAX)
        .build()
}

pub(super) fn gray_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format(VideoFormat::Gray8)
        .width_range(1..=i32::MAX)
        .height_range(1..=i32::MAX)
        .build()
}

/// The same caps with the format field replaced: GRAY8 (`to_gray`) or any of our RGB formats.
pub(super) fn with_formats(caps: &gst::Caps, to_gray: bool) -> gst::Caps {
    if caps.is_any() {
        return if to_gray { gray_caps() } else { rgb_caps() };
    }
    let mut out = gst::Caps::new_empty();
    {
        let out = out.get_mut().expect("new caps are writable");
        for s in caps.iter() {
            let mut s = s.to_owned();
            if to_gray {
                s.set("format", VideoFormat::Gray8.to_str());
            } else {
                s.set(
                    "format",
                    gst::List::new(RGB_FORMATS.iter().map(|f| f.to_str())),
                );
            }
            out.append_structure(s);
        }
    }
    out
}

/// The mask stream is a stream of its own: same group, its own id.
pub(super) fn mask_stream_start(upstream_id: &str, group: Option<gst::GroupId>) -> gst::Event {
    let id = format!("{upstream_id}/mask");
    let builder = gst::event::StreamStart::builder(&id);
    match group {
        Some(g) => builder.group_id(g).build(),
        None => builder.build(),
    }
}

/// The element's pad templates: `sink` and `src` take the RGB and YUV formats (`src` also
/// GRAY8, for mask mode), the request pad `mask` GRAY8.
pub(super) fn pad_templates() -> Vec<gst::PadTemplate> {
    let rgb = rgb_caps();
    let mut src = rgb.clone();
    src.merge(gray_caps());
    let template = |name: &str, direction, presence, caps: &gst::Caps| {
        gst::PadTemplate::new(name, direction, presence, caps).expect("valid template")
    };
    vec![
        template(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            &rgb,
        ),
        template(
            "src",
            gst::PadDirection::Src,
            gst::PadPresence::Always,
            &src,
        ),
        template(
            "mask",
            gst::PadDirection::Src,
            gst::PadPresence::Request,
            &gray_caps(),
        ),
    ]
}

/// The GRAY8 class-id frame (info and caps) for frames of `info`, if the element takes them.
pub(super) fn mask_info(info: &gst_video::VideoInfo) -> Option<(gst_video::VideoInfo, gst::Caps)> {
    if pixel_format(info.format()).is_none() && yuv_format(info.format()).is_none() {
        return None;
    }
    let gray = gst_video::VideoInfo::builder(VideoFormat::Gray8, info.width(), info.height())
        .fps(info.fps())
        .par(info.par())
        .build()
        .ok()?;
    let caps = gray.to_caps().ok()?;
    Some((gray, caps))
}
