// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Execution provider selection on a machine without a GPU build of ONNX Runtime: auto falls back
//! to the CPU and says why; an explicitly named GPU provider that cannot load is an error.

mod common;

use common::*;
use gst::prelude::*;

/// What a start said on the bus.
struct Said {
    warnings: Vec<String>,
    infos: Vec<String>,
    errors: Vec<String>,
}

/// Starts a pipeline with `provider`; returns (started, provider-in-use, what the bus said).
fn start(provider: &str) -> (bool, Option<String>, Said) {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=1 ! beitseg name=seg provider={provider} model={} ! fakesink",
        selfie().display()
    ));
    let started = pipeline.set_state(gst::State::Paused).is_ok();
    let in_use =
        element::<gst::Element>(&pipeline, "seg").property::<Option<String>>("provider-in-use");
    let mut said = Said {
        warnings: Vec::new(),
        infos: Vec::new(),
        errors: Vec::new(),
    };
    for msg in pipeline.bus().unwrap().iter_timed(gst::ClockTime::ZERO) {
        match msg.view() {
            gst::MessageView::Warning(w) => said.warnings.push(format!("{:?}", w.debug())),
            gst::MessageView::Info(i) => said.infos.push(format!("{:?}", i.debug())),
            gst::MessageView::Error(e) => said.errors.push(format!("{:?}", e.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (started, in_use, said)
}

/// The runtime here is the CPU wheel: no GPU provider to fall back from, so no warning; the
/// reason stays in `provider-in-use` and an info message.
#[test]
fn auto_on_a_cpu_only_runtime_picks_the_cpu_quietly_and_says_why_in_an_info() {
    let (started, in_use, said) = start("auto");
    assert!(started && said.errors.is_empty(), "{:?}", said.errors);
    let in_use = in_use.unwrap();
    assert!(
        in_use.starts_with("cpu (tensorrt: ") && in_use.contains("; cuda: "),
        "{in_use}"
    );
    assert!(said.warnings.is_empty(), "{:?}", said.warnings);
    assert!(
        said.infos
            .iter()
            .any(|w| w.contains("provider=auto is using cpu")),
        "{:?}",
        said.infos
    );
}

#[test]
fn a_named_gpu_provider_that_cannot_load_is_an_error() {
    for provider in ["cuda", "tensorrt"] {
        let (started, _, Said { errors, .. }) = start(provider);
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
    let (
        started,
        in_use,
        Said {
            warnings, errors, ..
        },
    ) = start("cpu");
    assert!(
        started && errors.is_empty() && warnings.is_empty(),
        "{warnings:?} {errors:?}"
    );
    assert_eq!(in_use.as_deref(), Some("cpu"));
}
