// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run --metrics [HOST:]PORT`: Prometheus text format at `/metrics` — per input
//! frames in and out, drops, reconnections, frame rate, inference p50/p95 and queue depth; per
//! pool its batch fill and queue; the process's resident memory. Inputs are labelled as printed
//! (userinfo masked). It binds to 127.0.0.1 unless told otherwise.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

/// What one input last reported.
#[derive(Default, Clone)]
struct Reading {
    stats: Option<gst::Structure>,
    reconnects: u32,
}

/// The inputs of a run, as the metrics page shows them.
#[derive(Default)]
pub struct Registry {
    inputs: Mutex<Vec<(String, Arc<Mutex<Reading>>)>>,
}

/// One input's place on the metrics page.
pub struct InputMetrics(Arc<Mutex<Reading>>);

impl InputMetrics {
    /// The input's latest element statistics and camera reconnections.
    pub fn update(&self, stats: &gst::Structure, reconnects: u32) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.stats = Some(stats.clone());
        r.reconnects = reconnects;
    }
}

impl Registry {
    /// Adds an input, labelled `label` (already masked).
    pub fn add(&self, label: &str) -> InputMetrics {
        let reading = Arc::new(Mutex::new(Reading::default()));
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((label.to_string(), reading.clone()));
        InputMetrics(reading)
    }

    /// The page, in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let inputs: Vec<(String, Reading)> = self
            .inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(l, r)| {
                (
                    l.clone(),
                    r.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                )
            })
            .collect();
        let mut out = String::new();
        let per_input: [(&str, &str, &str, &str); 8] = [
            (
                "frames_in_total",
                "counter",
                "frames-in",
                "Frames that reached segmentation.",
            ),
            (
                "frames_out_total",
                "counter",
                "frames-out",
                "Frames segmented and passed on.",
            ),
            (
                "frames_dropped_total",
                "counter",
                "dropped",
                "Frames dropped to keep up.",
            ),
            (
                "reconnections_total",
                "counter",
                "",
                "Times the camera was reconnected.",
            ),
            (
                "fps",
                "gauge",
                "fps",
                "Output frames per second over the last second.",
            ),
            (
                "inference_p50_ms",
                "gauge",
                "inference-p50-ms",
                "Median model time per frame.",
            ),
            (
                "inference_p95_ms",
                "gauge",
                "inference-p95-ms",
                "95th percentile model time per frame.",
            ),
            (
                "queue_depth",
                "gauge",
                "queue-depth",
                "Frames queued or in work for the input.",
            ),
        ];
        for (name, kind, field, help) in per_input {
            let _ = writeln!(
                out,
                "# HELP beitseg_{name} {help}\n# TYPE beitseg_{name} {kind}"
            );
            for (label, r) in &inputs {
                let value = if field.is_empty() {
                    r.reconnects as f64
                } else {
                    r.stats.as_ref().map_or(0.0, |s| number(s, field))
                };
                let _ = writeln!(out, "beitseg_{name}{{input=\"{}\"}} {value}", escape(label));
            }
        }
        // One row per pool (each input reports its pool's figures).
        let mut pools: Vec<(String, f64, f64, f64)> = Vec::new();
        for (_, r) in &inputs {
            let Some(s) = &r.stats else { continue };
            let name = s.get::<String>("pool").unwrap_or_default();
            if name.is_empty() || pools.iter().any(|p| p.0 == name) {
                continue;
            }
            pools.push((
                name,
                number(s, "pool-batch-fill"),
                number(s, "pool-queue-depth"),
                number(s, "pool-streams"),
            ));
        }
        let per_pool: [(&str, &str); 3] = [
            (
                "pool_batch_fill",
                "Frames per batch over the batch size, 0 to 1.",
            ),
            (
                "pool_queue_depth",
                "Frames of all streams waiting for a worker.",
            ),
            ("pool_streams", "Inputs sharing the pool."),
        ];
        for (i, (name, help)) in per_pool.iter().enumerate() {
            let _ = writeln!(
                out,
                "# HELP beitseg_{name} {help}\n# TYPE beitseg_{name} gauge"
            );
            for p in &pools {
                let value = [p.1, p.2, p.3][i];
                let _ = writeln!(out, "beitseg_{name}{{pool=\"{}\"}} {value}", escape(&p.0));
            }
        }
        let _ = writeln!(
            out,
            "# HELP beitseg_process_resident_memory_bytes Resident memory of the process.\n\
             # TYPE beitseg_process_resident_memory_bytes gauge\n\
             beitseg_process_resident_memory_bytes {}",
            resident_bytes()
        );
        out
    }
}

/// A numeric field of the stats structure as f64 (0 when missing).
fn number(s: &gst::Structure, field: &str) -> f64 {
    s.get::<u64>(field)
        .map(|v| v as f64)
        .or_else(|_| s.get::<u32>(field).map(f64::from))
        .or_else(|_| s.get::<f64>(field))
        .unwrap_or(0.0)
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// The HTTP listener serving a registry; stops when dropped.
pub struct Endpoint {
    pub registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `PORT` or `HOST:PORT` (loopback when no host is given).
pub fn address(spec: &str) -> Result<SocketAddr> {
    let with_host = if spec.parse::<u16>().is_ok() {
        format!("127.0.0.1:{spec}")
    } else {
        spec.to_string()
    };
    use std::net::ToSocketAddrs;
    with_host
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow!("--metrics {spec}: expected PORT or HOST:PORT"))
}

impl Endpoint {
    /// Starts serving `spec` (`None`: no metrics).
    pub fn start(spec: Option<&str>) -> Result<Option<Self>> {
        let Some(spec) = spec else { return Ok(None) };
        let addr = address(spec)?;
        let listener =
            TcpListener::bind(addr).with_context(|| format!("--metrics {spec}: cannot listen"))?;
        listener
            .set_nonblocking(true)
            .context("--metrics: cannot poll the listener")?;
        let registry = Arc::new(Registry::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn({
                let registry = registry.clone();
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((conn, _)) => answer(conn, &registry),
                            Err(_) => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
            })
            .context("cannot start the metrics thread")?;
        if !addr.ip().is_loopback() {
            eprintln!("metrics at http://{addr}/metrics (open to the network)");
        }
        Ok(Some(Endpoint {
            registry,
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request: GET /metrics gets the page, anything else a 404.
fn answer(mut conn: TcpStream, registry: &Registry) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    // The request line and headers: at most 8 kB are read.
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let target = line.split_whitespace().take(2).collect::<Vec<_>>();
    let (status, body, kind) = match target.as_slice() {
        ["GET", path] if path.split('?').next() == Some("/metrics") => (
            "200 OK",
            registry.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        _ => (
            "404 Not Found",
            "try /metrics\n".to_string(),
            "text/plain; charset=utf-8",
        ),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_a_row_per_input_and_pool() {
        gst::init().unwrap();
        let registry = Registry::default();
        let a = registry.add("rtsp://***@cam/a \"x\"");
        registry.add("b.mp4");
        a.update(
            &gst::Structure::builder("beitseg-stats")
                .field("frames-in", 12u64)
                .field("frames-out", 10u64)
                .field("queue-depth", 2u32)
                .field("fps", 24.5f64)
                .field("pool", "pool-1")
                .field("pool-batch-fill", 0.5f64)
                .build(),
            3,
        );
        let page = registry.render();
        assert!(page.contains("beitseg_frames_in_total{input=\"rtsp://***@cam/a \\\"x\\\"\"} 12\n"));
        assert!(page.contains("beitseg_frames_out_total{input=\"b.mp4\"} 0\n"));
        assert!(
            page.contains("beitseg_reconnections_total{input=\"rtsp://***@cam/a \\\"x\\\"\"} 3\n")
        );
        assert!(page.contains("beitseg_queue_depth{input=\"rtsp://***@cam/a \\\"x\\\"\"} 2\n"));
        assert!(page.contains("beitseg_pool_batch_fill{pool=\"pool-1\"} 0.5\n"));
        assert!(page.contains("# TYPE beitseg_fps gauge\n"));
        assert!(!page.contains("resident_memory_bytes 0\n"));
        assert_eq!(address("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert!(address("nowhere:x").is_err());
    }
}
