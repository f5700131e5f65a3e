// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! No password escapes: every byte `beitseg` (and GStreamer's debug log, at level 4) writes is
//! searched for it, with passwords that hold URL delimiters, passed in the URL, through
//! `${NAME}`, in a query string, in a server URL, and in values clap refuses.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// `beitseg ARGS` with `env`, GStreamer's log at level 4 into stderr: (exit status, stdout and
/// stderr together).
fn everything_written(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beitseg"));
    command
        .args(args)
        .env("GST_DEBUG", "4")
        .env("GST_DEBUG_NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        use std::io::Read;
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = Stderr::watch(&mut child);
    let (status, text) = err.finish_status(child, LIMIT);
    (status, format!("{}{text}", out.join().unwrap()))
}

fn assert_hidden(written: &str, secret: &str) {
    assert!(
        !written.contains(secret),
        "{secret:?} was written: {}",
        written
            .lines()
            .filter(|l| l.contains(secret))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn passwords_with_url_delimiters_never_escape() {
    init_gst();
    let dir = TempDir::new("secrets-delimiters");
    let out = dir.join("out.mp4");
    let model = tiny_beit().display().to_string();
    // Nothing listens there: the camera fails, and says so.
    let url = |pw: &str| format!("rtsp://admin:{pw}@127.0.0.1:{}/x", free_port());
    for password in ["Zpw9/K7q3", "Zp9@ss:w/rdK222", "Sp9@c/ialK#1?"] {
        let camera = url(password);
        let (status, written) = everything_written(
            &[
                "run",
                &camera,
                "-o",
                out.to_str().unwrap(),
                "--model",
                &model,
                "--give-up-after",
                "1",
                "--stall-timeout",
                "1",
            ],
            &[],
        );
        assert!(!status.success());
        assert!(
            written.contains("error: camera rtsp://***@127.0.0.1:"),
            "{written}"
        );
        for part in password
            .split(['/', '@', ':', '#', '?'])
            .filter(|p| p.len() > 3)
        {
            assert_hidden(&written, part);
        }
    }
}

/// `beitseg serve` playing the sample clip on and on at `url` with `extra` options, once it
/// says it serves.
fn camera_at(url: &str, extra: &[&str]) -> std::process::Child {
    let clip = sample("sample.mp4").display().to_string();
    let mut args = vec!["serve", &clip, url, "--loop"];
    args.extend_from_slice(extra);
    let mut camera = spawn(&args);
    Stderr::watch(&mut camera).wait_for("serving", Duration::from_secs(30));
    camera
}

#[test]
fn a_substituted_password_reaches_its_camera_and_nothing_else() {
    init_gst();
    let dir = TempDir::new("secrets-substituted");
    let password = "Sp@c/ial#1?";
    let file = dir.join("pw.txt");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let port = free_port();
    let served = format!("rtsp://127.0.0.1:{port}/cam");
    let pw = file.display().to_string();
    let mut camera = camera_at(
        &served,
        &["--rtsp-user", "admin", "--rtsp-password-file", &pw],
    );
    let out = dir.join("out.mp4");
    let model = tiny_beit().display().to_string();
    let input = format!("rtsp://admin:${{CAM_PW}}@127.0.0.1:{port}/cam");
    let (status, written) = everything_written(
        &[
            "run",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--model",
            &model,
            "--frames",
            "5",
        ],
        &[("CAM_PW", password)],
    );
    assert!(status.success(), "{written}");
    let frames = count_video_frames(&out);
    assert!(frames > 0, "{written}");
    assert_eq!(said_frames(&written), frames, "{written}");
    assert_hidden(&written, "Sp@c");
    assert_hidden(&written, "ial#1");
    // A value that would move the credentials elsewhere stays a (wrong) password.
    let (status, written) = everything_written(
        &[
            "run",
            &input,
            "-o",
            dir.join("second.mp4").to_str().unwrap(),
            "--model",
            &model,
            "--frames",
            "5",
            "--give-up-after",
            "2",
            "-y",
        ],
        &[("CAM_PW", "x@evil:1/")],
    );
    let _ = camera.kill();
    let _ = camera.wait();
    assert!(!status.success(), "{written}");
    assert!(!written.contains("evil"), "{written}");
    assert!(written.contains(&format!("127.0.0.1:{port}")), "{written}");
}

#[test]
fn server_query_and_refused_values_are_masked() {
    init_gst();
    let dir = TempDir::new("secrets-server");
    let out = dir.join("out.mp4");
    let model = tiny_beit().display().to_string();
    let port = free_port();
    // An inference server with credentials that does not answer.
    let (status, written) = everything_written(
        &[
            "run",
            "test",
            "--frames",
            "2",
            "-o",
            out.to_str().unwrap(),
            "--model",
            &model,
            "--server",
            &format!("grpc://bob:SrvPw_2@127.0.0.1:{port}"),
            "--server-model",
            "m",
        ],
        &[],
    );
    assert!(!status.success());
    assert!(written.contains("grpc://***@127.0.0.1"), "{written}");
    assert_hidden(&written, "SrvPw_2");
    // Credentials in a query string.
    let (status, written) = everything_written(
        &[
            "run",
            &format!("http://127.0.0.1:{port}/clip.mp4?user=admin&Password=QueryPw7"),
            "-o",
            out.to_str().unwrap(),
            "--model",
            &model,
        ],
        &[],
    );
    assert!(!status.success());
    assert_hidden(&written, "QueryPw7");
    // A value clap refuses, quoted in its error.
    let (status, written) = everything_written(
        &["run", "test", "--transport", "rtsp://admin:ClapPw1@cam/x"],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{written}");
    assert!(written.contains("invalid value"), "{written}");
    assert_hidden(&written, "ClapPw1");
}

#[test]
fn the_element_masks_the_server_it_names() {
    let server = format!("grpc://bob:ElemPw5@127.0.0.1:{}", free_port());
    let out = Command::new("gst-launch-1.0")
        .args([
            "videotestsrc",
            "num-buffers=1",
            "!",
            "videoconvert",
            "!",
            "beitseg",
            &format!("model={}", tiny_beit().display()),
            &format!("server={server}"),
            "server-model=m",
            "!",
            "fakesink",
        ])
        .env("GST_PLUGIN_PATH", root().join("target/release"))
        .output()
        .unwrap();
    let written = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(written.contains("grpc://***@127.0.0.1"), "{written}");
    assert_hidden(&written, "ElemPw5");
}

#[test]
fn credentials_on_an_output_are_refused_not_dropped() {
    init_gst();
    let dir = TempDir::new("secrets-output");
    let model = tiny_beit().display().to_string();
    let output = format!("rtsp://admin:OutPw4@127.0.0.1:{}/x", free_port());
    let clip = sample("sample.mp4").display().to_string();
    fails_saying(
        &["run", "test", "-o", &output, "--model", &model],
        "--rtsp-user",
        "OutPw4",
    );
    fails_saying(&["serve", &clip, &output], "--rtsp-user", "OutPw4");
    let file = dir.join("pw.txt");
    std::fs::write(&file, "pw\n").unwrap();
    let out = dir.join("out.mp4").display().to_string();
    let pw = file.display().to_string();
    for flag in [["--rtsp-user", "viewer"], ["--rtsp-password-file", &pw]] {
        let mut args = vec!["run", "test", "-o", &out, "--model", &model];
        args.extend_from_slice(&flag);
        fails_saying(&args, "protect an rtsp:// output", "OutPw4");
    }
}

/// `beitseg ARGS` fails, saying `says`, and writes nothing of `secret`.
fn fails_saying(args: &[&str], says: &str, secret: &str) {
    let (status, written) = everything_written(args, &[]);
    assert!(!status.success(), "{written}");
    assert!(written.contains(says), "{says}: {written}");
    assert_hidden(&written, secret);
}

#[test]
fn certificate_and_key_files_are_checked_before_anything_starts() {
    init_gst();
    let dir = TempDir::new("secrets-tls-files");
    let (ca, cert, key) = certificates(&dir);
    let (own, own_key) = self_signed(&dir, "own");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let model = tiny_beit().display().to_string();
    let clip = sample("sample.mp4").display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "test", "--frames", "1", "--model", &model];
        args.extend_from_slice(extra);
        everything_written(&args, &[])
    };
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let server = format!("grpc://127.0.0.1:{}", free_port());
    let out = dir.join("x.mp4");
    for (ca_file, says) in [
        (&text, "not a PEM certificate"),
        (&own, "self-signed certificate, not a certificate authority"),
        (&cert, "a server's certificate, not the authority"),
    ] {
        let (status, written) = run(&[
            "--server",
            &server,
            "--server-model",
            "m",
            "--server-ca",
            &s(ca_file),
            "-o",
            &s(&out),
        ]);
        assert!(!status.success());
        assert!(written.contains(says), "{says}: {written}");
        assert!(!written.contains("loading"), "{written}");
    }
    // A key that is not the certificate's, and one that is not PEM.
    let port = free_port();
    let url = format!("rtsps://127.0.0.1:{port}/x");
    for (k, says) in [
        (&own_key, "is not the key of"),
        (&text, "not a PEM private key"),
    ] {
        let (status, written) = everything_written(
            &[
                "serve",
                &clip,
                &url,
                "--tls-cert",
                &s(&cert),
                "--tls-key",
                &s(k),
            ],
            &[],
        );
        assert!(!status.success());
        assert!(written.contains(says), "{says}: {written}");
    }
    // A key others can read is a warning (the pair is good: the run goes on to serve).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = spawn(&[
        "serve",
        &clip,
        &url,
        "--tls-cert",
        &s(&cert),
        "--tls-key",
        &s(&key),
    ]);
    let err = Stderr::watch(&mut child);
    err.wait_for("serving", Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        err.text().contains("can be read by other users"),
        "{}",
        err.text()
    );
    let _ = ca;
}

#[test]
fn an_rtsps_camera_is_trusted_through_its_authority_and_says_tls_when_not() {
    init_gst();
    let dir = TempDir::new("secrets-rtsps-input");
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    let url = format!("rtsps://127.0.0.1:{port}/cam");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut camera = camera_at(&url, &["--tls-cert", &cert, "--tls-key", &key]);
    let model = tiny_beit().display().to_string();
    let out = dir.join("x.mp4");
    let record = |extra: &[&str]| {
        let mut args = vec!["run", &url, "--model", &model, "--frames", "5", "-y"];
        let o = out.display().to_string();
        args.extend_from_slice(&["-o", &o, "--give-up-after", "5"]);
        args.extend_from_slice(extra);
        everything_written(&args, &[])
    };
    let (status, written) = record(&[]);
    assert!(!status.success(), "{written}");
    assert!(
        written.contains("TLS: the camera's certificate is not trusted")
            && written.contains("--ca"),
        "{written}"
    );
    let (status, written) = record(&["--ca", ca.to_str().unwrap()]);
    let _ = camera.kill();
    let _ = camera.wait();
    assert!(status.success(), "{written}");
    assert!(count_video_frames(&out) > 0, "{written}");
}
