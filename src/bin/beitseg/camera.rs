// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! An RTSP camera as `beitseg run` reads it: its own small pipeline feeding the segmentation
//! pipeline, rebuilt with backoff when the camera drops, stalls or never answers.
//!
//! Why not gst-plugins-rs's `fallbacksrc`: it also restarts a failing source, but it keeps the
//! stream going by showing a fallback (an image or nothing) in the lost camera's place, within
//! one pipeline's clock. Here a lost camera must leave a gap and no made-up frames (the output
//! is a recording of what the camera saw), must be told apart (closed connection, stall, never
//! answered, ended with RTCP BYE) for the exit status and the closing line, and must count
//! frames and drops per connection; and fallbacksrc is not packaged for Debian 12.

use crate::console::say;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gst::prelude::*;

use crate::args::Transport;
use crate::server::restamped_for;

/// How `beitseg run` connects to an RTSP camera.
#[derive(Debug, Clone)]
pub struct CameraOptions {
    /// Where rtspsrc connects; never printed (it may hold a password): see [`Camera::shown`].
    pub url: String,
    pub latency_ms: u32,
    /// `tcp`, `udp` or `auto`.
    pub transport: Transport,
    pub reconnect: bool,
    /// No frame for this long counts as a lost camera.
    pub stall: Duration,
    /// Stop with an error after this long without the camera (None: never).
    pub give_up: Option<Duration>,
    /// Larger frames end the run (a camera does not change its mind by reconnecting).
    pub max_resolution: crate::limits::MaxResolution,
    /// rtsps://: a certificate authority to trust besides the system's.
    pub ca: Option<std::path::PathBuf>,
}

enum Link {
    /// Connected or connecting.
    Up,
    /// Waiting to reconnect at this instant.
    Waiting(Instant),
    /// The camera ended its stream; EOS was sent downstream.
    Ended,
}

/// An RTSP camera feeding an appsrc in the segmentation pipeline. Its own small pipeline
/// (`rtspsrc ! decodebin ! appsink`) is torn down and rebuilt when the camera drops, stalls or
/// never answers, so the segmentation pipeline and its output keep going.
pub struct Camera {
    options: CameraOptions,
    target: gst_app::AppSrc,
    pipeline: Option<gst::Pipeline>,
    link: Link,
    attempt: u32,
    /// When the camera was last seen: a frame, or the start of a connection attempt.
    last_seen: Arc<Mutex<Instant>>,
    frames: Arc<std::sync::atomic::AtomicU64>,
    /// Frames of the current connection only.
    connection_frames: Arc<std::sync::atomic::AtomicU64>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    lost_since: Option<Instant>,
    server_closed: bool,
    /// Set when the camera sends RTCP BYE (see [`Camera::hold_goodbye`]).
    goodbye: Arc<std::sync::atomic::AtomicBool>,
    /// EOS was sent into the camera's own pipeline after its BYE.
    draining: bool,
    pub reconnects: u32,
    /// Why the camera's stream was refused (see [`crate::limits::MaxResolution::guard`]).
    refused: Arc<Mutex<Option<String>>>,
    /// Why the camera's TLS certificate was not accepted, if it was not.
    untrusted: Arc<Mutex<Option<String>>>,
}

/// How long the last packets of a camera may trail its RTCP BYE.
const GOODBYE_GRACE: Duration = Duration::from_secs(1);

impl Camera {
    pub fn new(options: CameraOptions, target: gst_app::AppSrc) -> Result<Self> {
        let mut camera = Camera {
            options,
            target,
            pipeline: None,
            link: Link::Waiting(Instant::now()),
            attempt: 0,
            last_seen: Arc::new(Mutex::new(Instant::now())),
            frames: Arc::default(),
            connection_frames: Arc::default(),
            dropped: Arc::default(),
            lost_since: None,
            server_closed: false,
            goodbye: Arc::default(),
            draining: false,
            reconnects: 0,
            refused: Arc::default(),
            untrusted: Arc::default(),
        };
        camera.connect()?;
        Ok(camera)
    }

    /// The camera's URL as printed: its userinfo masked.
    fn shown(&self) -> String {
        crate::secrets::masked(&self.options.url)
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Frames the segmentation pipeline's input queue dropped (its oldest) because it was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn connection_frames(&self) -> u64 {
        self.connection_frames
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn connect(&mut self) -> Result<()> {
        let protocols = self.options.transport.protocols();
        let pipeline = crate::run::launch(&format!(
            "rtspsrc name=camera latency={} protocols={protocols} tcp-timeout={} ! decodebin name=dec ! \
             appsink name=frames sync=false max-buffers=2 caps=video/x-raw",
            self.options.latency_ms,
            self.options.stall.as_micros()
        ), "the camera pipeline")?;
        let rtspsrc = pipeline
            .by_name("camera")
            .context("camera pipeline without its rtspsrc")?;
        // Set as a property, not in the description: a URL may hold any character. Its
        // credentials go to rtspsrc's own properties (decoded), never in a URL it logs.
        match gstbeitseg::secrets::split_credentials(&self.options.url) {
            Some((bare, user, password)) => {
                rtspsrc.set_property("location", &bare);
                rtspsrc.set_property("user-id", &user);
                rtspsrc.set_property("user-pw", &password);
            }
            None => rtspsrc.set_property("location", &self.options.url),
        }
        self.trust(&rtspsrc)?;
        self.goodbye = Arc::default();
        self.draining = false;
        Self::hold_goodbye(&rtspsrc, self.goodbye.clone());
        if self.options.transport == Transport::Auto {
            // Auto: give up on UDP (and retry over TCP) well before the stall timer fires.
            rtspsrc.set_property("timeout", (self.options.stall.as_micros() / 3) as u64);
        }
        if let Some(dec) = pipeline.by_name("dec") {
            self.refused = self.options.max_resolution.guard(&dec);
        }
        let appsink = pipeline
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .context("camera pipeline without its appsink")?;
        let target = self.target.clone();
        let last_seen = self.last_seen.clone();
        let frames = self.frames.clone();
        let connection_frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.connection_frames = connection_frames.clone();
        let dropped = self.dropped.clone();
        let cadence = Mutex::new(Cadence::default());
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    *last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                    frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    connection_frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Timestamps from the camera restart at every connection: stamp each frame
                    // with the segmentation pipeline's running time instead.
                    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps_owned()) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Some(mut buffer) = restamped_for(&target, buffer, &caps) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let arrived = buffer.pts();
                    let camera = sample.buffer().map(|b| (b.pts(), b.duration()));
                    let paced = cadence.lock().unwrap_or_else(|p| p.into_inner()).pts(
                        camera.and_then(|c| c.0),
                        camera.and_then(|c| c.1),
                        arrived,
                    );
                    buffer.make_mut().set_pts(paced);
                    // A leaky queue drops its oldest frame to take this one when full.
                    let max = target.max_buffers();
                    if !target.is_block() && max > 0 && target.current_level_buffers() >= max {
                        dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    target.push_buffer(buffer).map(|_| gst::FlowSuccess::Ok)
                })
                .build(),
        );
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.server_closed = false;
        self.attempt += 1;
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason, if any, arrives on the bus and is handled by poll().
            say!("camera {}: cannot start", self.shown());
        }
        self.pipeline = Some(pipeline);
        self.link = Link::Up;
        Ok(())
    }

    /// rtsps://: trusts `--ca` besides the system's authorities, and notes why a certificate
    /// was not accepted (rtspsrc itself only says "Failed to connect").
    fn trust(&mut self, rtspsrc: &gst::Element) -> Result<()> {
        use gst_rtsp_server::gio;
        if let Some(ca) = &self.options.ca {
            let database = gio::TlsFileDatabase::new(ca)
                .map_err(|e| anyhow::anyhow!("--ca {}: {e}", ca.display()))?;
            rtspsrc.set_property("tls-database", database.upcast::<gio::TlsDatabase>());
        }
        let untrusted = self.untrusted.clone();
        let has_ca = self.options.ca.is_some();
        // Called only once the certificate failed the checks.
        rtspsrc.connect("accept-certificate", false, move |values| {
            let flags = values[3].get::<gio::TlsCertificateFlags>().ok()?;
            let advice = if has_ca {
                "is --ca the authority that signed it?"
            } else {
                "give the authority that signed it with --ca FILE"
            };
            *untrusted.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                "TLS: the camera's certificate is not trusted ({flags:?}); {advice}"
            ));
            Some(false.to_value())
        });
        Ok(())
    }

    /// A camera's RTCP BYE must not end the stream at once. A server sends RTP and RTCP
    /// through separate queues: gst-rtsp-server over a back-pressured TCP connection lets the
    /// BYE overtake the last RTP packets, and rtspsrc's answer to BYE (EOS into rtpbin) would
    /// then refuse them: frames lost at the end of every clip a busy machine reads. So the
    /// BYE only sets `goodbye`; [`Camera::poll`] ends the stream once frames stop coming.
    /// The jitter buffer's own end-of-clip timer (from the `npt-stop` of the PLAY range)
    /// would refuse late packets the same way, so the range end is taken out of its caps.
    fn hold_goodbye(rtspsrc: &gst::Element, goodbye: Arc<std::sync::atomic::AtomicBool>) {
        rtspsrc.connect("new-manager", false, move |args| {
            let manager = args[1].get::<gst::Element>().ok()?;
            let goodbye = goodbye.clone();
            // rtpbin re-emits the session's on-bye-ssrc before rtspsrc's own handler runs;
            // stopping the session's emission here keeps rtspsrc from sending EOS.
            manager.connect("on-bye-ssrc", false, move |args| {
                let manager = args[0].get::<gst::Element>().ok()?;
                let id = args[1].get::<u32>().ok()?;
                let session = manager
                    .emit_by_name::<Option<gst::glib::Object>>("get-internal-session", &[&id])?;
                session.stop_signal_emission_by_name("on-bye-ssrc");
                goodbye.store(true, std::sync::atomic::Ordering::SeqCst);
                None
            });
            if manager.find_property("latency").is_some() {
                manager.connect("new-jitterbuffer", false, |args| {
                    let jitterbuffer = args[1].get::<gst::Element>().ok()?;
                    jitterbuffer
                        .static_pad("sink")?
                        .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, without_range_end);
                    None
                });
            }
            None
        });
        // The depayloader turns the same `npt-stop` (from rtpbin's payload map, past the
        // jitter buffer) into the stop of its segment, while the jitter buffer stamps frames by
        // arrival: frames that arrive late would fall past the stop and be dropped.
        rtspsrc.connect_pad_added(|_, pad| {
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, without_range_end);
        });
    }

    fn disconnect(&mut self) {
        if let Some(p) = self.pipeline.take() {
            let _ = p.set_state(gst::State::Null);
        }
    }

    /// The camera is gone: schedule a reconnection with exponential backoff (0.5 s doubling to
    /// 8 s), or fail when reconnecting is off or the camera has been away too long.
    fn lost(&mut self, why: &str) -> Result<()> {
        // GStreamer's text may quote the URL.
        let why = crate::secrets::masked(why);
        self.disconnect();
        let now = Instant::now();
        let since = *self.lost_since.get_or_insert(now);
        if !self.options.reconnect {
            bail!("camera {}: {why}", self.shown());
        }
        if let Some(limit) = self.options.give_up {
            if now.duration_since(since) >= limit {
                bail!(
                    "camera {}: {why}; gave up after {:.0} s without it",
                    self.shown(),
                    limit.as_secs_f64()
                );
            }
        }
        let delay = Duration::from_millis(500 << self.attempt.saturating_sub(1).min(4));
        say!(
            "\ncamera {}: {why}; reconnecting in {:.1} s (attempt {})",
            self.shown(),
            delay.as_secs_f64(),
            self.attempt + 1
        );
        self.link = Link::Waiting(now + delay);
        Ok(())
    }

    /// Why the camera is refused for good, if it is: frames over `--max-resolution`, or a
    /// certificate not trusted. Reconnecting would change neither.
    fn refused_for_good(&self) -> Option<String> {
        let slot = |s: &Mutex<Option<String>>| s.lock().unwrap_or_else(|p| p.into_inner()).clone();
        slot(&self.refused).or_else(|| slot(&self.untrusted))
    }

    /// Handles the camera's bus and timers; call often. Errors only when the camera is lost for
    /// good (reconnecting off, or the give-up time passed).
    pub fn poll(&mut self) -> Result<()> {
        match self.link {
            Link::Ended => return Ok(()),
            Link::Waiting(at) => {
                if Instant::now() >= at {
                    self.reconnects += 1;
                    self.connect()?;
                }
                return Ok(());
            }
            Link::Up => {}
        }
        let bus = self.pipeline.as_ref().and_then(|p| p.bus());
        while let Some(msg) = bus.as_ref().and_then(|b| b.pop()) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    if let Some(why) = self.refused_for_good() {
                        self.disconnect();
                        bail!("camera {}: {why}", self.shown());
                    }
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    let detail = debug
                        .lines()
                        .last()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default();
                    return self.lost(&format!("{}{detail}", e.error()));
                }
                gst::MessageView::Warning(w) => {
                    let debug = w.debug().map(|d| d.to_string()).unwrap_or_default();
                    if debug.contains("closed the connection") {
                        self.server_closed = true;
                    }
                }
                gst::MessageView::Eos(_) => {
                    if !self.draining && (self.server_closed || self.connection_frames() == 0) {
                        return self.lost("the server closed the connection");
                    }
                    // The camera ended its stream (RTCP BYE), every frame drained: end ours.
                    self.disconnect();
                    self.link = Link::Ended;
                    let _ = self.target.end_of_stream();
                    return Ok(());
                }
                _ => {}
            }
        }
        let last = *self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        if self.goodbye.load(std::sync::atomic::Ordering::SeqCst)
            && !self.draining
            && last.elapsed() >= GOODBYE_GRACE
        {
            // The camera said goodbye and its last frames are in: end its own pipeline, which
            // drains the jitter buffer and the decoder before its EOS (handled above).
            self.draining = true;
            if let Some(p) = &self.pipeline {
                p.send_event(gst::event::Eos::new());
            }
        }
        if self.draining && last.elapsed() >= self.options.stall {
            // EOS never came out of the camera's pipeline: end with what arrived.
            self.finish();
            return Ok(());
        }
        if last.elapsed() >= self.options.stall {
            return self.lost(&format!(
                "no frame for {:.0} s",
                self.options.stall.as_secs_f64()
            ));
        }
        if self.connection_frames() > 0 && last.elapsed() < Duration::from_secs(1) {
            // Streaming again: the next loss starts the backoff from the beginning.
            if self.lost_since.take().is_some() {
                say!("\ncamera {}: receiving frames again", self.shown());
            }
            self.attempt = 0;
        }
        Ok(())
    }

    /// Ends the stream now (Ctrl-C).
    pub fn finish(&mut self) {
        self.disconnect();
        self.link = Link::Ended;
        let _ = self.target.end_of_stream();
    }
}

/// Timestamps of a camera's frames in the segmentation pipeline: the camera's own spacing,
/// anchored to the running time at which the connection's first frame arrived. Stamping by
/// arrival instead would squeeze frames that arrive in a burst (after a network or server
/// hiccup) into a millisecond: a recording that plays them as one, and that decoders may drop.
#[derive(Default)]
struct Cadence {
    /// (camera timestamp, running time) of the anchor frame.
    anchor: Option<(gst::ClockTime, gst::ClockTime)>,
    last: Option<gst::ClockTime>,
}

impl Cadence {
    /// How far the camera's clock may wander from ours before the anchor is set again.
    const SLACK: gst::ClockTime = gst::ClockTime::from_seconds(2);

    /// The running time for a frame the camera stamped `camera` (lasting `duration`), which
    /// arrived at running time `arrived`.
    fn pts(
        &mut self,
        camera: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
        arrived: Option<gst::ClockTime>,
    ) -> Option<gst::ClockTime> {
        let (Some(camera), Some(arrived)) = (camera, arrived) else {
            return arrived;
        };
        let paced = self
            .anchor
            .filter(|&(c, _)| camera >= c)
            .map(|(c, r)| r + (camera - c))
            .filter(|&p| p.absdiff(arrived) <= Self::SLACK);
        let mut pts = paced.unwrap_or_else(|| {
            self.anchor = Some((camera, arrived));
            arrived
        });
        // Increasing by at least half a frame (5 ms when the frame rate is unknown), so that
        // no container's time scale rounds two frames onto one.
        let gap = duration.map_or(gst::ClockTime::from_mseconds(5), |d| d / 2);
        if let Some(last) = self.last {
            pts = pts.max(last + gap);
        }
        self.last = Some(pts);
        Some(pts)
    }
}

/// A pad probe that takes the end of the PLAY range (`npt-stop`) out of RTP caps.
fn without_range_end(_: &gst::Pad, info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
        if let gst::EventView::Caps(c) = event.view() {
            let caps = c.caps();
            if caps.iter().any(|s| s.has_field("npt-stop")) {
                let mut caps = caps.to_owned();
                for s in caps.make_mut().iter_mut() {
                    s.remove_field("npt-stop");
                }
                let seqnum = event.seqnum();
                *event = gst::event::Caps::builder(&caps).seqnum(seqnum).build();
            }
        }
    }
    gst::PadProbeReturn::Ok
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.disconnect();
    }
}
