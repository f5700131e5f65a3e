// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The pipeline `beitseg run` builds from its input, output and options, checked before
//! anything is opened.

use std::path::Path;

use anyhow::{bail, Context, Result};
use gstbeitseg::{DropPolicy, Mode};

use crate::args::RunArgs;
use crate::input::{quoted, Input};
use crate::output::{mask_writer, same_file, video_writer, Output, Write};

/// Class-id frames the mask branch may hold while the video branch's encoder fills up.
const MASK_QUEUE_FRAMES: u32 = 256;

pub(crate) struct Plan {
    pub(crate) description: String,
    pub(crate) mode: Mode,
    pub(crate) drop_policy: DropPolicy,
    pub(crate) output: Output,
    /// Where the output went, for the closing line.
    pub(crate) shown_as: String,
    /// The files and folders the sinks write, with their `location`s.
    pub(crate) writes: Vec<Write>,
    /// How the input's audio reaches the output (None: no audio kept).
    pub(crate) audio: Option<crate::audio::Audio>,
}

/// `size`: the input's frame size when known before it plays (files).
pub(crate) fn plan(args: &RunArgs, input: &Input, size: Option<(u32, u32)>) -> Result<Plan> {
    let output_arg = match &args.output {
        Some(o) => o.clone(),
        None => {
            let stem = Path::new(&args.input)
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("output")
                .to_string();
            std::fs::create_dir_all("out").context("cannot create out/")?;
            let ext = if matches!(input, Input::Image(_)) {
                "png"
            } else {
                "mp4"
            };
            format!("out/{stem}-seg.{ext}")
        }
    };
    let output = Output::parse(&output_arg)?;
    let mode = args.mode.unwrap_or(match output {
        Output::Folder(_) => Mode::Mask,
        _ => Mode::Overlay,
    });
    if let Output::Video(p) | Output::Png(p) = &output {
        if let Some(source) = input.path() {
            if same_file(source, p) {
                bail!("output {output_arg}: that is the input; write the result to another file");
            }
        }
    }
    if let (Some(m), Output::Video(p) | Output::Png(p) | Output::Folder(p)) =
        (&args.mask_output, &output)
    {
        if same_file(Path::new(m), p) {
            bail!(
                "--mask-output {m}: the same as -o; give the masks a file or folder of their own"
            );
        }
    }
    if let (Some(m), Some(source)) = (&args.mask_output, input.path()) {
        if same_file(source, Path::new(m)) {
            bail!("--mask-output {m}: that is the input; write the masks somewhere else");
        }
    }
    if mode == Mode::Mask && matches!(output, Output::Rtsp(_)) {
        bail!("output {output_arg}: an RTSP stream is H.264, which would change class ids; use --mode overlay or color, or --mask-output FOLDER/");
    }
    if let Some(t) = args.segment_time {
        if !(t > 0.0 && t.is_finite()) {
            bail!("--segment-time {t}: must be a positive number of seconds");
        }
        if !matches!(output, Output::Video(_)) || mode == Mode::Mask {
            bail!("--segment-time: splits .mp4, .mkv and .webm video outputs only");
        }
    }
    if !matches!(output, Output::Rtsp(_))
        && (args.access.rtsp_user.is_some() || args.access.rtsp_password_file.is_some())
    {
        bail!("--rtsp-user and --rtsp-password-file protect an rtsp:// output, not {output_arg}");
    }
    if let Output::Rtsp(endpoint) = &output {
        if let Input::Rtsp(url) = input {
            if endpoint.serves(url) {
                bail!(
                    "output {output_arg}: that is the input's own address; beitseg would read \
                     its own output"
                );
            }
        }
    }
    if output == Output::Display
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        bail!(
            "output display: no display to show it on (neither DISPLAY nor WAYLAND_DISPLAY is \
             set); write a file (-o seg.mp4) or serve it (-o rtsp://0.0.0.0:8554/seg)"
        );
    }
    let mut writes = Vec::new();
    let mut audio = None;
    let sink = match &output {
        Output::Display => "videoconvert ! autovideosink".to_string(),
        Output::Png(p) => {
            if !matches!(input, Input::Image(_)) {
                bail!("output {output_arg}: a .png output needs an image input (a folder takes one PNG per frame)");
            }
            writes.push(Write::file("out", p, args.overwrite)?);
            "videoconvert ! pngenc ! filesink name=out".to_string()
        }
        Output::Folder(dir) => {
            writes.push(Write::folder("out", "output", dir, args.overwrite)?);
            "videoconvert ! pngenc ! multifilesink name=out".to_string()
        }
        Output::Video(p) => {
            let (writer, mux) = video_writer(
                p,
                "out",
                args.bitrate,
                mode,
                input.is_live(),
                size,
                args.segment_time,
            )?;
            writes.push(match args.segment_time {
                Some(_) => Write::segments("mux", p, args.overwrite)?,
                None => Write::file("out", p, args.overwrite)?,
            });
            // A preview of N frames leaves the audio out (where N frames end in the audio is
            // not known before they are decoded); `--duration` cuts both at the same time.
            if !args.no_audio && mode != Mode::Mask && args.frames.is_none() {
                audio = crate::audio::branch(input, mux, &output_arg)?;
            }
            format!("videoconvert ! {writer}")
        }
        Output::Rtsp(_) => format!(
            // A file is served at its own pace; a live input as fast as it comes.
            "videoconvert ! video/x-raw,format=I420 ! appsink name=restream max-buffers=5 \
             drop=true sync={}",
            !input.is_live()
        ),
    };
    let drop_policy = args.drop_policy.unwrap_or(if input.is_live() {
        DropPolicy::Oldest
    } else {
        DropPolicy::None
    });
    // Properties are set on the element once it exists (run()), checked against its ranges.
    let seg = match crate::input::model_of(args) {
        Some(model) => format!(
            "beitseg name=seg model={}",
            quoted(&model.display().to_string())
        ),
        None => "beitseg name=seg".to_string(),
    };
    // Photos: their EXIF orientation (GStreamer 1.22 reads none); videos: the orientation tag
    // their demuxer gives (phone videos), which videoflip follows.
    let orient = match input {
        _ if args.no_orientation || !input.has_orientation() => String::new(),
        Input::Image(p) => match crate::input::exif_orientation(p) {
            Some(o) if o != 1 => {
                format!(
                    "videoconvert ! videoflip video-direction={} ! ",
                    crate::input::flip_for(o)
                )
            }
            _ => String::new(),
        },
        _ => "videoconvert ! videoflip video-direction=auto ! ".to_string(),
    };
    // A recording or a stream keeps the size of its first frames: frames of another size (a
    // camera that changes resolution) are scaled to it, borders keeping their shape, since an
    // encoder and muxer cannot change size mid-file (see keep_first_size).
    let steady = match output {
        Output::Video(_) | Output::Rtsp(_) => "videoscale ! capsfilter name=steady ! ",
        _ => "",
    };
    let mut description = format!("{} ! {orient}videoconvert ! {steady}{seg} ", input.launch());
    match &args.mask_output {
        // One streaming thread feeds both pads: a queue on each branch keeps either from
        // waiting on the other. The mask's queue holds frames, not a second: while its sink sits
        // prerolled, the video encoder must still get the frames it holds before its first
        // output (x264enc: lookahead plus one per thread, a hundred on a big machine), or neither
        // sink ever prerolls — at 12 frames/s a one-second queue is 12 frames.
        Some(m) => {
            let (writer, write) = mask_writer(m, "mask_out", args.overwrite)?;
            writes.push(write);
            description.push_str(&format!(
                "! queue ! {sink}  seg.mask ! queue max-size-buffers={MASK_QUEUE_FRAMES} \
                 max-size-time=0 max-size-bytes=0 ! {writer}"
            ))
        }
        None => description.push_str(&format!("! {sink}")),
    }
    if let Some(a) = &audio {
        description.push_str(&format!("  {}", a.branch));
    }
    let shown_as = match (&output, args.segment_time) {
        (Output::Rtsp(e), _) => e.client_url(),
        (Output::Video(p), Some(t)) => format!(
            "{} in {t} s files",
            p.with_file_name(format!(
                "{}_*.{}",
                p.file_stem().unwrap_or_default().to_string_lossy(),
                p.extension().unwrap_or_default().to_string_lossy()
            ))
            .display()
        ),
        _ => output_arg,
    };
    Ok(Plan {
        description,
        mode,
        drop_policy,
        output,
        shown_as,
        writes,
        audio,
    })
}

/// Makes the capsfilter `steady` (after a videoscale) hold the size and pixel aspect ratio of
/// the first frames that reach it, so that later frames of another size are scaled to them.
pub(crate) fn keep_first_size(steady: &gst::Element) {
    use gst::prelude::*;
    let Some(pad) = steady.static_pad("sink") else {
        return;
    };
    let filter = steady.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(c) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(s) = c.caps().structure(0) else {
            return gst::PadProbeReturn::Ok;
        };
        let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) else {
            return gst::PadProbeReturn::Ok;
        };
        let par = s
            .get::<gst::Fraction>("pixel-aspect-ratio")
            .unwrap_or(gst::Fraction::new(1, 1));
        if let Some(filter) = filter.upgrade() {
            let caps = gst::Caps::builder("video/x-raw")
                .field("width", w)
                .field("height", h)
                .field("pixel-aspect-ratio", par)
                .build();
            filter.set_property("caps", caps);
        }
        // Once: the first size is the recording's.
        gst::PadProbeReturn::Remove
    });
}
