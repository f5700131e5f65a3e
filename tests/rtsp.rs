// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! RTSP with real servers on loopback: a gst-rtsp-server in the test serves the sample clip as a
//! camera (its H.264 as is, 100 frames), and `beitseg run` is the real CLI in a child process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

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

/// Under load the server's TCP sender lets RTCP BYE overtake the last RTP packets, and those
/// packets arrive late. Before: the BYE ended the stream and the late frames were refused
/// (95 of 100 written), or stamped past the PLAY range's end and dropped (97), or squeezed into
/// one millisecond and lost by the decoder (98).
#[test]
fn a_camera_whose_last_frames_trail_its_goodbye_loses_no_frame() {
    let port = free_port();
    let camera = Camera::start_with(port, Some(Duration::from_millis(300)));
    let dir = TempDir::new("rtsp-late-tail");
    let out = dir.join("camera.mp4");
    let url = format!("rtsp://127.0.0.1:{port}/cam");
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
        camera.held_back(),
        "the server never held its last packets back"
    );
    assert!(
        err.contains("100 frames from the camera, 0 dropped before segmentation"),
        "{err}"
    );
    let n = count_video_frames(&out);
    if n != SAMPLE_FRAMES {
        let _ = std::fs::copy(&out, format!("/tmp/late-tail-{}.mp4", std::process::id()));
    }
    assert_eq!(n, SAMPLE_FRAMES, "{err}");
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
    let dir = TempDir::new("rtsp-never-answers");
    let never = dir.join("never.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        &url,
        "--provider",
        "cpu",
        "--no-reconnect",
        "-o",
        never.to_str().unwrap(),
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
        never.to_str().unwrap(),
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
    let (status, err) = finish_status(child, Duration::from_secs(30));
    let ok = interrupted_cleanly(status);
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

/// A TCP server on loopback that, for every connection, either says nothing (`reply` None) or
/// answers whatever arrives with `reply` and hangs up.
fn fake_camera(reply: Option<Vec<u8>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            match &reply {
                None => held.push(conn),
                Some(bytes) => {
                    use std::io::{Read, Write};
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf);
                    let _ = conn.write_all(bytes);
                }
            }
        }
    });
    port
}

#[test]
fn a_camera_that_never_answers_or_sends_garbage_is_retried_then_given_up_in_bounded_time() {
    let mut garbage = b"RTSP/1.0 200 OK\r\nCSeq: x\r\n\r\n".to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let dir = TempDir::new("rtsp-given-up");
    let never = dir.join("never.mp4");
    for (what, reply) in [("silent", None), ("garbage", Some(garbage))] {
        let url = format!("rtsp://127.0.0.1:{}/cam", fake_camera(reply));
        let t0 = Instant::now();
        let (ok, _, err) = beitseg(&[
            "run",
            &url,
            "--provider",
            "cpu",
            "--stall-timeout",
            "1",
            "--give-up-after",
            "3",
            "-o",
            never.to_str().unwrap(),
        ]);
        let took = t0.elapsed();
        assert!(!ok, "{what}: {err}");
        assert!(err.contains("reconnecting in"), "{what}: {err}");
        assert!(err.contains("gave up after 3 s"), "{what}: {err}");
        // The backoff grows: 0.5 s, then 1 s.
        assert!(err.contains("reconnecting in 1.0 s"), "{what}: {err}");
        assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
    }
}

#[test]
fn a_camera_that_stalls_mid_stream_is_reconnected() {
    use gst_rtsp_server::prelude::*;
    init_gst();
    // A live camera whose first session stops sending frames after 2 s, connection kept open.
    let port = free_port();
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! \
         video/x-raw,width=320,height=240,framerate=25/1 ! valve name=v ! \
         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! \
         rtph264pay name=pay0 pt=96 config-interval=-1 )",
    );
    factory.set_shared(false);
    // Each session's valve, and the frames that went through it.
    type Valves = std::sync::Arc<
        std::sync::Mutex<Vec<(gst::Element, std::sync::Arc<std::sync::atomic::AtomicU64>)>>,
    >;
    let valves: Valves = Default::default();
    factory.connect_media_configure({
        let valves = valves.clone();
        move |_, media| {
            let valve = media
                .element()
                .downcast_ref::<gst::Bin>()
                .unwrap()
                .by_name("v")
                .unwrap();
            let passed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            valve
                .static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, {
                    let passed = passed.clone();
                    move |_, _| {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        gst::PadProbeReturn::Ok
                    }
                });
            valves.lock().unwrap().push((valve, passed));
        }
    });
    server.mount_points().unwrap().add_factory("/cam", factory);
    let context = gst::glib::MainContext::new();
    let _source = server.attach(Some(&context)).unwrap();
    let main_loop = gst::glib::MainLoop::new(Some(&context), false);
    let thread = std::thread::spawn({
        let main_loop = main_loop.clone();
        move || main_loop.run()
    });
    let passed = |session: usize| {
        valves
            .lock()
            .unwrap()
            .get(session)
            .map_or(0, |(_, n)| n.load(std::sync::atomic::Ordering::SeqCst))
    };

    let dir = TempDir::new("rtsp-stall");
    let out = dir.join("camera.mp4");
    let mut child = spawn(&[
        "run",
        &format!("rtsp://127.0.0.1:{port}/cam"),
        "--provider",
        "cpu",
        "--transport",
        "tcp",
        "--drop-policy",
        "none",
        "--stall-timeout",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = Stderr::watch(&mut child);
    // 2 s of frames (50 at 25 frames/s), then the first session stops sending, connection kept.
    let limit = Duration::from_secs(30);
    wait_until(limit, || passed(0) >= 50).expect("the first session never sent 50 frames");
    valves.lock().unwrap()[0].0.set_property("drop", true);
    // The CLI notices (1 s), backs off (0.5 s) and a second session sends 50 frames more.
    stderr.wait_for("receiving frames again", limit);
    wait_until(limit, || passed(1) >= 50).expect("the second session never sent 50 frames");
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    let ok = interrupted_cleanly(status);
    main_loop.quit();
    thread.join().unwrap();
    assert!(ok, "{err}");
    assert!(err.contains("no frame for 1 s; reconnecting"), "{err}");
    // The frames of both sessions (less those on the wire when the first stalled), one file.
    let frames = count_video_frames(&out);
    assert!(frames > 75, "{frames} frames: {err}");
}

/// A camera recording survives a crash: it is a fragmented MP4 from the first second, so the
/// partial file left by `kill -9` plays, with the frames written before it.
#[test]
fn a_camera_recording_survives_a_crash() {
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-crash");
    let out = dir.join("camera.mp4");
    let partial = dir.join("camera.partial.mp4");
    let mut child = spawn(&[
        "run",
        &format!("rtsp://127.0.0.1:{port}/cam"),
        "--provider",
        "cpu",
        "--transport",
        "tcp",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = Stderr::watch(&mut child);
    // A couple of fragments written (a fragment a second), then the process dies.
    wait_until(Duration::from_secs(60), || {
        std::fs::read(&partial).is_ok_and(|b| b.windows(4).filter(|w| w == b"moof").count() >= 2)
    })
    .unwrap_or_else(|()| panic!("no fragments in 60 s: {}", stderr.text()));
    child.kill().unwrap();
    let _ = stderr.finish(child, Duration::from_secs(30));
    assert!(!out.exists());
    let frames = count_video_frames(&partial);
    assert!(frames >= 25, "{frames} frames in the crashed recording");
}

/// Camera URLs carry passwords: no path of `beitseg run` prints one (errors, reconnect lines,
/// give-up, a camera that talks garbage, an http input, a whole successful run).
#[test]
fn no_password_is_ever_printed() {
    let secret = "s3cret-Pa55";
    let dead = free_port();
    let mut garbage = b"RTSP/1.0 200 OK\r\nCSeq: x\r\n\r\n".to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let talker = fake_camera(Some(garbage));
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-secrets");
    let out = dir.join("x.mp4");
    let out = out.to_str().unwrap();
    let runs: Vec<Vec<String>> = vec![
        vec![
            format!("rtsp://admin:{secret}@127.0.0.1:{dead}/stream"),
            "--no-reconnect".into(),
        ],
        vec![
            format!("rtsp://admin:{secret}@127.0.0.1:{dead}/stream"),
            "--give-up-after".into(),
            "1".into(),
        ],
        vec![
            format!("rtsp://admin:{secret}@127.0.0.1:{talker}/cam"),
            "--stall-timeout".into(),
            "1".into(),
            "--give-up-after".into(),
            "2".into(),
        ],
        vec![format!("http://admin:{secret}@127.0.0.1:{dead}/a.mp4")],
        vec![
            format!("rtsp://admin:{secret}@127.0.0.1:{port}/cam"),
            "--transport".into(),
            "tcp".into(),
            "--frames".into(),
            "30".into(),
        ],
    ];
    for (i, extra) in runs.iter().enumerate() {
        let mut args = vec!["run"];
        args.extend(extra.iter().map(String::as_str));
        args.extend(["--provider", "cpu", "-o", out]);
        let child = spawn(&args);
        let (_, err) = finish(child, Duration::from_secs(60));
        assert!(
            !err.contains(secret),
            "{extra:?} printed the password: {err}"
        );
        // The failures name the camera (masked); the successful run, last, names none.
        if i + 1 < runs.len() {
            assert!(err.contains("://***@127.0.0.1"), "{extra:?}: {err}");
        } else {
            assert!(err.contains("frames from the camera"), "{err}");
        }
    }
}

/// A camera whose frames are larger than `--max-resolution` ends the run with one line that
/// says so, from the stream's header (before a decoder allocates), with no reconnection loop and
/// no output file.
#[test]
fn a_camera_larger_than_max_resolution_is_refused() {
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-max-resolution");
    let out = dir.join("big.mp4");
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let child = spawn(&[
        "run",
        &url,
        "--max-resolution",
        "160x120",
        "--provider",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ]);
    let (ok, err) = finish(child, Duration::from_secs(60));
    assert!(!ok, "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!("error: camera {url}: "))
            && errors[0].contains("frames are larger than --max-resolution 160x120"),
        "{err}"
    );
    assert!(!err.contains("reconnecting"), "{err}");
    assert!(!out.exists());
}

/// The status line a server answers a DESCRIBE of `path` with (`authorization`: a header value).
fn describe_status(port: u16, path: &str, authorization: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "DESCRIBE rtsp://127.0.0.1:{port}{path} RTSP/1.0\r\nCSeq: 1\r\n{auth}\r\n"
    )
    .unwrap();
    let mut reply = [0u8; 512];
    let n = conn.read(&mut reply).unwrap_or(0);
    String::from_utf8_lossy(&reply[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// `beitseg run test -o URL` with `extra` arguments, until `ready` appears on its stderr.
fn serve_segmented(url: &str, extra: &[&str]) -> (std::process::Child, Stderr) {
    let mut args = vec![
        "run",
        "test",
        "--num-buffers",
        "2000",
        "--workers",
        "1",
        "--provider",
        "cpu",
        "-o",
        url,
    ];
    args.extend(extra);
    let mut child = spawn(&args);
    let stderr = Stderr::watch(&mut child);
    stderr.wait_for("serving the segmented stream", Duration::from_secs(60));
    (child, stderr)
}

/// Frames one rtspsrc client (with `props`) decodes from `url`, stopping at `n`, within `limit`,
/// and what each try saw. A try that fails (the server's media is not ready yet: 503; refused;
/// the connection closed) or stalls (no frame for 10 s) is ended and another client tries again
/// until then: the claim is that a client gets frames, not that every TCP session succeeds.
fn frames_from(url: &str, props: &str, n: usize, limit: Duration) -> (usize, String) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    const STALL: Duration = Duration::from_secs(10);
    let t0 = Instant::now();
    let mut best = 0;
    let mut tries = String::new();
    while best < n && t0.elapsed() < limit {
        let pipeline = launch_pipeline(&format!(
            "rtspsrc name=src protocols=tcp {props} ! decodebin ! fakesink name=out \
             sync=false signal-handoffs=true"
        ));
        element::<gst::Element>(&pipeline, "src").set_property("location", url);
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        element::<gst::Element>(&pipeline, "out").connect("handoff", false, {
            let count = count.clone();
            move |_| {
                count.fetch_add(1, SeqCst);
                None
            }
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let (mut seen, mut since) = (0, Instant::now());
        let mut ended = "time is up".to_string();
        let _ = wait_until(limit.saturating_sub(t0.elapsed()), || {
            let now = count.load(SeqCst);
            if now >= n {
                ended = "enough".into();
                return true;
            }
            if now != seen {
                (seen, since) = (now, Instant::now());
            }
            if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = m.view() {
                    ended = format!("{} ({:?})", e.error(), e.debug());
                }
                return true;
            }
            if since.elapsed() > STALL {
                ended = format!("no frame for {STALL:?}");
                return true;
            }
            false
        });
        pipeline.set_state(gst::State::Null).unwrap();
        let got = count.load(SeqCst);
        best = best.max(got);
        tries.push_str(&format!(
            "\n  try at {:.1} s: {got} frames, {ended}",
            t0.elapsed().as_secs_f64()
        ));
        if best < n {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    (best, tries)
}

#[test]
fn an_rtsp_output_with_a_user_lets_in_only_that_user() {
    init_gst();
    let dir = TempDir::new("rtsp-auth");
    let password = dir.join("password");
    std::fs::write(&password, "t0p-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/seg");
    let (child, stderr) = serve_segmented(
        &url,
        &[
            "--rtsp-user",
            "viewer",
            "--rtsp-password-file",
            password.to_str().unwrap(),
        ],
    );
    // No credentials, a wrong password: 401, and no frame.
    assert!(describe_status(port, "/seg", None).contains("401"));
    let wrong = format!("Basic {}", base64("viewer:guess"));
    assert!(describe_status(port, "/seg", Some(&wrong)).contains("401"));
    assert_eq!(frames_from(&url, "", 1, Duration::from_secs(3)).0, 0);
    let bad = format!("rtsp://viewer:guess@127.0.0.1:{port}/seg");
    assert_eq!(frames_from(&bad, "", 1, Duration::from_secs(3)).0, 0);
    // The right password: frames.
    let right = format!("Basic {}", base64("viewer:t0p-secret"));
    assert!(describe_status(port, "/seg", Some(&right)).contains("200"));
    let good = format!("rtsp://viewer:t0p-secret@127.0.0.1:{port}/seg");
    let (got, tries) = frames_from(&good, "", 10, Duration::from_secs(60));
    assert!(got >= 10, "{got} frames;{tries}\nserver: {}", stderr.text());
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    let ok = interrupted_cleanly(status);
    assert!(ok, "{err}");
    assert!(!err.contains("t0p-secret"), "{err}");
}

#[test]
fn an_rtsps_output_serves_tls_clients_and_refuses_plain_ones() {
    init_gst();
    let dir = TempDir::new("rtsp-tls");
    let (cert, key) = self_signed(&dir, "cert");
    let port = free_port();
    let url = format!("rtsps://127.0.0.1:{port}/seg");
    let (child, stderr) = serve_segmented(
        &url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // The certificate is the test's own: the client does not validate it.
    let (got, tries) = frames_from(&url, "tls-validation-flags=0", 10, Duration::from_secs(60));
    assert!(got >= 10, "{got} frames;{tries}\nserver: {}", stderr.text());
    let plain = format!("rtsp://127.0.0.1:{port}/seg");
    assert_eq!(frames_from(&plain, "", 1, Duration::from_secs(3)).0, 0);
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    let ok = interrupted_cleanly(status);
    assert!(ok, "{err}");
}

#[test]
fn an_open_rtsp_output_on_the_network_is_a_warning() {
    let port = free_port();
    let url = format!("rtsp://0.0.0.0:{port}/seg");
    let (child, stderr) = serve_segmented(&url, &[]);
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    let _ = status;
    assert!(
        err.contains(&format!(
            "{url} is open to anyone who can reach port {port}"
        )),
        "{err}"
    );
}

/// Base64 (RFC 4648, with padding), for a Basic authorization header.
fn base64(text: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn digest_authentication_works_too() {
    init_gst();
    let dir = TempDir::new("rtsp-digest");
    let password = dir.join("password");
    std::fs::write(&password, "d1gest-pw\n").unwrap();
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/seg");
    let (child, stderr) = serve_segmented(
        &url,
        &[
            "--rtsp-user",
            "viewer",
            "--rtsp-password-file",
            password.to_str().unwrap(),
            "--rtsp-auth",
            "digest",
        ],
    );
    // A password file others may read is named in a warning.
    stderr.wait_for("can be read by other users", Duration::from_secs(10));
    assert!(describe_status(port, "/seg", None).contains("401"));
    // Basic is not offered: the right password sent that way is refused.
    let basic = format!("Basic {}", base64("viewer:d1gest-pw"));
    assert!(describe_status(port, "/seg", Some(&basic)).contains("401"));
    let good = format!("rtsp://viewer:d1gest-pw@127.0.0.1:{port}/seg");
    let (got, tries) = frames_from(&good, "", 10, Duration::from_secs(60));
    assert!(got >= 10, "{got} frames;{tries}\nserver: {}", stderr.text());
    interrupt(&child);
    let (status, err) = stderr.finish_status(child, Duration::from_secs(30));
    let ok = interrupted_cleanly(status);
    assert!(ok, "{err}");
}

/// A camera's password can stay off the command line: `${NAME}` from the environment, or
/// `--input-file` (a file others may read is a warning); either way it is never printed.
#[test]
fn a_cameras_password_comes_from_the_environment_or_a_file() {
    let port = free_port();
    let _camera = Camera::start(port);
    let dir = TempDir::new("rtsp-env-secret");
    let out = dir.join("x.mp4");
    let out = out.to_str().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args([
            "run",
            &format!("rtsp://admin:${{CAM_PW}}@127.0.0.1:{port}/cam"),
            "--transport",
            "tcp",
            "--frames",
            "10",
            "-o",
            out,
        ])
        .env("CAM_PW", "env-s3cret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Stderr::watch(&mut child);
    let (ok, err) = stderr.finish(child, Duration::from_secs(120));
    assert!(ok, "{err}");
    assert!(!err.contains("env-s3cret"), "{err}");
    let file = dir.join("camera.txt");
    std::fs::write(
        &file,
        format!(
            "# the yard camera\nrtsp://admin:file-s3cret@127.0.0.1:{}/cam\n",
            free_port()
        ),
    )
    .unwrap();
    let (ok, _, err) = beitseg(&[
        "run",
        "--input-file",
        file.to_str().unwrap(),
        "--no-reconnect",
        "-o",
        out,
        "-y",
    ]);
    assert!(!ok);
    assert!(err.contains("can be read by other users"), "{err}");
    assert!(err.contains("rtsp://***@127.0.0.1"), "{err}");
    assert!(!err.contains("file-s3cret"), "{err}");
    let (ok, _, err) = beitseg(&["run", "rtsp://a:${BEITSEG_UNSET_PW}@cam/x", "-o", out]);
    assert!(!ok && err.contains("BEITSEG_UNSET_PW is not set"), "{err}");
}
