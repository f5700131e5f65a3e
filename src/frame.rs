// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Plain views of packed video frames (no GStreamer types), with their row stride, and the
//! [`Picture`] that is either those or a YUV frame ([`crate::yuv`]).

use anyhow::{bail, Result};

use crate::yuv::YuvRef;

/// The packed 8-bit RGB layouts beitseg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 6] = [
        Self::Rgb,
        Self::Bgr,
        Self::Rgba,
        Self::Bgra,
        Self::Rgbx,
        Self::Bgrx,
    ];

    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Rgb | Self::Bgr => 3,
            _ => 4,
        }
    }

    /// Byte offsets of R, G and B inside one pixel.
    pub fn rgb_offsets(self) -> [usize; 3] {
        match self {
            Self::Rgb | Self::Rgba | Self::Rgbx => [0, 1, 2],
            Self::Bgr | Self::Bgra | Self::Bgrx => [2, 1, 0],
        }
    }

    /// Byte offset of the fourth (alpha or padding) byte, if any.
    pub fn fourth_offset(self) -> Option<usize> {
        (self.bytes_per_pixel() == 4).then_some(3)
    }
}

/// A frame: `height` rows of `stride` bytes, each starting with `width` pixels, over borrowed
/// bytes ([`FrameRef`]) or writable ones ([`FrameMut`]).
#[derive(Clone, Copy, Debug)]
pub struct Frame<D> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub data: D,
}

pub type FrameRef<'a> = Frame<&'a [u8]>;
pub type FrameMut<'a> = Frame<&'a mut [u8]>;

impl<D: AsRef<[u8]>> Frame<D> {
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        stride: usize,
        data: D,
    ) -> Result<Self> {
        let row = width * format.bytes_per_pixel();
        let len = data.as_ref().len();
        if width == 0 || height == 0 {
            bail!("empty frame {width}x{height}");
        }
        if stride < row {
            bail!("stride {stride} is shorter than a row of {width} {format:?} pixels");
        }
        if len < stride * (height - 1) + row {
            bail!(
                "{len} bytes cannot hold a {width}x{height} {format:?} frame with stride {stride}"
            );
        }
        Ok(Self {
            format,
            width,
            height,
            stride,
            data,
        })
    }

    pub fn row(&self, y: usize) -> &[u8] {
        let start = y * self.stride;
        &self.data.as_ref()[start..start + self.width * self.format.bytes_per_pixel()]
    }
}

impl<D: AsRef<[u8]> + AsMut<[u8]>> Frame<D> {
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let start = y * self.stride;
        let len = self.width * self.format.bytes_per_pixel();
        &mut self.data.as_mut()[start..start + len]
    }
}

/// A frame to segment: packed RGB or 4:2:0 YUV.
#[derive(Clone, Copy, Debug)]
pub enum Picture<'a> {
    Packed(FrameRef<'a>),
    Yuv(YuvRef<'a>),
}

impl Picture<'_> {
    pub fn size(&self) -> (usize, usize) {
        match self {
            Self::Packed(f) => (f.width, f.height),
            Self::Yuv(f) => (f.width, f.height),
        }
    }
}

impl<'a> From<FrameRef<'a>> for Picture<'a> {
    fn from(frame: FrameRef<'a>) -> Self {
        Self::Packed(frame)
    }
}

/// A class id per pixel, row-major without padding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl ClassMap {
    pub fn resize(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.resize(width * height, 0);
    }

    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
}
