// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg bench streams`: K streams of 640x480 video through one model on the CPU, as K
//! elements in one pool (`pool=…`, batches of up to K frames) against K independent elements
//! (each with the element's default workers): total frames/s, the spread of per-stream
//! frames/s, and the pool's mean batch fill.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;
use serde_json::json;

/// One stream of the run: its pipeline and when its EOS came.
fn stream(model: &Path, frames: u32, index: usize, props: &str) -> Result<gst::Pipeline> {
    let patterns = ["smpte", "ball", "snow", "pinwheel"];
    gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 pattern={} ! video/x-raw,format=RGB,width=640,height=480 ! \
         imagefreeze num-buffers={frames} ! beitseg name=seg model=\"{}\" provider=cpu {props} ! \
         fakesink sync=false",
        patterns[index % patterns.len()],
        model.display()
    ))
    .map_err(|e| anyhow!("cannot build a stream: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow!("not a pipeline"))
}

struct Measured {
    total_fps: f64,
    per_stream: Vec<f64>,
    batch_fill: f64,
}

/// Prerolls every stream (models load), then plays them all at once until each one's EOS.
fn measure(model: &Path, frames: u32, k: usize, props: &str) -> Result<Measured> {
    let pipelines = (0..k)
        .map(|i| stream(model, frames, i, props))
        .collect::<Result<Vec<_>>>()?;
    let wait = |p: &gst::Pipeline, what: gst::MessageType| -> Result<()> {
        let bus = p.bus().context("no bus")?;
        let msg = bus
            .timed_pop_filtered(gst::ClockTime::NONE, &[what, gst::MessageType::Error])
            .context("bus closed")?;
        match crate::run::error_text(&msg) {
            Some(e) => Err(anyhow!("{e}")),
            None => Ok(()),
        }
    };
    let result = (|| {
        for p in &pipelines {
            p.set_state(gst::State::Paused)
                .map_err(|_| anyhow!("cannot start a stream"))?;
            wait(p, gst::MessageType::AsyncDone)?;
        }
        let t0 = Instant::now();
        for p in &pipelines {
            p.set_state(gst::State::Playing)
                .map_err(|_| anyhow!("cannot play a stream"))?;
        }
        let ends = std::thread::scope(|s| {
            let handles: Vec<_> = pipelines
                .iter()
                .map(|p| {
                    s.spawn(move || {
                        wait(p, gst::MessageType::Eos).map(|()| t0.elapsed().as_secs_f64())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a stream panicked")))
                })
                .collect::<Result<Vec<f64>>>()
        })?;
        let last = ends.iter().copied().fold(0.0, f64::max);
        // The first frame of each stream ran during preroll.
        let timed = frames.saturating_sub(1) as f64;
        let stats = pipelines[0]
            .by_name("seg")
            .context("no beitseg")?
            .property::<gst::Structure>("stats");
        Ok(Measured {
            total_fps: timed * k as f64 / last,
            per_stream: ends.iter().map(|t| timed / t).collect(),
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
        let batch = k.min(8);
        let configs = [
            (
                "pooled",
                format!(
                    "pool=bench-streams-{k} workers={cores} batch-size={batch} batch-timeout=20"
                ),
            ),
            ("independent", String::new()),
        ];
        let mut totals = Vec::new();
        for (mode, props) in &configs {
            let m = measure(model, frames, k, props)?;
            let s = spread(&m.per_stream);
            crate::bench::emit(
                json,
                json!({"bench": "streams", "streams": k, "mode": mode, "fps_total": m.total_fps,
                       "fps_per_stream": m.per_stream, "spread": s, "batch_fill": m.batch_fill,
                       "frames_per_stream": frames, "cores": cores}),
                format!(
                    "streams {k} {mode}: {:.2} frames/s in all, per stream {:.2}–{:.2} (spread \
                     {:.0} %), batch fill {:.2}",
                    m.total_fps,
                    m.per_stream.iter().copied().fold(f64::MAX, f64::min),
                    m.per_stream.iter().copied().fold(0.0, f64::max),
                    s * 100.0,
                    m.batch_fill
                ),
            );
            totals.push(m.total_fps);
        }
        if !json {
            println!(
                "streams {k}: pooled {:.2}x independent",
                totals[0] / totals[1]
            );
        }
    }
    Ok(())
}
