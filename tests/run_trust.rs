// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run` with recordings people care about: it never hangs, never damages a file it
//! did not finish, takes any path, finishes on SIGTERM, keeps the audio, keeps class ids
//! lossless, writes video players open, and checks every option before it starts.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// The caps of a file's streams, as its demuxer gives them ("video/x-h264, …"): each stream
/// read to its end into a fakesink.
fn streams(path: &Path) -> Vec<String> {
    let pipeline = launch_pipeline("filesrc name=src ! parsebin name=p");
    element::<gst::Element>(&pipeline, "src").set_property("location", path);
    let found = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let parse: gst::Element = element(&pipeline, "p");
    parse.connect_pad_added({
        let found = found.clone();
        let pipeline = pipeline.downgrade();
        move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            found.lock().unwrap().push(caps.to_string());
            let pipeline = pipeline.upgrade().unwrap();
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .unwrap();
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        }
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the file was not read to its end in 30 s");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "{}: {msg:?}",
        path.display()
    );
    let found = found.lock().unwrap().clone();
    found
}

fn has_stream(path: &Path, kind: &str) -> bool {
    streams(path).iter().any(|c| c.starts_with(kind))
}

/// The distinct values of a video file's frames decoded to GRAY8 (class ids, for a mask).
fn gray_values(path: &Path) -> std::collections::BTreeSet<u8> {
    let pipeline = launch_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! \
         appsink name=out sync=false",
        path.display()
    ));
    let sink: gst_app::AppSink = element(&pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut values = std::collections::BTreeSet::new();
    while let Ok(sample) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        values.extend(frame_rows(sample.buffer().unwrap(), &info));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    values
}

fn pngs_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .count()
        })
        .unwrap_or(0)
}

/// Lines of `stderr` that are not the model's loading status: the error, and nothing else.
fn error_lines(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| !l.starts_with("loading ") && !l.starts_with("loaded "))
        .count()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Before: at 12 frames/s (and below) the run stopped at 14 frames for ever, with a 0-byte
/// file, because the mask sink sat prerolled with its queue full while x264enc still waited
/// for its first frames.
#[test]
fn an_overlay_and_its_masks_never_deadlock_at_low_frame_rates() {
    let dir = TempDir::new("trust-low-fps");
    for (fps, frames) in [(12, 36), (1, 20)] {
        let input = clip(&dir, &format!("s{fps}.mp4"), frames, fps, false);
        let out = dir.join(&format!("mq{fps}.mp4"));
        let masks = dir.join(&format!("mq{fps}"));
        let child = spawn(&[
            "run",
            s(&input),
            "-o",
            s(&out),
            "--mask-output",
            &format!("{}/", masks.display()),
        ]);
        let (ok, err) = finish(child, Duration::from_secs(90));
        assert!(ok, "{fps} frames/s: {err}");
        assert_eq!(count_video_frames(&out), frames as usize, "{fps}: {err}");
        assert_eq!(pngs_in(&masks), frames as usize, "{fps}: {err}");
    }
}

/// Before: each of these left keep.mp4 at 0 bytes (or emptied the input).
#[test]
fn a_failed_run_leaves_every_existing_file_as_it_was() {
    let dir = TempDir::new("trust-keep");
    let keep = dir.join("keep.mp4");
    std::fs::copy(sample("sample.mp4"), &keep).unwrap();
    let before = std::fs::read(&keep).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a video\n").unwrap();
    let link = dir.join("link.mp4");
    std::os::unix::fs::symlink(&keep, &link).unwrap();
    let missing_model = dir.join("missing.onnx");
    let clip_path = sample("sample.mp4");
    let keep_uri = format!("file://{}", keep.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // -y: even a run allowed to replace keep.mp4 leaves it as it was when it fails.
        (vec![s(&text), "-o", s(&keep), "-y"], "input"),
        (
            vec![
                s(&clip_path),
                "--model",
                s(&missing_model),
                "-o",
                s(&keep),
                "-y",
            ],
            "no such file",
        ),
        (
            vec![s(&clip_path), "--classes", "nosuch", "-o", s(&keep), "-y"],
            "--classes nosuch",
        ),
        // Without -y it is not replaced at all.
        (vec![s(&clip_path), "-o", s(&keep)], "already exists"),
        (vec![s(&keep), "-o", s(&keep)], "that is the input"),
        (vec![s(&keep), "-o", s(&link)], "that is the input"),
        (vec![&keep_uri, "-o", s(&keep)], "that is the input"),
    ];
    for (args, says) in cases {
        let mut full = vec!["run"];
        full.extend(args.iter().copied());
        let (ok, _, err) = beitseg(&full);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(error_lines(&err), 1, "{args:?}: {err}");
        assert!(
            std::fs::read(&keep).unwrap() == before,
            "{args:?} changed keep.mp4"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{args:?} left {leftovers:?}");
    }
    // The same file for the video and the masks.
    let same = dir.join("same.mkv");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "-o",
        s(&same),
        "--mask-output",
        s(&same),
    ]);
    assert!(!ok && err.contains("the same as -o"), "{err}");
    // A folder that holds an earlier run's frames is not mixed into.
    let masks = dir.join("masks");
    std::fs::create_dir_all(&masks).unwrap();
    std::fs::write(masks.join("000000.png"), b"earlier").unwrap();
    let (ok, _, err) = beitseg(&["run", s(&sample("sample.mp4")), "-o", s(&masks)]);
    assert!(!ok && err.contains("earlier run"), "{err}");
    assert_eq!(std::fs::read(masks.join("000000.png")).unwrap(), b"earlier");
}

/// Before: `100%done/` wrote to a mangled name and `x%s%s…/` crashed multifilesink.
#[test]
fn paths_are_not_format_strings() {
    let dir = TempDir::new("trust-percent");
    let input = clip(&dir, "five.mp4", 5, 25, false);
    for name in [
        "100%done",
        "x%s%s%s%s%s%s%s%s%s%s",
        "a \"quoted\" \\ name %d",
    ] {
        let folder = dir.join(name);
        let (ok, _, err) = beitseg(&["run", s(&input), "-o", &format!("{}/", folder.display())]);
        assert!(ok, "{name}: {err}");
        assert_eq!(pngs_in(&folder), 5, "{name}: {err}");
        assert!(folder.join("000004.png").is_file(), "{name}");
        let file = dir.join(&format!("{name}.mp4"));
        let (ok, _, err) = beitseg(&["run", s(&input), "-o", s(&file)]);
        assert!(ok, "{name}: {err}");
        assert_eq!(count_video_frames(&file), 5, "{name}");
    }
}

/// Before: SIGTERM (systemd, docker) left an unplayable file.
#[test]
fn sigterm_finishes_a_playable_file_with_what_was_segmented() {
    let dir = TempDir::new("trust-sigterm");
    let out = dir.join("long.mp4");
    let mut child = spawn(&[
        "run",
        "test",
        "--num-buffers",
        "100000",
        "--workers",
        "1",
        "-o",
        s(&out),
    ]);
    let stderr = Stderr::watch(&mut child);
    // Segmenting (the partial file grows), then SIGTERM.
    let partial = dir.join("long.partial.mp4");
    wait_until(Duration::from_secs(60), || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 10_000)
    })
    .unwrap_or_else(|()| panic!("nothing written in 60 s: {}", stderr.text()));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let (status, err) = stderr.finish_status(child, Duration::from_secs(60));
    // 128 + SIGTERM, once the file is finished.
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted: finishing"), "{err}");
    assert!(!partial.exists(), "the partial file is left: {err}");
    let frames = count_video_frames(&out);
    assert!(frames > 0 && frames < 100000, "{frames}: {err}");
}

/// Before: every output was video only.
#[test]
fn audio_is_kept_in_every_container_and_left_out_on_request() {
    let dir = TempDir::new("trust-audio");
    let input = clip(&dir, "av.mp4", 25, 25, true);
    assert!(has_stream(&input, "audio/"), "{:?}", streams(&input));
    for ext in ["mp4", "mkv", "webm"] {
        let out = dir.join(&format!("seg.{ext}"));
        let (ok, _, err) = beitseg(&["run", s(&input), "-o", s(&out)]);
        assert!(ok, "{ext}: {err}");
        let found = streams(&out);
        assert!(
            found.iter().any(|c| c.starts_with("audio/")),
            "{ext}: {found:?}"
        );
        assert_eq!(count_video_frames(&out), 25, "{ext}");
    }
    let out = dir.join("silent.mp4");
    let (ok, _, err) = beitseg(&["run", s(&input), "-o", s(&out), "--no-audio"]);
    assert!(ok, "{err}");
    assert!(!has_stream(&out, "audio/"), "{:?}", streams(&out));
}

/// Before: `--mode mask -o mm.mkv` wrote H.264 (45 distinct values for 2 classes).
#[test]
fn class_ids_are_written_losslessly_or_refused() {
    let dir = TempDir::new("trust-lossless");
    let input = clip(&dir, "ten.mp4", 10, 25, false);
    let mkv = dir.join("mm.mkv");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "--mode",
        "mask",
        "-o",
        s(&mkv),
    ]);
    assert!(ok, "{err}");
    let values = gray_values(&mkv);
    // The bundled model has two classes: every value is 0 or 1, and both occur.
    assert_eq!(values, [0u8, 1].into_iter().collect(), "{values:?}");
    for ext in ["mp4", "webm"] {
        let out = dir.join(&format!("mm.{ext}"));
        let (ok, _, err) = beitseg(&["run", s(&input), "--mode", "mask", "-o", s(&out)]);
        assert!(!ok && err.contains("lossless"), "{ext}: {err}");
        assert!(!out.exists());
    }
    let (ok, _, err) = beitseg(&["run", s(&input), "--mask-output", s(&dir.join("m.mp4"))]);
    assert!(!ok && err.contains("lossless"), "{err}");
}

/// Before: a 4:4:4 input gave 4:4:4 H.264, which browsers and many players do not open.
#[test]
fn h264_outputs_are_4_2_0() {
    let dir = TempDir::new("trust-420");
    let input = dir.join("y444.mkv");
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,format=Y444,width=320,height=240 ! \
         x264enc ! matroskamux ! filesink location=\"{}\"",
        input.display()
    ));
    play_to_eos(&pipeline, "the 4:4:4 clip");
    assert!(
        streams(&input).iter().any(|c| c.contains("4:4:4")),
        "{:?}",
        streams(&input)
    );
    let out = dir.join("seg.mp4");
    let (ok, _, err) = beitseg(&["run", s(&input), "-o", s(&out)]);
    assert!(ok, "{err}");
    let found = streams(&out);
    assert!(
        found
            .iter()
            .any(|c| c.contains("chroma-format=(string)4:2:0")),
        "{found:?}"
    );
}

/// Before: out-of-range values were a GLib warning and exit 0; most properties had no flag.
#[test]
fn every_element_property_has_a_checked_flag() {
    let dir = TempDir::new("trust-flags");
    let input = clip(&dir, "ten.mp4", 10, 25, false);
    let out = dir.join("x.mp4");
    for (flag, value, says) in [
        (
            "--batch-size",
            "0",
            "--batch-size 0: must be between 1 and 64",
        ),
        (
            "--workers",
            "300",
            "--workers 300: must be between 0 and 256",
        ),
        ("--bitrate", "0", "--bitrate 0: must be between"),
        (
            "--interval",
            "0",
            "--interval 0: must be between 1 and 1000",
        ),
        (
            "--max-in-flight",
            "5000",
            "--max-in-flight 5000: must be between 0 and 1024",
        ),
        (
            "--batch-timeout",
            "99999",
            "--batch-timeout 99999: must be between 0 and 10000",
        ),
        (
            "--smoothing",
            "1.5",
            "--smoothing 1.5: must be between 0 and 0.99",
        ),
        ("--resize", "crop", "invalid value 'crop'"),
        (
            "--labels",
            "/no/such/labels.txt",
            "--labels /no/such/labels.txt: no such file",
        ),
        ("--provider", "gpu", "invalid value 'gpu'"),
        (
            "--duration",
            "-1",
            "--duration -1: must be a positive number of seconds",
        ),
        ("--alpha", "-0.1", "--alpha -0.1: must be between 0 and 1"),
        (
            "--segment-time",
            "0",
            "--segment-time 0: must be a positive number",
        ),
    ] {
        let (ok, _, err) = beitseg(&["run", s(&input), flag, value, "-o", s(&out)]);
        assert!(!ok, "{flag} {value} succeeded");
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(!out.exists(), "{flag} {value} wrote {}", out.display());
    }
    // Accepted values reach the element and the run.
    let (ok, _, err) = beitseg(&[
        "run",
        s(&input),
        "--interval",
        "3",
        "--resize",
        "letterbox",
        "--intra-threads",
        "1",
        "--max-in-flight",
        "2",
        "--batch-timeout",
        "0",
        "--graph-cache",
        "off",
        "-o",
        s(&out),
    ]);
    assert!(ok, "{err}");
    assert_eq!(count_video_frames(&out), 10);
}

#[test]
fn frames_and_duration_limit_a_run() {
    let dir = TempDir::new("trust-limit");
    let out = dir.join("ten.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "--frames",
        "10",
        "-o",
        s(&out),
    ]);
    assert!(ok, "{err}");
    assert_eq!(count_video_frames(&out), 10, "{err}");
    // Frames past the limit are released cleanly (before: a GStreamer-CRITICAL for each).
    assert!(!err.contains("CRITICAL"), "{err}");
    let out = dir.join("second.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "--duration",
        "1",
        "-o",
        s(&out),
    ]);
    assert!(ok, "{err}");
    // The sample runs at 25 frames/s.
    assert_eq!(count_video_frames(&out), 25, "{err}");
}

/// One line a person can act on, without GStreamer's element names or source paths.
#[test]
fn bad_inputs_get_one_plain_line() {
    let dir = TempDir::new("trust-errors");
    let random = dir.join("random.mp4");
    std::fs::write(
        &random,
        (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let audio_only = dir.join("audio.mp4");
    let pipeline = launch_pipeline(&format!(
        "audiotestsrc num-buffers=20 ! avenc_aac ! mp4mux ! filesink location=\"{}\"",
        audio_only.display()
    ));
    play_to_eos(&pipeline, "the audio-only file");
    // Past the default --max-resolution (8K): refused from its header, before decoding.
    let photos = dir.join("photos");
    std::fs::create_dir(&photos).unwrap();
    let huge = photos.join("huge.png");
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=1 pattern=black ! video/x-raw,width=8000,height=4504 ! pngenc ! \
         filesink location=\"{}\"",
        huge.display()
    ));
    play_to_eos(&pipeline, "the 8000x4504 photo");
    let out = dir.join("out.mp4");
    for (input, says) in [
        (dir.0.clone(), "a folder"),
        (random.clone(), "not a video or image file"),
        (audio_only.clone(), "no video stream"),
        (
            huge.clone(),
            "8000x4504 frames are larger than --max-resolution 7680x4320",
        ),
    ] {
        let (ok, _, err) = beitseg(&["run", s(&input), "-o", s(&out)]);
        assert!(!ok, "{}", input.display());
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.starts_with(&format!("error: input {}: {says}", input.display())),
            "{line}"
        );
        // Checked before the model loads.
        assert!(!err.contains("loading"), "{err}");
        assert!(
            !line.contains(".c:") && !line.contains("qtdemux") && !line.contains("dec:"),
            "{line}"
        );
    }
    // The same photo in a folder of photos: refused, and no empty output folder left behind.
    let pngs = dir.join("pngs");
    let (ok, _, err) = beitseg(&["run", s(&photos), "-o", &format!("{}/", s(&pngs))]);
    assert!(!ok);
    assert!(
        err.trim().starts_with(&format!(
            "error: input {}: 8000x4504 frames are larger than",
            huge.display()
        )),
        "{err}"
    );
    assert!(!pngs.exists());
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "--classes",
        "persn",
        "-o",
        s(&out),
    ]);
    assert!(!ok);
    assert!(err.contains("closest: person"), "{err}");
    assert!(err.contains("beitseg inspect"), "{err}");
    assert_eq!(error_lines(&err), 1, "{err}");
}

/// The CPU runtime has no GPU provider to fall back from: no warning line.
#[test]
fn provider_auto_on_a_cpu_only_runtime_says_nothing() {
    let dir = TempDir::new("trust-quiet");
    let out = dir.join("q.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&sample("sample.mp4")),
        "--frames",
        "2",
        "-o",
        s(&out),
    ]);
    assert!(ok, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn serve_refuses_what_is_not_video() {
    let dir = TempDir::new("trust-serve");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let (ok, _, err) = beitseg(&["serve", s(&text), "rtsp://127.0.0.1:9/cam"]);
    assert!(!ok && err.contains("no video stream"), "{err}");
}

/// `serve --loop` plays the clip on and on: a client gets more frames than the clip holds.
#[test]
fn serve_loop_plays_the_file_on_and_on() {
    init_gst();
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let mut child = spawn(&["serve", s(&sample("sample.mp4")), &url, "--loop"]);
    let stderr = Stderr::watch(&mut child);
    stderr.wait_for("in a loop at", Duration::from_secs(30));
    let frames = pull_rtsp_frames(&url, SAMPLE_FRAMES + 30, Duration::from_secs(60));
    // Ctrl-C is how a server ends: exit 0.
    interrupt(&child);
    let (ok, err) = stderr.finish(child, Duration::from_secs(30));
    assert_eq!(frames.len(), SAMPLE_FRAMES + 30, "{err}");
    assert!(ok, "{err}");
}

/// Before: SIGINT while the model loaded took up to 14 s and left a 0-byte file. A model read
/// from a named pipe that nobody writes keeps the run loading for as long as the test likes.
#[test]
fn sigint_while_the_model_loads_stops_at_once_and_leaves_nothing() {
    let dir = TempDir::new("trust-sigint-loading");
    let fifo = dir.join("model.onnx");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = dir.join("never.mp4");
    let mut child = spawn(&[
        "run",
        s(&sample("sample.mp4")),
        "--model",
        s(&fifo),
        "-o",
        s(&out),
    ]);
    let stderr = Stderr::watch(&mut child);
    stderr.wait_for("loading model.onnx", Duration::from_secs(30));
    let t0 = std::time::Instant::now();
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    // 128 + SIGINT, nothing written.
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted while loading the model"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "model.onnx")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Writes `frames` frames of `w`x`h` test pattern as lossless FFV1 in Matroska (any size).
fn ffv1_clip(dir: &TempDir, name: &str, w: u32, h: u32, frames: u32) -> PathBuf {
    let path = dir.join(name);
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format=I420,width={w},height={h} ! \
         avenc_ffv1 ! matroskamux ! filesink name=out"
    ));
    element::<gst::Element>(&pipeline, "out").set_property("location", &path);
    play_to_eos(&pipeline, "the FFV1 clip");
    path
}

/// The size of a video file's first frame.
fn frame_size(path: &Path) -> (i32, i32) {
    let pipeline = launch_pipeline(
        "filesrc name=src ! decodebin ! videoconvert ! appsink name=out sync=false",
    );
    element::<gst::Element>(&pipeline, "src").set_property("location", path);
    let sink: gst_app::AppSink = element(&pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    let caps = sample.caps().unwrap();
    let s = caps.structure(0).unwrap();
    (s.get("width").unwrap(), s.get("height").unwrap())
}

/// Before: an odd-sized input failed with "Can not initialize x264 encoder", and frames too
/// small for it with "Internal data stream error".
#[test]
fn odd_and_tiny_frames_give_playable_video_or_a_clear_error() {
    let dir = TempDir::new("trust-sizes");
    let odd = ffv1_clip(&dir, "odd.mkv", 321, 241, 5);
    let out = dir.join("odd.mp4");
    let (ok, _, err) = beitseg(&["run", s(&odd), "-o", s(&out)]);
    assert!(ok, "{err}");
    assert_eq!(count_video_frames(&out), 5);
    assert_eq!(frame_size(&out), (320, 240));
    let tiny = ffv1_clip(&dir, "tiny.mkv", 8, 8, 3);
    let out = dir.join("tiny.mp4");
    let (ok, _, err) = beitseg(&["run", s(&tiny), "-o", s(&out)]);
    assert!(!ok);
    assert!(
        err.contains("mp4mux cannot take 8x8 frames (it takes at least 16x16)"),
        "{err}"
    );
    assert_eq!(error_lines(&err), 1, "{err}");
    // PNGs take any size.
    let (ok, _, err) = beitseg(&[
        "run",
        s(&tiny),
        "-o",
        &format!("{}/", dir.join("tiny").display()),
    ]);
    assert!(ok, "{err}");
}

/// A JPEG photo whose EXIF says "rotate 90° clockwise" (orientation 6), as phones write them.
fn rotated_photo(dir: &TempDir) -> PathBuf {
    let plain = dir.join("plain.jpg");
    let pipeline = launch_pipeline(
        "videotestsrc num-buffers=1 ! video/x-raw,width=320,height=240 ! jpegenc ! \
         filesink name=out",
    );
    element::<gst::Element>(&pipeline, "out").set_property("location", &plain);
    play_to_eos(&pipeline, "the photo");
    let jpeg = std::fs::read(&plain).unwrap();
    // APP1 "Exif": a little-endian TIFF header, one directory, one entry: 0x0112 SHORT 6.
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = vec![0xff, 0xe1];
    app1.extend(((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend(b"Exif\0\0");
    app1.extend(&tiff);
    let mut rotated = jpeg[..2].to_vec();
    rotated.extend(&app1);
    rotated.extend(&jpeg[2..]);
    let path = dir.join("rotated.jpg");
    std::fs::write(&path, rotated).unwrap();
    path
}

#[test]
fn a_photos_orientation_tag_is_applied() {
    let dir = TempDir::new("trust-orientation");
    let photo = rotated_photo(&dir);
    let out = dir.join("classes.png");
    let (ok, _, err) = beitseg(&["run", s(&photo), "--mode", "mask", "-o", s(&out)]);
    assert!(ok, "{err}");
    let (w, h, _, _) = read_png(&out);
    assert_eq!((w, h), (240, 320), "not turned upright");
    let out = dir.join("as-stored.png");
    let (ok, _, err) = beitseg(&[
        "run",
        s(&photo),
        "--mode",
        "mask",
        "--no-orientation",
        "-o",
        s(&out),
    ]);
    assert!(ok, "{err}");
    let (w, h, _, _) = read_png(&out);
    assert_eq!((w, h), (320, 240));
}

/// A folder of photos in, one class-id PNG out per photo (sizes differ; one model load), each
/// the same as the photo segmented alone.
#[test]
fn a_folder_of_images_gives_one_png_per_image() {
    let dir = TempDir::new("trust-folder");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(astronaut(), photos.join("astronaut.png")).unwrap();
    std::fs::copy(
        sample("beit-tiny-ade/chelsea.png"),
        photos.join("chelsea.png"),
    )
    .unwrap();
    std::fs::copy(rotated_photo(&dir), photos.join("rotated.jpg")).unwrap();
    std::fs::write(photos.join("notes.txt"), "not a photo").unwrap();
    let out = dir.join("masks");
    let (ok, _, err) = beitseg(&["run", s(&photos), "-o", &format!("{}/", out.display())]);
    assert!(ok, "{err}");
    assert!(err.contains("3 images"), "{err}");
    for (name, size) in [
        ("astronaut", (512, 512)),
        ("chelsea", (451, 300)),
        ("rotated", (240, 320)),
    ] {
        let (w, h, channels, _) = read_png(&out.join(format!("{name}.png")));
        assert_eq!(((w, h), channels), (size, 1), "{name}");
    }
    let single = dir.join("single.png");
    let (ok, _, err) = beitseg(&["run", s(&astronaut()), "--mode", "mask", "-o", s(&single)]);
    assert!(ok, "{err}");
    assert_eq!(read_png(&single).3, read_png(&out.join("astronaut.png")).3);
    // Not over an earlier run's results.
    let (ok, _, err) = beitseg(&["run", s(&photos), "-o", &format!("{}/", out.display())]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // Two photos that would give one name: refused before anything is written.
    std::fs::copy(astronaut(), photos.join("chelsea.jpg.png")).unwrap();
    std::fs::copy(rotated_photo(&dir), photos.join("astronaut.jpg")).unwrap();
    let again = dir.join("again");
    let (ok, _, err) = beitseg(&["run", s(&photos), "-o", &format!("{}/", again.display())]);
    assert!(!ok && err.contains("would both be written to"), "{err}");
    assert!(!again.exists());
    // A file that only looks like a photo is named.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("b.png"), "<html>").unwrap();
    let (ok, _, err) = beitseg(&[
        "run",
        s(&bad),
        "-o",
        &format!("{}/", dir.join("bad-out").display()),
    ]);
    assert!(!ok && err.contains("b.png: not an image"), "{err}");
}
