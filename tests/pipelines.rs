// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Every pipelines/ script that needs no camera or display, run as a user would on the sample
//! clip and photos; the RTSP ones against a real gst-rtsp-server camera on loopback.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use gst::prelude::*;

fn script(name: &str, args: &[&str]) -> (bool, String) {
    script_with(&[], name, args)
}

/// Runs a pipelines/ script, at most 5 minutes (a hang fails the test instead of stalling it).
fn script_with(env: &[(&str, &str)], name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("300")
        .arg(root().join("pipelines").join(name))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The first frame of a video file, decoded to GRAY8.
fn first_gray_frame(path: &Path) -> (usize, usize, Vec<u8>) {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! \
         appsink name=out sync=false",
        path.display()
    ));
    let sink: gst_app::AppSink = element(&pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(60))
        .unwrap_or_else(|| panic!("{}: no frame within 60 s", path.display()));
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let pixels = frame_rows(sample.buffer().unwrap(), &info);
    pipeline.set_state(gst::State::Null).unwrap();
    (w, h, pixels)
}

/// Person pixels of a mask from the bundled two-class model: every value a class id, and the
/// astronaut/person present.
fn person_fraction(mask: &[u8]) -> f64 {
    assert!(mask.iter().all(|&v| v <= 1), "values other than class ids");
    mask.iter().filter(|&&v| v == 1).count() as f64 / mask.len() as f64
}

#[test]
fn file_to_mp4() {
    let dir = TempDir::new("pipeline-file");
    let out = dir.join("seg.mp4");
    let (ok, log) = script(
        "file-to-mp4.sh",
        &[
            sample("sample.mp4").to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(count_video_frames(&out), SAMPLE_FRAMES);
}

#[test]
fn overlay_and_mask_from_one_inference() {
    let dir = TempDir::new("pipeline-two");
    let (ok, log) = script(
        "overlay-and-mask.sh",
        &[
            sample("sample.mp4").to_str().unwrap(),
            dir.0.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(count_video_frames(&dir.join("overlay.mp4")), SAMPLE_FRAMES);
    assert_eq!(count_video_frames(&dir.join("mask.mkv")), SAMPLE_FRAMES);
    // Lossless: the mask file still holds class ids only.
    let (w, h, mask) = first_gray_frame(&dir.join("mask.mkv"));
    assert_eq!((w, h), (640, 360));
    let person = person_fraction(&mask);
    assert!(person > 0.02 && person < 0.9, "{person}");
}

/// Before: at 12 frames/s the script hung for ever (the mask sink prerolled with its queue
/// full while x264enc still waited for its first second of frames).
#[test]
fn overlay_and_mask_at_12_frames_a_second() {
    let dir = TempDir::new("pipeline-two-12fps");
    let input = clip(&dir, "s12.mp4", 36, 12, false);
    let (ok, log) = script(
        "overlay-and-mask.sh",
        &[input.to_str().unwrap(), dir.0.to_str().unwrap()],
    );
    assert!(ok, "{log}");
    assert_eq!(count_video_frames(&dir.join("overlay.mp4")), 36);
    assert_eq!(count_video_frames(&dir.join("mask.mkv")), 36);
}

#[test]
fn images_to_masks() {
    let dir = TempDir::new("pipeline-images");
    let photo = astronaut();
    let (ok, log) = script(
        "images-to-masks.sh",
        &[dir.0.to_str().unwrap(), photo.to_str().unwrap()],
    );
    assert!(ok, "{log}");
    let (w, h, channels, mask) = read_png(&dir.join("astronaut.png"));
    assert_eq!((w, h, channels), (512, 512, 1));
    let person = person_fraction(&mask);
    assert!(person > 0.1, "{person}");
}

/// `beitseg serve` playing the sample clip as a camera does (re-encoded: constrained baseline, no
/// B-frames), until dropped.
struct ServedCamera(std::process::Child);

impl ServedCamera {
    fn start(port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_beitseg"))
            .args([
                "serve",
                sample("sample.mp4").to_str().unwrap(),
                &format!("rtsp://127.0.0.1:{port}/cam"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "beitseg serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ServedCamera(child)
    }
}

impl Drop for ServedCamera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rtsp_camera_to_file() {
    let port = free_port();
    let _camera = ServedCamera::start(port);
    let dir = TempDir::new("pipeline-rtsp");
    let out = dir.join("camera.mp4");
    // The script keeps up with a camera by dropping frames when it falls behind; here every frame
    // must come out, however busy the machine is.
    let (ok, log) = script_with(
        &[("PROPS", "classes=person drop-policy=none")],
        "rtsp-to-file.sh",
        &[
            &format!("rtsp://127.0.0.1:{port}/cam"),
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(count_video_frames(&out), SAMPLE_FRAMES);
}

#[test]
fn rtsp_camera_restreamed_over_rtsp() {
    let camera_port = free_port();
    let _camera = ServedCamera::start(camera_port);
    let url = format!("rtsp://127.0.0.1:{}/segmented", free_port());
    let child = Command::new(root().join("pipelines/rtsp-restream.sh"))
        .args([&format!("rtsp://127.0.0.1:{camera_port}/cam"), &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let frames = pull_rtsp_frames(&url, 10, Duration::from_secs(30));
    interrupt(&child);
    let (_, log) = finish(child, Duration::from_secs(30));
    assert_eq!(frames.len(), 10, "{log}");
    let caps = frames[0].caps().unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<i32>("width").unwrap(), 640, "{log}");
}

#[test]
fn webcam_to_display_says_when_there_is_no_camera() {
    let (ok, log) = script("webcam-to-display.sh", &["/dev/video-none"]);
    assert!(!ok);
    assert!(
        log.contains("/dev/video-none: no such video device"),
        "{log}"
    );
}
