// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run`'s arguments.

use std::path::PathBuf;

use clap::ValueEnum;
// The element's own enums: the same names on the command line as in gst-launch.
use gstbeitseg::{DropPolicy, Mode, ProviderSetting};

/// How an RTSP camera is reached (rtspsrc's `protocols`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// UDP first, then TCP.
    Auto,
    Tcp,
    Udp,
}

impl Transport {
    /// rtspsrc's `protocols` for this transport.
    pub fn protocols(self) -> &'static str {
        match self {
            Transport::Auto => "tcp+udp+udp-mcast",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// What to segment: a video or image file, a URI (file://, http(s)://), an RTSP camera
    /// (rtsp://…), a V4L2 device (/dev/video0), or `test` for a test pattern.
    pub input: String,
    /// Where the result goes: a .mp4, .mkv or .webm file; a .png (image input); a folder (one
    /// PNG per frame, class-id masks unless --mode says otherwise); rtsp://HOST:PORT/PATH to serve
    /// it; or `display`. Default: out/<input name>-seg.mp4 (.png for an image).
    #[arg(short, long)]
    pub output: Option<String>,
    /// The ONNX model (default: the bundled MediaPipe person segmenter).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// What the video output shows (default: overlay; mask for a folder output).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Overlay opacity, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Class ids or names to draw, comma-separated (default: all).
    #[arg(long)]
    pub classes: Option<String>,
    /// Also write the class-id masks of the same inference: a folder (one PNG per frame) or a
    /// .mkv file (lossless FFV1).
    #[arg(long)]
    pub mask_output: Option<String>,
    /// Execution provider.
    #[arg(long, value_enum, default_value_t = ProviderSetting::Auto)]
    pub provider: ProviderSetting,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: u32,
    /// Frames per model run.
    #[arg(long, default_value_t = 1)]
    pub batch_size: u32,
    /// What to do when segmentation falls behind (default: none for files, oldest for live input).
    #[arg(long, value_enum)]
    pub drop_policy: Option<DropPolicy>,
    /// Video bitrate of encoded outputs (.mp4, .mkv, .webm, RTSP), in kbit/s.
    #[arg(long, default_value_t = 4000)]
    pub bitrate: u32,
    /// Frames of the `test` input.
    #[arg(long, default_value_t = 150)]
    pub num_buffers: u32,
    /// RTSP input: jitter buffer latency in ms.
    #[arg(long, default_value_t = 200)]
    pub latency: u32,
    /// RTSP input: transport (auto tries UDP, then TCP).
    #[arg(long, value_enum, default_value_t = Transport::Auto)]
    pub transport: Transport,
    /// RTSP input: reconnect with backoff when the camera drops, stalls or does not answer
    /// (`--reconnect false` or `--no-reconnect`: stop at the first failure).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub reconnect: bool,
    /// Same as `--reconnect false`.
    #[arg(long)]
    pub no_reconnect: bool,
    /// RTSP input: seconds without a frame before the camera counts as lost.
    #[arg(long, default_value_t = 5.0)]
    pub stall_timeout: f64,
    /// RTSP input: give up (error) after this many seconds without the camera; 0: never.
    #[arg(long, default_value_t = 0.0)]
    pub give_up_after: f64,
}
