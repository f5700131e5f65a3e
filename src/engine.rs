// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! One frame through the whole chain: preprocess → model → decode. No GStreamer types here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::decode::{Decoder, Window};
use crate::frame::{ClassMap, FrameRef, Picture};
use crate::model::{Logits, Model, ModelInfo, ResizeMode};
use crate::preprocess::{Placement, Preprocessor};
use crate::slide::{Plan, SlideDecoder};
use crate::smooth::Link;

pub struct Segmenter {
    model: Arc<Model>,
    pre: Preprocessor,
    decoder: Decoder,
    /// `resize=slide`: every frame runs as windows, decoded by `slide`.
    slid: bool,
    slide: SlideDecoder,
}

/// What one frame puts in the model input.
enum View {
    /// One image, the picture where `Placement` says.
    Whole(Placement),
    /// The windows of a slid frame.
    Windows(Plan),
}

impl View {
    fn images(&self) -> usize {
        match self {
            Self::Whole(_) => 1,
            Self::Windows(plan) => plan.windows.len(),
        }
    }
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
        let slid = model.info().preprocessing.resize == ResizeMode::Slide;
        Self {
            model,
            pre,
            decoder: Decoder::new(),
            slid,
            slide: SlideDecoder::new(),
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
        let mut links: Vec<Option<Link>> = frames.iter().map(|_| None).collect();
        self.segment_smoothed(frames, outs, batch, &mut links)
    }

    /// [`Self::segment_pictures`] with each frame's place in its stream's smoothing chain
    /// (`None`: not smoothed), in stream order within the batch.
    pub fn segment_smoothed(
        &mut self,
        frames: &[Picture],
        outs: &mut [ClassMap],
        batch: usize,
        links: &mut [Option<Link>],
    ) -> Result<Duration> {
        anyhow::ensure!(
            frames.len() == outs.len() && frames.len() == links.len() && frames.len() <= batch,
            "batch of {batch} for {} frames",
            frames.len()
        );
        let len = self.pre.image_len();
        // What each frame puts in the model input: one image, or its windows with `slide`.
        let views: Vec<View> = frames
            .iter()
            .map(|f| {
                let (w, h) = f.size();
                if self.slid {
                    View::Windows(self.pre.slide_plan(w, h))
                } else {
                    View::Whole(self.pre.placement(w, h))
                }
            })
            .collect();
        let total: usize = views.iter().map(View::images).sum();
        // Runs of `batch` images when the caller pads (a fixed batch, TensorRT), else one run.
        let run = if batch > frames.len() { batch } else { total };
        let mut input = vec![0f32; len * total.div_ceil(run) * run];
        let mut at = 0;
        for (frame, view) in frames.iter().zip(&views) {
            let slots = &mut input[at..at + view.images() * len];
            match view {
                View::Windows(plan) => self.pre.run_windows(frame, plan, slots)?,
                View::Whole(_) => {
                    self.pre.run_picture(frame, slots)?;
                }
            }
            at += slots.len();
        }
        let started = Instant::now();
        let mut logits = Vec::with_capacity(total);
        if input.len() == len * run {
            logits = self.model.run(input, run)?;
        } else {
            for chunk in input.chunks(len * run) {
                logits.extend(self.model.run(chunk.to_vec(), run)?);
            }
        }
        let took = started.elapsed();
        let mut logits = logits.into_iter();
        for (((frame, out), view), link) in frames.iter().zip(outs).zip(&views).zip(links) {
            let mine: Vec<Logits> = logits.by_ref().take(view.images()).collect();
            let mine = match link {
                Some(link) => link.apply(mine),
                None => Arc::new(mine),
            };
            let (width, height) = frame.size();
            match view {
                View::Windows(plan) => self.slide.decode(plan, &mine, width, height, out),
                View::Whole(place) => {
                    let l = &mine[0];
                    let win = window(self.model.info(), *place, l.width, l.height);
                    self.decoder.decode(l, width, height, win, out);
                }
            }
        }
        Ok(took)
    }
}
