// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run INPUT [-o OUTPUT]`: one gst-launch-style pipeline around the element, built from
//! what INPUT and OUTPUT are, with a progress bar for files and a status line for live sources.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use gst::prelude::*;

use crate::rtsp::{self, Camera, CameraOptions, Endpoint, Restream};

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

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn extension(s: &str) -> String {
    Path::new(s)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Quotes a value for gst-launch syntax.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples/selfie/selfie_segmentation_landscape.onnx")
}

/// What `beitseg run` reads.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Test(u32),
    Image(PathBuf),
    File(PathBuf),
    Uri(String),
    Rtsp(String),
    V4l2(PathBuf),
}

impl Input {
    fn parse(s: &str, num_buffers: u32) -> Result<Self> {
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
        if !path.is_file() {
            bail!("input {s}: no such file");
        }
        if IMAGE_EXTENSIONS.contains(&extension(s).as_str()) {
            Ok(Input::Image(path))
        } else {
            Ok(Input::File(path))
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Input::Rtsp(_) | Input::V4l2(_))
    }

    /// Input as a gst-launch fragment ending in raw video.
    fn launch(&self) -> String {
        match self {
            Input::Test(n) => format!(
                "videotestsrc num-buffers={n} pattern=ball ! \
                 video/x-raw,width=1280,height=720,framerate=25/1"
            ),
            Input::Image(p) | Input::File(p) => format!(
                "filesrc location={} ! decodebin",
                quoted(&p.display().to_string())
            ),
            Input::Uri(u) => format!("uridecodebin uri={}", quoted(u)),
            Input::V4l2(d) => format!(
                "v4l2src device={} ! decodebin",
                quoted(&d.display().to_string())
            ),
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
fn check_reachable(url: &str) -> Result<()> {
    use std::net::ToSocketAddrs;
    let lower = url.to_ascii_lowercase();
    let default_port = if lower.starts_with("https://") {
        443
    } else if lower.starts_with("http://") {
        80
    } else {
        return Ok(());
    };
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    // host, host:port, [v6] or [v6]:port
    let (host, port) = match authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
        Some((h, rest)) => (h, rest.strip_prefix(':')),
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| anyhow!("input {url}: {p:?} is not a port number"))?,
        None => default_port,
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow!("input {url}: cannot resolve {host}: {e}"))?
        .collect();
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

/// Where `beitseg run` writes.
#[derive(Debug, PartialEq, Eq)]
enum Output {
    Video(PathBuf),
    Png(PathBuf),
    Folder(PathBuf),
    Rtsp(Endpoint),
    Display,
}

impl Output {
    fn parse(s: &str) -> Result<Self> {
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
fn video_writer(path: &Path, kbps: u32) -> Result<String> {
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
    let enc = match rtsp::first_installed(&["x264enc", "openh264enc"]) {
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
fn mask_writer(target: &str) -> Result<String> {
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

struct Plan {
    description: String,
    mode: Mode,
    drop_policy: DropPolicy,
    output: Output,
    /// Where the output went, for the closing line.
    shown_as: String,
}

fn plan(args: &RunArgs, input: &Input) -> Result<Plan> {
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
    if let Some(parent) = match &output {
        Output::Video(p) | Output::Png(p) => p.parent(),
        _ => None,
    } {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            bail!(
                "output {output_arg}: folder {} does not exist",
                parent.display()
            );
        }
    }
    let sink = match &output {
        Output::Display => "videoconvert ! autovideosink".to_string(),
        Output::Png(p) => {
            if !matches!(input, Input::Image(_)) {
                bail!("output {output_arg}: a .png output needs an image input (a folder takes one PNG per frame)");
            }
            format!(
                "videoconvert ! pngenc ! filesink location={}",
                quoted(&p.display().to_string())
            )
        }
        Output::Folder(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("output {output_arg}: cannot create the folder"))?;
            format!(
                "videoconvert ! pngenc ! multifilesink location={}",
                quoted(&dir.join("%06d.png").display().to_string())
            )
        }
        Output::Video(p) => format!("videoconvert ! {}", video_writer(p, args.bitrate)?),
        Output::Rtsp(_) => format!(
            // A file is served at its own pace; a live input as fast as it comes.
            "videoconvert ! video/x-raw,format=I420 ! appsink name=restream max-buffers=5 \
             drop=true sync={}",
            !input.is_live()
        ),
    };
    let model = args.model.clone().unwrap_or_else(default_model);
    let drop_policy = args.drop_policy.unwrap_or(if input.is_live() {
        DropPolicy::Oldest
    } else {
        DropPolicy::None
    });
    // Enum properties are set on the element once it exists (run()), not spelled out here.
    let mut seg = format!(
        "beitseg name=seg model={} alpha={} workers={} batch-size={}",
        quoted(&model.display().to_string()),
        args.alpha,
        args.workers,
        args.batch_size,
    );
    if let Some(c) = &args.classes {
        seg.push_str(&format!(" classes={}", quoted(c)));
    }
    let mut description = format!("{} ! videoconvert ! {seg} ", input.launch());
    match &args.mask_output {
        // One streaming thread feeds both pads: a queue on each branch keeps either from
        // waiting on the other.
        Some(m) => description.push_str(&format!(
            "! queue ! {sink}  seg.mask ! queue ! {}",
            mask_writer(m)?
        )),
        None => description.push_str(&format!("! {sink}")),
    }
    let shown_as = match &output {
        Output::Rtsp(e) => e.client_url(),
        _ => output_arg,
    };
    Ok(Plan {
        description,
        mode,
        drop_policy,
        output,
        shown_as,
    })
}

/// "element: error (last line of the debug text)" for an error message.
pub fn error_text(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let from = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    Some(match debug.lines().last() {
        Some(l) if !l.is_empty() => format!("{from}: {} ({l})", e.error()),
        _ => format!("{from}: {}", e.error()),
    })
}

/// Progress for a file (bar with position, duration, speed, ETA) or a live source (one status
/// line); plain lines every few seconds when stderr is not a terminal.
struct Progress {
    bar: indicatif::ProgressBar,
    live: bool,
    tty: bool,
    last_line: Instant,
}

impl Progress {
    fn new(live: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = if !tty {
            indicatif::ProgressBar::hidden()
        } else if live {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} live {elapsed} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        } else {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:20} {prefix} {msg} ETA {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        };
        Progress {
            bar,
            live,
            tty,
            last_line: Instant::now(),
        }
    }

    fn update(
        &mut self,
        position: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
        stats: &gst::Structure,
    ) {
        let frames = stats.get::<u64>("frames-out").unwrap_or(0);
        let fps = stats.get::<f64>("fps").unwrap_or(0.0);
        let dropped = stats.get::<u64>("dropped").unwrap_or(0);
        let p95 = stats.get::<f64>("inference-p95-ms").unwrap_or(0.0);
        let msg = format!("{frames} frames {fps:.1} fps p95 {p95:.0} ms {dropped} dropped");
        let secs = |t: Option<gst::ClockTime>| {
            t.map_or("-".into(), |t| format!("{:.1}s", t.seconds_f64()))
        };
        if !self.live {
            if let Some(d) = duration {
                self.bar.set_length(d.mseconds());
            }
            if let Some(p) = position {
                self.bar.set_position(p.mseconds());
            }
            self.bar
                .set_prefix(format!("{} / {}", secs(position), secs(duration)));
        }
        self.bar.set_message(msg.clone());
        self.bar.tick();
        if !self.tty && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            eprintln!("{} / {}  {msg}", secs(position), secs(duration));
        }
    }

    /// A spinner with the elapsed time while the element loads the model (the state change
    /// that loads it blocks this thread); one plain line without a terminal.
    fn loading(model: &Path) -> indicatif::ProgressBar {
        let name = model.file_name().map_or_else(
            || model.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if !std::io::stderr().is_terminal() {
            eprintln!("loading {name}");
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} loading {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(name);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    fn say(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.alpha) {
        bail!("--alpha {}: must be between 0 and 1", args.alpha);
    }
    let input = Input::parse(&args.input, args.num_buffers)?;
    if let Input::Uri(url) = &input {
        check_reachable(url)?;
    }
    let plan = plan(args, &input)?;
    let drop_policy = plan.drop_policy;
    let pipeline = gst::parse::launch(&plan.description)
        .map_err(|e| anyhow!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("the description is not a pipeline"))?;
    let seg = pipeline
        .by_name("seg")
        .context("no beitseg in the pipeline")?;
    seg.set_property("mode", plan.mode);
    seg.set_property("drop-policy", drop_policy);
    seg.set_property("provider", args.provider);
    let bus = pipeline.bus().context("pipeline without a bus")?;

    let restream = match &plan.output {
        Output::Rtsp(endpoint) => {
            let restream = Restream::start(endpoint, args.bitrate)?;
            let sink = pipeline
                .by_name("restream")
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .context("no appsink for the RTSP output")?;
            let restream = Arc::new(restream);
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample({
                        let restream = restream.clone();
                        move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            restream.push(&sample);
                            Ok(gst::FlowSuccess::Ok)
                        }
                    })
                    .build(),
            );
            eprintln!("serving the segmented stream at {}", restream.url);
            Some(restream)
        }
        _ => None,
    };

    // Ctrl-C sends EOS so that the output file is finalised and playable.
    // A second Ctrl-C stops at once, whatever the pipeline is doing.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::Relaxed) {
                eprintln!("\ninterrupted twice: stopping without finishing the output");
                std::process::exit(130);
            }
        }) {
            eprintln!("warning: Ctrl-C will not finalise the output: {e}");
        }
    }
    let seconds = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v).map_err(|_| anyhow!("{flag} {v:?}: not a number of seconds"))
    };
    let stall = seconds("--stall-timeout", args.stall_timeout.max(0.5))?;
    let give_up = match args.give_up_after {
        v if v > 0.0 => Some(seconds("--give-up-after", v)?),
        _ => None,
    };
    // Outside the closure below: it is dropped only after the pipeline has stopped, so that a
    // camera thread blocked on a full input queue is released first.
    let mut camera: Option<Camera> = None;

    let model = args.model.clone().unwrap_or_else(default_model);
    let result = (|| {
        let loading = Progress::loading(&model);
        let state = pipeline.set_state(gst::State::Playing);
        loading.finish_and_clear();
        // How long the model took, from the element's message; the other messages go back on
        // the bus for the loop below (or the error report).
        let (loaded, pending): (Vec<_>, Vec<_>) = bus
            .iter_timed(gst::ClockTime::ZERO)
            .partition(|m| m.structure().is_some_and(|s| s.name() == "beitseg-loaded"));
        for m in pending {
            let _ = bus.post(m);
        }
        let load_seconds = loaded.first().and_then(|m| {
            let s = m.structure()?;
            let secs = s.get::<f64>("load-seconds").ok()?;
            let cache = s.get::<String>("graph-cache").unwrap_or_default();
            let how = match cache.as_str() {
                "reused" => " (optimised graph reused)",
                "built" => " (optimised graph saved for the next start)",
                _ => "",
            };
            eprintln!("loaded {} in {secs:.1} s{how}", model.display());
            Some(secs)
        });
        if state.is_err() {
            // The element says why on the bus (a bad model, a provider that cannot load…).
            let why = bus
                .iter_timed(gst::ClockTime::ZERO)
                .find_map(|m| error_text(&m));
            bail!(
                "{}",
                why.unwrap_or_else(|| "cannot start the pipeline".into())
            );
        }
        camera = match &input {
            Input::Rtsp(url) => {
                let target = pipeline
                    .by_name("camera")
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                    .context("no appsrc for the camera")?;
                if drop_policy == DropPolicy::Oldest {
                    // Keep up with the camera: drop the oldest frames rather than fall behind.
                    target.set_property_from_str("leaky-type", "downstream");
                } else {
                    // Every frame: a full queue holds the camera back instead.
                    target.set_block(true);
                }
                Some(Camera::new(
                    CameraOptions {
                        url: url.clone(),
                        latency_ms: args.latency,
                        transport: args.transport,
                        reconnect: args.reconnect && !args.no_reconnect,
                        stall,
                        give_up,
                    },
                    target,
                )?)
            }
            _ => None,
        };
        let started = Instant::now();
        let mut progress = Progress::new(input.is_live());
        let mut last_status = Instant::now();
        let mut eos_sent = false;
        loop {
            if interrupted.load(Ordering::Relaxed) && !eos_sent {
                progress.say(&format!("interrupted: finishing {}", plan.shown_as));
                match camera.as_mut() {
                    Some(c) => c.finish(),
                    None => {
                        pipeline.send_event(gst::event::Eos::new());
                    }
                }
                eos_sent = true;
            }
            if let Some(c) = camera.as_mut() {
                if let Err(e) = c.poll() {
                    progress.finish();
                    return Err(e);
                }
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(_) => {
                        progress.finish();
                        bail!("{}", error_text(&msg).unwrap_or_default())
                    }
                    gst::MessageView::Warning(w) => {
                        let debug = w.debug().map(|d| d.to_string()).unwrap_or_default();
                        progress.say(&format!(
                            "warning: {}",
                            debug.lines().last().unwrap_or(&w.error().to_string())
                        ));
                    }
                    _ => {}
                }
            }
            if last_status.elapsed() >= Duration::from_millis(250) {
                last_status = Instant::now();
                progress.update(
                    pipeline.query_position::<gst::ClockTime>(),
                    pipeline.query_duration::<gst::ClockTime>(),
                    &seg.property::<gst::Structure>("stats"),
                );
            }
        }
        progress.finish();
        let stats = seg.property::<gst::Structure>("stats");
        let verb = if restream.is_some() {
            "served"
        } else {
            "wrote"
        };
        let reconnects = camera
            .as_ref()
            .map(|c| {
                format!(
                    ", {} frames from the camera, {} dropped before segmentation, {} reconnections",
                    c.frames(),
                    c.dropped(),
                    c.reconnects
                )
            })
            .unwrap_or_default();
        let load = load_seconds.map_or(String::new(), |s| format!(", model loaded in {s:.1} s"));
        eprintln!(
            "{verb} {}: {} frames in {:.1} s ({} dropped{reconnects}{load})",
            plan.shown_as,
            stats.get::<u64>("frames-out").unwrap_or(0),
            started.elapsed().as_secs_f64(),
            stats.get::<u64>("dropped").unwrap_or(0),
        );
        Ok(())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    drop(camera);
    drop(restream);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_outputs() {
        gst::init().unwrap();
        assert_eq!(Input::parse("test", 5).unwrap(), Input::Test(5));
        assert_eq!(
            Input::parse("rtsp://cam/1", 0).unwrap(),
            Input::Rtsp("rtsp://cam/1".into())
        );
        assert!(matches!(
            Input::parse("https://example.com/a.mp4", 0).unwrap(),
            Input::Uri(_)
        ));
        assert!(Input::parse("/no/such/file.mp4", 0)
            .unwrap_err()
            .to_string()
            .contains("no such file"));
        assert!(Input::parse("/dev/video99", 0)
            .unwrap_err()
            .to_string()
            .contains("no such video device"));
        assert!(Input::parse("nosuchscheme://x", 0).is_err());
        assert_eq!(Output::parse("display").unwrap(), Output::Display);
        assert!(matches!(
            Output::parse("a/b.MP4").unwrap(),
            Output::Video(_)
        ));
        assert!(matches!(
            Output::parse("masks/").unwrap(),
            Output::Folder(_)
        ));
        assert!(matches!(
            Output::parse("rtsp://0.0.0.0:8554/seg").unwrap(),
            Output::Rtsp(_)
        ));
        assert!(Output::parse("x.avi").is_err());
        assert!(mask_writer("m.mp4").is_err());
    }
}
