// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run IN1 IN2 … -o DIR/` and `--config`: many cameras in one process, per-camera
//! outputs, reconnection of one camera while the others go on, Prometheus metrics, and config
//! mistakes caught before anything starts.

mod common;

use std::time::Duration;

use common::*;

/// The body of `GET path` from 127.0.0.1:`port` (None when nothing answers).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The value of `metric{input="input",index="…"}` on a metrics page.
fn metric(page: &str, name: &str, input: &str) -> Option<f64> {
    let prefix = format!("{name}{{input=\"{input}\",index=");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split_once("} "))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Four cameras on a real gst-rtsp-server, one process, one model: four files, each with every
/// frame of its camera. Camera 4 goes away for 2 s mid-run: it is reconnected and its file goes
/// on, while the other three lose nothing. `/metrics`, fetched over HTTP during the run, shows
/// counters that grow, and the pool the four share.
#[test]
fn four_cameras_make_four_files_and_one_that_drops_out_comes_back() {
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut cameras: Vec<Camera> = ports.iter().map(|&p| Camera::start(p)).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("rtsp://127.0.0.1:{p}/cam"))
        .collect();
    let dir = TempDir::new("many-cameras");
    let out = format!("{}/", dir.join("out").display());
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut args = vec!["run"];
    args.extend(urls.iter().map(String::as_str));
    // Every frame, however busy the machine.
    args.extend([
        "--provider",
        "cpu",
        "--transport",
        "tcp",
        "--drop-policy",
        "none",
        "--metrics",
        &metrics_addr,
        "-o",
        &out,
    ]);
    let mut child = spawn(&args);
    let stderr = Stderr::watch(&mut child);
    let page = || http_get(metrics_port, "/metrics").unwrap_or_default();
    let frames_in = |i: usize| metric(&page(), "beitseg_frames_in_total", &urls[i]).unwrap_or(0.0);
    // Camera 4 has been seen, then it goes away for 2 s.
    wait_until(Duration::from_secs(60), || frames_in(3) >= 20.0)
        .unwrap_or_else(|()| panic!("camera 4 never streamed: {}", stderr.text()));
    let seen = page();
    cameras[3].stop();
    std::thread::sleep(Duration::from_secs(2));
    cameras[3] = Camera::start(ports[3]);
    // The counters grow while the run goes on.
    let before = metric(&seen, "beitseg_frames_out_total", &urls[0]).unwrap_or(0.0);
    wait_until(Duration::from_secs(60), || {
        metric(&page(), "beitseg_frames_out_total", &urls[0]).unwrap_or(0.0) > before
    })
    .unwrap_or_else(|()| panic!("frames-out did not grow: {seen}"));
    assert!(
        seen.contains("beitseg_pool_streams{pool=\"pool-1\"} 4"),
        "{seen}"
    );
    assert!(
        seen.contains("beitseg_process_resident_memory_bytes "),
        "{seen}"
    );
    let (ok, err) = stderr.finish(child, Duration::from_secs(120));
    assert!(ok, "{err}");
    for (i, url) in urls.iter().enumerate() {
        let file = dir.join(&format!("out/127.0.0.1_{}_cam.mp4", ports[i]));
        let frames = count_video_frames(&file);
        let reconnecting = err.contains(&format!("camera {url}: ")) && err.contains("reconnecting");
        if i < 3 {
            assert_eq!(frames, SAMPLE_FRAMES, "camera {}: {err}", i + 1);
            assert!(
                !err.lines().any(|l| l.contains(&format!("camera {url}: "))),
                "camera {} was disturbed: {err}",
                i + 1
            );
        } else {
            // What came before the drop, then the whole clip again (the camera restarts it).
            assert!(
                frames > SAMPLE_FRAMES,
                "camera 4 wrote {frames} frames: {err}"
            );
            assert!(reconnecting, "{err}");
            assert!(
                err.contains(&format!("camera {url}: receiving frames again")),
                "{err}"
            );
        }
        assert!(err.contains(&format!("wrote {}", file.display())), "{err}");
    }
}

fn write_config(dir: &TempDir, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("cameras.toml");
    std::fs::write(&path, text).unwrap();
    // It may hold passwords: readable by its owner only (else a warning).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A config gives each input its own output and options; an input that fails (a dead camera,
/// not reconnected) ends alone, the others are written, and the run reports the failure.
#[test]
fn a_config_gives_each_input_its_own_output_and_one_failure_stops_only_itself() {
    let dir = TempDir::new("many-config");
    let clip = clip(&dir, "clip.mp4", 12, 25, false);
    let dead = free_port();
    let config = write_config(
        &dir,
        &format!(
            "provider = \"cpu\"\n\
             [[input]]\ninput = \"{clip}\"\noutput = \"{video}\"\nmode = \"color\"\n\
             [[input]]\ninput = \"{clip}\"\noutput = \"{masks}/\"\n\
             [[input]]\ninput = \"rtsp://admin:s3cret@127.0.0.1:{dead}/cam\"\noutput = \"{cam}\"\n\
             reconnect = false\n",
            clip = clip.display(),
            video = dir.join("color.mp4").display(),
            masks = dir.join("masks").display(),
            cam = dir.join("cam.mp4").display(),
        ),
    );
    let (ok, _, err) = beitseg(&["run", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert!(err.contains("error: 1 of 3 inputs failed"), "{err}");
    assert!(
        // The third input, by its number.
        err.contains(&format!(
            "error: [3] camera rtsp://***@127.0.0.1:{dead}/cam"
        )),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(count_video_frames(&dir.join("color.mp4")), 12, "{err}");
    let pngs = std::fs::read_dir(dir.join("masks")).unwrap().count();
    assert_eq!(pngs, 12, "{err}");
    assert!(!dir.join("cam.mp4").exists());
}

/// Mistakes in a config are one line each, before anything starts (no model loaded, nothing
/// written).
#[test]
fn a_bad_config_is_one_line_before_anything_starts() {
    let dir = TempDir::new("many-bad-config");
    let clip = clip(&dir, "clip.mp4", 5, 25, false);
    let out = dir.join("x.mp4");
    for (text, says) in [
        (
            format!("[[input]]\ninput = \"{}\"\noutptu = \"a.mp4\"\n", clip.display()),
            "unknown option outptu (did you mean output?)".to_string(),
        ),
        (
            format!(
                "[[input]]\ninput = \"{}\"\noutput = \"{o}\"\n",
                dir.join("missing.mp4").display(),
                o = out.display()
            ),
            format!("input {}: no such file", dir.join("missing.mp4").display()),
        ),
        (
            format!(
                "[[input]]\ninput = \"{c}\"\noutput = \"{o}\"\n[[input]]\ninput = \"test\"\noutput = \"{o}\"\n",
                c = clip.display(),
                o = out.display()
            ),
            format!("would both write {}", out.display()),
        ),
    ] {
        let config = write_config(&dir, &text);
        let (ok, _, err) = beitseg(&["run", "--config", config.to_str().unwrap()]);
        assert!(!ok, "{text}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(&says), "{text}: {err}");
        assert!(!err.contains("loading"), "{err}");
        assert!(!out.exists());
    }
    // Several inputs need a folder out.
    let (ok, _, err) = beitseg(&[
        "run",
        clip.to_str().unwrap(),
        "test",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("with 2 inputs it names a folder"), "{err}");
}
