// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! One input of `beitseg run`, from its pipeline to its closing line. How a run ends decides
//! what happens to its files:
//! - the input ended, or Ctrl-C / SIGTERM / a frame limit ended it: every output is finished
//!   and renamed onto its target;
//! - the input or the segmentation failed after frames were written (a camera or inference
//!   server gone for good, a broken file): the input is ended, the outputs are finished with
//!   what they hold and renamed, the closing line says so, and the run fails;
//! - an output failed (a full disk): the files stay as they are on disk (fragmented
//!   recordings and finished segments play), the run fails;
//! - nothing was segmented: this run's partial files go; nothing of an earlier run is touched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;

use crate::args::RunArgs;
use crate::camera::{Camera, CameraOptions};
use crate::console::say;
use crate::input::{check_reachable, Input};
use crate::options::{check_args, configure, limit};
use crate::output::Output;
use crate::plan::{plan, Plan};
use crate::progress::Progress;
use crate::run::{explain, launch, Origin, RunContext};
use crate::server::Restream;

use gstbeitseg::DropPolicy;

/// How long the outputs may take to finish once the input is ended (encoders drain their
/// look-ahead, muxers write their index).
const FINISH_LIMIT: Duration = Duration::from_secs(60);

/// How the run ended, for its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Every output got its end of stream and is finished.
    Finished,
    /// An output failed, or did not finish in time: its files stay as they are.
    Kept,
    /// Nothing to keep.
    Nothing,
}

/// The run's pipeline and what drives it.
struct Built {
    pipeline: gst::Pipeline,
    seg: gst::Element,
    bus: gst::Bus,
    restream: Option<Arc<Restream>>,
    limit_reached: Arc<AtomicBool>,
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
    let size = probe(args, &input)?;
    let plan = plan(args, &input, size)?;
    let built = build(args, &input, &plan, ctx)?;
    ctx.shutdown.track(
        plan.writes
            .iter()
            .filter_map(|w| w.partial.as_ref().map(|(p, _)| p.clone())),
    );
    // Outside `watch`: dropped only after the pipeline has stopped, so that a camera thread
    // blocked on a full input queue is released first.
    let mut camera: Option<Camera> = None;
    let started = Instant::now();
    ctx.shutdown.begin_loading();
    let (result, ending) = watch(args, &input, &plan, &built, ctx, &mut camera);
    ctx.shutdown.ended();
    let stats = built.seg.property::<gst::Structure>("stats");
    let frames = stats.get::<u64>("frames-out").unwrap_or(0);
    let _ = built.pipeline.set_state(gst::State::Null);
    let ending = if frames == 0 { Ending::Nothing } else { ending };
    let mut result = result;
    match ending {
        Ending::Finished => {
            for w in &plan.writes {
                if let Err(e) = w.commit() {
                    result = result.and(Err(e));
                }
            }
            let from_camera = camera.as_ref();
            closing_line(ctx, &plan, &built, &stats, from_camera, started);
        }
        Ending::Kept => {
            for (partial, _) in plan.writes.iter().filter_map(|w| w.partial.as_ref()) {
                if partial.exists() {
                    say!(
                        "kept {} as it is on disk ({frames} frames segmented; not finished)",
                        partial.display()
                    );
                }
            }
        }
        Ending::Nothing => {
            for w in &plan.writes {
                w.discard();
            }
            if result.is_ok() && !plan.writes.is_empty() {
                result = Err(anyhow!("nothing was segmented: no output written"));
            }
        }
    }
    drop(camera);
    drop(built);
    result
}

/// The input file's streams, checked before the model loads and before any output is opened;
/// its frame size when it says it.
fn probe(args: &RunArgs, input: &Input) -> Result<Option<(u32, u32)>> {
    let Some(path) = input.path() else {
        return Ok(None);
    };
    let streams = crate::input::streams(path);
    if streams.is_empty() {
        bail!("input {}: not a video or image file", args.input);
    }
    let is_picture = |c: &gst::Caps| {
        c.structure(0)
            .is_some_and(|s| s.name().starts_with("video/") || s.name().starts_with("image/"))
    };
    if !streams.iter().any(is_picture) {
        bail!("input {}: no video stream in it", args.input);
    }
    for caps in &streams {
        args.max_resolution
            .check_caps(caps)
            .map_err(|e| anyhow!("input {}: {e}", args.input))?;
    }
    Ok(streams.iter().find_map(|c| {
        let s = c.structure(0)?;
        Some((
            s.get::<i32>("width").ok()? as u32,
            s.get::<i32>("height").ok()? as u32,
        ))
    }))
}

/// The pipeline of `plan`, its element configured, its sinks pointed at their files.
fn build(args: &RunArgs, input: &Input, plan: &Plan, ctx: &RunContext) -> Result<Built> {
    let pipeline = launch(&plan.description, "the pipeline")?;
    let seg = pipeline
        .by_name("seg")
        .context("no beitseg in the pipeline")?;
    configure(&seg, args, plan.mode, plan.drop_policy)?;
    if let Some(pool) = &ctx.pool {
        seg.set_property("pool", pool);
    }
    if let Some(dec) = pipeline.by_name("dec") {
        // Streams whose size the file probe could not see (URIs, devices), and every later
        // change of size, are checked here.
        args.max_resolution.guard(&dec);
    }
    if let (Input::Uri(uri), Some(dec)) = (input, pipeline.by_name("dec")) {
        hand_credentials(&dec, uri);
    }
    if let Some(steady) = pipeline.by_name("steady") {
        crate::plan::keep_first_size(&steady);
    }
    // Locations are properties, not gst-launch text: a path may hold any character.
    for w in &plan.writes {
        let sink = pipeline
            .by_name(w.element)
            .with_context(|| format!("no sink {} in the pipeline", w.element))?;
        sink.set_property("location", &w.location);
        if let Some((start, _)) = &w.segments {
            sink.set_property("start-index", *start as i32);
        }
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
            say!("serving the segmented stream at {}", restream.url);
            Some(restream)
        }
        _ => None,
    };
    Ok(Built {
        pipeline,
        seg,
        bus,
        restream,
        limit_reached,
    })
}

/// Points a uridecodebin at `uri` without its credentials, which its source (souphttpsrc…)
/// gets as its `user-id` / `user-pw`: never in a URL that GStreamer logs or posts.
fn hand_credentials(dec: &gst::Element, uri: &str) {
    let Some((bare, user, password)) = gstbeitseg::secrets::split_credentials(uri) else {
        dec.set_property("uri", uri);
        return;
    };
    dec.set_property("uri", &bare);
    dec.connect("source-setup", false, move |values| {
        let source = values[1].get::<gst::Element>().ok()?;
        for (property, value) in [("user-id", &user), ("user-pw", &password)] {
            if source.find_property(property).is_some() {
                source.set_property(property, value);
            }
        }
        None
    });
}

/// Loads the model (starting the pipeline) and watches the run until it ends: progress,
/// camera, signals, limits, errors.
fn watch(
    args: &RunArgs,
    input: &Input,
    plan: &Plan,
    built: &Built,
    ctx: &RunContext,
    camera: &mut Option<Camera>,
) -> (Result<()>, Ending) {
    let failed = |e: anyhow::Error| (Err(e), Ending::Nothing);
    if let Err(e) = start(args, plan, built, ctx) {
        return failed(e);
    }
    *camera = match start_camera(args, input, built, plan.drop_policy) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let (pipeline, bus, seg, shutdown) = (&built.pipeline, &built.bus, &built.seg, &ctx.shutdown);
    let label = crate::secrets::masked(&args.input);
    let shown = format!("[{}] {label}", ctx.index);
    let mut progress = Progress::new(input.is_live(), ctx.lines.as_ref(), &shown);
    let metrics = ctx.metrics.as_ref().map(|m| m.add(ctx.index, &label));
    let report = |stats: &gst::Structure, camera: Option<&Camera>| {
        if let Some(m) = &metrics {
            m.update(stats, camera.map_or(0, |c| c.reconnects));
        }
    };
    let mut last_status = Instant::now();
    let mut eos_sent = false;
    let ending = loop {
        let limited = built.limit_reached.load(Ordering::SeqCst);
        if (shutdown.interrupted() || limited) && !eos_sent {
            if !limited {
                progress.say(&format!("interrupted: finishing {}", plan.shown_as));
            }
            end_input(pipeline, camera.as_mut());
            eos_sent = true;
        }
        if let Some(c) = camera.as_mut() {
            if let Err(e) = c.poll() {
                // The camera is gone for good: what it gave is finished and kept.
                progress.finish();
                return (Err(e), finish_outputs(built, Some(c)));
            }
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break Ending::Finished,
                gst::MessageView::Error(_) => {
                    progress.finish();
                    let (why, origin) = explain(&msg, pipeline, args, &plan.shown_as);
                    let ending = match origin {
                        // The output cannot take more (a full disk): what it holds stays.
                        Origin::Output => Ending::Kept,
                        // The input or the segmentation failed: the outputs still finish.
                        Origin::Input | Origin::Element => finish_outputs(built, camera.as_mut()),
                    };
                    return (Err(anyhow!("{why}")), ending);
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
    };
    progress.finish();
    report(&seg.property::<gst::Structure>("stats"), camera.as_ref());
    (Ok(()), ending)
}

/// Starts the pipeline, which loads the model; says how long that took.
fn start(args: &RunArgs, plan: &Plan, built: &Built, ctx: &RunContext) -> Result<()> {
    let model = crate::input::model_label(args);
    // With several inputs, the model loads once (they share it) and is announced once.
    let loading = match &ctx.lines {
        None => Progress::loading(&model),
        Some(_) => indicatif::ProgressBar::hidden(),
    };
    let state = built.pipeline.set_state(gst::State::Playing);
    ctx.shutdown.loaded();
    loading.finish_and_clear();
    if ctx.shutdown.interrupted() {
        bail!("interrupted while loading the model: nothing written");
    }
    // How long the model took, from the element's message; the other messages go back on
    // the bus for the loop (or the error report).
    let (loaded, pending): (Vec<_>, Vec<_>) = built
        .bus
        .iter_timed(gst::ClockTime::ZERO)
        .partition(|m| m.structure().is_some_and(|s| s.name() == "beitseg-loaded"));
    for m in pending {
        let _ = built.bus.post(m);
    }
    if let Some(s) = loaded.first().and_then(|m| m.structure()) {
        let secs = s.get::<f64>("load-seconds").unwrap_or(0.0);
        let how = match s.get::<String>("graph-cache").unwrap_or_default().as_str() {
            "reused" => " (optimised graph reused)",
            "built" => " (optimised graph saved for the next start)",
            _ => "",
        };
        if ctx.lines.is_none() {
            say!("loaded {} in {secs:.1} s{how}", model.display());
        }
    }
    if state.is_err() {
        // The element says why on the bus (a bad model, a provider that cannot load…).
        let why = built
            .bus
            .iter_timed(gst::ClockTime::ZERO)
            .find(|m| matches!(m.view(), gst::MessageView::Error(_)))
            .map(|m| explain(&m, &built.pipeline, args, &plan.shown_as).0);
        bail!(
            "{}",
            why.unwrap_or_else(|| "cannot start the pipeline".into())
        );
    }
    Ok(())
}

/// The RTSP camera feeding the pipeline's appsrc, for a camera input.
fn start_camera(
    args: &RunArgs,
    input: &Input,
    built: &Built,
    drop_policy: DropPolicy,
) -> Result<Option<Camera>> {
    let Input::Rtsp(url) = input else {
        return Ok(None);
    };
    let target = built
        .pipeline
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
    let seconds = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v).map_err(|_| anyhow!("{flag} {v:?}: not a number of seconds"))
    };
    let give_up = match args.give_up_after {
        v if v > 0.0 => Some(seconds("--give-up-after", v)?),
        _ => None,
    };
    let options = CameraOptions {
        url: url.clone(),
        latency_ms: args.latency,
        transport: args.transport,
        reconnect: args.reconnect && !args.no_reconnect,
        stall: seconds("--stall-timeout", args.stall_timeout.max(0.5))?,
        give_up,
        max_resolution: args.max_resolution,
        ca: args.ca.clone(),
    };
    Camera::new(options, target).map(Some)
}

/// Ends the input (EOS from the camera or into every source), so that the outputs finish.
fn end_input(pipeline: &gst::Pipeline, camera: Option<&mut Camera>) {
    match camera {
        Some(c) => c.finish(),
        None => {
            pipeline.send_event(gst::event::Eos::new());
        }
    }
}

/// After the input or the segmentation failed: ends the input and the audio, and waits
/// (bounded) until every output has finished with what it holds.
fn finish_outputs(built: &Built, camera: Option<&mut Camera>) -> Ending {
    // An error aborts a state change still under way (sinks not yet prerolled, an encoder
    // holding its look-ahead): playing again lets the outputs take what is still coming.
    let _ = built.pipeline.set_state(gst::State::Playing);
    end_input(&built.pipeline, camera);
    // A decoder that stopped at the failure keeps the end of stream to itself: the element
    // gets it directly, after the frames it holds.
    if let Some(pad) = built.seg.static_pad("sink") {
        pad.send_event(gst::event::Eos::new());
    }
    // The audio branch reads its own source: it ends where the video did.
    if let Some(pad) = built
        .pipeline
        .by_name("audioq")
        .and_then(|q| q.static_pad("sink"))
    {
        pad.send_event(gst::event::Eos::new());
    }
    let deadline = Instant::now() + FINISH_LIMIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let wait = gst::ClockTime::from_mseconds(left.as_millis() as u64);
        let Some(msg) = built.bus.timed_pop(wait) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ending::Finished,
            // An output that fails now cannot finish.
            gst::MessageView::Error(_) if is_output(&msg, &built.pipeline) => return Ending::Kept,
            // The input's elements stop one after another, each with its error, and each
            // aborts the state change again: play on.
            gst::MessageView::Error(_) => {
                let _ = built.pipeline.set_state(gst::State::Playing);
            }
            _ => {}
        }
    }
    Ending::Kept
}

fn is_output(msg: &gst::Message, pipeline: &gst::Pipeline) -> bool {
    crate::run::origin(msg, pipeline) == Some(Origin::Output)
}

/// "wrote OUT: N frames in S s (…)", for a run whose outputs finished.
fn closing_line(
    ctx: &RunContext,
    plan: &Plan,
    built: &Built,
    stats: &gst::Structure,
    camera: Option<&Camera>,
    started: Instant,
) {
    let verb = if built.restream.is_some() {
        "served"
    } else {
        "wrote"
    };
    let camera = camera
        .map(|c| {
            format!(
                ", {} frames from the camera, {} dropped before segmentation, {} reconnections",
                c.frames(),
                c.dropped(),
                c.reconnects
            )
        })
        .unwrap_or_default();
    let line = format!(
        "{verb} {}: {} frames in {:.1} s ({} dropped{camera})",
        plan.shown_as,
        stats.get::<u64>("frames-out").unwrap_or(0),
        started.elapsed().as_secs_f64(),
        stats.get::<u64>("dropped").unwrap_or(0),
    );
    let line = crate::secrets::masked(&line);
    match &ctx.lines {
        Some(lines) => lines.suspend(|| say!("{line}")),
        None => say!("{line}"),
    }
}
