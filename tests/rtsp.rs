// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! RTSP with real servers on loopback: a gst-rtsp-server in the test serves the sample clip as a
//! camera (its H.264 as is, 100 frames), and `beitseg run` is the real CLI in a child process.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

/// Frames in samples/sample.mp4.
const SAMPLE_FRAMES: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A camera: gst-rtsp-server on 127.0.0.1:`port`/cam playing the sample clip to each client from
/// its start, in real time.
struct Camera {
    server: gst_rtsp_server::RTSPServer,
    context: gst::glib::MainContext,
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    source: Option<gst::glib::SourceId>,
}

impl Camera {
    fn start(port: u16) -> Self {
        init_gst();
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 \
             config-interval=-1 )",
            sample("sample.mp4").display()
        ));
        factory.set_shared(false);
        server.mount_points().unwrap().add_factory("/cam", factory);
        let context = gst::glib::MainContext::new();
        let source = server.attach(Some(&context)).unwrap();
        let main_loop = gst::glib::MainLoop::new(Some(&context), false);
        let thread = std::thread::spawn({
            let main_loop = main_loop.clone();
            move || main_loop.run()
        });
        Camera {
            server,
            context,
            main_loop,
            thread: Some(thread),
            source: Some(source),
        }
    }

    /// The camera goes away: connections closed, nothing listening.
    fn stop(&mut self) {
        if let Some(id) = self.source.take() {
            if let Some(s) = self.context.find_source_by_id(&id) {
                s.destroy();
            }
        }
        self.server.client_filter(Some(&mut |_, client| {
            client.close();
            gst_rtsp_server::RTSPFilterResult::Remove
        }));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for the child; returns (success, stderr).
fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), err);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("beitseg did not finish in {limit:?}: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_rtsp_camera_becomes_a_playable_mp4_with_every_frame() {
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-in");
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
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(ok, "{err}");
    assert!(err.contains("0 reconnections"), "{err}");
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
        "--provider",
        "cpu",
        "-o",
        &url,
    ]);
    // The client: rtspsrc ! decodebin ! appsink, retried until the server is up.
    let t0 = Instant::now();
    let mut decoded = Vec::new();
    while decoded.len() < 25 && t0.elapsed() < Duration::from_secs(40) {
        let pipeline = gst::parse::launch(&format!(
            "rtspsrc location={url} protocols=tcp ! decodebin ! videoconvert ! \
             video/x-raw,format=RGB ! appsink name=out sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = pipeline
            .by_name("out")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        while decoded.len() < 25 {
            match sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
                Some(s) => decoded.push(s),
                None => break,
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        if decoded.len() < 25 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Ctrl-C: the CLI ends the stream and exits cleanly.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
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
