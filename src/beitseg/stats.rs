// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Counters behind the `stats` property and the `beitseg-stats` bus messages, and the
//! `beitseg-loaded` message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::pools::PoolStats;

/// Counters behind the `stats` property and the `beitseg-stats` bus messages.
pub(super) struct Stats {
    pub(super) frames_in: u64,
    pub(super) frames_out: u64,
    pub(super) dropped: u64,
    /// The last inference times, for mean and p95.
    pub(super) inference_ms: VecDeque<f64>,
    /// When the last frames went out, for the frame rate over the last second.
    pub(super) out_times: VecDeque<Instant>,
    pub(super) last_post: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            frames_in: 0,
            frames_out: 0,
            dropped: 0,
            inference_ms: VecDeque::new(),
            out_times: VecDeque::new(),
            last_post: Instant::now(),
        }
    }
}

impl Stats {
    /// Counts a frame going out (with its share of model time, if it ran the model); true when
    /// `post` is on and the once-a-second message is due.
    pub(super) fn count_output(
        &mut self,
        inference: Option<Duration>,
        now: Instant,
        post: bool,
    ) -> bool {
        self.frames_out += 1;
        if let Some(d) = inference {
            self.inference_ms.push_back(d.as_secs_f64() * 1000.0);
            if self.inference_ms.len() > 256 {
                self.inference_ms.pop_front();
            }
        }
        self.out_times.push_back(now);
        while self.out_times.len() > 2
            && now.duration_since(*self.out_times.front().expect("non-empty"))
                > Duration::from_secs(1)
        {
            self.out_times.pop_front();
        }
        let due = post && now.duration_since(self.last_post) >= Duration::from_secs(1);
        if due {
            self.last_post = now;
        }
        due
    }

    pub(super) fn inference(&self) -> (f64, f64) {
        let (mean, _, p95) = self.inference_quantiles();
        (mean, p95)
    }

    /// Mean, median and 95th percentile of the last inference times, in ms (0 before any).
    fn inference_quantiles(&self) -> (f64, f64, f64) {
        if self.inference_ms.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let mean = self.inference_ms.iter().sum::<f64>() / self.inference_ms.len() as f64;
        let mut sorted: Vec<f64> = self.inference_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at =
            |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
        (mean, at(0.5), at(0.95))
    }

    pub(super) fn fps(&self) -> f64 {
        match (self.out_times.front(), self.out_times.back()) {
            (Some(first), Some(last)) if self.out_times.len() > 1 && last > first => {
                (self.out_times.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// The element's counters, and its pool's (`None` while stopped).
    pub(super) fn structure(&self, queue_depth: usize, pool: Option<PoolStats>) -> gst::Structure {
        let (mean, p50, p95) = self.inference_quantiles();
        let pool = pool.unwrap_or(PoolStats {
            name: String::new(),
            streams: 0,
            workers: 0,
            queued: 0,
            batch_fill: 0.0,
            frames: 0,
            server_retries: 0,
        });
        gst::Structure::builder("beitseg-stats")
            .field("frames-in", self.frames_in)
            .field("frames-out", self.frames_out)
            .field("dropped", self.dropped)
            .field("inference-mean-ms", mean)
            .field("inference-p50-ms", p50)
            .field("inference-p95-ms", p95)
            .field("queue-depth", queue_depth as u32)
            .field("fps", self.fps())
            .field("workers", pool.workers as u32)
            .field("pool", pool.name)
            .field("pool-streams", pool.streams as u32)
            .field("pool-queue-depth", pool.queued as u32)
            .field("pool-batch-fill", pool.batch_fill)
            .field("pool-frames", pool.frames)
            .field("server-retries", pool.server_retries)
            .build()
    }
}

/// The `beitseg-loaded` element message: what was loaded, on what, and how long it took.
pub(super) fn loaded(
    path: &std::path::Path,
    info: &crate::model::ModelInfo,
    workers: usize,
) -> gst::Structure {
    gst::Structure::builder("beitseg-loaded")
        .field("model", path.display().to_string())
        .field("provider", info.provider.name())
        .field("workers", workers as u32)
        .field("load-seconds", info.load.seconds)
        .field("graph-cache", info.load.graph_cache)
        .field("notes", info.load.notes.join("; "))
        .build()
}

/// The loaded model in one log line: input size and layout, classes, preprocessing.
pub(super) fn model_line(info: &crate::model::ModelInfo) -> String {
    format!(
        "model input {}x{} {:?} {:?}, {} classes, {:?}",
        info.width,
        info.height,
        info.layout,
        info.input_precision,
        info.num_classes,
        info.preprocessing
    )
}
