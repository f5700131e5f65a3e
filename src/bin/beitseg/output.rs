// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Where `beitseg run` writes: video files (with an encoder picked from what is installed),
//! PNGs, folders, an RTSP stream, a window; the class-id mask writer; and the rules that keep a
//! failed run from damaging anything: files are written beside their target and renamed on
//! success, an output is never the input, folders are never mixed with an earlier run's frames.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gstbeitseg::Mode;

use crate::console::say;
use crate::input::extension;
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
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
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

/// One file or folder a run writes through a sink of the pipeline (named `element`).
#[derive(Debug)]
pub(crate) struct Write {
    /// The sink's name in the pipeline description.
    pub(crate) element: &'static str,
    /// The sink's `location`: the partial file, or multifilesink's or splitmuxsink's pattern.
    pub(crate) location: String,
    /// The partial file and its target, renamed on success.
    pub(crate) partial: Option<(PathBuf, PathBuf)>,
    /// Segments: splitmuxsink's `start-index`, and the target their names come from.
    pub(crate) segments: Option<(u32, PathBuf)>,
}

impl Write {
    /// A file written as `NAME.partial.EXT` beside `target` and renamed when the run succeeds,
    /// so that a failed or interrupted run leaves an existing `target` as it was. An existing
    /// `target` is an error unless `overwrite`; the partial file of an earlier run that did not
    /// finish is kept (this run's is `NAME.partial-2.EXT`, …); missing folders are created.
    pub(crate) fn file(element: &'static str, target: &Path, overwrite: bool) -> Result<Self> {
        if target.exists() && !overwrite {
            bail!(
                "output {}: it already exists; -y (--overwrite) replaces it",
                target.display()
            );
        }
        create_parent(target)?;
        let partial = (1..)
            .map(|n| partial_path(target, n))
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .unwrap_or_else(|| partial_path(target, 1));
        if partial != partial_path(target, 1) {
            say!(
                "note: keeping {} (an earlier run that did not finish); this run writes {}",
                partial_path(target, 1).display(),
                partial.display()
            );
        }
        Ok(Write {
            element,
            location: partial.display().to_string(),
            partial: Some((partial, target.to_path_buf())),
            segments: None,
        })
    }

    /// One PNG per frame in `dir` (created): multifilesink's pattern, the folder's own `%`
    /// escaped so that it is not read as a format. An earlier run's frames there are an error,
    /// or removed first with `overwrite`.
    pub(crate) fn folder(
        element: &'static str,
        what: &str,
        dir: &Path,
        overwrite: bool,
    ) -> Result<Self> {
        let earlier = earlier_frames(dir);
        if !earlier.is_empty() {
            if !overwrite {
                bail!(
                    "{what} {}: the folder already holds {} frames (000000.png…) of an earlier \
                     run; -y (--overwrite) replaces them, or choose another folder",
                    dir.display(),
                    earlier.len()
                );
            }
            for f in &earlier {
                std::fs::remove_file(f)
                    .with_context(|| format!("{what} {}: cannot remove it", f.display()))?;
            }
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{what} {}: cannot create the folder", dir.display()))?;
        let pattern = dir.join("%06d.png").display().to_string();
        let escaped = pattern[..pattern.len() - "%06d.png".len()].replace('%', "%%");
        Ok(Write {
            element,
            location: format!("{escaped}%06d.png"),
            partial: None,
            segments: None,
        })
    }

    /// Files of `segment` each (splitmuxsink `element`): `DIR/STEM_00000.EXT`, … Each file is
    /// finished when the next one starts, so there is nothing to rename. A run started again
    /// goes on after the highest number there (earlier footage is never touched), or with
    /// `overwrite` removes the earlier segments and starts from 0.
    pub(crate) fn segments(element: &'static str, target: &Path, overwrite: bool) -> Result<Self> {
        let earlier = earlier_segments(target);
        // Sorted by number: the last is the highest.
        let start = match earlier.last().map(|(n, _)| n) {
            Some(_) if overwrite => {
                for (_, f) in &earlier {
                    std::fs::remove_file(f).with_context(|| {
                        format!("output {}: cannot remove {}", target.display(), f.display())
                    })?;
                }
                0
            }
            Some(last) => last + 1,
            None => 0,
        };
        create_parent(target)?;
        let (stem, ext) = stem_and_extension(target);
        let pattern = target.with_file_name(format!(
            "{}_%05d.{}",
            stem.replace('%', "%%"),
            ext.replace('%', "%%")
        ));
        let dir = target
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let location = if dir.is_empty() {
            pattern.display().to_string()
        } else {
            // The folder's own `%` are not a format either.
            format!(
                "{}/{}",
                dir.replace('%', "%%"),
                pattern.file_name().unwrap_or_default().to_string_lossy()
            )
        };
        Ok(Write {
            element,
            location,
            partial: None,
            segments: Some((start, target.to_path_buf())),
        })
    }

    /// Renames the partial file onto its target.
    pub(crate) fn commit(&self) -> Result<()> {
        if let Some((partial, target)) = &self.partial {
            std::fs::rename(partial, target).with_context(|| {
                format!("cannot move {} to {}", partial.display(), target.display())
            })?;
        }
        Ok(())
    }

    /// What a run that segmented nothing leaves: its partial file and the (empty) segments it
    /// started go; nothing of an earlier run is touched.
    pub(crate) fn discard(&self) {
        if let Some((partial, _)) = &self.partial {
            let _ = std::fs::remove_file(partial);
        }
        if let Some((start, target)) = &self.segments {
            for (_, f) in earlier_segments(target)
                .into_iter()
                .filter(|(n, _)| n >= start)
            {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// Creates the folders `target` goes in, if missing.
fn create_parent(target: &Path) -> Result<()> {
    match target.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "output {}: cannot create the folder {}",
                target.display(),
                dir.display()
            )
        }),
        None => Ok(()),
    }
}

fn stem_and_extension(target: &Path) -> (String, String) {
    let part = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().into_owned());
    (
        part(target.file_stem()).unwrap_or_default(),
        part(target.extension()).unwrap_or_default(),
    )
}

/// `dir/NAME.partial.EXT` for `dir/NAME.EXT` (`n` = 1), `NAME.partial-N.EXT` after it.
fn partial_path(target: &Path, n: u32) -> PathBuf {
    let (stem, ext) = stem_and_extension(target);
    let partial = match n {
        1 => "partial".to_string(),
        n => format!("partial-{n}"),
    };
    let name = match target.extension() {
        Some(_) => format!("{stem}.{partial}.{ext}"),
        None => format!("{stem}.{partial}"),
    };
    target.with_file_name(name)
}

/// The frames of an earlier run (six-digit PNG names) in `dir`.
fn earlier_frames(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.len() == 10
                && name.ends_with(".png")
                && name[..6].bytes().all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path())
        .collect()
}

/// The segments `STEM_NNNNN.EXT` of `target` that exist, with their numbers.
pub(crate) fn earlier_segments(target: &Path) -> Vec<(u32, PathBuf)> {
    let (stem, ext) = stem_and_extension(target);
    let dir = match target.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let number = name
                .strip_prefix(&format!("{stem}_"))?
                .strip_suffix(&format!(".{ext}"))?;
            // splitmuxsink's %05d: five digits, more past 99999.
            if number.len() < 5 || !number.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((number.parse().ok()?, target.with_file_name(&name)))
        })
        .collect();
    found.sort();
    found
}

/// Whether `a` and `b` name the same file (through links too), when both exist; otherwise
/// whether they name the same path.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => absolute(a) == absolute(b),
    }
}

fn absolute(p: &Path) -> PathBuf {
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = parent
        .and_then(|d| d.canonicalize().ok())
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .map(|c| c.join(parent.unwrap_or(Path::new(""))))
        })
        .unwrap_or_default();
    dir.join(p.file_name().unwrap_or_default())
}

/// A .mp4/.mkv/.webm writer as a gst-launch fragment taking raw video and ending in the
/// filesink `element`. Class ids (`mode=mask`) go only into a lossless .mkv (FFV1); other
/// video is H.264 4:2:0 (or VP8 for .webm), which every player opens. A live input gets a
/// fragmented MP4, so that a crash loses only the last second.
pub(crate) fn video_writer(
    path: &Path,
    element: &str,
    kbps: u32,
    mode: Mode,
    live: bool,
    size: Option<(u32, u32)>,
    segment: Option<f64>,
) -> Result<(String, &'static str)> {
    let ext = extension(&path.display().to_string());
    if mode == Mode::Mask {
        if ext != "mkv" {
            bail!(
                "output {}: class ids need a lossless output: a .mkv file (FFV1) or a folder of \
                 PNGs; .{ext} would change them",
                path.display()
            );
        }
        return Ok((
            format!("{} ! matroskamux ! filesink name={element}", lossless()?),
            "matroskamux",
        ));
    }
    if ext == "webm" {
        if gst::ElementFactory::find("vp8enc").is_none() {
            bail!(
                "output {}: vp8enc is not installed (gstreamer1.0-plugins-good)",
                path.display()
            );
        }
        return Ok((
            format!(
                "video/x-raw,format=I420 ! vp8enc deadline=1 target-bitrate={} ! webmmux name=mux \
                 ! filesink name={element}",
                kbps * 1000
            ),
            "webmmux",
        ));
    }
    let Some(factory) = first_installed(&["x264enc", "openh264enc"]) else {
        bail!(
            "output {}: no H.264 encoder installed (x264enc: gstreamer1.0-plugins-ugly)",
            path.display()
        );
    };
    let enc = match factory {
        // Live frames arrive at uneven times: without B-frames no frame is presented after
        // the track's end (mp4mux's duration follows decoding order), none is lost.
        "x264enc" if live => format!("x264enc bitrate={kbps} speed-preset=veryfast bframes=0"),
        "x264enc" => format!("x264enc bitrate={kbps} speed-preset=veryfast"),
        enc => format!("{enc} bitrate={}", kbps * 1000),
    };
    let (mux, mux_factory) = match (ext.as_str(), live) {
        ("mp4", true) => ("mp4mux fragment-duration=1000", "mp4mux"),
        ("mp4", false) => ("mp4mux", "mp4mux"),
        _ => ("matroskamux", "matroskamux"),
    };
    // 4:2:0 needs even sizes: an odd row or column is cropped away.
    let crop = match size {
        Some((w, h)) => {
            check_size(path, factory, mux_factory, w - w % 2, h - h % 2)?;
            if w % 2 == 1 || h % 2 == 1 {
                format!(
                    "videocrop right={} bottom={} ! videoconvert ! ",
                    w % 2,
                    h % 2
                )
            } else {
                String::new()
            }
        }
        None => String::new(),
    };
    if let Some(seconds) = segment {
        // splitmuxsink asks the encoder for a key frame at each split. A live recording's
        // segments are fragmented and written through as they come, as its single file is.
        let live_props = match (ext.as_str(), live) {
            ("mp4", true) => {
                " async-finalize=true sink-factory=filesink \
                 muxer-properties=\"properties,fragment-duration=(uint)1000\" \
                 sink-properties=\"properties,buffer-size=(uint)0\""
            }
            _ => "",
        };
        return Ok((
            format!(
                "{crop}video/x-raw,format=I420 ! {enc} ! h264parse ! splitmuxsink name=mux \
                 max-size-time={} send-keyframe-requests=true muxer-factory={mux_factory}\
                 {live_props}",
                (seconds * 1e9) as u64
            ),
            mux_factory,
        ));
    }
    // A live recording goes to disk as it comes (a fragment a second, even when the picture is
    // still and a second is a few bytes), so that a crash keeps all but the last second.
    let buffering = if live { " buffer-mode=unbuffered" } else { "" };
    Ok((
        format!(
            "{crop}video/x-raw,format=I420 ! {enc} ! h264parse ! {mux} name=mux ! \
             filesink name={element}{buffering}"
        ),
        mux_factory,
    ))
}

/// Fails with a clear line when the encoder `encoder` or the muxer `mux` does not take
/// `w`x`h` frames (mp4mux wants at least 16x16).
fn check_size(path: &Path, encoder: &str, mux: &str, w: u32, h: u32) -> Result<()> {
    for (factory, media) in [(encoder, "video/x-raw"), (mux, "video/x-h264")] {
        let Some(f) = gst::ElementFactory::find(factory) else {
            continue;
        };
        let mut frame = gst::Caps::builder(media)
            .field("width", w as i32)
            .field("height", h as i32);
        if media == "video/x-raw" {
            frame = frame.field("format", "I420");
        }
        let frame = frame.build();
        let sinks: Vec<gst::Caps> = f
            .static_pad_templates()
            .iter()
            .filter(|t| t.direction() == gst::PadDirection::Sink)
            .map(|t| t.caps())
            .filter(|c| c.iter().any(|s| s.name() == media))
            .collect();
        if sinks.is_empty() || sinks.iter().any(|c| c.can_intersect(&frame)) {
            continue;
        }
        let least = sinks.iter().find_map(|caps| {
            let s = caps.iter().find(|s| s.name() == media)?;
            let w = s.get::<gst::IntRange<i32>>("width").ok()?;
            let h = s.get::<gst::IntRange<i32>>("height").ok()?;
            Some(format!(" (it takes at least {}x{})", w.min(), h.min()))
        });
        bail!(
            "output {}: {factory} cannot take {w}x{h} frames{}; write a .mkv, or PNGs to a \
             folder (-o DIR/)",
            path.display(),
            least.unwrap_or_default()
        );
    }
    Ok(())
}

/// The lossless encoder for class ids.
fn lossless() -> Result<&'static str> {
    if gst::ElementFactory::find("avenc_ffv1").is_none() {
        bail!(
            "avenc_ffv1 is not installed (gstreamer1.0-libav), and class ids need a lossless codec"
        );
    }
    Ok("avenc_ffv1")
}

/// A writer for class-id masks (GRAY8) that keeps every id: PNGs in a folder, or lossless FFV1
/// in a .mkv; the fragment ends in the sink `element`.
pub(crate) fn mask_writer(
    target: &str,
    element: &'static str,
    overwrite: bool,
) -> Result<(String, Write)> {
    let path = PathBuf::from(target);
    if target.ends_with('/') || path.is_dir() {
        let write = Write::folder(element, "mask output", &path, overwrite)?;
        return Ok((format!("pngenc ! multifilesink name={element}"), write));
    }
    match extension(target).as_str() {
        "mkv" => Ok((
            format!(
                "{} ! matroskamux ! filesink name={element}",
                lossless().with_context(|| format!("mask output {target}"))?
            ),
            Write::file(element, &path, overwrite)?,
        )),
        _ => bail!(
            "mask output {target}: use a folder (ending in /) for PNGs or a .mkv file (lossless); \
             lossy video would change class ids"
        ),
    }
}
