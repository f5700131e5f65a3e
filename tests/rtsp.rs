// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! RTSP with real servers on loopback: a gst-rtsp-server in the test serves the sample clip as a
//! camera (its H.264 as is, 100 frames), and `beitseg run` is the real CLI in a child process.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn an_rtsp_camera_becomes_a_playable_mp4_with_every_frame() {
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-in");
    let out = dir.join("camera.mp4");
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    // Every frame, however busy the machine (live input defaults to dropping when behind).
    let child = spawn(&[
        "run",
        &url,
        "--provider",
        "cpu",
        "--transport",
        "tcp",
        "--drop-policy",
        "none",
        "-o",
        out.to_str().unwrap(),
    ]);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "{err}");
    assert!(
        err.contains("0 dropped before segmentation, 0 reconnections"),
        "{err}"
    );
    assert_eq!(count_video_frames(&out), SAMPLE_FRAMES, "{err}");
}

#[test]
fn the_cli_reconnects_when_the_camera_drops_and_finishes_the_file() {
    let port = free_port();
    let mut camera = Camera::start(port);
    let dir = TempDir::new("rtsp-drop");
    let out = dir.join("camera.mp4");
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let child = spawn(&[
        "run",
        &url,
        "--provider",
        "cpu",
        "--transport",
        "tcp",
        "-o",
        out.to_str().unwrap(),
    ]);
    // Mid-clip, the camera goes away for 2 s (refusing connections), then comes back.
    std::thread::sleep(Duration::from_millis(2000));
    camera.stop();
    std::thread::sleep(Duration::from_millis(2000));
    let _camera = Camera::start(port);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "{err}");
    assert!(err.contains("reconnecting in"), "{err}");
    assert!(err.contains("receiving frames again"), "{err}");
    // Some frames before the drop, then the whole clip again: one file, still playable.
    let frames = count_video_frames(&out);
    assert!(
        frames > SAMPLE_FRAMES && frames < 2 * SAMPLE_FRAMES,
        "{frames} frames: {err}"
    );
}

#[test]
fn a_camera_that_never_answers_is_an_error_when_reconnecting_is_off_or_given_up() {
    let url = format!("rtsp://127.0.0.1:{}/cam", free_port());
    let (ok, _, err) = beitseg(&[
        "run",
        &url,
        "--provider",
        "cpu",
        "--no-reconnect",
        "-o",
        "/tmp/beitseg-never.mp4",
    ]);
    assert!(!ok);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!("error: camera {url}: Could not open resource")),
        "{err}"
    );
    let (ok, _, err) = beitseg(&[
        "run",
        &url,
        "--provider",
        "cpu",
        "--give-up-after",
        "1.5",
        "-o",
        "/tmp/beitseg-never.mp4",
    ]);
    assert!(!ok);
    assert!(err.contains("reconnecting in"), "{err}");
    assert!(err.contains("gave up after 2 s"), "{err}");
}

#[test]
fn run_serves_the_segmented_stream_over_rtsp_to_a_second_client() {
    init_gst();
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/seg");
    let child = spawn(&[
        "run",
        "test",
        "--num-buffers",
        "2000",
        "--model",
        tiny_beit().to_str().unwrap(),
        "--mode",
        "color",
        // One core for this test, the other for the tests beside it.
        "--workers",
        "1",
        "--provider",
        "cpu",
        "-o",
        &url,
    ]);
    let decoded = pull_rtsp_frames(&url, 25, Duration::from_secs(40));
    // Ctrl-C: the CLI ends the stream and exits cleanly.
    interrupt(&child);
    let (ok, err) = finish(child, Duration::from_secs(30));
    assert_eq!(decoded.len(), 25, "{err}");
    let caps = decoded[0].caps().unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap()
        ),
        (1280, 720)
    );
    // Segmented: the test pattern is a white ball on black; colour mode paints every pixel with
    // its class colour (the ADE20k palette has almost no black).
    let buffer = decoded[10].buffer().unwrap().map_readable().unwrap();
    let dark = buffer
        .chunks_exact(3)
        .filter(|p| p.iter().all(|&c| c < 24))
        .count();
    assert!(dark * 10 < buffer.len() / 3, "{dark} dark pixels");
    assert!(ok, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(err.contains(&format!("served {url}")), "{err}");
}
