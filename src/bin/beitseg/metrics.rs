// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run --metrics [HOST:]PORT`: Prometheus metrics (OpenMetrics text, written by
//! prometheus-client) at `/metrics` — per input
//! frames in and out, drops, reconnections, frame rate, inference p50/p95 and queue depth; per
//! pool its batch fill and queue; the process's resident memory. Inputs are labelled as printed
//! (userinfo masked). It binds to 127.0.0.1 unless told otherwise.

use crate::console::say;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What one input last reported.
#[derive(Default, Clone, Debug)]
struct Reading {
    stats: Option<gst::Structure>,
    reconnects: u32,
}

type Inputs = Arc<Mutex<Vec<((usize, String), Arc<Mutex<Reading>>)>>>;

/// The inputs of a run, as the metrics page shows them.
#[derive(Default)]
pub struct Registry {
    inputs: Inputs,
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

/// Reads every input's latest figures at each scrape (prometheus-client's collector).
#[derive(Debug)]
struct Collector(Inputs);

/// Per input: (name, help, stats field; empty for the reconnections).
const COUNTERS: [(&str, &str, &str); 5] = [
    (
        "beitseg_frames_in",
        "Frames that reached segmentation.",
        "frames-in",
    ),
    (
        "beitseg_frames_out",
        "Frames segmented and passed on.",
        "frames-out",
    ),
    (
        "beitseg_frames_dropped",
        "Frames dropped to keep up.",
        "dropped",
    ),
    (
        "beitseg_reconnections",
        "Times the camera was reconnected.",
        "",
    ),
    (
        "beitseg_server_retries",
        "Requests to the inference server tried again (by the input's pool).",
        "server-retries",
    ),
];
const GAUGES: [(&str, &str, &str); 4] = [
    (
        "beitseg_fps",
        "Output frames per second over the last second.",
        "fps",
    ),
    (
        "beitseg_inference_p50_ms",
        "Median model time per frame.",
        "inference-p50-ms",
    ),
    (
        "beitseg_inference_p95_ms",
        "95th percentile model time per frame.",
        "inference-p95-ms",
    ),
    (
        "beitseg_queue_depth",
        "Frames queued or in work for the input.",
        "queue-depth",
    ),
];
/// Per pool (each input reports its pool's figures).
const POOL_GAUGES: [(&str, &str, &str); 3] = [
    (
        "beitseg_pool_batch_fill",
        "Frames per batch over the batch size, 0 to 1.",
        "pool-batch-fill",
    ),
    (
        "beitseg_pool_queue_depth",
        "Frames of all streams waiting for a worker.",
        "pool-queue-depth",
    ),
    (
        "beitseg_pool_streams",
        "Inputs sharing the pool.",
        "pool-streams",
    ),
];

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let inputs: Vec<((usize, String), Reading)> = self
            .0
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
        let value = |r: &Reading, field: &str| match field {
            "" => f64::from(r.reconnects),
            f => r.stats.as_ref().map_or(0.0, |s| number(s, f)),
        };
        for (name, help, field) in COUNTERS {
            let counter = ConstCounter::new(0u64);
            let mut metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for ((index, label), r) in &inputs {
                let labels = [("input", escape(label)), ("index", index.to_string())];
                ConstCounter::new(value(r, field) as u64).encode(metric.encode_family(&labels)?)?;
            }
        }
        for (name, help, field) in GAUGES {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0).metric_type())?;
            for ((index, label), r) in &inputs {
                let labels = [("input", escape(label)), ("index", index.to_string())];
                ConstGauge::new(value(r, field)).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut pools: Vec<(String, &gst::Structure)> = Vec::new();
        for (_, r) in &inputs {
            let Some(s) = &r.stats else { continue };
            let name = s.get::<String>("pool").unwrap_or_default();
            if !name.is_empty() && !pools.iter().any(|p| p.0 == name) {
                pools.push((name, s));
            }
        }
        for (name, help, field) in POOL_GAUGES {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0).metric_type())?;
            for (pool, s) in &pools {
                let labels = [("pool", escape(pool))];
                ConstGauge::new(number(s, field)).encode(metric.encode_family(&labels)?)?;
            }
        }
        let rss = ConstGauge::new(resident_bytes() as i64);
        rss.encode(encoder.encode_descriptor(
            "beitseg_process_resident_memory_bytes",
            "Resident memory of the process.",
            None,
            rss.metric_type(),
        )?)
    }
}

impl Registry {
    /// Adds the run's input number `index` (1, 2, …), labelled `label` (already masked).
    pub fn add(&self, index: usize, label: &str) -> InputMetrics {
        let reading = Arc::new(Mutex::new(Reading::default()));
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(((index, label.to_string()), reading.clone()));
        InputMetrics(reading)
    }

    /// The page, in the OpenMetrics text format (which Prometheus reads).
    pub fn render(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Collector(self.inputs.clone())));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// A label value as the text format wants it (prometheus-client 0.24 writes label values as
/// they are): a path may hold a quote or a backslash.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A numeric field of the stats structure as f64 (0 when missing).
fn number(s: &gst::Structure, field: &str) -> f64 {
    s.get::<u64>(field)
        .map(|v| v as f64)
        .or_else(|_| s.get::<u32>(field).map(f64::from))
        .or_else(|_| s.get::<f64>(field))
        .unwrap_or(0.0)
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
            say!("metrics at http://{addr}/metrics (open to the network)");
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
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
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
        let a = registry.add(1, "rtsp://***@cam/a \"x\"");
        registry.add(2, "b.mp4");
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
        assert!(page.contains(
            "beitseg_frames_in_total{input=\"rtsp://***@cam/a \\\"x\\\"\",index=\"1\"} 12\n"
        ));
        assert!(page.contains("beitseg_frames_out_total{input=\"b.mp4\",index=\"2\"} 0\n"));
        assert!(page.contains(
            "beitseg_reconnections_total{input=\"rtsp://***@cam/a \\\"x\\\"\",index=\"1\"} 3\n"
        ));
        assert!(page.contains(
            "beitseg_queue_depth{input=\"rtsp://***@cam/a \\\"x\\\"\",index=\"1\"} 2.0\n"
        ));
        assert!(page.contains("beitseg_pool_batch_fill{pool=\"pool-1\"} 0.5\n"));
        assert!(page.contains("# TYPE beitseg_fps gauge\n"));
        assert!(page.contains("# TYPE beitseg_frames_in counter\n"));
        assert!(!page.contains("resident_memory_bytes 0\n"));
        assert_eq!(address("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert!(address("nowhere:x").is_err());
    }
}
