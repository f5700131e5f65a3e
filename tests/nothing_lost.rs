// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Nothing lost, whatever happens to a recording: a camera that changes resolution, signals,
//! kill -9, closed pipes, restarts over earlier files, a full disk, a camera gone for good.
//! (The inference server's cases are in tests/remote.rs, beside its MLServer.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn model() -> String {
    tiny_beit().display().to_string()
}

/// A clip of `frames` frames of `w`x`h` at 10 frames/s in MPEG-TS (which, concatenated, makes
/// a stream that changes size, as a camera does).
fn ts_clip(dir: &TempDir, name: &str, (w, h): (u32, u32), frames: u32) -> PathBuf {
    let path = dir.join(name);
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,width={w},height={h},framerate=10/1 ! x264enc ! mpegtsmux ! \
         filesink location=\"{}\"",
        path.display()
    ));
    play_to_eos(&pipeline, name);
    path
}

/// 20 frames at 320x240, then 20 at 640x480, in one file.
fn switching_clip(dir: &TempDir) -> PathBuf {
    let a = std::fs::read(ts_clip(dir, "a.ts", (320, 240), 20)).unwrap();
    let b = std::fs::read(ts_clip(dir, "b.ts", (640, 480), 20)).unwrap();
    let path = dir.join("switch.ts");
    std::fs::write(&path, [a, b].concat()).unwrap();
    path
}

/// The decoded frames' sizes, in order.
fn frame_sizes(path: &Path) -> Vec<(i32, i32)> {
    let pipeline = launch_pipeline(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=I420 ! \
         appsink name=out sync=false",
    );
    element::<gst::Element>(&pipeline, "src").set_property("location", path);
    let sink: gst_app::AppSink = element(&pipeline, "out");
    use gst::prelude::*;
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut sizes = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        let caps = s.caps().unwrap().structure(0).unwrap().to_owned();
        sizes.push((caps.get("width").unwrap(), caps.get("height").unwrap()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    sizes
}

/// `beitseg ARGS` run to its end (bounded): (exit status, stderr).
fn run(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = spawn(args);
    let err = Stderr::watch(&mut child);
    err.finish_status(child, LIMIT)
}

/// `beitseg run INPUT -o TARGET --model (tiny BEiT) EXTRA…`, to its end.
fn run_into(input: &Path, target: &Path, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let m = model();
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
        "--model",
        &m,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_stream_that_changes_size_is_recorded_whole_at_its_first_size() {
    init_gst();
    let dir = TempDir::new("switch");
    let input = switching_clip(&dir);
    for ext in ["mp4", "mkv"] {
        let out = dir.join(&format!("r.{ext}"));
        let (status, err) = run_into(&input, &out, &[]);
        assert!(status.success(), "{ext}: {err}");
        let sizes = frame_sizes(&out);
        assert_eq!(sizes.len(), 40, "{ext}: {err}");
        assert!(sizes.iter().all(|s| *s == (320, 240)), "{ext}: {sizes:?}");
        assert_eq!(said_frames(&err), 40, "{err}");
    }
}

#[test]
fn max_resolution_holds_at_every_change_of_size() {
    init_gst();
    let dir = TempDir::new("switch-limit");
    let input = switching_clip(&dir);
    let out = dir.join("r.mp4");
    let (status, err) = run_into(&input, &out, &["--max-resolution", "400x300"]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("640x480 frames are larger than --max-resolution 400x300"),
        "{err}"
    );
    // What came before the change is kept, finished, and said.
    let frames = count_video_frames(&out);
    assert_eq!(frames, 20, "{err}");
    assert_eq!(said_frames(&err), frames, "{err}");
}

#[test]
fn closed_or_full_stdout_and_stderr_never_end_a_run() {
    init_gst();
    let dir = TempDir::new("pipes");
    let input = clip(&dir, "in.mp4", 20, 25, false);
    let out = dir.join("out.mp4");
    // stderr's reader gone at once (`2>&1 | head -0`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(["run", input.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--model", &model()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    wait_until(LIMIT, || child.try_wait().unwrap().is_some()).expect("run did not end");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(count_video_frames(&out), 20);
    // A full stderr (`2>/dev/full`).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out2 = dir.join("out2.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(["run", input.to_str().unwrap(), "-o", out2.to_str().unwrap()])
        .args(["--model", &model()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(full))
        .spawn()
        .unwrap();
    wait_until(LIMIT, || child.try_wait().unwrap().is_some()).expect("run did not end");
    assert!(child.wait().unwrap().success());
    assert_eq!(count_video_frames(&out2), 20);
    // `beitseg inspect M | head -2`: stdout closed after two lines.
    let mut child = Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(["inspect", &model()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    use std::io::Read;
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let err = Stderr::watch(&mut child);
    let (status, text) = err.finish_status(child, LIMIT);
    assert!(status.success(), "{status:?}: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// `beitseg serve CLIP rtsp://127.0.0.1:PORT/cam --loop`: a live camera that never ends, once it
/// says it serves.
struct LoopingCamera {
    child: Child,
    url: String,
}

impl LoopingCamera {
    fn start(clip: &Path) -> Self {
        let url = format!("rtsp://127.0.0.1:{}/cam", free_port());
        let mut child = spawn(&["serve", clip.to_str().unwrap(), &url, "--loop"]);
        let err = Stderr::watch(&mut child);
        err.wait_for("serving", Duration::from_secs(30));
        LoopingCamera { child, url }
    }
}

impl Drop for LoopingCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A still 320x240 picture, 2 s at 25 frames/s.
fn still_clip(dir: &TempDir) -> PathBuf {
    let path = dir.join("still.mp4");
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=50 pattern=smpte ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc ! mp4mux ! filesink location=\"{}\"",
        path.display()
    ));
    play_to_eos(&pipeline, "the still clip");
    path
}

/// Records `camera` into `target` until its partial file holds `frames` decodable frames
/// (fragments reach the disk by time, whatever the bitrate).
fn recording(
    camera: &LoopingCamera,
    target: &Path,
    frames: usize,
    extra: &[&str],
) -> (Child, Stderr) {
    let mut args = vec![
        "run",
        &camera.url,
        "-o",
        target.to_str().unwrap(),
        "--model",
    ];
    let m = model();
    args.push(&m);
    args.extend_from_slice(extra);
    let mut child = spawn(&args);
    let err = Stderr::watch(&mut child);
    let partial = target.with_file_name(format!(
        "{}.partial.mp4",
        target.file_stem().unwrap().to_string_lossy()
    ));
    wait_until(LIMIT, || {
        partial.exists() && count_video_frames(&partial) >= frames
    })
    .unwrap_or_else(|()| {
        let _ = child.kill();
        panic!(
            "{} never held {frames} frames while recording: {}",
            partial.display(),
            err.text()
        )
    });
    (child, err)
}

#[test]
fn kill_9_keeps_all_but_the_last_second_of_a_still_camera() {
    init_gst();
    let dir = TempDir::new("kill9");
    let camera = LoopingCamera::start(&still_clip(&dir));
    let target = dir.join("rec.mp4");
    let (mut child, _err) = recording(&camera, &target, 25, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = dir.join("rec.partial.mp4");
    assert!(count_video_frames(&partial) >= 25);
    assert!(!target.exists());
}

fn signal(child: &Child, name: &str) {
    Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn a_second_signal_stops_at_once_and_keeps_the_recording() {
    init_gst();
    let dir = TempDir::new("twice");
    let camera = LoopingCamera::start(&still_clip(&dir));
    let target = dir.join("rec.mp4");
    let (child, err) = recording(&camera, &target, 25, &[]);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(50));
    signal(&child, "-INT");
    let (status, text) = err.finish_status(child, LIMIT);
    // Either the first signal finished the file, or the second stopped at once keeping it.
    assert_eq!(status.code(), Some(130), "{text}");
    let kept = if target.exists() {
        target.clone()
    } else {
        dir.join("rec.partial.mp4")
    };
    assert!(count_video_frames(&kept) >= 25, "{text}");
    assert!(!text.contains("nothing written"), "{text}");
}

#[test]
fn sigterm_finishes_the_file_says_its_frames_and_exits_143() {
    init_gst();
    let dir = TempDir::new("sigterm");
    let camera = LoopingCamera::start(&still_clip(&dir));
    let target = dir.join("rec.mp4");
    let (child, err) = recording(&camera, &target, 25, &[]);
    signal(&child, "-TERM");
    let (status, text) = err.finish_status(child, LIMIT);
    assert_eq!(status.code(), Some(143), "{text}");
    let frames = count_video_frames(&target);
    assert!(frames >= 25, "{text}");
    assert_eq!(said_frames(&text), frames, "{text}");
    assert!(!dir.join("rec.partial.mp4").exists());
}

#[test]
fn a_camera_gone_for_good_keeps_and_says_what_it_recorded() {
    init_gst();
    let dir = TempDir::new("gone");
    let camera = LoopingCamera::start(&still_clip(&dir));
    let target = dir.join("rec.mp4");
    let (child, err) = recording(&camera, &target, 25, &["--give-up-after", "2"]);
    drop(camera);
    let (status, text) = err.finish_status(child, LIMIT);
    assert!(!status.success(), "{text}");
    assert!(text.contains("gave up after 2 s"), "{text}");
    let frames = count_video_frames(&target);
    assert!(frames >= 25, "{text}");
    assert_eq!(said_frames(&text), frames, "{text}");
}

/// The segments `rec_NNNNN.mp4` in `dir`, sorted, with their contents.
fn segments(dir: &TempDir) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rec_") && n.ends_with(".mp4"))
        .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
        .collect();
    found.sort();
    found
}

#[test]
fn a_restarted_segment_recording_goes_on_after_its_own_files() {
    init_gst();
    let dir = TempDir::new("segments");
    let input = clip(&dir, "in.mp4", 50, 25, false);
    let target = dir.join("rec.mp4");
    let record = |extra: &[&str]| {
        let mut args = vec!["--segment-time", "1"];
        args.extend_from_slice(extra);
        run_into(&input, &target, &args)
    };
    let (status, err) = record(&[]);
    assert!(status.success(), "{err}");
    let first = segments(&dir);
    assert!(first.len() >= 2, "{first:?}");
    // A restart: the earlier files untouched, the new ones numbered after them.
    let (status, err) = record(&[]);
    assert!(status.success(), "{err}");
    let second = segments(&dir);
    assert_eq!(second.len(), 2 * first.len(), "{err}");
    assert_eq!(&second[..first.len()], &first[..]);
    assert_eq!(second[first.len()].0, format!("rec_{:05}.mp4", first.len()));
    // -y: the earlier segments replaced.
    let (status, err) = record(&["-y"]);
    assert!(status.success(), "{err}");
    assert_eq!(segments(&dir).len(), first.len(), "{err}");
}

/// `--segment-time` splits a recording into files that each play on their own (the sample clip
/// with the bundled model).
#[test]
fn segment_time_splits_a_recording_into_playable_files() {
    init_gst();
    let dir = TempDir::new("trust-segments");
    let target = dir.join("rec.mp4");
    let clip = sample("sample.mp4");
    let args = [
        "run",
        clip.to_str().unwrap(),
        "--segment-time",
        "1",
        "-o",
        target.to_str().unwrap(),
    ];
    let (status, err) = run(&args);
    assert!(status.success(), "{err}");
    assert!(err.contains("rec_*.mp4 in 1 s files"), "{err}");
    let mut total = 0;
    let mut files = 0;
    for i in 0.. {
        let part = dir.join(&format!("rec_{i:05}.mp4"));
        if !part.exists() {
            break;
        }
        let n = count_video_frames(&part);
        assert!(n > 0 && n <= 30, "{}: {n} frames", part.display());
        total += n;
        files += 1;
    }
    assert!(files >= 3, "{files} files: {err}");
    assert_eq!(total, SAMPLE_FRAMES, "{err}");
    // Never over an earlier run's files: a second run goes on after them.
    let first = std::fs::read(dir.join("rec_00000.mp4")).unwrap();
    let (status, err) = run(&args);
    assert!(status.success(), "{err}");
    assert_eq!(std::fs::read(dir.join("rec_00000.mp4")).unwrap(), first);
    assert!(dir.join(&format!("rec_{files:05}.mp4")).exists(), "{err}");
}

#[test]
fn nothing_segmented_leaves_no_stray_segment() {
    init_gst();
    let dir = TempDir::new("stray");
    let target = dir.join("rec.mp4");
    let url = format!("rtsp://127.0.0.1:{}/nobody", free_port());
    let (status, err) = run(&[
        "run",
        &url,
        "-o",
        target.to_str().unwrap(),
        "--model",
        &model(),
        "--segment-time",
        "1",
        "--give-up-after",
        "1",
    ]);
    assert!(!status.success(), "{err}");
    assert!(segments(&dir).is_empty(), "{err}");
}

#[test]
fn outputs_are_replaced_only_with_y_and_their_folders_are_made() {
    init_gst();
    let dir = TempDir::new("overwrite");
    let input = clip(&dir, "in.mp4", 5, 25, false);
    let target = dir.join("new/folder/seg.mp4");
    let once = |extra: &[&str]| run_into(&input, &target, extra);
    let (status, err) = once(&[]);
    assert!(status.success(), "{err}");
    let before = std::fs::read(&target).unwrap();
    for refused in [&[][..], &["-n"][..]] {
        let (status, err) = once(refused);
        assert!(!status.success(), "{err}");
        assert!(
            err.contains("already exists") && err.contains("-y"),
            "{err}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), before);
    }
    let (status, err) = once(&["-y"]);
    assert!(status.success(), "{err}");
    assert_eq!(count_video_frames(&target), 5);
    // A folder of frames: refused, then replaced with -y.
    let frames = dir.join("frames/");
    let to_folder = |extra: &[&str]| run_into(&input, &frames, extra);
    assert!(to_folder(&[]).0.success());
    let (status, err) = to_folder(&[]);
    assert!(!status.success() && err.contains("-y"), "{err}");
    let (status, err) = to_folder(&["-y"]);
    assert!(status.success(), "{err}");
    assert_eq!(std::fs::read_dir(&frames).unwrap().count(), 5);
}

#[test]
fn a_config_writes_into_folders_it_makes() {
    init_gst();
    let dir = TempDir::new("config-folders");
    let input = clip(&dir, "in.mp4", 5, 25, false);
    let config = dir.join("cameras.toml");
    std::fs::write(
        &config,
        format!(
            "model = \"{}\"\n[[input]]\ninput = \"{}\"\noutput = \"{}\"\n",
            model(),
            input.display(),
            dir.join("rec/cam1.mp4").display()
        ),
    )
    .unwrap();
    let (status, err) = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    assert_eq!(count_video_frames(&dir.join("rec/cam1.mp4")), 5);
}

/// A small tmpfs mounted at a folder of the test's own, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount a {size} tmpfs at {} (the test runs as root, as CI does)",
            at.display()
        );
        SmallDisk(at)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_one_line_keeps_what_was_written_and_spares_the_other_inputs() {
    init_gst();
    let dir = TempDir::new("full-disk");
    let disk = SmallDisk::mount(dir.join("small"), "400k");
    let camera = LoopingCamera::start(&clip(&dir, "moving.mp4", 50, 25, false));
    let input = clip(&dir, "in.mp4", 10, 25, false);
    let config = dir.join("cameras.toml");
    std::fs::write(
        &config,
        format!(
            "model = \"{}\"\nbitrate = 8000\n[[input]]\ninput = \"{}\"\noutput = \"{}\"\n\
             [[input]]\ninput = \"{}\"\noutput = \"{}\"\n",
            model(),
            camera.url,
            disk.0.join("cam.mp4").display(),
            input.display(),
            dir.join("file.mp4").display()
        ),
    )
    .unwrap();
    let (status, err) = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!status.success(), "{err}");
    let full: Vec<&str> = err.lines().filter(|l| l.contains("disk is full")).collect();
    assert_eq!(full.len(), 1, "{err}");
    // The other input went on to its end.
    assert_eq!(count_video_frames(&dir.join("file.mp4")), 10, "{err}");
    // The camera's fragments that reached the disk play.
    assert!(
        count_video_frames(&disk.0.join("cam.partial.mp4")) > 0,
        "{err}"
    );
}

#[test]
fn an_input_served_to_itself_and_a_missing_display_are_one_line_errors() {
    init_gst();
    let port = free_port();
    let (status, err) = run(&[
        "run",
        &format!("rtsp://127.0.0.1:{port}/cam"),
        "-o",
        &format!("rtsp://0.0.0.0:{port}/cam"),
        "--model",
        &model(),
    ]);
    assert!(!status.success());
    assert!(err.contains("its own output"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(["run", "test", "-o", "display", "--model", &model()])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let err = Stderr::watch(&mut child);
    let (status, text) = err.finish_status(child, LIMIT);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("no display"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
}
