// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The `beitseg` command line.

mod common;

use common::*;

#[test]
fn run_writes_a_playable_mp4_with_every_frame() {
    let dir = TempDir::new("cli-run-mp4");
    let out = dir.join("test.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        "test",
        "--num-buffers",
        "30",
        "--provider",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("30 frames"), "{err}");
    assert_eq!(count_video_frames(&out), 30);
}

#[test]
fn run_segments_an_image_into_a_png() {
    let dir = TempDir::new("cli-run-png");
    let out = dir.join("mask.png");
    let photo = astronaut();
    let model = selfie();
    let (ok, _, err) = beitseg(&[
        "run",
        photo.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--mode",
        "mask",
        "--provider",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (w, h, channels, mask) = read_png(&out);
    assert_eq!((w, h, channels), (512, 512, 1));
    let (_, _, _, reference) = read_png(&sample("selfie/astronaut.person.png"));
    let agree = mask
        .iter()
        .zip(&reference)
        .filter(|(m, r)| (**m == 1) == (**r != 0))
        .count();
    assert!(agree as f64 / mask.len() as f64 > 0.99);
}

#[test]
fn bad_arguments_give_one_clear_line_and_a_failure() {
    let dir = TempDir::new("cli-bad-arguments");
    let never = dir.join("never.mp4");
    let (ok, _, err) = beitseg(&["run", "no-such-clip.mp4"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: input no-such-clip.mp4: no such file");
    let (ok, _, err) = beitseg(&["run", "test", "-o", "x.avi"]);
    assert!(
        !ok && err.contains("x.avi") && err.contains(".mp4"),
        "{err}"
    );
    let (ok, _, err) = beitseg(&[
        "run",
        "test",
        "--model",
        "missing.onnx",
        "--provider",
        "cpu",
        "-o",
        never.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("missing.onnx"), "{err}");
}

#[test]
fn inspect_describes_the_model() {
    let (ok, out, err) = beitseg(&[
        "inspect",
        tiny_beit().to_str().unwrap(),
        "--provider",
        "cpu",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("640x640") && out.contains("classes      150"),
        "{out}"
    );
    // Every class, by id, in plain words (no Rust names such as Nchw or F32).
    assert!(
        out.contains("\n    0  wall\n") && out.contains("\n  149  flag\n"),
        "{out}"
    );
    for debug in ["Nchw", "F32", "Stretch", "Bilinear", "Logits"] {
        assert!(!out.contains(debug), "{debug}: {out}");
    }
}

/// A provider that cannot load here still gets the model described.
#[test]
fn inspect_describes_the_model_when_the_provider_cannot_load() {
    let (ok, out, err) = beitseg(&[
        "inspect",
        tiny_beit().to_str().unwrap(),
        "--provider",
        "cuda",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("cuda cannot be used here"), "{out}");
    assert!(out.contains("classes      150"), "{out}");
}
