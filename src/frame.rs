// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Plain views of packed video frames (no GStreamer types), with their row stride.

use anyhow::{bail, Result};

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

/// A read-only frame: `height` rows of `stride` bytes, each starting with `width` pixels.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub data: &'a [u8],
}

/// A writable frame, laid out like [`Frame`].
#[derive(Debug)]
pub struct FrameMut<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub data: &'a mut [u8],
}

fn check(
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
    len: usize,
) -> Result<()> {
    let row = width * format.bytes_per_pixel();
    if width == 0 || height == 0 {
        bail!("empty frame {width}x{height}");
    }
    if stride < row {
        bail!("stride {stride} is shorter than a row of {width} {format:?} pixels");
    }
    if len < stride * (height - 1) + row {
        bail!("{len} bytes cannot hold a {width}x{height} {format:?} frame with stride {stride}");
    }
    Ok(())
}

impl<'a> Frame<'a> {
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        stride: usize,
        data: &'a [u8],
    ) -> Result<Self> {
        check(format, width, height, stride, data.len())?;
        Ok(Self {
            format,
            width,
            height,
            stride,
            data,
        })
    }

    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * self.format.bytes_per_pixel()]
    }
}

impl<'a> FrameMut<'a> {
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        stride: usize,
        data: &'a mut [u8],
    ) -> Result<Self> {
        check(format, width, height, stride, data.len())?;
        Ok(Self {
            format,
            width,
            height,
            stride,
            data,
        })
    }

    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let start = y * self.stride;
        let len = self.width * self.format.bytes_per_pixel();
        &mut self.data[start..start + len]
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
