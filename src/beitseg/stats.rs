// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Counters behind the `stats` property and the `beitseg-stats` bus messages.

use std::collections::VecDeque;
use std::time::Instant;

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
    pub(super) fn inference(&self) -> (f64, f64) {
        if self.inference_ms.is_empty() {
            return (0.0, 0.0);
        }
        let mean = self.inference_ms.iter().sum::<f64>() / self.inference_ms.len() as f64;
        let mut sorted: Vec<f64> = self.inference_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1];
        (mean, p95)
    }

    pub(super) fn fps(&self) -> f64 {
        match (self.out_times.front(), self.out_times.back()) {
            (Some(first), Some(last)) if self.out_times.len() > 1 && last > first => {
                (self.out_times.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    pub(super) fn structure(&self, queue_depth: usize, workers: usize) -> gst::Structure {
        let (mean, p95) = self.inference();
        gst::Structure::builder("beitseg-stats")
            .field("frames-in", self.frames_in)
            .field("frames-out", self.frames_out)
            .field("dropped", self.dropped)
            .field("inference-mean-ms", mean)
            .field("inference-p95-ms", p95)
            .field("queue-depth", queue_depth as u32)
            .field("fps", self.fps())
            .field("workers", workers as u32)
            .build()
    }
}
