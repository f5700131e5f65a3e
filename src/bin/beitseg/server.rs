// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! RTSP servers: the output server (gst-rtsp-server) of `beitseg run -o rtsp://…` that
//! restreams the segmented video, and `beitseg serve`, which plays a file as a camera; the one
//! RTSP URL parser (`Endpoint`) and the H.264 encoder choice for streams.

use crate::console::say;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

/// Where an RTSP server listens: `rtsp://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `rtsps://`: RTSP over TLS.
    pub tls: bool,
}

impl Endpoint {
    /// Whether a client of `url` (rtsp://…) would reach this endpoint: same port and path, and
    /// the same host or one of this machine's when the endpoint listens on all of them.
    pub fn serves(&self, url: &str) -> bool {
        let Ok(u) = url::Url::parse(url) else {
            return false;
        };
        let local = |h: &str| {
            matches!(h, "localhost" | "0.0.0.0" | "::" | "[::]" | "::1" | "[::1]")
                || h.starts_with("127.")
        };
        let host = u.host_str().unwrap_or_default();
        let same_host = host.eq_ignore_ascii_case(&self.host)
            || (local(host) && local(&self.host))
            || matches!(self.host.as_str(), "0.0.0.0" | "::" | "[::]");
        let path = |p: &str| p.trim_end_matches('/').to_string();
        same_host && u.port().unwrap_or(554) == self.port && path(u.path()) == path(&self.path)
    }

    pub fn parse(url: &str) -> Result<Self> {
        let usage = "an RTSP output is rtsp://HOST:PORT/PATH (or rtsps:// for TLS)";
        let parsed = url::Url::parse(url).map_err(|e| anyhow!("{url}: {e}: {usage}"))?;
        let tls = match parsed.scheme() {
            "rtsp" => false,
            "rtsps" => true,
            _ => bail!("{url}: {usage}"),
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => bail!("{url}: no host (use 0.0.0.0 to listen on every interface)"),
        };
        if host.is_empty() {
            bail!("{url}: no host (use 0.0.0.0 to listen on every interface)");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            bail!(
                "{}: credentials in an output URL would not protect it; give --rtsp-user NAME \
                 and --rtsp-password-file FILE instead",
                crate::secrets::masked(url)
            );
        }
        let port = parsed.port().unwrap_or(8554);
        if port == 0 {
            bail!("{url}: port 0 is not a port to serve on");
        }
        let path = parsed.path();
        if path.is_empty() || path == "/" {
            bail!("{url}: no path (for example rtsp://0.0.0.0:8554/segmented)");
        }
        Ok(Endpoint {
            host,
            port,
            path: path.to_string(),
            tls,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "rtsps"
        } else {
            "rtsp"
        }
    }

    /// Whether only this machine can connect.
    fn loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL a client on this machine can open.
    pub fn client_url(&self) -> String {
        let host = match self.host.as_str() {
            "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "[::1]".to_string(),
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_string(),
        };
        format!("{}://{host}:{}{}", self.scheme(), self.port, self.path)
    }
}

impl Endpoint {
    /// The URL to tell people: for a wildcard bind, this machine's address on its network (and
    /// the loopback one), since 127.0.0.1 does not reach it from elsewhere.
    pub fn announced(&self) -> String {
        let wildcard = matches!(self.host.as_str(), "0.0.0.0" | "::");
        let here = self.client_url();
        match wildcard.then(network_address).flatten() {
            Some(ip) => {
                let host = if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!(
                    "{}://{host}:{}{} (and {here} on this machine)",
                    self.scheme(),
                    self.port,
                    self.path
                )
            }
            None => here,
        }
    }
}

/// The address this machine uses to reach other hosts (the routing table's choice; connecting
/// a UDP socket sends nothing), if it has a network.
fn network_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // TEST-NET-1 (RFC 5737): never a real host.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The first of `names` that is installed.
pub fn first_installed<'a>(names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|n| gst::ElementFactory::find(n).is_some())
}

/// Who may watch a served stream: a user and password (basic or digest authentication), and
/// TLS (`rtsps://`) with a certificate and key.
#[derive(Default, Clone)]
pub struct Access {
    pub user: Option<(String, String)>,
    pub digest: bool,
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Access {
    /// From the command line: the password from a file (first line), never from the command
    /// line itself; a password file others may read is a warning.
    pub fn from_args(args: &crate::args::AccessArgs, endpoint: &Endpoint) -> Result<Self> {
        let user = match (&args.rtsp_user, &args.rtsp_password_file) {
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("--rtsp-password-file {}: cannot read it", file.display())
                })?;
                let password = text.lines().next().unwrap_or("").to_string();
                if password.is_empty() {
                    bail!("--rtsp-password-file {}: empty", file.display());
                }
                warn_if_shared(file);
                Some((user.clone(), password))
            }
            (Some(_), None) => bail!("--rtsp-user needs --rtsp-password-file FILE"),
            (None, Some(_)) => bail!("--rtsp-password-file needs --rtsp-user NAME"),
            (None, None) => None,
        };
        let tls = match (&args.tls_cert, &args.tls_key, endpoint.tls) {
            (Some(c), Some(k), true) => Some((c.clone(), k.clone())),
            (None, None, false) => None,
            (_, _, true) => bail!("rtsps:// needs --tls-cert FILE and --tls-key FILE"),
            (_, _, false) => bail!("--tls-cert and --tls-key serve rtsps://…, not rtsp://"),
        };
        if let Some((cert, key)) = &tls {
            crate::tls::check_pair(cert, key)?;
        }
        if user.is_none() && !endpoint.loopback() {
            say!(
                "warning: {}://{}:{}{} is open to anyone who can reach port {}: no --rtsp-user{}",
                endpoint.scheme(),
                endpoint.host,
                endpoint.port,
                endpoint.path,
                endpoint.port,
                if tls.is_none() {
                    ", no TLS (rtsps://)"
                } else {
                    ""
                }
            );
        }
        Ok(Access {
            user,
            digest: args.rtsp_auth == crate::args::RtspAuth::Digest,
            tls,
        })
    }

    /// Who may watch, comparable between the streams of one port.
    fn signature(&self) -> String {
        format!("{:?} {} {:?}", self.user, self.digest, self.tls)
    }

    /// The server's RTSPAuth, and the role the factory must grant (None: no control).
    fn apply(
        &self,
        server: &gst_rtsp_server::RTSPServer,
        factory: &gst_rtsp_server::RTSPMediaFactory,
    ) -> Result<()> {
        if self.user.is_none() && self.tls.is_none() {
            return Ok(());
        }
        let auth = gst_rtsp_server::RTSPAuth::new();
        let role = |name: &str| {
            gst_rtsp_server::RTSPToken::builder()
                .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, name)
                .build()
        };
        match &self.user {
            Some((user, password)) => {
                if self.digest {
                    auth.add_digest(user, password, &role("viewer"));
                    auth.set_supported_methods(gst_rtsp_server::gst_rtsp::RTSPAuthMethod::Digest);
                } else {
                    auth.add_basic(
                        &gst_rtsp_server::RTSPAuth::make_basic(user, password),
                        &role("viewer"),
                    );
                }
            }
            // TLS alone: anyone who completes the handshake watches.
            None => auth.set_default_token(Some(&mut role("viewer"))),
        }
        if let Some((cert, key)) = &self.tls {
            let certificate =
                gst_rtsp_server::gio::TlsCertificate::from_files(cert, key).map_err(|e| {
                    anyhow!(
                        "--tls-cert {} / --tls-key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
            auth.set_tls_certificate(Some(&certificate));
        }
        factory.add_role_from_structure(
            &gst::Structure::builder("viewer")
                .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build(),
        );
        server.set_auth(Some(&auth));
        Ok(())
    }
}

/// Warns when a secret file can be read by other users.
pub fn warn_if_shared(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(file) {
        if m.permissions().mode() & 0o044 != 0 {
            say!(
                "warning: {} can be read by other users (chmod 600 it)",
                file.display()
            );
        }
    }
}

/// A low-latency H.264 encoder for streaming at `kbps` kbit/s, as a gst-launch fragment.
pub fn streaming_h264(kbps: u32) -> Result<String> {
    match first_installed(&["x264enc", "openh264enc"]) {
        Some("x264enc") => Ok(format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate={kbps}"
        )),
        Some(enc) => Ok(format!("{enc} bitrate={}", kbps * 1000)),
        None => bail!("no H.264 encoder installed (x264enc: gstreamer1.0-plugins-ugly)"),
    }
}

/// One gst-rtsp-server per address and port, running on its own main loop thread, shared by
/// every stream this process serves there (each at its own path); stops when the last goes.
struct Listener {
    server: gst_rtsp_server::RTSPServer,
    mounts: gst_rtsp_server::RTSPMountPoints,
    /// Who may watch: the same for every path of the port.
    access: String,
    paths: Mutex<Vec<String>>,
    context: gst::glib::MainContext,
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

type ListenerKey = (String, u16);

static LISTENERS: std::sync::LazyLock<
    Mutex<std::collections::HashMap<ListenerKey, std::sync::Weak<Listener>>>,
> = std::sync::LazyLock::new(Default::default);

impl Listener {
    fn start(endpoint: &Endpoint, access: &Access) -> Result<Self> {
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&endpoint.host);
        server.set_service(&endpoint.port.to_string());
        let mounts = server
            .mount_points()
            .context("RTSP server without mount points")?;
        let context = gst::glib::MainContext::new();
        let source = server.attach(Some(&context)).map_err(|e| {
            anyhow!(
                "cannot serve {}: {e} (is the port in use?)",
                endpoint.client_url()
            )
        })?;
        let main_loop = gst::glib::MainLoop::new(Some(&context), false);
        let loop_context = context.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn({
                let main_loop = main_loop.clone();
                move || {
                    main_loop.run();
                    // Closes the listening socket.
                    if let Some(s) = loop_context.find_source_by_id(&source) {
                        s.destroy();
                    }
                }
            })
            .context("cannot start the RTSP server thread")?;
        Ok(Listener {
            server,
            mounts,
            access: access.signature(),
            paths: Mutex::default(),
            context,
            main_loop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Through the loop's own context: a quit() before the thread enters run() would be lost.
        let main_loop = self.main_loop.clone();
        self.context.invoke(move || main_loop.quit());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A stream served at one path; the path goes when dropped (and the server with its last path).
pub struct Server {
    listener: Arc<Listener>,
    path: String,
}

impl Server {
    fn start(
        endpoint: &Endpoint,
        factory: &gst_rtsp_server::RTSPMediaFactory,
        access: &Access,
    ) -> Result<Self> {
        let key = (endpoint.host.clone(), endpoint.port);
        let mut listeners = LISTENERS.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|_, l| l.strong_count() > 0);
        let listener = match listeners.get(&key).and_then(std::sync::Weak::upgrade) {
            Some(l) => l,
            None => {
                let l = Arc::new(Listener::start(endpoint, access)?);
                listeners.insert(key, Arc::downgrade(&l));
                l
            }
        };
        if listener.access != access.signature() {
            bail!(
                "cannot serve {}: port {} already serves another stream with other users or TLS \
                 settings",
                endpoint.client_url(),
                endpoint.port
            );
        }
        {
            let mut paths = listener.paths.lock().unwrap_or_else(|p| p.into_inner());
            if paths.contains(&endpoint.path) {
                bail!(
                    "cannot serve {}: that path is already served",
                    endpoint.client_url()
                );
            }
            paths.push(endpoint.path.clone());
        }
        access.apply(&listener.server, factory)?;
        listener.mounts.add_factory(&endpoint.path, factory.clone());
        Ok(Server {
            listener,
            path: endpoint.path.clone(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.listener.mounts.remove_factory(&self.path);
        self.listener
            .paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != self.path);
    }
}

/// `buffer` (with `caps`) made ready for `target`, an appsrc in another pipeline: the caps set
/// when they changed, the timestamp replaced by the target's running time (the two pipelines'
/// clocks and segments differ). None while the target is not playing.
pub(crate) fn restamped_for(
    target: &gst_app::AppSrc,
    buffer: &gst::BufferRef,
    caps: &gst::Caps,
) -> Option<gst::Buffer> {
    let now = target.current_running_time()?;
    if target.caps().as_ref() != Some(caps) {
        target.set_caps(Some(caps));
    }
    let mut buffer = buffer.copy();
    {
        let b = buffer.make_mut();
        b.set_pts(now);
        b.set_dts(gst::ClockTime::NONE);
    }
    Some(buffer)
}

/// Restreams raw frames pulled from an appsink to every RTSP client, encoded once per media
/// (the media is shared by all clients). Frames arriving while nobody watches are dropped.
pub struct Restream {
    _server: Server,
    /// The appsrc of each prepared media; weak, so a media that is gone drops out.
    sources: Arc<Mutex<Vec<gst::glib::WeakRef<gst_app::AppSrc>>>>,
    pub url: String,
}

impl Restream {
    pub fn start(endpoint: &Endpoint, kbps: u32, access: &Access) -> Result<Self> {
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( appsrc name=frames is-live=true format=time max-buffers=5 max-bytes=0 max-time=0 ! videoconvert ! \
             {} ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
            streaming_h264(kbps)?
        ));
        factory.set_shared(true);
        let sources: Arc<Mutex<Vec<gst::glib::WeakRef<gst_app::AppSrc>>>> = Arc::default();
        factory.connect_media_configure({
            let sources = sources.clone();
            move |_, media| {
                let appsrc = media
                    .element()
                    .downcast_ref::<gst::Bin>()
                    .and_then(|b| b.by_name_recurse_up("frames"))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
                if let Some(appsrc) = appsrc {
                    // Drop the oldest frame rather than block the segmentation pipeline.
                    appsrc.set_property_from_str("leaky-type", "downstream");
                    sources
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(appsrc.downgrade());
                }
            }
        });
        let server = Server::start(endpoint, &factory, access)?;
        Ok(Restream {
            _server: server,
            sources,
            url: endpoint.announced(),
        })
    }

    /// Hands every frame `sink` receives to the clients of `restream`.
    pub fn feed(restream: &Arc<Self>, sink: &gst_app::AppSink) {
        let restream = restream.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    restream.push(&sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    /// Hands a frame to every connected media, timestamped on its own clock.
    pub fn push(&self, sample: &gst::Sample) {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps_owned()) else {
            return;
        };
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources.retain(|src| {
            let Some(src) = src.upgrade() else {
                // The media is gone.
                return false;
            };
            let Some(buffer) = restamped_for(&src, buffer, &caps) else {
                // Not playing yet: keep it, drop the frame.
                return true;
            };
            // Flushing or EOS: the media was torn down when its last client left.
            src.push_buffer(buffer).is_ok()
        });
    }
}

/// `beitseg serve FILE URL`: plays a video file as an RTSP camera would (live, H.264).
pub fn serve_file(
    input: &Path,
    url: &str,
    looped: bool,
    access: &crate::args::AccessArgs,
) -> Result<()> {
    if !input.is_file() {
        bail!("input {}: no such file", input.display());
    }
    let streams = crate::input::streams(input);
    if !streams.iter().any(|c| {
        c.structure(0)
            .is_some_and(|s| s.name().starts_with("video/"))
    }) {
        bail!(
            "input {}: no video stream in it (a camera serves video)",
            input.display()
        );
    }
    let endpoint = Endpoint::parse(url)?;
    let access = Access::from_args(access, &endpoint)?;
    let location = input
        .canonicalize()
        .with_context(|| format!("input {}", input.display()))?;
    let uri = gst::glib::filename_to_uri(&location, None)
        .map_err(|e| anyhow!("input {}: {e}", input.display()))?;
    if looped {
        return serve_looped(input, &uri, &endpoint, &access);
    }
    let source = format!("uridecodebin uri=\"{uri}\"");
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(&format!(
        "( {source} ! videoconvert ! {} ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        streaming_h264(4000)?
    ));
    // Each client gets its own playback from the start of the file.
    factory.set_shared(false);
    let _server = Server::start(&endpoint, &factory, &access)?;
    say!(
        "serving {} at {} (Ctrl-C stops)",
        input.display(),
        endpoint.announced()
    );
    let stop = stop_on_signal()?;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// A flag that Ctrl-C, SIGTERM or SIGHUP sets.
fn stop_on_signal() -> Result<Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle Ctrl-C")?;
    }
    Ok(stop)
}

/// `beitseg serve --loop`: the file played on and on in real time, restreamed live to every
/// client (who joins mid-stream, as with a real camera).
fn serve_looped(input: &Path, uri: &str, endpoint: &Endpoint, access: &Access) -> Result<()> {
    let pipeline = crate::run::launch(
        &format!(
            "uridecodebin uri=\"{uri}\" ! videoconvert ! video/x-raw,format=I420 ! \
         appsink name=frames sync=true max-buffers=2"
        ),
        "the player",
    )?;
    let restream = Arc::new(Restream::start(endpoint, 4000, access)?);
    let sink = pipeline
        .by_name("frames")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("player without its appsink")?;
    Restream::feed(&restream, &sink);
    let stop = stop_on_signal()?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| anyhow!("input {}: cannot play it", input.display()))?;
    say!(
        "serving {} in a loop at {} (Ctrl-C stops)",
        input.display(),
        restream.url
    );
    let bus = pipeline.bus().context("player without a bus")?;
    let mut result = Ok(());
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            // From the start again.
            gst::MessageView::Eos(_) => {
                let restarted = pipeline
                    .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
                    .is_ok();
                if !restarted {
                    result = Err(anyhow!(
                        "input {}: cannot seek back to its start",
                        input.display()
                    ));
                    break;
                }
            }
            gst::MessageView::Error(e) => {
                result = Err(anyhow!("input {}: {}", input.display(), e.error()));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("rtsp://0.0.0.0:8555/seg/hd").unwrap(),
            Endpoint {
                host: "0.0.0.0".into(),
                port: 8555,
                path: "/seg/hd".into(),
                tls: false,
            }
        );
        assert_eq!(Endpoint::parse("rtsp://localhost/x").unwrap().port, 8554);
        assert_eq!(Endpoint::parse("RTSP://h:1/x").unwrap().path, "/x");
        let tls = Endpoint::parse("rtsps://127.0.0.1:8322/s").unwrap();
        assert!(tls.tls && tls.loopback());
        assert_eq!(tls.client_url(), "rtsps://127.0.0.1:8322/s");
        assert!(!Endpoint::parse("rtsp://0.0.0.0:1/s").unwrap().loopback());
        assert_eq!(
            Endpoint::parse("rtsp://0.0.0.0:9/a").unwrap().client_url(),
            "rtsp://127.0.0.1:9/a"
        );
        // IPv6, with and without a port.
        let v6 = Endpoint::parse("rtsp://[::1]:8600/seg").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("::1", 8600, "/seg")
        );
        assert_eq!(v6.client_url(), "rtsp://[::1]:8600/seg");
        assert_eq!(
            Endpoint::parse("rtsp://[::]/x").unwrap().client_url(),
            "rtsp://[::1]:8554/x"
        );
        for bad in [
            "rtsp://0.0.0.0:8554",
            "rtsp://:8554/a",
            "rtsp://h:port/a",
            "rtsp://h:0/a",
            "http://h/a",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
