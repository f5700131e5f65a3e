// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GPU throughput: the raw ONNX Runtime session against the element in a real pipeline.
//!
//!     cargo bench --bench gpu -- MODEL PROVIDER BATCH WORKERS [FRAMES]
//!
//! prints `raw …` (Model::run on random input, batches of BATCH) and `element …`
//! (`videotestsrc pattern=ball ! 1920x1080 ! beitseg provider=… batch-size=… workers=… ! fakesink`)
//! in frames/s, with the provider actually used. scripts/gpu_bench.sh runs it on the GPU machine.

use std::path::Path;
use std::time::Instant;

use gst::prelude::*;
use gstbeitseg::model::{Model, Overrides};
use gstbeitseg::provider::{Provider, ProviderRequest};

fn provider(name: &str) -> Provider {
    match name {
        "tensorrt" => Provider::TensorRt,
        "cuda" => Provider::Cuda,
        "auto" => Provider::Auto,
        _ => Provider::Cpu,
    }
}

fn raw(model: &Path, prov: &str, batch: usize, iterations: usize) {
    let t = Instant::now();
    let overrides = Overrides {
        provider: ProviderRequest {
            provider: provider(prov),
            ..Default::default()
        },
        max_batch: batch,
        ..Default::default()
    };
    let mut m = Model::load(model, &overrides).expect("model");
    let load = t.elapsed().as_secs_f64();
    let info = m.info().clone();
    let n = 3 * info.width * info.height * batch;
    let input: Vec<f32> = (0..n)
        .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    m.run(input.clone(), batch).expect("warm-up");
    let t = Instant::now();
    for _ in 0..iterations {
        m.run(input.clone(), batch).expect("run");
    }
    let per = t.elapsed().as_secs_f64() / iterations as f64;
    println!(
        "raw provider={:?} batch={batch}: {:.1} ms/batch, {:.2} frames/s (session created in {load:.1} s)",
        info.provider,
        per * 1e3,
        batch as f64 / per
    );
}

fn element(model: &Path, prov: &str, batch: usize, workers: usize, frames: usize) {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=RGBx,width=1920,height=1080 ! \
         beitseg name=seg model={} provider={prov} batch-size={batch} \
         workers={workers} ! fakesink sync=false",
        model.display()
    ))
    .expect("pipeline");
    let bus = pipeline.bus().unwrap();
    let t = Instant::now();
    pipeline.set_state(gst::State::Paused).expect("paused");
    bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    );
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let secs = t.elapsed().as_secs_f64();
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{} {:?}", e.error(), e.debug());
    }
    let seg = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("seg")
        .unwrap();
    let in_use = seg.property::<Option<String>>("provider-in-use");
    let stats = seg.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    println!(
        "element 1920x1080 provider={in_use:?} batch={batch} workers={workers}: {:.2} frames/s (started in {load:.1} s); {stats}",
        (frames - 1) as f64 / secs
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [model, prov, batch, workers, rest @ ..] = &args[..] else {
        println!(
            "usage: gpu MODEL PROVIDER BATCH WORKERS [FRAMES]  (nothing to do without arguments)"
        );
        return;
    };
    let (batch, workers): (usize, usize) = (batch.parse().unwrap(), workers.parse().unwrap());
    let frames = rest.first().and_then(|f| f.parse().ok()).unwrap_or(200);
    gst::init().unwrap();
    gstbeitseg::plugin_register_static().unwrap();
    raw(Path::new(model), prov, batch, 20);
    element(Path::new(model), prov, batch, workers, frames);
}
