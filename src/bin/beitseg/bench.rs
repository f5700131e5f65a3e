// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg bench`: the project's benchmarks in one command. Each measurement is one line: a
//! readable sentence, or with `--json` one JSON object (`{"bench": …, …}`) per line.
//!
//! - `kernels`: the CPU stages around the model (preprocessing, exact decoding, overlay, mask,
//!   and their I420/NV12 variants) at 1080p on one core, each with a plain reference
//!   implementation timed in the same run (`gstbeitseg::bench`).
//! - `pool`: frames/s of `videotestsrc ! imagefreeze ! beitseg workers=W ! fakesink` (one frame
//!   repeated, so the source costs nothing) at 320x240, 1280x720 and 1920x1080, for one worker,
//!   two workers, and one worker whose session uses two threads (the alternative design).
//! - `model`: the raw ONNX Runtime session (random input, batches of --batch-size) against the
//!   element in `videotestsrc ! 1920x1080 ! beitseg ! fakesink`, with the provider actually used.
//! - `load` (only when named): load time and memory (`bench_load`).
//! - `streams` (only when named): K = 1, 2, 4, 8 streams through one pool with batches against
//!   K independent elements (`bench_streams`).
//! - `soak` (only when named): `--soak-frames` small frames (100 000) through the element with the
//!   bundled person model, printing the resident and peak memory at 10 %, 50 % and 100 %.

use crate::console::out;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use gst::prelude::*;
use gstbeitseg::model::{Model, Overrides};
use gstbeitseg::provider::ProviderRequest;
use gstbeitseg::ProviderSetting;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// The CPU stages around the model at 1080p on one core, each beside a plain reference.
    Kernels,
    Pool,
    Model,
    /// Not part of the default set: 100 000 frames by default.
    Soak,
    /// Not part of the default set: 1, 2, 4 and 8 streams of 640x480 video (4 × --frames
    /// each), in one pool with batches against independent elements.
    Streams,
    /// Not part of the default set: the model on --server (an Open Inference Protocol server
    /// serving it as --server-model) beside the local session, 1, 2 and 4 frames in flight.
    Remote,
    /// Not part of the default set: load time and memory of the bundled tiny BEiT and each
    /// --model, beside plain ONNX Runtime, each in a process of its own.
    Load,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which benchmarks to run (default: all).
    #[arg(value_enum)]
    which: Vec<Which>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Model for `pool` and `model` (default: the bundled tiny BEiT, 640x640, 150 classes).
    /// Repeat it to compare models: `model` measures each, the others use the first.
    #[arg(long)]
    model: Vec<PathBuf>,
    /// `model`: execution provider.
    #[arg(long, value_enum, default_value_t = ProviderSetting::Auto)]
    provider: ProviderSetting,
    /// `model`: frames per model run.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// `model`: element workers.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Frames per element measurement (`model`: 0 measures the session alone).
    #[arg(long, default_value_t = 16)]
    frames: u32,
    /// `model`: raw session runs.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// `kernels`: only the stages whose name contains this.
    #[arg(long)]
    stage: Option<String>,
    /// `soak`: frames to push.
    #[arg(long, default_value_t = 100_000)]
    soak_frames: u64,
    /// `load`: timed 640x640 runs per row (after one warm-up run); 0 skips running.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// `remote`: grpc://HOST:PORT of a server that serves --model.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// `remote`: the model's name on the server (default: the model file's name).
    #[arg(long, value_name = "NAME")]
    server_model: Option<String>,
}

pub(crate) fn emit(json: bool, value: serde_json::Value, text: String) {
    if json {
        out!("{value}");
    } else {
        out!("{text}");
    }
}

/// Runs `description` (which has a `beitseg name=seg`) to EOS and returns frames/s after the
/// first frame (the model loads and the first frame runs during preroll), the provider used and
/// the element's stats.
fn element_fps(description: &str, frames: u32) -> Result<(f64, String, gst::Structure)> {
    let pipeline = crate::run::launch(description, description)?;
    let bus = pipeline.bus().context("no bus")?;
    let wait = |types: &[gst::MessageType]| -> Result<()> {
        let msg = bus
            .timed_pop_filtered(gst::ClockTime::NONE, types)
            .context("bus closed")?;
        if let Some(e) = crate::run::error_text(&msg) {
            bail!("{e}");
        }
        Ok(())
    };
    let result = (|| {
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|_| anyhow!("cannot start the pipeline"))?;
        wait(&[gst::MessageType::AsyncDone, gst::MessageType::Error])?;
        let t0 = Instant::now();
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| anyhow!("cannot play the pipeline"))?;
        wait(&[gst::MessageType::Eos, gst::MessageType::Error])?;
        let secs = t0.elapsed().as_secs_f64();
        let seg = pipeline.by_name("seg").context("no beitseg")?;
        let in_use = seg
            .property::<Option<String>>("provider-in-use")
            .unwrap_or_default();
        Ok((
            (frames.saturating_sub(1)) as f64 / secs,
            in_use,
            seg.property::<gst::Structure>("stats"),
        ))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn pool(model: &Path, frames: u32, json: bool) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (w, h) in [(320, 240), (1280, 720), (1920, 1080)] {
        let mut results = Vec::new();
        for (label, props) in [
            ("workers=1", "workers=1 intra-threads=1"),
            ("workers=2", "workers=2 intra-threads=1"),
            ("workers=1 intra-threads=2", "workers=1 intra-threads=2"),
        ] {
            let (fps, provider, _) = element_fps(
                &format!(
                    "videotestsrc num-buffers=1 pattern=smpte ! \
                     video/x-raw,format=RGB,width={w},height={h} ! \
                     imagefreeze num-buffers={frames} ! beitseg name=seg model=\"{}\" \
                     provider=cpu {props} mode=overlay ! fakesink sync=false",
                    model.display()
                ),
                frames,
            )?;
            emit(
                json,
                json!({"bench": "pool", "size": format!("{w}x{h}"), "config": label,
                       "fps": fps, "provider": provider, "cores": cores}),
                format!("pool {w}x{h} {label}: {fps:.2} frames/s ({provider}, {cores} cores)"),
            );
            results.push(fps);
        }
        if !json {
            out!(
                "pool {w}x{h}: two workers {:.2}x one worker",
                results[1] / results[0]
            );
        }
    }
    Ok(())
}

fn model_bench(args: &BenchArgs, model: &Path) -> Result<()> {
    let overrides = Overrides {
        provider: ProviderRequest {
            provider: args.provider.into(),
            ..Default::default()
        },
        max_batch: args.batch_size,
        ..Default::default()
    };
    let t = Instant::now();
    let m = Model::load(model, &overrides)?;
    let load = t.elapsed().as_secs_f64();
    let info = m.info().clone();
    let batch = args.batch_size;
    let n = 3 * info.width * info.height * batch;
    // Deterministic input spread over [-1, 1), like normalised pixels.
    let input: Vec<f32> = (0..n)
        .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    m.run(input.clone(), batch)?;
    let t = Instant::now();
    for _ in 0..args.iterations.max(1) {
        m.run(input.clone(), batch)?;
    }
    let per = t.elapsed().as_secs_f64() / args.iterations.max(1) as f64;
    let raw_fps = batch as f64 / per;
    let provider_used = info.provider.name();
    let family = info.family.as_deref().unwrap_or("unnamed");
    let name = model.display();
    let (w, h) = (info.width, info.height);
    emit(
        args.json,
        json!({"bench": "model", "kind": "raw", "model": model, "family": family,
               "input": format!("{w}x{h}"), "classes": info.num_classes,
               "provider": provider_used, "batch": batch,
               "ms_per_batch": per * 1e3, "ms_per_frame": per * 1e3 / batch as f64,
               "fps": raw_fps, "load_s": load}),
        format!(
            "model {name} ({family}, {w}x{h}) raw ({provider_used}, batch {batch}): {:.1} ms a \
             batch, {raw_fps:.2} frames/s (session created in {load:.1} s)",
            per * 1e3
        ),
    );
    if args.frames == 0 {
        return Ok(());
    }
    let (fps, in_use, stats) = element_fps(
        &format!(
            "videotestsrc num-buffers={} pattern=ball ! \
             video/x-raw,format=RGBx,width=1920,height=1080 ! beitseg name=seg model=\"{}\" \
             provider={} batch-size={batch} workers={} ! fakesink sync=false",
            args.frames,
            model.display(),
            gstbeitseg::provider::Provider::from(args.provider).name(),
            args.workers
        ),
        args.frames,
    )?;
    emit(
        args.json,
        json!({"bench": "model", "kind": "element", "model": model, "family": family,
               "size": "1920x1080", "provider": in_use,
               "batch": batch, "workers": args.workers, "fps": fps, "ratio_to_raw": fps / raw_fps,
               "inference_mean_ms": stats.get::<f64>("inference-mean-ms").unwrap_or(0.0)}),
        format!(
            "model {name} element 1920x1080 ({in_use}, batch {batch}, {} workers): {fps:.2} \
             frames/s, {:.2}x raw",
            args.workers,
            fps / raw_fps
        ),
    );
    Ok(())
}

/// A field of /proc/self/status in kB (VmRSS, VmHWM).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn soak(args: &BenchArgs) -> Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let model = args.model.first().cloned().unwrap_or_else(|| {
        gstbeitseg::location::data_dir().join("selfie/selfie_segmentation.onnx")
    });
    let total = args.soak_frames.max(1);
    let pipeline = crate::run::launch(
        &format!(
            "videotestsrc num-buffers={total} pattern=ball ! \
         video/x-raw,format=RGBx,width=64,height=48,framerate=1000/1 ! \
         beitseg name=seg model=\"{}\" provider=cpu mode=overlay ! fakesink name=out sync=false",
            model.display()
        ),
        "the soak pipeline",
    )?;
    let count = std::sync::Arc::new(AtomicU64::new(0));
    pipeline
        .by_name("out")
        .and_then(|e| e.static_pad("sink"))
        .context("no fakesink")?
        .add_probe(gst::PadProbeType::BUFFER, {
            let count = count.clone();
            move |_, _| {
                count.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            }
        });
    let bus = pipeline.bus().context("no bus")?;
    let t0 = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| anyhow!("cannot start the soak pipeline"))?;
    let mut marks = vec![10u64, 50, 100].into_iter().peekable();
    let mut first_rss = None;
    let result = loop {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(10),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        );
        let done = count.load(Ordering::Relaxed);
        if let Some(msg) = msg {
            if let Some(e) = crate::run::error_text(&msg) {
                break Err(anyhow!("{e}"));
            }
            if done < total {
                break Err(anyhow!("the stream ended after {done} of {total} frames"));
            }
        }
        while let Some(&pct) = marks.peek() {
            if done * 100 < total * pct {
                break;
            }
            marks.next();
            let (rss, peak) = (status_kb("VmRSS:"), status_kb("VmHWM:"));
            let growth = first_rss.map_or(0.0, |f: u64| (rss as f64 / f as f64 - 1.0) * 100.0);
            first_rss.get_or_insert(rss);
            emit(
                args.json,
                json!({"bench": "soak", "percent": pct, "frames": done, "rss_kb": rss,
                       "peak_rss_kb": peak, "rss_growth_since_10_percent": growth,
                       "seconds": t0.elapsed().as_secs_f64()}),
                format!(
                    "soak {pct:>3} % ({done} frames, {:.0} s): RSS {} MiB, peak {} MiB, \
                     {growth:+.1} % since 10 %",
                    t0.elapsed().as_secs_f64(),
                    rss / 1024,
                    peak / 1024
                ),
            );
        }
        if marks.peek().is_none() {
            break Ok(());
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Local session against the server, at 1, 2 and 4 frames in flight (workers), 640x480 frames:
/// frames/s and the model time per frame the workers saw (for the server: the round trip).
fn remote(args: &BenchArgs, model: &Path) -> Result<()> {
    let Some(url) = &args.server else {
        bail!("bench remote needs --server grpc://HOST:PORT (a server that serves --model)");
    };
    let name = args.server_model.clone().unwrap_or_else(|| {
        model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let frames = args.frames.max(8);
    for in_flight in [1u32, 2, 4] {
        let mut row = Vec::new();
        for (place, extra) in [
            ("local", String::new()),
            (
                "remote",
                format!("server=\"{url}\" server-model=\"{name}\""),
            ),
        ] {
            let (fps, _, stats) = element_fps(
                &format!(
                    "videotestsrc num-buffers=1 pattern=smpte ! \
                     video/x-raw,format=RGB,width=640,height=480 ! \
                     imagefreeze num-buffers={frames} ! beitseg name=seg model=\"{}\" \
                     provider=cpu workers={in_flight} {extra} ! fakesink sync=false",
                    model.display()
                ),
                frames,
            )?;
            let ms = stats.get::<f64>("inference-mean-ms").unwrap_or(0.0);
            row.push((fps, ms));
            emit(
                args.json,
                json!({"bench": "remote", "place": place, "in_flight": in_flight, "fps": fps,
                       "model_ms": ms, "frames": frames, "server": if place == "remote" { url.as_str() } else { "" }}),
                format!("remote {place} {in_flight} in flight: {fps:.2} frames/s, {ms:.1} ms a frame in the model"),
            );
        }
        let overhead = row[1].1 - row[0].1;
        emit(
            args.json,
            json!({"bench": "remote", "place": "overhead", "in_flight": in_flight,
                   "overhead_ms": overhead, "fps_ratio": row[1].0 / row[0].0}),
            format!(
                "remote {in_flight} in flight: the server adds {overhead:.1} ms a frame; {:.2}x the local frames/s",
                row[1].0 / row[0].0
            ),
        );
    }
    Ok(())
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    let tiny = gstbeitseg::location::data_dir().join("beit-tiny-ade/model.onnx");
    let models = if args.model.is_empty() {
        vec![tiny.clone()]
    } else {
        args.model.clone()
    };
    let model = models[0].clone();
    let which = if args.which.is_empty() {
        vec![Which::Kernels, Which::Pool, Which::Model]
    } else {
        args.which.clone()
    };
    for w in which {
        if matches!(
            w,
            Which::Pool | Which::Model | Which::Streams | Which::Remote
        ) {
            if let Some(m) = models.iter().find(|m| !m.is_file()) {
                bail!("model {}: no such file", m.display());
            }
        }
        match w {
            Which::Kernels => {
                gstbeitseg::bench::kernels(args.json, args.stage.as_deref())?;
            }
            Which::Pool => pool(&model, args.frames, args.json)?,
            Which::Model => {
                for m in &models {
                    model_bench(args, m)?;
                }
            }
            Which::Soak => soak(args)?,
            Which::Streams => crate::bench_streams::streams(&model, 4 * args.frames, args.json)?,
            Which::Remote => remote(args, &model)?,
            Which::Load => {
                let models: Vec<PathBuf> = std::iter::once(tiny.clone())
                    .chain(args.model.clone())
                    .collect();
                crate::bench_load::load(&models, args.runs, args.json)?
            }
        }
    }
    Ok(())
}
