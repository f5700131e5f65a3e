// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! One frame through the whole chain: preprocess → model → decode. No GStreamer types here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::decode::{Decoder, Window};
use crate::frame::{ClassMap, FrameRef, Picture};
use crate::model::{Model, ModelInfo};
use crate::preprocess::{Placement, Preprocessor};

pub struct Segmenter {
    model: Arc<Model>,
    pre: Preprocessor,
    decoder: Decoder,
}

/// The part of the logits a placement covers, or `None` when the picture fills the model input.
fn window(info: &ModelInfo, place: Placement, logits_w: usize, logits_h: usize) -> Option<Window> {
    if place.width == info.width && place.height == info.height {
        return None;
    }
    let sx = logits_w as f64 / info.width as f64;
    let sy = logits_h as f64 / info.height as f64;
    Some(Window {
        x0: place.x as f64 * sx,
        x1: (place.x + place.width) as f64 * sx,
        y0: place.y as f64 * sy,
        y1: (place.y + place.height) as f64 * sy,
    })
}

impl Segmenter {
    /// A segmenter over a model of its own (`Model`) or one shared with others.
    pub fn new(model: impl Into<Arc<Model>>) -> Self {
        let model = model.into();
        let pre = Preprocessor::new(model.info());
        Self {
            model,
            pre,
            decoder: Decoder::new(),
        }
    }

    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// Segments one frame into `out` (a class id per frame pixel); returns the time the model
    /// took.
    pub fn segment(&mut self, frame: &FrameRef, out: &mut ClassMap) -> Result<Duration> {
        self.segment_batch(std::slice::from_ref(frame), std::slice::from_mut(out), 1)
    }

    /// Segments several frames with one model run of `batch` images (at least `frames.len()`;
    /// the rest is zero padding, for models with a fixed batch). Returns the model's time.
    pub fn segment_batch(
        &mut self,
        frames: &[FrameRef],
        outs: &mut [ClassMap],
        batch: usize,
    ) -> Result<Duration> {
        let pictures: Vec<Picture> = frames.iter().map(|&f| f.into()).collect();
        self.segment_pictures(&pictures, outs, batch)
    }

    /// [`Self::segment_batch`] for pictures in any supported layout (packed RGB or YUV).
    pub fn segment_pictures(
        &mut self,
        frames: &[Picture],
        outs: &mut [ClassMap],
        batch: usize,
    ) -> Result<Duration> {
        anyhow::ensure!(
            frames.len() == outs.len() && frames.len() <= batch,
            "batch of {batch} for {} frames",
            frames.len()
        );
        let len = self.pre.image_len();
        let mut input = vec![0f32; len * batch];
        let places = frames
            .iter()
            .zip(input.chunks_exact_mut(len))
            .map(|(frame, slot)| self.pre.run_picture(frame, slot))
            .collect::<Result<Vec<_>>>()?;
        let started = Instant::now();
        let logits = self.model.run(input, batch)?;
        let took = started.elapsed();
        for ((frame, out), (logits, place)) in
            frames.iter().zip(outs).zip(logits.iter().zip(places))
        {
            let win = window(self.model.info(), place, logits.width, logits.height);
            let (width, height) = frame.size();
            self.decoder.decode(logits, width, height, win, out);
        }
        Ok(took)
    }
}
