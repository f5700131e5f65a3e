// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What `beitseg run` reads: files, URIs, RTSP cameras, V4L2 devices, images, a test pattern.

use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{anyhow, bail, Result};

pub(crate) const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

pub(crate) fn extension(s: &str) -> String {
    Path::new(s)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Quotes a value for gst-launch syntax.
pub(crate) fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The model a run uses without --model: the MediaPipe selfie segmenter beitseg ships.
pub(crate) const DEFAULT_MODEL: &str = "selfie/selfie_segmentation_landscape.onnx";

/// [`DEFAULT_MODEL`] where this command finds it: in `samples/` of the source tree it was built
/// in, or in `share/beitseg/` of the prefix it is installed under (`/usr/bin` → `/usr/share`).
pub(crate) fn default_model() -> PathBuf {
    gstbeitseg::location::data_dir().join(DEFAULT_MODEL)
}

/// The .onnx file a run's element is given: --model, else the bundled one; with --server, only
/// --model (the file only describes a model the server runs, and is optional there).
pub(crate) fn model_of(args: &crate::args::RunArgs) -> Option<PathBuf> {
    args.model
        .clone()
        .or_else(|| args.element.server.is_none().then(default_model))
}

/// What the run shows while the model loads: the file, or the model on its server.
pub(crate) fn model_label(args: &crate::args::RunArgs) -> PathBuf {
    match (&args.element.server, model_of(args)) {
        (Some(url), _) => PathBuf::from(format!(
            "{} on {}",
            args.element.server_model.clone().unwrap_or_else(|| {
                model_of(args)
                    .and_then(|m| m.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .unwrap_or_default()
            }),
            crate::secrets::masked(url)
        )),
        (None, Some(m)) => m,
        (None, None) => default_model(),
    }
}

/// What `beitseg run` reads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    Test(u32),
    Image(PathBuf),
    /// A folder of images.
    Images(PathBuf),
    File(PathBuf),
    Uri(String),
    Rtsp(String),
    V4l2(PathBuf),
}

impl Input {
    pub(crate) fn parse(s: &str, num_buffers: u32) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        if s == "test" {
            return Ok(Input::Test(num_buffers));
        }
        if ["rtsp://", "rtsps://", "rtspt://"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Ok(Input::Rtsp(s.to_string()));
        }
        if lower.starts_with("file://") {
            // A local file by another name: the same checks as a path (never overwritten by
            // its own output, probed before anything opens).
            let path = url::Url::parse(s)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| anyhow!("input {s}: not a local file URI"))?;
            return Self::parse(&path.to_string_lossy(), num_buffers);
        }
        if s.contains("://") {
            if gst::Element::make_from_uri(gst::URIType::Src, s, None).is_ok() {
                return Ok(Input::Uri(s.to_string()));
            }
            bail!("input {s}: no GStreamer source handles this URI scheme");
        }
        let path = PathBuf::from(s);
        if s.starts_with("/dev/video") {
            if !path.exists() {
                bail!("input {s}: no such video device");
            }
            return Ok(Input::V4l2(path));
        }
        if path.is_dir() {
            crate::images::images_in(&path)?;
            return Ok(Input::Images(path));
        }
        if !path.is_file() {
            bail!("input {s}: no such file");
        }
        if IMAGE_EXTENSIONS.contains(&extension(s).as_str()) {
            Ok(Input::Image(path))
        } else {
            Ok(Input::File(path))
        }
    }

    /// The input's file, if it is one.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Input::Image(p) | Input::File(p) => Some(p),
            _ => None,
        }
    }

    /// Whether frames may carry an orientation tag (photos, phone videos).
    pub(crate) fn has_orientation(&self) -> bool {
        matches!(self, Input::Image(_) | Input::File(_) | Input::Uri(_))
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self, Input::Rtsp(_) | Input::V4l2(_))
    }

    /// Input as a gst-launch fragment ending in raw video.
    pub(crate) fn launch(&self) -> String {
        match self {
            Input::Test(n) => format!(
                "videotestsrc name=in num-buffers={n} pattern=ball ! \
                 video/x-raw,width=1280,height=720,framerate=25/1"
            ),
            Input::Image(p) | Input::File(p) => format!(
                "filesrc name=in location={} ! decodebin name=dec",
                quoted(&p.display().to_string())
            ),
            // Its URI is set as a property, its credentials as the source's (see
            // crate::record), never in this text (GStreamer's debug log prints it).
            Input::Uri(_) => "uridecodebin name=dec".to_string(),
            Input::V4l2(d) => format!(
                "v4l2src name=in device={} ! decodebin name=dec",
                quoted(&d.display().to_string())
            ),
            // Photos go through their own loop (images.rs), not a description.
            Input::Images(_) => String::new(),
            // Frames come from the camera's own pipeline (see rtsp::Camera), which reconnects.
            Input::Rtsp(_) => {
                "appsrc name=camera is-live=true format=time max-buffers=25 max-bytes=0 max-time=0"
                    .into()
            }
        }
    }
}

/// Fails with a one-line reason when the server of an http(s) URL does not accept connections
/// (souphttpsrc reports only "Internal data stream error" then).
pub(crate) fn check_reachable(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|e| anyhow!("input {url}: {e}"))?;
    let host = parsed.host_str().unwrap_or("").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs = parsed
        .socket_addrs(|| None)
        .map_err(|e| anyhow!("input {url}: cannot resolve {host}: {e}"))?;
    let mut last = None;
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    bail!(
        "input {url}: cannot connect to {host}:{port}: {}",
        last.map_or("no address".to_string(), |e| e.to_string())
    )
}

/// The streams of a media file as its demuxer gives them (compressed caps), without decoding;
/// empty when it is not a media file GStreamer can read.
pub(crate) fn streams(path: &Path) -> Vec<gst::Caps> {
    use gst::prelude::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let pipeline = gst::Pipeline::new();
    let (Ok(src), Ok(parse)) = (
        gst::ElementFactory::make("filesrc")
            .property("location", path.display().to_string())
            .build(),
        gst::ElementFactory::make("parsebin").build(),
    ) else {
        return Vec::new();
    };
    if pipeline.add_many([&src, &parse]).is_err() || src.link(&parse).is_err() {
        return Vec::new();
    }
    let found: Arc<Mutex<Vec<gst::Caps>>> = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let last_pad: Arc<Mutex<Option<std::time::Instant>>> = Default::default();
    parse.connect_pad_added({
        let found = found.clone();
        let last_pad = last_pad.clone();
        move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            found.lock().unwrap_or_else(|p| p.into_inner()).push(caps);
            *last_pad.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
        }
    });
    parse.connect_no_more_pads({
        let done = done.clone();
        move |_| done.store(true, Ordering::SeqCst)
    });
    let _ = pipeline.set_state(gst::State::Paused);
    // Every stream exposed, or an error (what was found is the answer), within 5 s.
    if let Some(bus) = pipeline.bus() {
        let t0 = std::time::Instant::now();
        // A demuxer exposes its streams together: 300 ms without a new one is the end too.
        let quiet = || {
            last_pad
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some_and(|t| t.elapsed() > Duration::from_millis(300))
        };
        while !done.load(Ordering::SeqCst) && !quiet() && t0.elapsed() < Duration::from_secs(5) {
            if bus
                .timed_pop_filtered(
                    gst::ClockTime::from_mseconds(20),
                    &[gst::MessageType::Error],
                )
                .is_some()
            {
                break;
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let found = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
    found
}

/// The EXIF orientation (1 to 8) of a JPEG photo, if it has one. GStreamer 1.22's JPEG parser
/// does not turn it into an `image-orientation` tag, so `run` applies it itself.
pub(crate) fn exif_orientation(path: &Path) -> Option<u8> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(256 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    if !head.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    // The JPEG segments up to the image data: APP1 "Exif\0\0" holds a TIFF header.
    let mut at = 2;
    while at + 4 <= head.len() && head[at] == 0xff {
        let marker = head[at + 1];
        let len = u16::from_be_bytes([head[at + 2], head[at + 3]]) as usize;
        let body = head.get(at + 4..at + 2 + len)?;
        if marker == 0xe1 && body.starts_with(b"Exif\0\0") {
            return tiff_orientation(&body[6..]);
        }
        if marker == 0xda {
            break;
        }
        at += 2 + len;
    }
    None
}

/// Tag 0x0112 of a TIFF header's first directory.
fn tiff_orientation(tiff: &[u8]) -> Option<u8> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b = [*tiff.get(i)?, *tiff.get(i + 1)?];
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = [
            *tiff.get(i)?,
            *tiff.get(i + 1)?,
            *tiff.get(i + 2)?,
            *tiff.get(i + 3)?,
        ];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let dir = u32_at(4)? as usize;
    let entries = u16_at(dir)? as usize;
    (0..entries.min(256)).find_map(|e| {
        let entry = dir + 2 + e * 12;
        (u16_at(entry)? == 0x0112)
            .then(|| u16_at(entry + 8))
            .flatten()
            .and_then(|v| u8::try_from(v).ok())
            .filter(|v| (1..=8).contains(v))
    })
}

/// videoflip's `video-direction` for an EXIF orientation.
pub(crate) fn flip_for(orientation: u8) -> &'static str {
    match orientation {
        2 => "horiz",
        3 => "180",
        4 => "vert",
        5 => "ul-lr",
        6 => "90r",
        7 => "ur-ll",
        8 => "90l",
        _ => "identity",
    }
}
