// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! examples/python/segment.py (gi + numpy, Debian's python3) run with the tree's plugin on a
//! short clip: a line of class shares per frame that add up to 100 %, every frame, the frame's
//! own size (a width whose GRAY8 rows are padded), and the element's `beitseg-stats` messages.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_python_example_prints_class_shares_of_every_frame_and_the_stats() {
    let dir = TempDir::new("python-example");
    // 318 pixels wide: GRAY8 rows of 318 bytes are stored 320 apart.
    let input = dir.join("clip.mp4");
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=30 pattern=ball ! \
         video/x-raw,width=318,height=240,framerate=15/1 ! x264enc ! mp4mux ! \
         filesink location=\"{}\"",
        input.display()
    ));
    play_to_eos(&pipeline, "the clip");

    // The plugin cargo built beside this test (target/<profile>/libgstbeitseg.so).
    let exe = std::env::current_exe().unwrap();
    let plugin_dir = exe.parent().unwrap().parent().unwrap();
    assert!(
        plugin_dir.join("libgstbeitseg.so").is_file(),
        "{plugin_dir:?}"
    );
    let out = Command::new("timeout")
        .args(["120", "/usr/bin/python3"])
        .arg(root().join("examples/python/segment.py"))
        .arg(&input)
        .arg("--model")
        .arg(sample("beit-tiny-ade/model.onnx"))
        .env("GST_PLUGIN_PATH", plugin_dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let frames: Vec<&str> = stdout.lines().filter(|l| l.starts_with("frame ")).collect();
    assert_eq!(frames.len(), 30, "{stdout}");
    for (i, line) in frames.iter().enumerate() {
        assert!(line.starts_with(&format!("frame {i} at ")), "{line}");
        let (head, shares) = line.split_once(": ").unwrap();
        assert!(head.ends_with(", 318x240"), "{line}");
        let total: f64 = shares
            .split(", ")
            .map(|s| {
                let number = s.strip_suffix(" %").unwrap().rsplit(' ').next().unwrap();
                number.parse::<f64>().unwrap()
            })
            .sum();
        // Each share is rounded to 0.01 %.
        assert!((total - 100.0).abs() < 0.5, "{total}: {line}");
    }
    // A 150-class model: the ADE20k names, not numbers.
    assert!(!frames[0].contains("class "), "{}", frames[0]);
    assert!(
        stdout.lines().any(|l| l.starts_with("stats: frames-in=")),
        "no beitseg-stats message: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("30 frames, ONNX Runtime 1.31"),
        "{stdout}"
    );
}
