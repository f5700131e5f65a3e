// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What a worker thread does with a batch of frames: run the model (or reuse an anchor frame's
//! class map), then render what the pads carry, one result per frame, in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use gst_video::prelude::*;

use super::caps::{colorimetry, picture, pixel_format, yuv_format};
use super::Mode;
use crate::engine::Segmenter;
use crate::frame::{ClassMap, FrameMut};
use crate::pool::Ticket;
use crate::render;
use crate::yuv::{YuvFormat, YuvFrame};

/// Where a frame's class map comes from.
pub(super) enum ClassSource {
    /// Run the model; publish the map for the frames that reuse it (`interval` > 1).
    Compute(Option<Ticket<Arc<ClassMap>>>),
    /// Reuse the class map of the last anchor frame (computed anyway if that one failed).
    Reuse(Ticket<Arc<ClassMap>>),
}

/// Where each frame of a stream gets its class map: every frame runs the model, or with
/// `interval` N > 1 every N-th frame (an anchor) does and the frames between reuse its map; and
/// each computed frame's place in the stream's smoothing chain.
pub(super) struct Sources {
    interval: u32,
    /// Frames since the last anchor, and that anchor's class map.
    since_anchor: u32,
    anchor: Option<Ticket<Arc<ClassMap>>>,
    chain: crate::smooth::Chain,
}

impl Sources {
    pub(super) fn new(interval: u32) -> Self {
        Self {
            interval: interval.max(1),
            since_anchor: 0,
            anchor: None,
            chain: Default::default(),
        }
    }

    /// The next frame's source, the anchor ticket the queue keeps for it, and its link in the
    /// smoothing chain (`discont`: the frame does not follow the previous one).
    pub(super) fn next(
        &mut self,
        discont: bool,
        smoothing: f64,
    ) -> (
        ClassSource,
        Option<Ticket<Arc<ClassMap>>>,
        Option<crate::smooth::Link>,
    ) {
        if discont {
            self.chain.reset();
        }
        let (source, anchor) = if self.interval <= 1 {
            (ClassSource::Compute(None), None)
        } else if self.since_anchor == 0 || self.anchor.is_none() {
            let t = Ticket::new();
            self.anchor = Some(t.clone());
            self.since_anchor = 1 % self.interval;
            (ClassSource::Compute(Some(t.clone())), Some(t))
        } else {
            self.since_anchor = (self.since_anchor + 1) % self.interval;
            let anchor = self.anchor.clone().expect("checked");
            return (ClassSource::Reuse(anchor), None, None);
        };
        (source, anchor, self.chain.link(smoothing))
    }

    /// Starts afresh: after a flush, or new caps (a new size needs a new class map and a new
    /// average).
    pub(super) fn reset(&mut self) {
        self.since_anchor = 0;
        self.anchor = None;
        self.chain.reset();
    }
}

/// One frame as the streaming thread hands it to a worker: everything needed to render it.
pub(super) struct Job {
    pub(super) buffer: gst::Buffer,
    pub(super) in_info: gst_video::VideoInfo,
    pub(super) gray_info: gst_video::VideoInfo,
    pub(super) mode: Mode,
    pub(super) alpha: f64,
    pub(super) want_mask: bool,
    pub(super) paint: Arc<render::Paint>,
    pub(super) source: ClassSource,
    /// The frame's place in its stream's smoothing chain (`smoothing` > 0).
    pub(super) smooth: Option<crate::smooth::Link>,
}

/// A worker's answer: the `src` buffer and, when the `mask` pad exists, the class-id buffer.
pub(super) struct Rendered {
    pub(super) main: gst::Buffer,
    pub(super) mask: Option<gst::Buffer>,
    /// Time spent in the model, when this frame ran it.
    pub(super) inference: Option<Duration>,
}

/// A copy of `from`'s timestamps and flags on a new buffer of `size` bytes.
pub(super) fn new_buffer_like(from: &gst::Buffer, size: usize) -> Result<gst::Buffer> {
    let mut out = gst::Buffer::with_size(size)?;
    from.copy_into(
        out.get_mut().expect("new buffer"),
        gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
        ..,
    )?;
    Ok(out)
}

pub(super) fn mask_buffer(
    from: &gst::Buffer,
    info: &gst_video::VideoInfo,
    classes: &ClassMap,
) -> Result<gst::Buffer> {
    let mut out = new_buffer_like(from, info.size())?;
    {
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(
            out.get_mut().expect("new buffer"),
            info,
        )
        .map_err(|_| anyhow!("cannot map the mask buffer"))?;
        let stride = frame.plane_stride()[0] as usize;
        render::mask(frame.plane_data_mut(0)?, stride, classes);
    }
    Ok(out)
}

/// Runs the model on the frames `which` of `jobs` (one batch) and stores each class map, its
/// share of the inference time, and publishes anchors for the frames that reuse them.
pub(super) fn run_model(
    seg: &mut Segmenter,
    jobs: &mut [Job],
    which: &[usize],
    pad_to: Option<usize>,
    classes: &mut [Option<Result<Arc<ClassMap>>>],
    inference: &mut [Option<Duration>],
) {
    if which.is_empty() {
        return;
    }
    let mut links: Vec<_> = which.iter().map(|&i| jobs[i].smooth.take()).collect();
    let result: Result<(Vec<ClassMap>, Duration)> = (|| {
        let mapped = which
            .iter()
            .map(|&i| {
                gst_video::VideoFrameRef::from_buffer_ref_readable(
                    jobs[i].buffer.as_ref(),
                    &jobs[i].in_info,
                )
                .map_err(|_| anyhow!("cannot map the input buffer"))
            })
            .collect::<Result<Vec<_>>>()?;
        let views = mapped.iter().map(picture).collect::<Result<Vec<_>>>()?;
        let mut maps = vec![ClassMap::default(); which.len()];
        let batch = pad_to.unwrap_or(which.len());
        let took = seg.segment_smoothed(&views, &mut maps, batch, &mut links)?;
        Ok((maps, took))
    })();
    for (k, &i) in which.iter().enumerate() {
        let anchor = match &jobs[i].source {
            ClassSource::Compute(Some(t)) => Some(t),
            _ => None,
        };
        classes[i] = Some(match &result {
            Ok((maps, took)) => {
                let map = Arc::new(maps[k].clone());
                inference[i] = Some(*took / which.len() as u32);
                if let Some(t) = anchor {
                    t.fill(Ok(map.clone()));
                }
                Ok(map)
            }
            Err(err) => {
                if let Some(t) = anchor {
                    t.fill(Err(anyhow!("anchor frame failed")));
                }
                Err(anyhow!("{err:#}"))
            }
        });
    }
}

/// Runs on a worker thread: segments a batch of frames (frames that reuse an anchor's class map
/// take it) and renders what the pads carry, one result per job, in order.
pub(super) fn render_batch(
    seg: &mut Segmenter,
    mut jobs: Vec<Job>,
    pad_to: Option<usize>,
) -> Vec<Result<Rendered>> {
    let n = jobs.len();
    let mut classes: Vec<Option<Result<Arc<ClassMap>>>> = (0..n).map(|_| None).collect();
    let mut inference = vec![None; n];
    let compute: Vec<usize> = (0..n)
        .filter(|&i| matches!(jobs[i].source, ClassSource::Compute(_)))
        .collect();
    run_model(
        seg,
        &mut jobs,
        &compute,
        pad_to,
        &mut classes,
        &mut inference,
    );
    for i in 0..n {
        if let ClassSource::Reuse(anchor) = &jobs[i].source {
            let size = (
                jobs[i].in_info.width() as usize,
                jobs[i].in_info.height() as usize,
            );
            // The anchor came earlier: this batch or another worker has it, so the wait is short.
            let reused = anchor
                .peek_timeout(Duration::from_secs(600))
                .and_then(Result::ok)
                .filter(|m| (m.width, m.height) == size);
            match reused {
                Some(map) => classes[i] = Some(Ok(map)),
                None => run_model(seg, &mut jobs, &[i], pad_to, &mut classes, &mut inference),
            }
        }
    }
    jobs.into_iter()
        .zip(classes)
        .zip(inference)
        .map(|((job, map), inference)| {
            let map = map.expect("every frame has a class map")?;
            render(job, &map, inference)
        })
        .collect()
}

/// Renders one frame's outputs from its class map.
pub(super) fn render(
    job: Job,
    classes: &ClassMap,
    inference: Option<Duration>,
) -> Result<Rendered> {
    let Job {
        buffer,
        in_info,
        gray_info,
        mode,
        alpha,
        want_mask,
        paint,
        ..
    } = job;
    let (width, height) = (in_info.width() as usize, in_info.height() as usize);
    // One class-id buffer serves both pads when both carry ids.
    let mask = if want_mask || mode == Mode::Mask {
        Some(mask_buffer(&buffer, &gray_info, classes)?)
    } else {
        None
    };
    let main = match mode {
        Mode::Mask => mask.clone().context("no class-id buffer in mask mode")?,
        Mode::Overlay | Mode::Color => {
            let mut out = match mode {
                // Painted in place when upstream lets us, otherwise on a copy.
                Mode::Overlay => buffer,
                _ => new_buffer_like(&buffer, in_info.size())?,
            };
            {
                let mut frame =
                    gst_video::VideoFrameRef::from_buffer_ref_writable(out.make_mut(), &in_info)
                        .map_err(|_| anyhow!("cannot map the output buffer"))?;
                let strides: Vec<usize> =
                    frame.plane_stride().iter().map(|&s| s as usize).collect();
                if let Some(format) = yuv_format(in_info.format()) {
                    let cm = colorimetry(&in_info);
                    let [y, uv, v, _] = frame.planes_data_mut();
                    let v = if format == YuvFormat::I420 {
                        v
                    } else {
                        &mut []
                    };
                    let strides = [0, 1, 2].map(|i| strides.get(i).copied().unwrap_or(0));
                    let mut view = YuvFrame::new(format, cm, (width, height), [y, uv, v], strides)?;
                    if mode == Mode::Overlay {
                        render::overlay_yuv(&mut view, classes, &paint, alpha);
                    } else {
                        render::color_yuv(&mut view, classes, &paint);
                    }
                } else {
                    let format = pixel_format(in_info.format())
                        .context("caps are restricted to RGB and YUV formats")?;
                    let data = frame.plane_data_mut(0)?;
                    let mut view = FrameMut::new(format, width, height, strides[0], data)?;
                    if mode == Mode::Overlay {
                        render::overlay(&mut view, classes, &paint, alpha);
                    } else {
                        render::color(&mut view, classes, &paint);
                    }
                }
            }
            out
        }
    };
    Ok(Rendered {
        main,
        mask: mask.filter(|_| want_mask),
        inference,
    })
}

/// Frames a worker runs at once, and the batch a run is padded to (`None`: as many as wait). A
/// model with a fixed batch runs exactly that many images; TensorRT builds an engine per input
/// shape, so its partial batches are padded too and one (cached) engine serves every run.
pub(super) fn batching(info: &crate::model::ModelInfo, requested: usize) -> (usize, Option<usize>) {
    match info.batch {
        None if info.provider == crate::provider::Provider::TensorRt && requested > 1 => {
            (requested, Some(requested))
        }
        None => (requested, None),
        Some(fixed) => (if requested > 1 { fixed } else { 1 }, Some(fixed)),
    }
}

/// What the workers of one start share: with the `test-hooks` feature, the frames they took.
#[derive(Clone, Default)]
pub(super) struct Shared {
    #[cfg(feature = "test-hooks")]
    taken: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The function worker `index` runs on each batch.
pub(super) fn worker(
    mut seg: Segmenter,
    index: usize,
    pad_to: Option<usize>,
    shared: &Shared,
) -> impl FnMut(Vec<Job>) -> Vec<Result<Rendered>> + Send + 'static {
    #[cfg(feature = "test-hooks")]
    let mut hooks = hooks::Hooks::new(index, shared.taken.clone());
    #[cfg(not(feature = "test-hooks"))]
    let _ = (index, shared);
    move |jobs: Vec<Job>| {
        #[cfg(feature = "test-hooks")]
        if let Some(failed) = hooks.before(jobs.len()) {
            return failed;
        }
        render_batch(&mut seg, jobs, pad_to)
    }
}

/// The test hooks (`crate::test_hooks`) as one worker sees them.
#[cfg(feature = "test-hooks")]
mod hooks {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Result;

    use super::Rendered;
    use crate::test_hooks::{self, Fault};

    pub(in super::super) struct Hooks {
        jitter_ms: u64,
        fault: Option<(Fault, u64)>,
        /// Frames taken by the workers of this start, shared between them.
        taken: Arc<AtomicU64>,
        rng: u64,
    }

    impl Hooks {
        pub(in super::super) fn new(index: usize, taken: Arc<AtomicU64>) -> Self {
            Self {
                jitter_ms: test_hooks::worker_jitter_ms(),
                fault: test_hooks::worker_fault(),
                taken,
                rng: 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(index as u64 + 1),
            }
        }

        /// Before a batch of `n` frames: the results that replace it, if the fault is in it.
        pub(in super::super) fn before(&mut self, n: usize) -> Option<Vec<Result<Rendered>>> {
            if let Some((fault, at)) = self.fault {
                let first = self.taken.fetch_add(n as u64, Ordering::SeqCst) + 1;
                if (first..first + n as u64).contains(&at) {
                    if fault == Fault::Panic {
                        panic!("test hook: worker panic at frame {at}");
                    }
                    return Some(
                        (0..n)
                            .map(|_| {
                                Err(anyhow::anyhow!("test hook: inference failed at frame {at}"))
                            })
                            .collect(),
                    );
                }
            }
            if self.jitter_ms > 0 {
                self.rng = self
                    .rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                std::thread::sleep(Duration::from_millis((self.rng >> 33) % self.jitter_ms));
            }
            None
        }
    }
}
