// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg`: segment a video, an image, a URI or a test pattern with the beitseg element, or
//! describe a model. The element is registered statically, so no GST_PLUGIN_PATH is needed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gst::prelude::*;

#[derive(Parser)]
#[command(
    version,
    about = "Real-time semantic segmentation with the beitseg GStreamer element"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segment INPUT and write (or show) the result.
    Run(RunArgs),
    /// Describe a model: input, output, classes, preprocessing, and the provider it would run on.
    Inspect {
        /// The .onnx file.
        model: PathBuf,
        /// Execution provider to try (auto, tensorrt, cuda, cpu).
        #[arg(long, default_value = "auto")]
        provider: String,
    },
    /// Measure parts of beitseg.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Time the CPU stages around the model (preprocessing, decoding, rendering) at 1080p on one
    /// core, each beside a plain reference implementation.
    Kernels {
        /// One JSON object per stage and line instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the stages whose name contains this.
        #[arg(long)]
        stage: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Overlay,
    Color,
    Mask,
}

#[derive(clap::Args)]
struct RunArgs {
    /// A video or image file, a URI (file://, http(s)://, rtsp://…), or `test` for a test pattern.
    input: String,
    /// Where to write: a .mp4, .mkv or .webm file, a .png (image input), or `display`.
    /// Default: out/<input name>-seg.mp4 (or .png for an image).
    #[arg(short, long)]
    output: Option<String>,
    /// The ONNX model (default: the bundled MediaPipe person segmenter).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Mode::Overlay)]
    mode: Mode,
    /// Overlay opacity, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Class ids or names to draw, comma-separated (default: all).
    #[arg(long)]
    classes: Option<String>,
    /// Execution provider: auto, tensorrt, cuda or cpu.
    #[arg(long, default_value = "auto")]
    provider: String,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: u32,
    /// Frames per model run.
    #[arg(long, default_value_t = 1)]
    batch_size: u32,
    /// Frames of the `test` input.
    #[arg(long, default_value_t = 150)]
    num_buffers: u32,
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

/// The first of `names` that is installed.
fn first_installed<'a>(names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|n| gst::ElementFactory::find(n).is_some())
}

fn pipeline_description(args: &RunArgs) -> Result<(String, String)> {
    let image_input = IMAGE_EXTENSIONS.contains(&extension(&args.input).as_str());
    let source = if args.input == "test" {
        format!(
            "videotestsrc num-buffers={} pattern=ball ! video/x-raw,width=1280,height=720,framerate=25/1",
            args.num_buffers
        )
    } else if args.input.contains("://") {
        format!("uridecodebin uri={}", quoted(&args.input))
    } else {
        let path = Path::new(&args.input);
        if !path.is_file() {
            bail!("input {}: no such file", args.input);
        }
        format!("filesrc location={} ! decodebin", quoted(&args.input))
    };
    let output = match &args.output {
        Some(o) => o.clone(),
        None => {
            let stem = Path::new(&args.input)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("output")
                .to_string();
            std::fs::create_dir_all("out").context("cannot create out/")?;
            format!("out/{stem}-seg.{}", if image_input { "png" } else { "mp4" })
        }
    };
    let sink = match (output.as_str(), extension(&output).as_str()) {
        ("display", _) => "autovideosink".to_string(),
        (_, "png") => {
            if !image_input {
                bail!("output {output}: a .png output needs an image input");
            }
            format!("pngenc ! filesink location={}", quoted(&output))
        }
        (_, ext @ ("mp4" | "mkv")) => {
            let enc = first_installed(&["x264enc", "openh264enc", "avenc_h264_omx"]).ok_or_else(
                || {
                    anyhow!(
                        "output {output}: no H.264 encoder installed (gstreamer1.0-plugins-ugly)"
                    )
                },
            )?;
            let mux = if ext == "mp4" {
                "mp4mux"
            } else {
                "matroskamux"
            };
            format!(
                "{enc} ! h264parse ! {mux} ! filesink location={}",
                quoted(&output)
            )
        }
        (_, "webm") => format!(
            "vp8enc deadline=1 ! webmmux ! filesink location={}",
            quoted(&output)
        ),
        _ => bail!("output {output}: use a .mp4, .mkv, .webm or .png file, or `display`"),
    };
    let mode = match args.mode {
        Mode::Overlay => "overlay",
        Mode::Color => "color",
        Mode::Mask => "mask",
    };
    let model = args.model.clone().unwrap_or_else(default_model);
    let mut seg = format!(
        "beitseg name=seg model={} mode={mode} alpha={} provider={} workers={} batch-size={}",
        quoted(&model.display().to_string()),
        args.alpha,
        args.provider,
        args.workers,
        args.batch_size
    );
    if let Some(c) = &args.classes {
        seg.push_str(&format!(" classes={}", quoted(c)));
    }
    Ok((
        format!("{source} ! videoconvert ! {seg} ! videoconvert ! {sink}"),
        output,
    ))
}

/// "element: error, last line of the debug text" for an error message.
fn error_text(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let from = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    Some(format!(
        "{from}: {} {}",
        e.error(),
        debug.lines().last().unwrap_or("")
    ))
}

fn run(args: &RunArgs) -> Result<()> {
    let (description, output) = pipeline_description(args)?;
    let pipeline =
        gst::parse::launch(&description).map_err(|e| anyhow!("cannot build the pipeline: {e}"))?;
    let seg = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("seg"))
        .context("no beitseg in the pipeline")?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    // Ctrl-C sends EOS so that the file is finalised and playable.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        if let Err(e) =
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed))
        {
            eprintln!("warning: Ctrl-C will not finalise the output: {e}");
        }
    }
    let result = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The element says why on the bus (a bad model, a provider that cannot load…).
            let why = bus
                .iter_timed(gst::ClockTime::ZERO)
                .find_map(|m| error_text(&m));
            bail!(
                "{}",
                why.unwrap_or_else(|| "cannot start the pipeline".into())
            );
        }
        let started = Instant::now();
        let mut last_status = Instant::now();
        let mut eos_sent = false;
        loop {
            if interrupted.load(std::sync::atomic::Ordering::Relaxed) && !eos_sent {
                eprintln!("\ninterrupted: finishing {output}");
                pipeline.send_event(gst::event::Eos::new());
                eos_sent = true;
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(_) => bail!("{}", error_text(&msg).unwrap_or_default()),
                    gst::MessageView::Warning(w) => {
                        let debug = w.debug().map(|d| d.to_string()).unwrap_or_default();
                        eprintln!(
                            "warning: {}",
                            debug.lines().last().unwrap_or(&w.error().to_string())
                        );
                    }
                    _ => {}
                }
            }
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                let stats = seg.property::<gst::Structure>("stats");
                let position = pipeline.query_position::<gst::ClockTime>();
                let duration = pipeline.query_duration::<gst::ClockTime>();
                eprint!(
                    "\r{} / {}  {} frames  {:.1} frames/s  {} dropped  ",
                    position.map_or("-".into(), |p| format!("{:.1}s", p.seconds_f64())),
                    duration.map_or("-".into(), |d| format!("{:.1}s", d.seconds_f64())),
                    stats.get::<u64>("frames-out").unwrap_or(0),
                    stats.get::<f64>("fps").unwrap_or(0.0),
                    stats.get::<u64>("dropped").unwrap_or(0),
                );
            }
        }
        let stats = seg.property::<gst::Structure>("stats");
        eprintln!(
            "\nwrote {output}: {} frames in {:.1} s",
            stats.get::<u64>("frames-out").unwrap_or(0),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn inspect(model: &Path, provider: &str) -> Result<()> {
    use gstbeitseg::provider::{Provider, ProviderRequest};
    let provider = match provider {
        "auto" => Provider::Auto,
        "tensorrt" => Provider::TensorRt,
        "cuda" => Provider::Cuda,
        "cpu" => Provider::Cpu,
        other => bail!("unknown provider {other:?} (auto, tensorrt, cuda, cpu)"),
    };
    let overrides = gstbeitseg::model::Overrides {
        provider: ProviderRequest {
            provider,
            ..Default::default()
        },
        ..Default::default()
    };
    let m = gstbeitseg::model::Model::load(model, &overrides)?;
    let i = m.info();
    println!("model        {}", i.path.display());
    println!(
        "input        {} {:?} {:?} {}x{} batch {}",
        i.input_name,
        i.layout,
        i.input_precision,
        i.width,
        i.height,
        i.batch.map_or("dynamic".to_string(), |b| b.to_string())
    );
    println!(
        "output       {} {:?} {:?}",
        i.output_name, i.output_precision, i.output_kind
    );
    println!(
        "classes      {}: {}",
        i.num_classes,
        i.labels
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
            + if i.num_classes > 12 { ", …" } else { "" }
    );
    let p = &i.preprocessing;
    println!(
        "preprocess   resize {:?} ({:?}), ×{:.6}, mean {:?}, std {:?}",
        p.resize, p.resample, p.rescale, p.mean, p.std
    );
    println!(
        "provider     {}{}",
        i.provider.name(),
        if i.provider_notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.provider_notes.join("; "))
        }
    );
    println!(
        "onnxruntime  {}",
        gstbeitseg::runtime::version().unwrap_or("?")
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = gst::init()
        .map_err(|e| anyhow!("cannot initialise GStreamer: {e}"))
        .and_then(|()| {
            gstbeitseg::plugin_register_static()
                .map_err(|e| anyhow!("cannot register beitseg: {e}"))
        })
        .and_then(|()| match &cli.command {
            Command::Run(args) => run(args),
            Command::Inspect { model, provider } => inspect(model, provider),
            Command::Bench {
                what: BenchWhat::Kernels { json, stage },
            } => gstbeitseg::bench::kernels(*json, stage.as_deref()).map(drop),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
