// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `smoothing`: an exponential moving average of one stream's logits at the model's resolution,
//! `s_t = f * s_(t-1) + (1 - f) * logits_t`, before decoding. Class boundaries that flicker
//! between near-tied classes from frame to frame settle; a real change still wins within a few
//! frames (with f = 0.5 a class that now leads by as much as it trailed takes over in 2).
//!
//! Frames of a stream run on several workers at once, so the average is a chain of tickets: each
//! frame waits for the smoothed logits of the stream's previous computed frame, blends, and
//! publishes its own. A frame that is dropped, fails or is flushed before it runs still
//! publishes (an error), and the next frame starts the average afresh.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::model::Logits;
use crate::pool::Ticket;

/// The smoothed logits of one frame (one entry per model run of it: windows with `slide`).
pub type Smoothed = Arc<Vec<Logits>>;

/// Longest wait for the previous frame's smoothed logits (it was handed to a worker first, so
/// it is being computed; this only bounds a bug).
const WAIT: Duration = Duration::from_secs(600);

/// One stream's chain: where the next frame links in.
#[derive(Default)]
pub struct Chain {
    tail: Option<Ticket<Smoothed>>,
}

impl Chain {
    pub fn new() -> Self {
        Self::default()
    }

    /// The link of the stream's next computed frame with smoothing `factor` (0: none, the chain
    /// starts again).
    pub fn link(&mut self, factor: f64) -> Option<Link> {
        if factor.is_nan() || factor <= 0.0 {
            self.tail = None;
            return None;
        }
        let this = Ticket::new();
        let prev = self.tail.replace(this.clone());
        Some(Link {
            factor: factor.min(1.0) as f32,
            prev,
            this,
            published: false,
        })
    }

    /// Starts the average afresh (flush, new caps, a discontinuity).
    pub fn reset(&mut self) {
        self.tail = None;
    }
}

/// One frame's place in its stream's chain.
pub struct Link {
    factor: f32,
    prev: Option<Ticket<Smoothed>>,
    this: Ticket<Smoothed>,
    published: bool,
}

impl Link {
    /// Blends `logits` (this frame's) with the previous frame's smoothed logits, publishes the
    /// result for the next frame and returns it. The previous frame missing (dropped, failed,
    /// another size) starts the average afresh.
    pub fn apply(&mut self, logits: Vec<Logits>) -> Smoothed {
        let prev = self
            .prev
            .take()
            .and_then(|t| t.peek_timeout(WAIT))
            .and_then(Result::ok);
        let smoothed = Arc::new(match prev {
            Some(prev) if same_shape(&prev, &logits) => blend(&prev, logits, self.factor),
            _ => logits,
        });
        self.this.fill(Ok(smoothed.clone()));
        self.published = true;
        smoothed
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.published {
            self.this.fill(Err(anyhow!("the frame was not segmented")));
        }
    }
}

fn same_shape(a: &[Logits], b: &[Logits]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            (a.classes, a.width, a.height, a.data.len())
                == (b.classes, b.width, b.height, b.data.len())
        })
}

/// `f * prev + (1 - f) * now`, in place over `now`.
fn blend(prev: &[Logits], mut now: Vec<Logits>, f: f32) -> Vec<Logits> {
    let g = 1.0 - f;
    for (p, n) in prev.iter().zip(&mut now) {
        for (v, &q) in n.data.iter_mut().zip(&p.data) {
            *v = f * q + g * *v;
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(v: f32) -> Vec<Logits> {
        vec![Logits {
            classes: 2,
            height: 1,
            width: 1,
            data: vec![v, -v],
        }]
    }

    #[test]
    fn averages_in_order_and_restarts_after_a_gap() {
        let mut chain = Chain::new();
        let mut a = chain.link(0.5).unwrap();
        let mut b = chain.link(0.5).unwrap();
        let c = chain.link(0.5).unwrap();
        let mut d = chain.link(0.5).unwrap();
        // b runs on another worker before a: it waits for a.
        let worker = std::thread::spawn(move || b.apply(logits(0.0))[0].data[0]);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(a.apply(logits(4.0))[0].data[0], 4.0);
        assert_eq!(worker.join().unwrap(), 2.0);
        // c is dropped (never segmented): d starts afresh instead of waiting.
        drop(c);
        assert_eq!(d.apply(logits(1.0))[0].data[0], 1.0);
        // Off: no link, and the chain starts again.
        assert!(chain.link(0.0).is_none());
        let mut e = chain.link(0.5).unwrap();
        assert_eq!(e.apply(logits(3.0))[0].data[0], 3.0);
    }
}
