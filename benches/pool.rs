// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Frames per second of `videotestsrc ! imagefreeze ! beitseg workers=W ! fakesink` (one test
//! frame repeated, so the source costs nothing) with a CPU-bound model
//! (the tiny BEiT: 640x640 input, 150 classes) at a few frame sizes, W = 1 and 2.
//! Also one worker whose session uses both cores (`intra-threads=2`), the alternative design.
//! Run: `cargo bench --bench pool` (prints one line per size and the 2-worker speed-up).

use std::time::Instant;

use gst::prelude::*;

fn fps(model: &str, width: u32, height: u32, props: &str, frames: u32) -> f64 {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,format=RGB,width={width},height={height} ! \
         imagefreeze num-buffers={frames} ! beitseg model={model} {props} mode=overlay ! \
         fakesink sync=false"
    ))
    .expect("pipeline");
    // Loading the model is not part of the measurement: start timing at the first frame.
    pipeline.set_state(gst::State::Paused).expect("paused");
    let bus = pipeline.bus().unwrap();
    bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    );
    let t0 = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::NONE,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("message");
    let secs = t0.elapsed().as_secs_f64();
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{} {:?}", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    // The first frame was processed during preroll; count the rest.
    (frames - 1) as f64 / secs
}

fn main() {
    gst::init().unwrap();
    gstbeitseg::plugin_register_static().unwrap();
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/beit-tiny-ade/model.onnx"
    );
    let frames = std::env::var("BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (w, h) in [(320, 240), (1280, 720), (1920, 1080)] {
        let one = fps(model, w, h, "workers=1 intra-threads=1", frames);
        let two = fps(model, w, h, "workers=2 intra-threads=1", frames);
        // The other design: one session using every core for each frame in turn.
        let wide = fps(model, w, h, "workers=1 intra-threads=2", frames);
        println!(
            "{w}x{h}: workers=1 {one:.2} frames/s, workers=2 {two:.2} frames/s (speed-up {:.2}x); \
             one worker, session on 2 threads {wide:.2} frames/s",
            two / one
        );
    }
}
