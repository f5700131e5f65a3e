// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Bad models and bad files: each fails the state change with an element error on the bus that
//! names the file and the problem. Nothing panics or aborts.

mod common;

use common::*;
use gst::prelude::*;

/// Starts `videotestsrc ! beitseg … ! fakesink` and returns the element error's text, or None
/// when the pipeline started.
fn start(props: &[(&str, String)]) -> Option<String> {
    init_gst();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 1)
        .build()
        .unwrap();
    let mut seg = gst::ElementFactory::make("beitseg");
    for (k, v) in props {
        seg = seg.property_from_str(k, v);
    }
    let seg = seg.build().unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &seg, &sink]).unwrap();
    gst::Element::link_many([&src, &seg, &sink]).unwrap();
    let started = pipeline.set_state(gst::State::Paused);
    let bus = pipeline.bus().unwrap();
    let error = bus
        .iter_timed(gst::ClockTime::from_seconds(0))
        .find_map(|msg| match msg.view() {
            gst::MessageView::Error(e) => {
                assert_eq!(
                    e.src().map(|s| s.name().to_string()),
                    Some(seg.name().to_string())
                );
                Some(format!(
                    "{} | {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ))
            }
            _ => None,
        });
    pipeline.set_state(gst::State::Null).unwrap();
    match (started, error) {
        (Err(_), Some(e)) => Some(e),
        (Ok(_), None) => None,
        (s, e) => panic!("state change {s:?} but error {e:?}"),
    }
}

fn model(path: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![("model", path.display().to_string())]
}

fn expect_error(props: &[(&str, String)], names: &str, says: &str) {
    let err = start(props).unwrap_or_else(|| panic!("{props:?} started"));
    assert!(err.contains(names), "error does not name {names}: {err}");
    assert!(
        err.to_lowercase().contains(&says.to_lowercase()),
        "error does not say {says:?}: {err}"
    );
}

#[test]
fn bad_models_fail_the_state_change_with_a_clear_error() {
    let cases = [
        ("does-not-exist.onnx", "cannot open the file"),
        ("missing_data", "is a directory"),
        ("empty.onnx", "empty"),
        ("random_bytes.onnx", "not a loadable ONNX model"),
        ("truncated.onnx", "not a loadable ONNX model"),
        ("missing_data/model.onnx", "model.onnx.data"),
        ("short_data/model.onnx", "not a loadable ONNX model"),
        ("wrong_rank.onnx", "rank 3"),
        ("wrong_channels.onnx", "3 colour channels"),
        ("wrong_dtype.onnx", "float32 or float16"),
        ("dynamic_size.onnx", "must be fixed"),
        ("two_inputs.onnx", "2 inputs"),
        ("labels_mismatch.onnx", "5 classes but the labels name 3"),
        ("metadata_not_json.onnx", "not valid JSON"),
        ("no_outputs.onnx", "no outputs"),
    ];
    for (name, says) in cases {
        let path = fixture(name);
        expect_error(&model(&path), &path.display().to_string(), says);
    }
}

#[test]
fn no_model_is_an_error_too() {
    expect_error(&[], "model", "no model set");
}

#[test]
fn bad_labels_and_palette_files_are_named() {
    let m = fixture("labels_mismatch.onnx").display().to_string();
    let with = |k: &'static str, f: &str| {
        let mut p = model(std::path::Path::new(&m));
        p.push((k, fixture(f).display().to_string()));
        p
    };
    for (props, file, says) in [
        (with("labels", "empty.txt"), "empty.txt", "no labels"),
        (with("labels", "latin1.txt"), "latin1.txt", "not UTF-8"),
        (
            with("labels", "labels3.txt"),
            "labels3.txt",
            "5 classes but the labels file",
        ),
        (
            with("palette", "palette_bad.txt"),
            "palette_bad.txt",
            "line 2",
        ),
        (with("palette", "nope.txt"), "nope.txt", "cannot read"),
        (
            with("labels", "labels_bad.json"),
            "labels_bad.json",
            "not valid JSON",
        ),
        (with("palette", "empty.txt"), "empty.txt", "no colours"),
        (with("palette", "latin1.txt"), "latin1.txt", "not UTF-8"),
        (
            with("palette", "palette_short.json"),
            "palette_short.json",
            "colour 1",
        ),
    ] {
        expect_error(&props, file, says);
    }
    // The 150-class model with a 5-colour palette.
    let mut p = model(&fixture("plain_150.onnx"));
    p.push(("palette", fixture("palette5.txt").display().to_string()));
    expect_error(&p, "palette5.txt", "150 classes but the palette");
    let mut p = model(&fixture("plain_150.onnx"));
    p.push(("classes", "person,unicorn".into()));
    expect_error(&p, "classes", "unicorn");
}

#[test]
fn valid_overrides_and_defaults_start() {
    // Labels and palette files that fix a model whose metadata disagrees with its output.
    let mut p = model(&fixture("labels_mismatch.onnx"));
    p.push(("labels", fixture("labels5.json").display().to_string()));
    p.push(("palette", fixture("palette5.txt").display().to_string()));
    assert_eq!(start(&p), None);
    // No metadata: 150 classes get the ADE20k tables, others generic ones; dynamic batch is fine.
    let mut p = model(&fixture("plain_150.onnx"));
    p.push(("classes", "person,sky,0".into()));
    assert_eq!(start(&p), None);
    assert_eq!(start(&model(&fixture("plain_21_dynamic_batch.onnx"))), None);
    // The MediaPipe model exactly as shipped in ../shared (no beitseg metadata).
    let shared = root().join("../shared/models/selfie_segmentation_256x256.onnx");
    assert!(shared.is_file(), "fixture {} is missing", shared.display());
    assert_eq!(start(&model(&shared)), None);
}
