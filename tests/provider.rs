// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Execution provider selection on a machine without a GPU build of ONNX Runtime: auto falls back
//! to the CPU and says why; an explicitly named GPU provider that cannot load is an error.

mod common;

use common::*;
use gst::prelude::*;

/// Starts a pipeline with `provider`; returns (started, provider-in-use, warnings, errors).
fn start(provider: &str) -> (bool, Option<String>, Vec<String>, Vec<String>) {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=1 ! beitseg name=seg provider={provider} model={} ! fakesink",
        selfie().display()
    ));
    let started = pipeline.set_state(gst::State::Paused).is_ok();
    let in_use =
        element::<gst::Element>(&pipeline, "seg").property::<Option<String>>("provider-in-use");
    let (mut warnings, mut errors) = (Vec::new(), Vec::new());
    for msg in pipeline.bus().unwrap().iter_timed(gst::ClockTime::ZERO) {
        match msg.view() {
            gst::MessageView::Warning(w) => warnings.push(format!("{:?}", w.debug())),
            gst::MessageView::Error(e) => errors.push(format!("{:?}", e.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (started, in_use, warnings, errors)
}

#[test]
fn auto_falls_back_to_cpu_and_says_why() {
    let (started, in_use, warnings, errors) = start("auto");
    assert!(started && errors.is_empty(), "{errors:?}");
    let in_use = in_use.unwrap();
    assert!(
        in_use.starts_with("cpu (tensorrt: ") && in_use.contains("; cuda: "),
        "{in_use}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("provider=auto is using cpu")),
        "{warnings:?}"
    );
}

#[test]
fn a_named_gpu_provider_that_cannot_load_is_an_error() {
    for provider in ["cuda", "tensorrt"] {
        let (started, _, _, errors) = start(provider);
        assert!(
            !started,
            "{provider} started without a GPU build of ONNX Runtime"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("provider={provider} cannot be used"))),
            "{errors:?}"
        );
    }
}

#[test]
fn cpu_is_quiet() {
    let (started, in_use, warnings, errors) = start("cpu");
    assert!(
        started && errors.is_empty() && warnings.is_empty(),
        "{warnings:?} {errors:?}"
    );
    assert_eq!(in_use.as_deref(), Some("cpu"));
}
