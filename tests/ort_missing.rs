// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Without a loadable ONNX Runtime the element fails to start and says what to do. Its own test
//! binary: ONNX Runtime is loaded once per process.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn unloadable_onnx_runtime_is_an_element_error() {
    // SAFETY: the only test in this process, before any thread reads the environment.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1") };
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=1 ! beitseg name=seg model={} ! fakesink",
        tiny_beit().display()
    ));
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let msg = pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::ZERO)
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => {
                Some(e.debug().map(|d| d.to_string()).unwrap_or_default())
            }
            _ => None,
        })
        .expect("an error message");
    assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    assert!(
        msg.contains("/nonexistent/libonnxruntime.so.1.31.1"),
        "{msg}"
    );
    let seg: gst::Element = element(&pipeline, "seg");
    assert!(seg
        .property::<String>("ort-version")
        .starts_with("not loaded"));
    pipeline.set_state(gst::State::Null).unwrap();
}
