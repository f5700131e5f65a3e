// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Where `beitseg run` writes: video files (with an encoder picked from what is installed),
//! PNGs, folders, an RTSP stream, a window; and the class-id mask writer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::input::{extension, quoted};
use crate::server::{first_installed, Endpoint};

/// Where `beitseg run` writes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Video(PathBuf),
    Png(PathBuf),
    Folder(PathBuf),
    Rtsp(Endpoint),
    Display,
}

impl Output {
    pub(crate) fn parse(s: &str) -> Result<Self> {
        if s == "display" {
            return Ok(Output::Display);
        }
        if s.to_ascii_lowercase().starts_with("rtsp://") {
            return Ok(Output::Rtsp(Endpoint::parse(s)?));
        }
        let path = PathBuf::from(s);
        if s.ends_with('/') || path.is_dir() {
            return Ok(Output::Folder(path));
        }
        match extension(s).as_str() {
            "mp4" | "mkv" | "webm" => Ok(Output::Video(path)),
            "png" => Ok(Output::Png(path)),
            _ => bail!(
                "output {s}: use a .mp4, .mkv, .webm or .png file, a folder (ending in /), \
                 rtsp://HOST:PORT/PATH, or `display`"
            ),
        }
    }
}

/// A .mp4/.mkv/.webm writer as a gst-launch fragment taking raw video.
pub(crate) fn video_writer(path: &Path, kbps: u32) -> Result<String> {
    let location = quoted(&path.display().to_string());
    let ext = extension(&path.display().to_string());
    if ext == "webm" {
        if gst::ElementFactory::find("vp8enc").is_none() {
            bail!(
                "output {}: vp8enc is not installed (gstreamer1.0-plugins-good)",
                path.display()
            );
        }
        return Ok(format!(
            "vp8enc deadline=1 target-bitrate={} ! webmmux ! filesink location={location}",
            kbps * 1000
        ));
    }
    let enc = match first_installed(&["x264enc", "openh264enc"]) {
        Some("x264enc") => format!("x264enc bitrate={kbps} speed-preset=veryfast"),
        Some(enc) => format!("{enc} bitrate={}", kbps * 1000),
        None => bail!(
            "output {}: no H.264 encoder installed (x264enc: gstreamer1.0-plugins-ugly)",
            path.display()
        ),
    };
    let mux = if ext == "mp4" {
        "mp4mux"
    } else {
        "matroskamux"
    };
    Ok(format!(
        "{enc} ! h264parse ! {mux} ! filesink location={location}"
    ))
}

/// A writer for class-id masks (GRAY8) that keeps every id: PNGs in a folder, or lossless FFV1.
pub(crate) fn mask_writer(target: &str) -> Result<String> {
    let path = PathBuf::from(target);
    if target.ends_with('/') || path.is_dir() {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("mask output {target}: cannot create the folder"))?;
        return Ok(format!(
            "pngenc ! multifilesink location={}",
            quoted(&path.join("%06d.png").display().to_string())
        ));
    }
    match extension(target).as_str() {
        "mkv" => {
            if gst::ElementFactory::find("avenc_ffv1").is_none() {
                bail!("mask output {target}: avenc_ffv1 is not installed (gstreamer1.0-libav)");
            }
            Ok(format!(
                "avenc_ffv1 ! matroskamux ! filesink location={}",
                quoted(target)
            ))
        }
        _ => bail!(
            "mask output {target}: use a folder (ending in /) for PNGs or a .mkv file (lossless); \
             lossy video would change class ids"
        ),
    }
}
