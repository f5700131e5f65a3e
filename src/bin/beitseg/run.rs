// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run INPUT [-o OUTPUT]`: one gst-launch-style pipeline around the element, built from
//! what INPUT and OUTPUT are, with a progress bar for files and a status line for live sources.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;

use crate::args::RunArgs;
use crate::camera::{Camera, CameraOptions};
use crate::input::{check_reachable, default_model, Input};
use crate::options::{check_args, configure, limit};
use crate::output::Output;
use crate::plan::plan;
use crate::progress::Progress;
use crate::server::Restream;

use gstbeitseg::DropPolicy;

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

/// A pipeline from gst-launch syntax; `what` names it in the error ("the camera pipeline").
pub fn launch(description: &str, what: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(description)
        .map_err(|e| anyhow!("cannot build {what}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("{what} is not a pipeline"))
}

/// What the signal handler may touch: whether models are still loading, and the partial
/// files to remove when it stops the process at once.
#[derive(Default)]
pub struct Shutdown {
    interrupted: AtomicBool,
    /// Inputs whose model is loading, and inputs segmenting.
    loading: AtomicUsize,
    running: AtomicUsize,
    partials: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl Shutdown {
    /// Ctrl-C or SIGTERM sends EOS into every input, so that the outputs are finalised and
    /// playable. While the model loads (nothing segmented yet), or at a second signal, the run
    /// stops at once and its partial files go.
    pub fn install() -> Arc<Self> {
        let shutdown = Arc::new(Shutdown::default());
        let handler = shutdown.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            let again = handler.interrupted.swap(true, Ordering::SeqCst);
            let loading = handler.loading.load(Ordering::SeqCst) > 0
                && handler.running.load(Ordering::SeqCst) == 0;
            if again || loading {
                handler.remove_partials();
                eprintln!(
                    "\n{}: stopped, nothing written",
                    if again {
                        "interrupted twice"
                    } else {
                        "interrupted while loading the model"
                    }
                );
                std::process::exit(130);
            }
        }) {
            eprintln!("warning: Ctrl-C will not finalise the output: {e}");
        }
        shutdown
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn remove_partials(&self) {
        for p in self
            .partials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An error message of the run's pipeline as one line a person can act on, saying what it is
/// about (the input, the model and options, or the output) instead of which element failed.
/// The names of the elements that read the input (see Input::launch).
const INPUT_ELEMENTS: [&str; 3] = ["in", "dec", "camera"];

fn explain(
    msg: &gst::Message,
    pipeline: &gst::Pipeline,
    args: &RunArgs,
    shown_as: &str,
) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let detail = debug.lines().last().unwrap_or("").trim().to_string();
    let error = e.error().to_string();
    let from = e.src().cloned();
    let seg = pipeline.by_name("seg")?;
    if from.as_ref() == Some(seg.upcast_ref()) {
        // The element's own text names the setting or file at fault.
        let text = if detail.is_empty() { error } else { detail };
        if let Some(rest) = text.strip_prefix("classes property: ") {
            let model = args.model.clone().unwrap_or_else(default_model);
            return Some(format!(
                "--classes {}: {rest} (`beitseg inspect {}` lists the classes)",
                args.classes.as_deref().unwrap_or(""),
                model.display()
            ));
        }
        return Some(text);
    }
    // The input's elements are named (see Input::launch); decoders live inside `dec`.
    let mut ancestor = from;
    while let Some(obj) = ancestor {
        if INPUT_ELEMENTS.contains(&obj.name().as_str()) {
            let why = if error.contains("Could not determine type of stream") {
                "not a video or image file".to_string()
            } else if debug.contains("reason not-linked") {
                "no video stream in it".to_string()
            } else if detail.is_empty() || detail == error || detail.contains(".c(") {
                error
            } else {
                format!("{error} ({detail})")
            };
            return Some(format!("input {}: {why}", args.input));
        }
        ancestor = obj.parent();
    }
    Some(format!("output {shown_as}: {error}"))
}

/// What the inputs of one `beitseg run` share: signal handling, the progress lines, the worker
/// pool and the metrics.
pub struct RunContext {
    pub shutdown: Arc<Shutdown>,
    /// One line per input when there are several.
    pub lines: Option<indicatif::MultiProgress>,
    /// The element's `pool`: inputs with the same model and settings share their workers.
    pub pool: Option<String>,
    pub metrics: Option<Arc<crate::metrics::Registry>>,
}

pub fn run(args: &RunArgs) -> Result<()> {
    if args.config.is_some() || !args.more_inputs.is_empty() {
        return crate::many::run(args);
    }
    let metrics = crate::metrics::Endpoint::start(args.metrics.as_deref())?;
    let context = RunContext {
        shutdown: Shutdown::install(),
        lines: None,
        pool: None,
        metrics: metrics.as_ref().map(|m| m.registry.clone()),
    };
    run_one(args, &context)
}

/// Segments one input into its output, until it ends, fails or the run is interrupted.
pub fn run_one(args: &RunArgs, ctx: &RunContext) -> Result<()> {
    // The input with its secrets filled in (from the environment or a file), used from here on.
    let args = &RunArgs {
        input: crate::secrets::resolve_input(args)?,
        ..args.clone()
    };
    let input = Input::parse(&args.input, args.num_buffers)?;
    if let Input::Images(dir) = &input {
        return crate::images::run_folder(args, dir);
    }
    check_args(args)?;
    if let Input::Uri(url) = &input {
        check_reachable(url)?;
    }
    let mut size = None;
    if let Some(path) = input.path() {
        // Before the model loads and before any output is opened.
        let streams = crate::input::streams(path);
        size = streams.iter().find_map(|c| {
            let s = c.structure(0)?;
            Some((
                s.get::<i32>("width").ok()? as u32,
                s.get::<i32>("height").ok()? as u32,
            ))
        });
        if streams.is_empty() {
            bail!("input {}: not a video or image file", args.input);
        }
        if !streams.iter().any(|c| {
            c.structure(0)
                .is_some_and(|s| s.name().starts_with("video/") || s.name().starts_with("image/"))
        }) {
            bail!("input {}: no video stream in it", args.input);
        }
        for caps in &streams {
            args.max_resolution
                .check_caps(caps)
                .map_err(|e| anyhow!("input {}: {e}", args.input))?;
        }
    }
    let plan = plan(args, &input, size)?;
    let drop_policy = plan.drop_policy;
    let pipeline = launch(&plan.description, "the pipeline")?;
    let seg = pipeline
        .by_name("seg")
        .context("no beitseg in the pipeline")?;
    configure(&seg, args, plan.mode, plan.drop_policy)?;
    if let Some(pool) = &ctx.pool {
        seg.set_property("pool", pool);
    }
    if let Some(dec) = pipeline.by_name("dec") {
        // Streams whose size the file probe could not see (URIs, devices) are checked here.
        args.max_resolution.guard(&dec);
    }
    // Locations are properties, not gst-launch text: a path may hold any character.
    for w in &plan.writes {
        pipeline
            .by_name(w.element)
            .with_context(|| format!("no sink {} in the pipeline", w.element))?
            .set_property("location", &w.location);
    }
    if let Some(caps) = plan.audio.as_ref().and_then(|a| a.caps.as_ref()) {
        pipeline
            .by_name("audiocaps")
            .context("no capsfilter for the audio")?
            .set_property("caps", caps);
    }
    let limit_reached = Arc::new(AtomicBool::new(false));
    limit(&seg, args, limit_reached.clone())?;
    crate::options::limit_audio(&pipeline, args);
    let bus = pipeline.bus().context("pipeline without a bus")?;

    let restream = match &plan.output {
        Output::Rtsp(endpoint) => {
            let access = crate::server::Access::from_args(&args.access, endpoint)?;
            let restream = Restream::start(endpoint, args.bitrate, &access)?;
            let sink = pipeline
                .by_name("restream")
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .context("no appsink for the RTSP output")?;
            let restream = Arc::new(restream);
            Restream::feed(&restream, &sink);
            eprintln!("serving the segmented stream at {}", restream.url);
            Some(restream)
        }
        _ => None,
    };

    let shutdown = &ctx.shutdown;
    shutdown
        .partials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(
            plan.writes
                .iter()
                .filter_map(|w| w.partial.as_ref().map(|(p, _)| p.clone())),
        );
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

    let model = crate::input::model_label(args);
    // Set when an error ends the run after the output was finished (a camera given up).
    let mut finalised = false;
    let result = (|| {
        shutdown.loading.fetch_add(1, Ordering::SeqCst);
        // With several inputs, the model loads once (they share it) and is announced once.
        let loading = match &ctx.lines {
            None => Progress::loading(&model),
            Some(_) => indicatif::ProgressBar::hidden(),
        };
        let state = pipeline.set_state(gst::State::Playing);
        shutdown.running.fetch_add(1, Ordering::SeqCst);
        shutdown.loading.fetch_sub(1, Ordering::SeqCst);
        loading.finish_and_clear();
        if shutdown.interrupted() {
            bail!("interrupted while loading the model: nothing written");
        }
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
            if ctx.lines.is_none() {
                eprintln!("loaded {} in {secs:.1} s{how}", model.display());
            }
            Some(secs)
        });
        if state.is_err() {
            // The element says why on the bus (a bad model, a provider that cannot load…).
            let why = bus
                .iter_timed(gst::ClockTime::ZERO)
                .find_map(|m| explain(&m, &pipeline, args, &plan.shown_as));
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
                        max_resolution: args.max_resolution,
                    },
                    target,
                )?)
            }
            _ => None,
        };
        let started = Instant::now();
        let label = crate::secrets::masked(&args.input);
        let mut progress = Progress::new(input.is_live(), ctx.lines.as_ref(), &label);
        let metrics = ctx.metrics.as_ref().map(|m| m.add(&label));
        let report = |stats: &gst::Structure, camera: Option<&Camera>| {
            if let Some(m) = &metrics {
                m.update(stats, camera.map_or(0, |c| c.reconnects));
            }
        };
        let mut last_status = Instant::now();
        let mut eos_sent = false;
        loop {
            let limited = limit_reached.load(Ordering::SeqCst);
            if (shutdown.interrupted() || limited) && !eos_sent {
                if !limited {
                    progress.say(&format!("interrupted: finishing {}", plan.shown_as));
                }
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
                    // The camera is gone for good: what it gave is finished and kept.
                    c.finish();
                    let _ = bus.timed_pop_filtered(
                        gst::ClockTime::from_seconds(10),
                        &[gst::MessageType::Eos, gst::MessageType::Error],
                    );
                    finalised = true;
                    progress.finish();
                    return Err(e);
                }
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(_) => {
                        progress.finish();
                        bail!(
                            "{}",
                            explain(&msg, &pipeline, args, &plan.shown_as).unwrap_or_default()
                        )
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
                let stats = seg.property::<gst::Structure>("stats");
                report(&stats, camera.as_ref());
                progress.update(
                    pipeline.query_position::<gst::ClockTime>(),
                    pipeline.query_duration::<gst::ClockTime>(),
                    &stats,
                );
            }
        }
        progress.finish();
        let stats = seg.property::<gst::Structure>("stats");
        report(&stats, camera.as_ref());
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
        if stats.get::<u64>("frames-out").unwrap_or(0) == 0 && !plan.writes.is_empty() {
            // Nothing to show: the error below says so.
            return Ok(());
        }
        progress.say(&format!(
            "{verb} {}: {} frames in {:.1} s ({} dropped{reconnects}{load})",
            plan.shown_as,
            stats.get::<u64>("frames-out").unwrap_or(0),
            started.elapsed().as_secs_f64(),
            stats.get::<u64>("dropped").unwrap_or(0),
        ));
        Ok(())
    })();
    shutdown.running.fetch_sub(1, Ordering::SeqCst);
    let frames_out = seg
        .property::<gst::Structure>("stats")
        .get::<u64>("frames-out")
        .unwrap_or(0);
    let _ = pipeline.set_state(gst::State::Null);
    // Outputs replace their targets only when the run finished them with frames in them.
    let keep = frames_out > 0 && (result.is_ok() || finalised);
    let mut result = result;
    for w in &plan.writes {
        if keep {
            if let Err(e) = w.commit() {
                result = result.and(Err(e));
            }
        } else {
            w.discard();
        }
    }
    if result.is_ok() && !keep && !plan.writes.is_empty() {
        result = Err(anyhow!("nothing was segmented: no output written"));
    }
    drop(camera);
    drop(restream);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::mask_writer;

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
        assert!(mask_writer("m.mp4", "mask_out").is_err());
    }
}
