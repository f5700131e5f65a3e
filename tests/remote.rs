// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Remote inference against a real Open Inference Protocol server: MLServer (from PyPI, in
//! .venv-server, installed by scripts/test.sh) serving the tiny BEiT with ONNX Runtime on
//! loopback (tests/fixtures/mlserver/beitseg_runtime.py).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gstbeitseg::remote::Server;

/// MLServer on loopback serving `tiny-beit`; killed when dropped.
struct Mlserver {
    child: Child,
    ports: (u16, u16, u16),
    _dir: TempDir,
}

impl Mlserver {
    /// `name`: this test's own folder for the server's settings and log.
    fn start(name: &str) -> Self {
        Self::start_on(name, (free_port(), free_port(), free_port()))
    }

    /// On given (http, grpc, metrics) ports: a server restarted where the last one was.
    fn start_on(name: &str, ports: (u16, u16, u16)) -> Self {
        let bin = root().join(".venv-server/bin/mlserver");
        assert!(
            bin.exists(),
            "{} is missing: scripts/test.sh installs it",
            bin.display()
        );
        let dir = TempDir::new(&format!("mlserver-{name}"));
        // A 640x640 frame is 4.9 MB of FP32: above gRPC's default 4 MB message limit.
        let (http, grpc, metrics) = ports;
        std::fs::write(
            dir.join("settings.json"),
            format!(
                r#"{{"host": "127.0.0.1", "http_port": {http}, "grpc_port": {grpc}, "metrics_port": {metrics}, "parallel_workers": 0, "grpc_max_message_length": 268435456}}"#
            ),
        )
        .unwrap();
        // The tiny BEiT, and a model beitseg cannot feed (4 input channels).
        // And the tiny BEiT returning class ids (its argmax) instead of logits.
        for (name, model, extra) in [
            ("tiny-beit", tiny_beit(), "{}"),
            ("wrong-channels", fixture("wrong_channels.onnx"), "{}"),
            ("tiny-beit-ids", tiny_beit(), r#"{"argmax": true}"#),
        ] {
            std::fs::create_dir(dir.join(name)).unwrap();
            std::fs::write(
                dir.join(&format!("{name}/model-settings.json")),
                format!(
                    r#"{{"name": "{name}", "implementation": "beitseg_runtime.OnnxModel", "parameters": {{"uri": "{}", "extra": {extra}}}}}"#,
                    model.display()
                ),
            )
            .unwrap();
        }
        let log = std::fs::File::create(dir.join("log.txt")).unwrap();
        let child = Command::new(bin)
            .arg("start")
            .arg(&dir.0)
            .env("PYTHONPATH", root().join("tests/fixtures/mlserver"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let server = Mlserver {
            child,
            ports,
            _dir: dir,
        };
        // Up and the model loaded: at most 120 s on a busy machine.
        let t0 = Instant::now();
        loop {
            let ready = Server::connect(&server.url(), Duration::from_secs(5), None)
                .and_then(|s| s.model("tiny-beit", ""))
                .is_ok();
            if ready {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "MLServer did not serve tiny-beit within 120 s: {}",
                std::fs::read_to_string(server._dir.join("log.txt")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.ports.1)
    }
}

impl Drop for Mlserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `beitseg inspect --server` says what the server serves, and that beitseg can feed it; the
/// server's logits for a frame are the local session's, and so is every class.
#[test]
fn a_served_model_is_described_and_answers_as_the_local_one() {
    let server = Mlserver::start("described");
    let (ok, out, err) = beitseg(&["inspect", "--server", &server.url(), "tiny-beit"]);
    assert!(ok, "{err}");
    assert!(out.contains("model: tiny-beit"), "{out}");
    assert!(
        out.contains("input: pixel_values FP32 Nx3x640x640"),
        "{out}"
    );
    assert!(out.contains("output: logits FP32 Nx150x160x160"), "{out}");
    assert!(out.contains("beitseg can feed it: yes"), "{out}");

    use gstbeitseg::model::{Model, Overrides};
    let local = Model::load(&tiny_beit(), &Overrides::default()).unwrap();
    let remote = Server::connect(&server.url(), Duration::from_secs(30), None).unwrap();
    let served = remote.model("tiny-beit", "").unwrap();
    // A real photo, preprocessed as the element does.
    let photo = photo_rgb(640, 640);
    let input: Vec<f32> = (0..3)
        .flat_map(|c| {
            photo
                .iter()
                .skip(c)
                .step_by(3)
                .map(|p| *p as f32 / 127.5 - 1.0)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut spec = served.inputs[0].clone();
    spec.shape[0] = 1;
    let (shape, values) = remote.infer("tiny-beit", "", &spec, &input).unwrap();
    assert_eq!(shape, vec![1, 150, 160, 160]);
    let logits = local.run(input, 1).unwrap().remove(0);
    let max_diff = logits
        .data
        .iter()
        .zip(&values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "logits differ by up to {max_diff}");
    // The class of every low-resolution pixel (argmax over the 150 channels).
    let plane = 160 * 160;
    let argmax = |d: &[f32]| -> Vec<usize> {
        (0..plane)
            .map(|p| {
                (0..150)
                    .max_by(|&a, &b| d[a * plane + p].total_cmp(&d[b * plane + p]))
                    .unwrap()
            })
            .collect()
    };
    assert!(argmax(&logits.data) == argmax(&values), "class maps differ");
}

/// Each way a server can be wrong is one line that names the server, in bounded time.
#[test]
fn server_mistakes_are_one_line_in_bounded_time() {
    let server = Mlserver::start("mistakes");
    // A port nobody listens on.
    let dead = free_port();
    // A TCP server that answers anything with bytes that are not HTTP/2.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in garbage.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nthis is not gRPC\n");
        }
    });
    for (url, model, says) in [
        (
            server.url(),
            "no-such-model",
            format!("server {}: model no-such-model: ", server.url()),
        ),
        (
            format!("grpc://127.0.0.1:{dead}"),
            "tiny-beit",
            format!("server grpc://127.0.0.1:{dead}: cannot connect"),
        ),
        (
            format!("grpc://127.0.0.1:{garbage_port}"),
            "tiny-beit",
            format!("server grpc://127.0.0.1:{garbage_port}: not an inference server"),
        ),
        (
            "http://127.0.0.1:1".to_string(),
            "tiny-beit",
            "expected grpc://HOST:PORT or grpcs://HOST:PORT".to_string(),
        ),
    ] {
        let t0 = Instant::now();
        let (ok, _, err) = beitseg(&["inspect", "--server", &url, model, "--server-timeout", "3"]);
        assert!(!ok, "{url}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&says), "{url} {model}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{url}: {:?}",
            t0.elapsed()
        );
    }
    // A served model whose input is not an image: described, then refused by the run.
    let (ok, out, _) = beitseg(&["inspect", "--server", &server.url(), "wrong-channels"]);
    assert!(ok);
    assert!(out.contains("beitseg can feed it: no"), "{out}");
    let dir = TempDir::new("remote-wrong-shape");
    let never = dir.join("never.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        "test",
        "--num-buffers",
        "2",
        "--server",
        &server.url(),
        "--server-model",
        "wrong-channels",
        "-o",
        never.to_str().unwrap(),
    ]);
    assert!(!ok);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains(&format!("server {}: model wrong-channels: ", server.url()))
            && errors[0].contains("3 colour channels"),
        "{err}"
    );
    assert!(!never.exists());
}

/// `videotestsrc ! beitseg mode=mask {props} ! appsink` on the tiny BEiT, 160x120 frames.
fn masks(frames: u32, props: &str) -> gst::Pipeline {
    masks_at(frames, (160, 120), props)
}

fn masks_at(frames: u32, (w, h): (u32, u32), props: &str) -> gst::Pipeline {
    launch_pipeline(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,format=RGB,width={w},height={h} ! \
         beitseg name=seg model={} mode=mask {props} ! appsink name=out sync=false",
        tiny_beit().display()
    ))
}

fn pull_all(pipeline: &gst::Pipeline, mut each: impl FnMut(usize)) -> Vec<Vec<u8>> {
    use gst::prelude::*;
    let sink: gst_app::AppSink = element(pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(120)) {
        out.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
        each(out.len());
    }
    assert!(sink.is_eos(), "no EOS within 120 s of the last frame");
    out
}

/// The element with `server=`: the class map of every frame as the local session gives it.
#[test]
fn the_element_through_a_server_gives_the_local_class_maps() {
    use gst::prelude::*;
    let server = Mlserver::start("element");
    let remote = masks(
        6,
        &format!("server={} server-model=tiny-beit workers=2", server.url()),
    );
    let through = pull_all(&remote, |_| {});
    let stats = element::<gst::Element>(&remote, "seg").property::<gst::Structure>("stats");
    let in_use =
        element::<gst::Element>(&remote, "seg").property::<Option<String>>("provider-in-use");
    bus_warnings(&remote);
    remote.set_state(gst::State::Null).unwrap();
    let local = masks(6, "workers=2");
    let here = pull_all(&local, |_| {});
    local.set_state(gst::State::Null).unwrap();
    assert_eq!(through.len(), 6);
    assert_eq!(here.len(), 6);
    let same: usize = through
        .iter()
        .zip(&here)
        .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count())
        .sum();
    let total: usize = here.iter().map(Vec::len).sum();
    println!("{same} of {total} pixels agree; {stats}");
    assert!(same == total, "{} of {total} pixels differ", total - same);
    assert!(in_use
        .unwrap_or_default()
        .starts_with("server grpc://127.0.0.1:"));
}

/// The server is killed mid-stream and started again on its port: no crash, no lost frame (a
/// file's frames wait), the retries counted.
#[test]
fn a_server_restarted_mid_stream_loses_no_frame() {
    use gst::prelude::*;
    let mut server = Some(Mlserver::start("restart"));
    let url = server.as_ref().unwrap().url();
    let ports = server.as_ref().unwrap().ports;
    let pipeline = masks(
        30,
        &format!(
            "server={url} server-model=tiny-beit workers=1 server-timeout=5000 server-give-up=120"
        ),
    );
    let frames = pull_all(&pipeline, |n| {
        if n == 5 {
            // Killed, then back on the same port a second later.
            drop(server.take());
            std::thread::sleep(Duration::from_secs(1));
            server = Some(Mlserver::start_on("restart-2", ports));
        }
    });
    let stats = element::<gst::Element>(&pipeline, "seg").property::<gst::Structure>("stats");
    // Before NULL, which flushes the bus: an error fails the test.
    bus_warnings(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    println!("{stats}");
    assert_eq!(frames.len(), 30, "{stats}");
    assert!(stats.get::<u64>("server-retries").unwrap() > 0, "{stats}");
}

/// `beitseg run --server`: a file segmented by the server, every frame written.
#[test]
fn run_with_a_server_writes_every_frame() {
    let server = Mlserver::start("run");
    let dir = TempDir::new("remote-run");
    let input = clip(&dir, "in.mp4", 8, 25, false);
    let out = dir.join("out.mp4");
    let (ok, _, err) = beitseg(&[
        "run",
        input.to_str().unwrap(),
        "--model",
        tiny_beit().to_str().unwrap(),
        "--server",
        &server.url(),
        "--server-model",
        "tiny-beit",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(count_video_frames(&out), 8, "{err}");
}

/// grpcs://: the server behind TLS (a TLS-terminating front, as deployments put one before the
/// server) answers a client that trusts its certificate authority, and only such a client.
#[test]
fn a_grpcs_server_is_reached_over_tls_with_its_authority() {
    let server = Mlserver::start("tls");
    let dir = TempDir::new("remote-tls");
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    let mut front = Command::new(root().join(".venv-server/bin/python"))
        .arg(root().join("tests/fixtures/mlserver/tls_proxy.py"))
        .arg(port.to_string())
        .arg(format!("127.0.0.1:{}", server.ports.1))
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(front.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let url = format!("grpcs://127.0.0.1:{port}");
    let ca_arg = ca.to_str().unwrap();
    let (ok, out, err) = beitseg(&[
        "inspect",
        "--server",
        &url,
        "tiny-beit",
        "--server-ca",
        ca_arg,
    ]);
    // Without the authority, the server's certificate is not trusted.
    let (refused, _, why) = beitseg(&[
        "inspect",
        "--server",
        &url,
        "tiny-beit",
        "--server-timeout",
        "5",
    ]);
    // A plain client gets no answer from the TLS port.
    let plain = format!("grpc://127.0.0.1:{port}");
    let (plain_ok, _, plain_err) = beitseg(&[
        "inspect",
        "--server",
        &plain,
        "tiny-beit",
        "--server-timeout",
        "5",
    ]);
    let dir_out = dir.join("tls.mp4");
    let input = clip(&dir, "in.mp4", 4, 25, false);
    let (run_ok, _, run_err) = beitseg(&[
        "run",
        input.to_str().unwrap(),
        "--model",
        tiny_beit().to_str().unwrap(),
        "--server",
        &url,
        "--server-model",
        "tiny-beit",
        "--server-ca",
        ca_arg,
        "-o",
        dir_out.to_str().unwrap(),
    ]);
    let _ = front.kill();
    let _ = front.wait();
    assert!(ok, "{err}");
    assert!(
        out.contains("input: pixel_values FP32 Nx3x640x640"),
        "{out}"
    );
    assert!(!refused, "a certificate nobody vouches for was accepted");
    assert!(why.contains(&format!("server {url}: ")), "{why}");
    assert!(!plain_ok);
    assert!(
        plain_err.contains(&format!("server {plain}: ")),
        "{plain_err}"
    );
    assert!(run_ok, "{run_err}");
    assert_eq!(count_video_frames(&dir_out), 4, "{run_err}");
}

/// A served model that returns class ids instead of logits: at the logits' own resolution
/// (160x160 for the tiny BEiT) every pixel's class is the local decode's; at other sizes the
/// classes are upsampled without the logits' bilinear detail (lower fidelity, documented).
#[test]
fn a_served_model_that_returns_class_ids_is_decoded_from_them() {
    use gst::prelude::*;
    let server = Mlserver::start("ids");
    let (ok, out, err) = beitseg(&["inspect", "--server", &server.url(), "tiny-beit-ids"]);
    assert!(ok, "{err}");
    assert!(out.contains("output: class_ids INT64 Nx160x160"), "{out}");
    assert!(out.contains("beitseg can feed it: yes"), "{out}");
    let mut shares = Vec::new();
    for size in [(160, 160), (160, 120)] {
        let remote = masks_at(
            4,
            size,
            &format!(
                "server={} server-model=tiny-beit-ids workers=2",
                server.url()
            ),
        );
        let ids = pull_all(&remote, |_| {});
        let in_use =
            element::<gst::Element>(&remote, "seg").property::<Option<String>>("provider-in-use");
        bus_warnings(&remote);
        remote.set_state(gst::State::Null).unwrap();
        assert!(in_use.unwrap_or_default().contains("class ids"));
        let local = masks_at(4, size, "workers=2");
        let logits = pull_all(&local, |_| {});
        local.set_state(gst::State::Null).unwrap();
        assert_eq!(ids.len(), 4);
        let same: usize = ids
            .iter()
            .zip(&logits)
            .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count())
            .sum();
        let total: usize = logits.iter().map(Vec::len).sum();
        shares.push((size, same, total));
    }
    println!("pixels agreeing with the logits' decode: {shares:?}");
    let ((_, same, total), (_, other_same, other_total)) = (shares[0], shares[1]);
    assert_eq!(
        same, total,
        "at the logits' resolution every class is the same"
    );
    assert!(other_same * 2 > other_total, "{shares:?}");
}

/// `beitseg run INPUT -o OUT` through `url`'s tiny-beit with `--server-give-up GIVE_UP`, once
/// it has written 5 frames (its metrics say so).
fn recording_through(
    url: &str,
    input: &std::path::Path,
    out: &std::path::Path,
    give_up: &str,
) -> (Child, Stderr) {
    let port = free_port();
    let mut child = spawn(&[
        "run",
        input.to_str().unwrap(),
        "--model",
        tiny_beit().to_str().unwrap(),
        "--server",
        url,
        "--server-model",
        "tiny-beit",
        "--server-give-up",
        give_up,
        "--metrics",
        &port.to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = Stderr::watch(&mut child);
    wait_until(Duration::from_secs(120), || {
        metric(port, "beitseg_frames_out_total") >= 5.0
    })
    .unwrap_or_else(|()| panic!("no 5 frames: {}", err.text()));
    (child, err)
}

/// The server goes away for good mid-recording: the frames written before are finished, kept
/// and said, and the run fails once the give-up time has passed.
#[test]
fn a_server_gone_for_good_keeps_the_recording() {
    let server = Mlserver::start("gone");
    let dir = TempDir::new("remote-gone");
    let input = clip(&dir, "in.mp4", 300, 25, false);
    let out = dir.join("out.mp4");
    let (child, err) = recording_through(&server.url(), &input, &out, "2");
    // kill -9.
    drop(server);
    let (status, text) = err.finish_status(child, Duration::from_secs(120));
    assert!(!status.success(), "{text}");
    assert!(text.contains("gave up after 2 s"), "{text}");
    let frames = count_video_frames(&out);
    assert!((5..300).contains(&frames), "{frames}: {text}");
    assert_eq!(said_frames(&text), frames, "{text}");
}

/// A rolling restart: the server is stopped with SIGTERM (it cancels what it holds) and started
/// again on its ports; every frame is written.
#[test]
fn a_rolling_restart_of_the_server_loses_no_frame() {
    let mut server = Mlserver::start("rolling");
    let ports = server.ports;
    let dir = TempDir::new("remote-rolling");
    let input = clip(&dir, "in.mp4", 60, 25, false);
    let out = dir.join("out.mp4");
    let (child, err) = recording_through(&server.url(), &input, &out, "300");
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    wait_until(Duration::from_secs(60), || {
        server.child.try_wait().unwrap().is_some()
    })
    .expect("MLServer did not stop within 60 s of SIGTERM");
    drop(server);
    let _again = Mlserver::start_on("rolling-2", ports);
    let (status, text) = err.finish_status(child, Duration::from_secs(300));
    assert!(status.success(), "{text}");
    assert_eq!(count_video_frames(&out), 60, "{text}");
    assert_eq!(said_frames(&text), 60, "{text}");
}

/// The give-up time counts from when the server stopped answering, for every frame: once one
/// frame has given up, the next fails at once instead of waiting it all over again.
#[test]
fn frames_waiting_behind_each_other_give_up_together() {
    use gstbeitseg::remote::{RemoteModel, ServerRequest};
    let server = Mlserver::start("deadline");
    let request = ServerRequest {
        url: server.url(),
        model: "tiny-beit".into(),
        version: String::new(),
        timeout: Duration::from_secs(5),
        give_up: Duration::from_secs(2),
        ca: None,
    };
    let remote = RemoteModel::connect(&request).unwrap();
    let shape = remote.served().inputs[0].shape.clone();
    let (h, w) = (shape[2] as usize, shape[3] as usize);
    let input = vec![0f32; 3 * h * w];
    let layout = gstbeitseg::metadata::Layout::Nchw;
    remote.run(&[1, 3, h, w], &input, 150, layout).unwrap();
    drop(server);
    let first = remote
        .run(&[1, 3, h, w], &input, 150, layout)
        .err()
        .expect("a frame without its server");
    assert!(first.to_string().contains("gave up after 2 s"), "{first}");
    let retried = remote.retries();
    assert!(retried > 0);
    let second = remote
        .run(&[1, 3, h, w], &input, 150, layout)
        .err()
        .expect("a frame without its server");
    assert!(second.to_string().contains("gave up after 2 s"), "{second}");
    assert_eq!(remote.retries(), retried, "the second frame waited again");
}
