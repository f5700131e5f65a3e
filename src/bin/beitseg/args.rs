// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run`'s arguments.

use std::path::PathBuf;

use clap::ValueEnum;
// The element's own enums: the same names on the command line as in gst-launch.
use gstbeitseg::{DropPolicy, Mode, ProviderSetting, ResizeSetting};

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

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// What to segment: a video or image file, a folder of images, a URI (file://,
    /// http(s)://), an RTSP camera (rtsp://…), a V4L2 device (/dev/video0), or `test` for a test
    /// pattern. `${NAME}` is replaced by the environment variable NAME, so that a camera's
    /// password need not be on the command line: 'rtsp://admin:${CAM_PASSWORD}@cam/stream'.
    #[arg(required_unless_present_any = ["input_file", "config"], default_value = "")]
    pub input: String,
    /// More inputs, segmented at the same time in this process with one model: their frames
    /// share the workers' batches. With several inputs, -o names a folder (ending in /) that
    /// gets one output per input, named after it (file name, or host_port_path for a camera).
    #[arg(value_name = "MORE_INPUTS")]
    pub more_inputs: Vec<String>,
    /// Read INPUT from the first line of this file (chmod 600: it may hold a password).
    #[arg(long, value_name = "FILE", conflicts_with = "input")]
    pub input_file: Option<PathBuf>,
    /// Inputs, outputs and options from a TOML file: top-level keys are options for every
    /// input (any `run` option without its dashes), each [[input]] table one input with its
    /// own `input`, `output` and options. `${NAME}` in a value is the environment variable NAME.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "input_file"])]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (PORT alone: 127.0.0.1:PORT).
    #[arg(long, value_name = "[HOST:]PORT")]
    pub metrics: Option<String>,
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
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
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
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub stall_timeout: f64,
    /// RTSP input: give up (error) after this many seconds without the camera; 0: never.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub give_up_after: f64,
    /// Stop after this many frames (a quick preview).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Stop after this many seconds of the input (a quick preview).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Split a video output into files of this many seconds (NAME_00000.mp4, NAME_00001.mp4…),
    /// each complete and playable on its own, as camera recorders do. A run started again
    /// (a restarted service) goes on after the highest number there; earlier files stay.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub segment_time: Option<f64>,
    /// Replace what an earlier run wrote: an existing output file, the frames of a folder,
    /// the segments of a --segment-time output (all of them, before the first new one).
    #[arg(short = 'y', long, conflicts_with = "no_overwrite")]
    pub overwrite: bool,
    /// Never replace anything an earlier run wrote (the default): an existing output file or
    /// folder of frames is an error, and segments go on after the highest number.
    #[arg(short = 'n', long)]
    pub no_overwrite: bool,
    /// Leave the input's audio out (by default its first audio stream is kept).
    #[arg(long)]
    pub no_audio: bool,
    /// An rtsps:// camera: a certificate authority (PEM) to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Refuse input frames larger than WIDTHxHEIGHT (in either orientation), checked before
    /// they are decoded: a camera or server cannot make the process allocate without bound.
    /// `none`: no limit.
    #[arg(long, value_name = "WxH", default_value = crate::limits::MaxResolution::DEFAULT)]
    pub max_resolution: crate::limits::MaxResolution,
    /// Keep the frames' orientation as stored (by default an image's or video's orientation tag
    /// is applied).
    #[arg(long)]
    pub no_orientation: bool,
    #[command(flatten)]
    pub element: ElementArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// How a served stream's clients authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RtspAuth {
    #[default]
    Basic,
    Digest,
}

/// Who may watch an RTSP output (`-o rtsp://…` or `rtsps://…`, `beitseg serve`).
#[derive(clap::Args, Default, Clone)]
pub struct AccessArgs {
    /// RTSP output: the user clients must log in as.
    #[arg(long, value_name = "NAME")]
    pub rtsp_user: Option<String>,
    /// RTSP output: a file whose first line is that user's password (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub rtsp_password_file: Option<PathBuf>,
    /// RTSP output: basic or digest authentication.
    #[arg(long, value_enum, default_value_t = RtspAuth::Basic)]
    pub rtsp_auth: RtspAuth,
    /// rtsps:// output: the server's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// rtsps:// output: the certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// The element's other properties, under their own names (`gst-inspect-1.0 beitseg`). Each is
/// checked against the element's own range before anything is opened.
#[derive(clap::Args, Default, Clone)]
pub struct ElementArgs {
    /// How frames are fitted to the model input.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeSetting>,
    /// File overriding the model's class names (one per line, or id2label JSON).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// File overriding the class colours (R,G,B or #rrggbb per line, or a JSON list).
    #[arg(long)]
    pub palette: Option<PathBuf>,
    /// Run the model on every N-th frame and reuse its class map in between.
    #[arg(long)]
    pub interval: Option<u32>,
    /// Steadier video: weight of the past in an average of each frame's logits with the
    /// previous frames' (0 off, up to 0.99; 0.5 settles flicker, a real change wins in 2 frames).
    #[arg(long, value_name = "0..0.99")]
    pub smoothing: Option<f64>,
    /// ONNX Runtime threads per worker (0: the cores shared out between workers).
    #[arg(long)]
    pub intra_threads: Option<u32>,
    /// CUDA device for the tensorrt and cuda providers.
    #[arg(long)]
    pub device_id: Option<u32>,
    /// Frames queued or in flight before the element holds the input back (0: twice the
    /// workers).
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Milliseconds a worker waits to fill a batch.
    #[arg(long)]
    pub batch_timeout: Option<u32>,
    /// Folder for TensorRT engines.
    #[arg(long)]
    pub engine_cache: Option<PathBuf>,
    /// Folder for ONNX Runtime's optimised graphs ("off": optimise at every start).
    #[arg(long)]
    pub graph_cache: Option<String>,
    /// Run the model on an Open Inference Protocol (KServe v2) server, grpc://HOST:PORT or
    /// grpcs://HOST:PORT (TLS)
    /// (Triton, KServe, MLServer, OpenVINO Model Server); --model, if given, only describes it.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The model's name on the server (default: the --model file's name without .onnx).
    #[arg(long, value_name = "NAME")]
    pub server_model: Option<String>,
    /// The model version on the server (default: the server's choice).
    #[arg(long, value_name = "VERSION")]
    pub server_model_version: Option<String>,
    /// Milliseconds a request to the server may take.
    #[arg(long, value_name = "MS")]
    pub server_timeout: Option<u32>,
    /// Seconds a server that is down or overloaded is retried before the run fails.
    #[arg(long, value_name = "SECONDS")]
    pub server_give_up: Option<u32>,
    /// grpcs:// servers: a certificate authority (PEM) to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    pub server_ca: Option<PathBuf>,
}
