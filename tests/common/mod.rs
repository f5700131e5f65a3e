// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gst_video::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Once;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample(rel: &str) -> PathBuf {
    root().join("samples").join(rel)
}

pub fn tiny_beit() -> PathBuf {
    sample("beit-tiny-ade/model.onnx")
}

pub fn selfie() -> PathBuf {
    sample("selfie/selfie_segmentation.onnx")
}

/// The astronaut photo (512x512, RGB) most tests segment.
pub fn astronaut() -> PathBuf {
    sample("beit-tiny-ade/astronaut.png")
}

/// The astronaut photo scaled (nearest neighbour) to `w` x `h`, as packed RGB.
pub fn photo_rgb(w: usize, h: usize) -> Vec<u8> {
    let (pw, ph, _, px) = read_png(&astronaut());
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x * pw / w, y * ph / h);
            out.extend_from_slice(&px[(sy * pw + sx) * 3..(sy * pw + sx) * 3 + 3]);
        }
    }
    out
}

/// The folder of the tests' own small files (bad models, label and palette files, reference
/// resizes).
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// A file (or folder) in tests/fixtures, by its path there.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// An 8-bit PNG as (width, height, channels, pixels).
pub fn read_png(path: &Path) -> (usize, usize, usize, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    (info.width as usize, info.height as usize, channels, buf)
}

pub fn agreement(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Frames in samples/sample.mp4.
pub const SAMPLE_FRAMES: usize = 100;

static GST: Once = Once::new();

pub fn init_gst() {
    GST.call_once(|| {
        gst::init().unwrap();
        gstbeitseg::plugin_register_static().unwrap();
    });
}

/// The engine's own class map (no GStreamer) of packed RGB pixels, the reference the element's
/// output is compared with.
pub fn engine_classes(model: &Path, w: usize, h: usize, rgb: &[u8]) -> gstbeitseg::frame::ClassMap {
    use gstbeitseg::frame::{ClassMap, Frame, PixelFormat};
    use gstbeitseg::model::{Model, Overrides};
    let mut seg =
        gstbeitseg::engine::Segmenter::new(Model::load(model, &Overrides::default()).unwrap());
    let mut out = ClassMap::default();
    seg.segment(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, rgb).unwrap(),
        &mut out,
    )
    .unwrap();
    out
}

/// A pipeline from gst-launch syntax (GStreamer initialised first).
pub fn launch_pipeline(description: &str) -> gst::Pipeline {
    init_gst();
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// The element `name` of `pipeline`, as its own type (an appsink, an appsrc…).
pub fn element<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> T {
    pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
        .downcast::<T>()
        .unwrap()
}

/// Plane 0 of a video frame as rows without the padding at their ends (the strides of the
/// buffer's VideoMeta honoured, else `info`'s).
pub fn frame_rows(buf: &gst::BufferRef, info: &gst_video::VideoInfo) -> Vec<u8> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let row = info.width() as usize * info.format_info().pixel_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    (0..info.height() as usize)
        .flat_map(|y| data[y * stride..y * stride + row].to_vec())
        .collect()
}

/// The warnings on `pipeline`'s bus so far (taken off it, without waiting); an error message
/// fails the test.
pub fn bus_warnings(pipeline: &gst::Pipeline) -> Vec<String> {
    let bus = pipeline.bus().unwrap();
    let mut warnings = Vec::new();
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            gst::MessageView::Warning(w) => warnings.push(format!("{} {:?}", w.error(), w.debug())),
            _ => {}
        }
    }
    warnings
}

/// Decodes a video file to the end and counts its frames.
pub fn count_video_frames(path: &Path) -> usize {
    init_gst();
    let pipeline = launch_pipeline(
        "filesrc name=src ! decodebin ! videoconvert ! appsink name=out sync=false",
    );
    // A property, not gst-launch text: the path may hold quotes.
    element::<gst::Element>(&pipeline, "src").set_property("location", path);
    let sink: gst_app::AppSink = element(&pipeline, "out");
    let bus = pipeline.bus().unwrap();
    // A file that does not play (yet) counts 0: an error ends the count, as does EOS, and
    // so does 30 s without a frame.
    let _ = pipeline.set_state(gst::State::Playing);
    let mut n = 0;
    let mut idle = Duration::ZERO;
    while idle < Duration::from_secs(30) {
        if sink
            .try_pull_sample(gst::ClockTime::from_mseconds(100))
            .is_some()
        {
            n += 1;
            idle = Duration::ZERO;
            continue;
        }
        idle += Duration::from_millis(100);
        if sink.is_eos() || bus.pop_filtered(&[gst::MessageType::Error]).is_some() {
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    n
}

/// A clip of `frames` frames at `fps` (320x240 H.264 in MP4), with an AAC track if `audio`.
pub fn clip(dir: &TempDir, name: &str, frames: u32, fps: u32, audio: bool) -> PathBuf {
    let path = dir.join(name);
    let audio = if audio {
        // As long as the video.
        let buffers = (frames as u64 * 44100 / fps as u64 / 1024) + 1;
        format!("audiotestsrc num-buffers={buffers} samplesperbuffer=1024 ! avenc_aac ! mux.")
    } else {
        String::new()
    };
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,width=320,height=240,framerate={fps}/1 ! x264enc ! mux. {audio} \
         mp4mux name=mux ! filesink location=\"{}\"",
        path.display()
    ));
    play_to_eos(&pipeline, "the clip");
    path
}

/// Plays a pipeline that writes something (`what`) to its end: EOS within 60 s, or the test
/// fails with the error or the timeout.
pub fn play_to_eos(pipeline: &gst::Pipeline, what: &str) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap_or_else(|| panic!("{what} was not written in 60 s"));
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "{what}: {msg:?}"
    );
}

/// The `beitseg` command line: (success, stdout, stderr).
pub fn beitseg(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A folder for one test's files, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("beitseg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A camera: gst-rtsp-server on 127.0.0.1:`port`/cam playing the sample clip to each client from
/// its start, in real time.
pub struct Camera {
    server: gst_rtsp_server::RTSPServer,
    context: gst::glib::MainContext,
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    source: Option<gst::glib::SourceId>,
    held_back: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Camera {
    pub fn start(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// With `hold`: the RTP packets of the clip's last frames wait that long in the server
    /// after the stream's end went through rtpbin, so its RTCP BYE leaves first, as it does
    /// when a busy client reads slowly.
    pub fn start_with(port: u16, hold: Option<Duration>) -> Self {
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
        let held_back = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(hold) = hold {
            let held_back = held_back.clone();
            factory.connect_media_configure(move |_, media| {
                let pipeline = media.element().parent().unwrap();
                let held_back = held_back.clone();
                // gst-rtsp-server's TCP sender adds an appsink for RTP (behind a queue), then
                // one for RTCP. Only the RTP side is held.
                let seen = std::sync::atomic::AtomicBool::new(false);
                pipeline
                    .downcast::<gst::Bin>()
                    .unwrap()
                    .connect_deep_element_added(move |_, _, element| {
                        let is_appsink = element.factory().is_some_and(|f| f.name() == "appsink");
                        if !is_appsink || seen.swap(true, Ordering::SeqCst) {
                            return;
                        }
                        let held_back = held_back.clone();
                        element.static_pad("sink").unwrap().add_probe(
                            gst::PadProbeType::BUFFER,
                            move |_, info| {
                                let last_frames = info.buffer().and_then(|b| b.pts())
                                    >= Some(gst::ClockTime::from_mseconds(3850));
                                if last_frames && !held_back.swap(true, Ordering::SeqCst) {
                                    std::thread::sleep(hold);
                                }
                                gst::PadProbeReturn::Ok
                            },
                        );
                    });
            });
        }
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
            held_back,
        }
    }

    /// Whether the server held the last packets back (see [`Camera::start_with`]).
    pub fn held_back(&self) -> bool {
        self.held_back.load(Ordering::SeqCst)
    }

    /// The camera goes away: connections closed, nothing listening.
    pub fn stop(&mut self) {
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

pub fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_beitseg"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A child's stderr, read as it comes, so a test can wait for a line instead of sleeping.
pub struct Stderr {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stderr {
    /// Takes `child`'s stderr (spawned with it piped, as [`spawn`] does).
    pub fn watch(child: &mut Child) -> Self {
        let mut pipe = child.stderr.take().expect("stderr piped");
        let text: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
        let reader = std::thread::spawn({
            let text = text.clone();
            move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    text.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Stderr {
            text,
            reader: Some(reader),
        }
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until `needle` appears, at most `limit`; panics with what was said otherwise.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        wait_until(limit, || self.text().contains(needle))
            .unwrap_or_else(|()| panic!("no {needle:?} within {limit:?}: {}", self.text()));
    }

    /// Waits (bounded) for the child to exit; returns (success, all of stderr).
    pub fn finish(self, child: Child, limit: Duration) -> (bool, String) {
        let (status, text) = self.finish_status(child, limit);
        (status.success(), text)
    }

    /// Waits (bounded) for the child to exit; returns (its exit status, all of stderr).
    pub fn finish_status(
        mut self,
        mut child: Child,
        limit: Duration,
    ) -> (std::process::ExitStatus, String) {
        let exited = wait_until(limit, || child.try_wait().unwrap().is_some());
        if exited.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let status = child.wait().unwrap();
        assert!(
            exited.is_ok(),
            "beitseg did not finish in {limit:?}: {}",
            self.text()
        );
        (status, self.text())
    }
}

/// Polls `done` every 20 ms until it holds (Ok) or `limit` passes (Err).
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > limit {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Waits (bounded) for the child; returns (success, stderr).
pub fn finish(child: Child, limit: Duration) -> (bool, String) {
    let (status, err) = finish_status(child, limit);
    (status.success(), err)
}

/// A run stopped by Ctrl-C that finished its outputs exits 130 (128 + SIGINT).
pub fn interrupted_cleanly(status: std::process::ExitStatus) -> bool {
    status.code() == Some(130)
}

/// Waits (bounded) for the child; returns (its exit status, stderr).
pub fn finish_status(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let stderr = |child: &mut Child| {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    };
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, stderr(&mut child));
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "beitseg did not finish in {limit:?}: {}",
                stderr(&mut child)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An RTSP client (rtspsrc ! decodebin ! appsink, RGB): up to `n` decoded frames, retrying the
/// connection until `limit` (the server may not be up yet).
pub fn pull_rtsp_frames(url: &str, n: usize, limit: Duration) -> Vec<gst::Sample> {
    init_gst();
    let t0 = Instant::now();
    let mut decoded = Vec::new();
    while decoded.len() < n && t0.elapsed() < limit {
        let pipeline = launch_pipeline(&format!(
            "rtspsrc location={url} protocols=tcp ! decodebin ! videoconvert ! \
             video/x-raw,format=RGB ! appsink name=out sync=false"
        ));
        let sink: gst_app::AppSink = element(&pipeline, "out");
        let bus = pipeline.bus().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut waited = Duration::ZERO;
        // Until an error (no server yet: retry) or 5 s without a frame.
        while decoded.len() < n && waited < Duration::from_secs(5) {
            if bus
                .pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos])
                .is_some()
            {
                break;
            }
            match sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                Some(s) => {
                    decoded.push(s);
                    waited = Duration::ZERO;
                }
                None => waited += Duration::from_millis(100),
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        if decoded.len() < n {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    decoded
}

/// Sends SIGINT (Ctrl-C) to a child process.
pub fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

/// The frame count in `beitseg run`'s closing line "wrote X: N frames …".
pub fn said_frames(err: &str) -> usize {
    let line = err
        .lines()
        .find(|l| l.starts_with("wrote "))
        .unwrap_or_else(|| panic!("no closing line: {err}"));
    let n = line
        .rsplit(": ")
        .next()
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    n.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// A metric's value on `beitseg run --metrics PORT`'s page, summed over its series (0 while
/// the page is not up).
pub fn metric(port: u16, name: &str) -> f64 {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A certificate authority and a server certificate it signed for 127.0.0.1, made by openssl:
/// (ca.pem, cert.pem, key.pem).
pub fn certificates(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let (cert, key, csr) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("cert.csr"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=beitseg test CA",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (ca, cert, key)
}

/// A self-signed certificate for 127.0.0.1 and its key, as a quick server setup makes them.
pub fn self_signed(dir: &TempDir, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(&format!("{name}.pem")),
        dir.join(&format!("{name}-key.pem")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (cert, key)
}
