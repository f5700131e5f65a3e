// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A worker that fails mid-stream (an inference error, or a panic) becomes an element error; the
//! frames before it come out, the pipeline stops cleanly, and the process lives on. The faults
//! come from the test hook `gstbeitseg::test_hooks::set_worker_fault` (feature `test-hooks`),
//! which is process-wide, so this binary has its own process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gstbeitseg::test_hooks::{self, Fault};

/// Runs 30 frames with a fault at frame 10; returns (frames out, the error text).
fn run_with_fault(fault: Fault, workers: u32) -> (usize, String) {
    test_hooks::set_worker_fault(Some((fault, 10)));
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,format=RGB,width=64,height=48 ! \
         beitseg model=\"{}\" workers={workers} max-in-flight=2 ! appsink name=out sync=false",
        selfie().display()
    ));
    let sink: gst_app::AppSink = element(&pipeline, "out");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    let t0 = Instant::now();
    let error = loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "no error in 60 s");
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    break format!("{} {}", e.error(), e.debug().unwrap_or_default())
                }
                _ => panic!("EOS although frame 10 failed ({fault:?})"),
            }
        }
        if sink
            .try_pull_sample(gst::ClockTime::from_mseconds(20))
            .is_some()
        {
            frames += 1;
        }
    };
    // Frames pushed just before the error may still wait in the appsink.
    while sink
        .try_pull_sample(gst::ClockTime::from_mseconds(100))
        .is_some()
    {
        frames += 1;
    }
    // Stopping is bounded: nothing waits for the failed frame.
    let t = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    (frames, error)
}

#[test]
fn an_inference_error_or_a_worker_panic_becomes_an_element_error() {
    for workers in [1, 3] {
        let (frames, error) = run_with_fault(Fault::Error, workers);
        assert!(
            error.contains("inference failed at frame 10"),
            "{workers} workers: {error}"
        );
        // Frames come out in order, so exactly the nine before the failed one.
        assert_eq!(frames, 9, "{workers} workers");

        let (frames, error) = run_with_fault(Fault::Panic, workers);
        assert!(error.contains("panicked"), "{workers} workers: {error}");
        assert_eq!(frames, 9, "{workers} workers");
    }
    // The process is still here, and a new pipeline without faults runs to the end.
    test_hooks::set_worker_fault(None);
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGB,width=64,height=48 ! \
         beitseg model=\"{}\" ! fakesink",
        selfie().display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert_eq!(msg.type_(), gst::MessageType::Eos);
    pipeline.set_state(gst::State::Null).unwrap();
}
