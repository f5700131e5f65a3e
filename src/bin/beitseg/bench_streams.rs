// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg bench streams`: K streams of 640x480 video through one model on the CPU, as K
//! elements in one pool (`pool=…`, batches of up to K frames) against K independent elements
//! (each with the element's default workers): total frames/s, the spread of per-stream
//! frames/s, and the pool's mean batch fill.

use crate::console::out;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use serde_json::json;

/// One stream: a 640x480 picture repeated (the source costs nothing) through `beitseg {props}`.
fn stream(model: &Path, frames: u32, index: usize, props: &str) -> Result<gst::Pipeline> {
    let patterns = ["smpte", "ball", "snow", "pinwheel"];
    crate::run::launch(
        &format!(
        "videotestsrc num-buffers=1 pattern={} ! video/x-raw,format=RGB,width=640,height=480 ! \
         imagefreeze num-buffers={frames} ! beitseg name=seg model=\"{}\" provider=cpu {props} ! \
         fakesink sync=false",
        patterns[index % patterns.len()],
        model.display()
    ),
        "a stream",
    )
}

struct Measured {
    total_fps: f64,
    per_stream: Vec<f64>,
    batch_fill: f64,
}

/// Plays every stream at once, noting when each frame leaves its element. The rates are taken
/// over the window in which all streams run (from the last stream's first frame to the first
/// stream's last), so the model's load and the streams' starts and ends do not count.
fn measure(model: &Path, frames: u32, k: usize, props: &str) -> Result<Measured> {
    let pipelines = (0..k)
        .map(|i| stream(model, frames, i, props))
        .collect::<Result<Vec<_>>>()?;
    let times: Vec<Arc<Mutex<Vec<Instant>>>> = (0..k).map(|_| Arc::default()).collect();
    for (p, t) in pipelines.iter().zip(&times) {
        let pad = p
            .by_name("seg")
            .and_then(|e| e.static_pad("src"))
            .context("no beitseg src pad")?;
        let t = t.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            t.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Instant::now());
            gst::PadProbeReturn::Ok
        });
    }
    let wait = |p: &gst::Pipeline| -> Result<()> {
        let bus = p.bus().context("no bus")?;
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::NONE,
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .context("bus closed")?;
        match crate::run::error_text(&msg) {
            Some(e) => Err(anyhow!("{e}")),
            None => Ok(()),
        }
    };
    let result = (|| {
        // All at once: the first start loads the model while the others wait for it.
        std::thread::scope(|s| {
            let handles: Vec<_> = pipelines
                .iter()
                .map(|p| {
                    s.spawn(move || {
                        p.set_state(gst::State::Playing)
                            .map_err(|_| anyhow!("cannot play a stream"))?;
                        wait(p)
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a stream panicked")))
            })
        })?;
        let times: Vec<Vec<Instant>> = times
            .iter()
            .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        let from = times.iter().filter_map(|t| t.first()).max().copied();
        let to = times.iter().filter_map(|t| t.last()).min().copied();
        let (Some(from), Some(to)) = (from, to) else {
            bail!("a stream gave no frame");
        };
        let window = to.saturating_duration_since(from).as_secs_f64();
        if window <= 0.0 {
            bail!("the streams did not run at the same time: give more --frames");
        }
        let per_stream: Vec<f64> = times
            .iter()
            .map(|t| t.iter().filter(|x| **x > from && **x <= to).count() as f64 / window)
            .collect();
        let stats = pipelines[0]
            .by_name("seg")
            .context("no beitseg")?
            .property::<gst::Structure>("stats");
        Ok(Measured {
            total_fps: per_stream.iter().sum(),
            per_stream,
            batch_fill: stats.get::<f64>("pool-batch-fill").unwrap_or(0.0),
        })
    })();
    for p in &pipelines {
        let _ = p.set_state(gst::State::Null);
    }
    result
}

/// (max − min) / mean of the per-stream rates.
fn spread(rates: &[f64]) -> f64 {
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let (lo, hi) = rates
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    if mean > 0.0 {
        (hi - lo) / mean
    } else {
        0.0
    }
}

pub fn streams(model: &Path, frames: u32, json: bool) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for k in [1usize, 2, 4, 8] {
        let pooled = format!(
            "pool=bench-streams-{k} workers={cores} batch-size={} batch-timeout=20",
            k.min(8)
        );
        // Pooled, independent, independent, pooled: a machine that speeds up or slows down
        // during the run favours neither.
        let mut runs: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
        for which in [0, 1, 1, 0] {
            let props = if which == 0 { pooled.as_str() } else { "" };
            runs[which].push(measure(model, frames, k, props)?);
        }
        let mut totals = Vec::new();
        for (mode, measured) in ["pooled", "independent"].iter().zip(&runs) {
            let n = measured.len() as f64;
            let total = measured.iter().map(|m| m.total_fps).sum::<f64>() / n;
            let s = measured
                .iter()
                .map(|m| spread(&m.per_stream))
                .fold(0.0, f64::max);
            let fill = measured.iter().map(|m| m.batch_fill).sum::<f64>() / n;
            let per_stream: Vec<f64> = measured.iter().flat_map(|m| m.per_stream.clone()).collect();
            crate::bench::emit(
                json,
                json!({"bench": "streams", "streams": k, "mode": mode, "fps_total": total,
                       "fps_per_stream": per_stream, "spread": s, "batch_fill": fill,
                       "frames_per_stream": frames, "runs": measured.len(), "cores": cores}),
                format!(
                    "streams {k} {mode}: {total:.2} frames/s in all (mean of {} runs), per stream \
                     {:.2}–{:.2} (spread {:.0} %, the larger run's), batch fill {fill:.2}",
                    measured.len(),
                    per_stream.iter().copied().fold(f64::MAX, f64::min),
                    per_stream.iter().copied().fold(0.0, f64::max),
                    s * 100.0,
                ),
            );
            totals.push(total);
        }
        if !json {
            out!(
                "streams {k}: pooled {:.2}x independent",
                totals[0] / totals[1]
            );
        }
    }
    Ok(())
}
