// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

/**
 * SECTION:element-beitseg
 *
 * Semantic segmentation of raw video with an ONNX model run by ONNX Runtime: BEiT fine-tuned on
 * ADE20k (150 classes) first, any model following the same contract too (NCHW logits, or NHWC
 * input with a one-channel probability output such as MediaPipe's selfie segmenter).
 *
 * Every input buffer gives exactly one output buffer with the same timestamps and flags. The
 * `src` pad carries the frame with classes painted over it (`mode=overlay`), the palette image
 * (`mode=color`) or GRAY8 class ids (`mode=mask`); the request pad `mask` carries GRAY8 class ids
 * from the same inference.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=street.mp4 ! decodebin ! videoconvert ! \
 *     beitseg model=beit-large-ade.onnx mode=overlay alpha=0.5 ! videoconvert ! x264enc ! \
 *     mp4mux ! filesink location=seg.mp4
 * ]|
 */
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::VideoFormat;

use super::{DropPolicy, Mode, ProviderSetting, ResizeSetting};
use crate::engine::Segmenter;
use crate::frame::{ClassMap, Frame, FrameMut, Picture, PixelFormat};
use crate::model::{Model, Overrides, ResizeMode};
use crate::pool::{Pool, Ticket};
use crate::provider::{Provider, ProviderRequest};
use crate::session::GraphCache;
use crate::yuv::{Colorimetry, Matrix, YuvFormat, YuvFrame};
use crate::{palette, provider, render, runtime};

/// Locks a mutex; a panic elsewhere (caught at the pad boundary) must not make every later
/// lock panic too, so a poisoned lock is taken as it is.
trait Guard<T> {
    fn guard(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> Guard<T> for Mutex<T> {
    fn guard(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "beitseg",
        gst::DebugColorFlags::empty(),
        Some("Semantic segmentation with ONNX Runtime"),
    )
});

/// Every format the sink and the frame-carrying src accept: packed RGB, and 4:2:0 YUV as
/// decoders output it (no videoconvert needed).
const RGB_FORMATS: [VideoFormat; 8] = [
    VideoFormat::Rgb,
    VideoFormat::Rgba,
    VideoFormat::Bgr,
    VideoFormat::Bgra,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    Some(match f {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Rgba => PixelFormat::Rgba,
        VideoFormat::Bgra => PixelFormat::Bgra,
        VideoFormat::Rgbx => PixelFormat::Rgbx,
        VideoFormat::Bgrx => PixelFormat::Bgrx,
        _ => return None,
    })
}

fn yuv_format(f: VideoFormat) -> Option<YuvFormat> {
    match f {
        VideoFormat::I420 => Some(YuvFormat::I420),
        VideoFormat::Nv12 => Some(YuvFormat::Nv12),
        _ => None,
    }
}

/// The caps' matrix and range; where they leave the matrix open, GStreamer's default for the
/// frame height.
fn colorimetry(info: &gst_video::VideoInfo) -> Colorimetry {
    let c = info.colorimetry();
    let matrix = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => Matrix::Bt709,
        gst_video::VideoColorMatrix::Bt601 => Matrix::Bt601,
        _ => Matrix::default_for_height(info.height() as usize),
    };
    Colorimetry {
        matrix,
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
    }
}

/// A read-only view of a mapped frame, packed RGB or YUV.
fn picture<'a>(f: &'a gst_video::VideoFrameRef<&gst::BufferRef>) -> Result<Picture<'a>> {
    let info = f.info();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = |i: usize| f.plane_stride().get(i).map_or(0, |s| *s as usize);
    if let Some(format) = yuv_format(info.format()) {
        let third = if format == YuvFormat::I420 {
            f.plane_data(2)?
        } else {
            &[]
        };
        let planes = [f.plane_data(0)?, f.plane_data(1)?, third];
        let strides = [stride(0), stride(1), stride(2)];
        return Ok(Picture::Yuv(
            YuvFrame::new(format, colorimetry(info), (w, h), planes, strides)
                .context("bad input frame")?,
        ));
    }
    let format =
        pixel_format(info.format()).context("caps are restricted to RGB and YUV formats")?;
    Ok(Picture::Packed(
        Frame::new(format, w, h, stride(0), f.plane_data(0)?).context("bad input frame")?,
    ))
}

fn rgb_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(RGB_FORMATS)
        .width_range(1..=i32::MAX)
        .height_range(1..=i32::MAX)
        .build()
}

fn gray_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format(VideoFormat::Gray8)
        .width_range(1..=i32::MAX)
        .height_range(1..=i32::MAX)
        .build()
}

/// The same caps with the format field replaced: GRAY8 (`to_gray`) or any of our RGB formats.
fn with_formats(caps: &gst::Caps, to_gray: bool) -> gst::Caps {
    if caps.is_any() {
        return if to_gray { gray_caps() } else { rgb_caps() };
    }
    let mut out = gst::Caps::new_empty();
    {
        let out = out.get_mut().expect("new caps are writable");
        for s in caps.iter() {
            let mut s = s.to_owned();
            if to_gray {
                s.set("format", VideoFormat::Gray8.to_str());
            } else {
                s.set(
                    "format",
                    gst::List::new(RGB_FORMATS.iter().map(|f| f.to_str())),
                );
            }
            out.append_structure(s);
        }
    }
    out
}

/// The mask stream is a stream of its own: same group, its own id.
fn mask_stream_start(upstream_id: &str, group: Option<gst::GroupId>) -> gst::Event {
    let id = format!("{upstream_id}/mask");
    let builder = gst::event::StreamStart::builder(&id);
    match group {
        Some(g) => builder.group_id(g).build(),
        None => builder.build(),
    }
}

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    mode: Mode,
    alpha: f64,
    resize: ResizeSetting,
    labels: Option<PathBuf>,
    palette: Option<PathBuf>,
    classes: Option<String>,
    workers: u32,
    max_in_flight: u32,
    drop_policy: DropPolicy,
    interval: u32,
    post_stats: bool,
    batch_size: u32,
    batch_timeout: u32,
    intra_threads: u32,
    provider: ProviderSetting,
    device_id: u32,
    engine_cache: Option<PathBuf>,
    graph_cache: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            mode: Mode::Overlay,
            alpha: 0.5,
            resize: ResizeSetting::Auto,
            labels: None,
            palette: None,
            classes: None,
            // 0: automatic (one worker per CPU core; twice the workers in flight).
            workers: 0,
            max_in_flight: 0,
            drop_policy: DropPolicy::None,
            interval: 1,
            post_stats: false,
            batch_size: 1,
            batch_timeout: 10,
            // 0: the cores shared out between the workers (one each when workers is automatic).
            intra_threads: 0,
            provider: ProviderSetting::Auto,
            device_id: 0,
            engine_cache: None,
            graph_cache: None,
        }
    }
}

/// Where a frame's class map comes from.
enum ClassSource {
    /// Run the model; publish the map for the frames that reuse it (`interval` > 1).
    Compute(Option<Ticket<Arc<ClassMap>>>),
    /// Reuse the class map of the last anchor frame (computed anyway if that one failed).
    Reuse(Ticket<Arc<ClassMap>>),
}

/// One frame as the streaming thread hands it to a worker: everything needed to render it.
struct Job {
    buffer: gst::Buffer,
    in_info: gst_video::VideoInfo,
    gray_info: gst_video::VideoInfo,
    mode: Mode,
    alpha: f64,
    want_mask: bool,
    paint: Arc<render::Paint>,
    source: ClassSource,
}

/// A worker's answer: the `src` buffer and, when the `mask` pad exists, the class-id buffer.
struct Rendered {
    main: gst::Buffer,
    mask: Option<gst::Buffer>,
    /// Time spent in the model, when this frame ran it.
    inference: Option<Duration>,
}

/// What the pusher sends downstream, in input order.
enum Item {
    Frame {
        ticket: Ticket<Rendered>,
        anchor: Option<Ticket<Arc<ClassMap>>>,
    },
    /// A serialized event, as it goes to the `src` pad and to the `mask` pad.
    Event {
        src: Option<gst::Event>,
        mask: Option<gst::Event>,
    },
}

impl Item {
    /// Gives up on a frame: the pool skips it if not started, and frames waiting for its class
    /// map compute their own.
    fn discard(&self) {
        if let Item::Frame { ticket, anchor } = self {
            ticket.cancel();
            if let Some(a) = anchor {
                a.fill(Err(anyhow!("discarded")));
            }
        }
    }
}

/// The ordered queue between the streaming thread (sink pad) and the pusher (src pad task).
struct Queue {
    items: VecDeque<Item>,
    /// Frames queued or being pushed, bounded by `max-in-flight`.
    frames: usize,
    flushing: bool,
    /// The last downstream flow, returned upstream by the next chain call.
    flow: Result<gst::FlowSuccess, gst::FlowError>,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            frames: 0,
            flushing: true,
            flow: Ok(gst::FlowSuccess::Ok),
        }
    }
}

/// Counters behind the `stats` property and the `beitseg-stats` bus messages.
struct Stats {
    frames_in: u64,
    frames_out: u64,
    dropped: u64,
    /// The last inference times, for mean and p95.
    inference_ms: VecDeque<f64>,
    /// When the last frames went out, for the frame rate over the last second.
    out_times: VecDeque<Instant>,
    last_post: Instant,
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
    fn inference(&self) -> (f64, f64) {
        if self.inference_ms.is_empty() {
            return (0.0, 0.0);
        }
        let mean = self.inference_ms.iter().sum::<f64>() / self.inference_ms.len() as f64;
        let mut sorted: Vec<f64> = self.inference_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1];
        (mean, p95)
    }

    fn fps(&self) -> f64 {
        match (self.out_times.front(), self.out_times.back()) {
            (Some(first), Some(last)) if self.out_times.len() > 1 && last > first => {
                (self.out_times.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn structure(&self, queue_depth: usize, workers: usize) -> gst::Structure {
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

/// Runtime state, created when the element starts (READY→PAUSED) and dropped when it stops.
struct State {
    pool: Pool<Job, Rendered>,
    paint: Arc<render::Paint>,
    mode: Mode,
    max_in_flight: usize,
    drop_policy: DropPolicy,
    interval: u32,
    /// Frames since the last anchor, and that anchor's class map (`interval` > 1).
    since_anchor: u32,
    anchor: Option<Ticket<Arc<ClassMap>>>,
    in_info: Option<gst_video::VideoInfo>,
    gray_info: Option<gst_video::VideoInfo>,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// From downstream QoS: frames whose running time is earlier are too late to show.
    qos_earliest: Option<gst::ClockTime>,
}

pub struct BeitSeg {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    maskpad: Mutex<Option<gst::Pad>>,
    combiner: Mutex<gst_base::UniqueFlowCombiner>,
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    queue: Mutex<Queue>,
    queue_changed: Condvar,
    stats: Mutex<Stats>,
    /// Input size and class count of the loaded model, for the read-only properties.
    loaded: Mutex<Option<(u32, u32, u32)>>,
    /// The provider the loaded model runs on, and why better ones were not used.
    provider_in_use: Mutex<Option<String>>,
}

/// A copy of `from`'s timestamps and flags on a new buffer of `size` bytes.
fn new_buffer_like(from: &gst::Buffer, size: usize) -> Result<gst::Buffer> {
    let mut out = gst::Buffer::with_size(size)?;
    from.copy_into(
        out.get_mut().expect("new buffer"),
        gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
        ..,
    )?;
    Ok(out)
}

fn mask_buffer(
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
fn run_model(
    seg: &mut Segmenter,
    jobs: &[Job],
    which: &[usize],
    pad_to: Option<usize>,
    classes: &mut [Option<Result<Arc<ClassMap>>>],
    inference: &mut [Option<Duration>],
) {
    if which.is_empty() {
        return;
    }
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
        let took = seg.segment_pictures(&views, &mut maps, pad_to.unwrap_or(which.len()))?;
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
fn render_batch(
    seg: &mut Segmenter,
    jobs: Vec<Job>,
    pad_to: Option<usize>,
) -> Vec<Result<Rendered>> {
    let n = jobs.len();
    let mut classes: Vec<Option<Result<Arc<ClassMap>>>> = (0..n).map(|_| None).collect();
    let mut inference = vec![None; n];
    let compute: Vec<usize> = (0..n)
        .filter(|&i| matches!(jobs[i].source, ClassSource::Compute(_)))
        .collect();
    run_model(seg, &jobs, &compute, pad_to, &mut classes, &mut inference);
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
                None => run_model(seg, &jobs, &[i], pad_to, &mut classes, &mut inference),
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
fn render(job: Job, classes: &ClassMap, inference: Option<Duration>) -> Result<Rendered> {
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

impl BeitSeg {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.guard().clone();
        let Some(path) = settings.model.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ["No model set: set the model property to an .onnx file"]
            ));
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Parallelism comes first from frames in flight on several workers.
        let workers = match settings.workers {
            0 => cores,
            n => n as usize,
        };
        let overrides = Overrides {
            provider: ProviderRequest {
                provider: match settings.provider {
                    ProviderSetting::Auto => Provider::Auto,
                    ProviderSetting::Tensorrt => Provider::TensorRt,
                    ProviderSetting::Cuda => Provider::Cuda,
                    ProviderSetting::Cpu => Provider::Cpu,
                },
                device_id: settings.device_id,
                engine_cache: settings.engine_cache.clone(),
            },
            max_batch: settings.batch_size.max(1) as usize,
            graph_cache: GraphCache::parse(settings.graph_cache.as_deref().unwrap_or("")),
            labels: settings.labels.clone(),
            palette: settings.palette.clone(),
            resize: match settings.resize {
                ResizeSetting::Auto => None,
                ResizeSetting::Stretch => Some(ResizeMode::Stretch),
                ResizeSetting::Letterbox => Some(ResizeMode::Letterbox),
            },
            threads: Some(match settings.intra_threads {
                0 => (cores / workers).max(1),
                n => n as usize,
            }),
        };
        if let Err(err) = runtime::init(Some(Arc::new(|level, message: &str| {
            use ort::logging::LogLevel;
            let level = match level {
                LogLevel::Verbose => gst::DebugLevel::Log,
                LogLevel::Info => gst::DebugLevel::Debug,
                LogLevel::Warning => gst::DebugLevel::Warning,
                LogLevel::Error | LogLevel::Fatal => gst::DebugLevel::Error,
            };
            gst::log_with_level!(CAT, level, "onnxruntime: {message}");
        }))) {
            return Err(gst::error_msg!(gst::LibraryError::Init, ["{err:#}"]));
        }
        gst::info!(
            CAT,
            imp = self,
            "loading {} on {workers} workers with ONNX Runtime {}",
            path.display(),
            runtime::version().unwrap_or("?")
        );
        let load_error = |err: anyhow::Error| {
            let kind = if path.exists() {
                gst::ResourceError::OpenRead
            } else {
                gst::ResourceError::NotFound
            };
            gst::error_msg!(kind, ["{err:#}"])
        };
        // Building a TensorRT engine takes minutes; say so before it starts.
        if matches!(
            overrides.provider.provider,
            Provider::Auto | Provider::TensorRt
        ) && provider::compiled_in().is_ok_and(|p| p.contains(&"tensorrt"))
        {
            let root = overrides
                .provider
                .engine_cache
                .clone()
                .unwrap_or_else(provider::default_engine_cache);
            if let Ok(dir) = provider::engine_cache_dir(
                &root,
                &path,
                overrides.provider.device_id,
                true,
                overrides.max_batch,
            ) {
                if !provider::has_cached_engine(&dir) {
                    gst::element_imp_info!(
                        self,
                        gst::LibraryError::Init,
                        [
                            "TensorRT: no cached engine for {} in {}: the first start builds one, \
                             which can take minutes; later starts reuse it",
                            path.display(),
                            dir.display()
                        ]
                    );
                }
            }
        }
        // One session, shared with every other beitseg of this process that runs the same
        // model, and run by all workers at once: the weights are in memory once.
        let model = Model::shared(&path, &overrides).map_err(load_error)?;
        let info = model.info().clone();
        let provider_line = match info.provider_notes.is_empty() {
            true => info.provider.name().to_string(),
            false => format!(
                "{} ({})",
                info.provider.name(),
                info.provider_notes.join("; ")
            ),
        };
        if !info.provider_notes.is_empty() {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Init,
                ["provider=auto is using {provider_line}"]
            );
        }
        *self.provider_in_use.guard() = Some(provider_line);
        for note in &info.load.notes {
            gst::info!(CAT, imp = self, "{}: {note}", path.display());
        }
        gst::info!(
            CAT,
            imp = self,
            "{} loaded in {:.2} s (optimised graph: {})",
            path.display(),
            info.load.seconds,
            info.load.graph_cache
        );
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("beitseg-loaded")
                    .field("model", path.display().to_string())
                    .field("provider", info.provider.name())
                    .field("workers", workers as u32)
                    .field("load-seconds", info.load.seconds)
                    .field("graph-cache", info.load.graph_cache)
                    .field("notes", info.load.notes.join("; "))
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        let draw =
            palette::select_classes(settings.classes.as_deref(), &info.labels).map_err(|err| {
                gst::error_msg!(gst::ResourceError::Settings, ["classes property: {err:#}"])
            })?;
        gst::info!(
            CAT,
            imp = self,
            "model input {}x{} {:?} {:?}, {} classes, {:?}",
            info.width,
            info.height,
            info.layout,
            info.input_precision,
            info.num_classes,
            info.preprocessing
        );
        // Test hook: a random delay per frame (0..N ms) makes workers finish out of order.
        let jitter_ms: u64 = std::env::var("BEITSEG_TEST_WORKER_JITTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // Test hook: `error:N` or `panic:N` makes the worker that takes the N-th frame (counted
        // from 1 across workers) fail it with an error, or panic.
        let fault = std::env::var("BEITSEG_TEST_WORKER_FAULT")
            .ok()
            .and_then(|v| {
                let (kind, n) = v.split_once(':')?;
                Some((kind == "panic", n.parse::<u64>().ok()?))
            });
        let frames_taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // A model with a fixed batch runs exactly that many images (padded when fewer wait).
        let requested = settings.batch_size.max(1) as usize;
        let (batch, pad_to) = match info.batch {
            // TensorRT builds an engine per input shape: partial batches are padded so that one
            // engine (the cached one) serves every run.
            None if info.provider == Provider::TensorRt && requested > 1 => {
                (requested, Some(requested))
            }
            None => (requested, None),
            Some(fixed) => {
                if requested != fixed && requested > 1 {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Settings,
                        ["batch-size={requested} but {} has a fixed batch of {fixed}: using {fixed}", path.display()]
                    );
                }
                (if requested > 1 { fixed } else { 1 }, Some(fixed))
            }
        };
        let workers = (0..workers)
            .map(|i| {
                let mut seg = Segmenter::new(model.clone());
                let mut rng = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1);
                let frames_taken = frames_taken.clone();
                move |jobs: Vec<Job>| {
                    if let Some((panic, at)) = fault {
                        let first = frames_taken
                            .fetch_add(jobs.len() as u64, std::sync::atomic::Ordering::SeqCst)
                            + 1;
                        if (first..first + jobs.len() as u64).contains(&at) {
                            if panic {
                                panic!("test hook: worker panic at frame {at}");
                            }
                            return jobs
                                .iter()
                                .map(|_| {
                                    Err(anyhow::anyhow!(
                                        "test hook: inference failed at frame {at}"
                                    ))
                                })
                                .collect();
                        }
                    }
                    if jitter_ms > 0 {
                        rng = rng
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        std::thread::sleep(Duration::from_millis((rng >> 33) % jitter_ms));
                    }
                    render_batch(&mut seg, jobs, pad_to)
                }
            })
            .collect();
        let timeout = Duration::from_millis(settings.batch_timeout as u64);
        let pool = Pool::batched("beitseg", workers, batch, timeout)
            .map_err(|err| gst::error_msg!(gst::CoreError::Failed, ["{err:#}"]))?;
        *self.loaded.guard() = Some((
            info.width as u32,
            info.height as u32,
            info.num_classes as u32,
        ));
        let max_in_flight = match settings.max_in_flight {
            0 => 2 * pool.workers() * batch,
            n => n as usize,
        };
        *self.state.guard() = Some(State {
            pool,
            paint: Arc::new(render::Paint::new(&info.palette, &draw)),
            mode: settings.mode,
            max_in_flight,
            drop_policy: settings.drop_policy,
            interval: settings.interval.max(1),
            since_anchor: 0,
            anchor: None,
            in_info: None,
            gray_info: None,
            segment: gst::FormattedSegment::new(),
            qos_earliest: None,
        });
        *self.stats.guard() = Stats::default();
        self.combiner.guard().reset();
        Ok(())
    }

    fn stop(&self) {
        *self.state.guard() = None;
    }

    fn mode(&self) -> Mode {
        match &*self.state.guard() {
            Some(state) => state.mode,
            None => self.settings.guard().mode,
        }
    }

    fn set_flushing(&self, flushing: bool) {
        let mut q = self.queue.guard();
        q.flushing = flushing;
        if flushing {
            for item in q.items.drain(..) {
                item.discard();
            }
            q.frames = 0;
        } else {
            q.flow = Ok(gst::FlowSuccess::Ok);
        }
        self.queue_changed.notify_all();
        drop(q);
        if let Some(state) = self.state.guard().as_mut() {
            state.anchor = None;
            state.since_anchor = 0;
            state.qos_earliest = None;
        }
    }

    fn enqueue_event(&self, src: Option<gst::Event>, mask: Option<gst::Event>) -> bool {
        let mut q = self.queue.guard();
        if q.flushing {
            return false;
        }
        q.items.push_back(Item::Event { src, mask });
        self.queue_changed.notify_all();
        true
    }

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let alpha = self.settings.guard().alpha;
        let want_mask = self.maskpad.guard().is_some();
        self.stats.guard().frames_in += 1;
        let (job, anchor, max_in_flight, drop_oldest) = {
            let mut guard = self.state.guard();
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let (Some(in_info), Some(gray_info)) = (state.in_info.clone(), state.gray_info.clone())
            else {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ["Buffer before caps"]);
                return Err(gst::FlowError::NotNegotiated);
            };
            let drop_oldest = state.drop_policy == DropPolicy::Oldest;
            // Live mode honours QoS: a frame downstream would show too late is not processed.
            if drop_oldest {
                let running = state.segment.to_running_time(buffer.pts());
                if let (Some(running), Some(earliest)) = (running, state.qos_earliest) {
                    if running < earliest {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "QoS: dropping a frame late by {}",
                            earliest - running
                        );
                        self.stats.guard().dropped += 1;
                        return Ok(gst::FlowSuccess::Ok);
                    }
                }
            }
            let (source, anchor) = if state.interval <= 1 {
                (ClassSource::Compute(None), None)
            } else if state.since_anchor == 0 || state.anchor.is_none() {
                let t = Ticket::new();
                state.anchor = Some(t.clone());
                state.since_anchor = 1 % state.interval;
                (ClassSource::Compute(Some(t.clone())), Some(t))
            } else {
                state.since_anchor = (state.since_anchor + 1) % state.interval;
                (
                    ClassSource::Reuse(state.anchor.clone().expect("checked")),
                    None,
                )
            };
            let job = Job {
                buffer,
                in_info,
                gray_info,
                mode: state.mode,
                alpha,
                want_mask,
                paint: state.paint.clone(),
                source,
            };
            (job, anchor, state.max_in_flight, drop_oldest)
        };

        // Back-pressure: wait while max-in-flight frames are queued or being pushed, or, for
        // live sources, make room by dropping the oldest frame still waiting.
        {
            let mut q = self.queue.guard();
            while !q.flushing && q.flow.is_ok() && q.frames >= max_in_flight {
                if drop_oldest {
                    if let Some(i) = q
                        .items
                        .iter()
                        .position(|it| matches!(it, Item::Frame { .. }))
                    {
                        let item = q.items.remove(i).expect("index from position");
                        item.discard();
                        q.frames -= 1;
                        self.stats.guard().dropped += 1;
                        continue;
                    }
                }
                q = self
                    .queue_changed
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if q.flushing {
                return Err(gst::FlowError::Flushing);
            }
            q.flow?;
        }
        let ticket = {
            let guard = self.state.guard();
            guard
                .as_ref()
                .ok_or(gst::FlowError::Flushing)?
                .pool
                .submit(job)
        };
        let mut q = self.queue.guard();
        if q.flushing {
            return Err(gst::FlowError::Flushing);
        }
        q.items.push_back(Item::Frame { ticket, anchor });
        q.frames += 1;
        self.queue_changed.notify_all();
        q.flow
    }

    /// The src pad task: pushes the next item in order, waiting for its worker if needed.
    fn push_next(&self) {
        let item = {
            let mut q = self.queue.guard();
            loop {
                if q.flushing {
                    drop(q);
                    let _ = self.srcpad.pause_task();
                    return;
                }
                if let Some(item) = q.items.pop_front() {
                    break item;
                }
                q = self
                    .queue_changed
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        let maskpad = self.maskpad.guard().clone();
        match item {
            Item::Event { src, mask } => {
                if let (Some(pad), Some(event)) = (&maskpad, mask) {
                    pad.push_event(event);
                }
                if let Some(event) = src {
                    if !self.srcpad.push_event(event.clone())
                        && event.type_() == gst::EventType::Caps
                    {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ["Downstream refused {event:?}"]
                        );
                        self.queue.guard().flow = Err(gst::FlowError::NotNegotiated);
                    }
                }
            }
            Item::Frame { .. } if self.queue.guard().flow.is_err() => {
                // Downstream failed: frames are dropped, events (EOS above all) still go through.
                item.discard();
                let mut q = self.queue.guard();
                q.frames = q.frames.saturating_sub(1);
                self.queue_changed.notify_all();
            }
            Item::Frame { ticket, .. } => {
                let result = loop {
                    if let Some(r) = ticket.wait_timeout(Duration::from_millis(20)) {
                        break r;
                    }
                    if self.queue.guard().flushing {
                        return;
                    }
                };
                let flow = match result {
                    Ok(Rendered {
                        main,
                        mask,
                        inference,
                    }) => {
                        self.note_output(inference);
                        let res = self.srcpad.push(main);
                        let mut combiner = self.combiner.guard();
                        let mut flow = combiner.update_pad_flow(&self.srcpad, res);
                        if let (Some(pad), Some(buf)) = (maskpad, mask) {
                            let res = pad.push(buf);
                            flow = combiner.update_pad_flow(&pad, res);
                        }
                        flow
                    }
                    Err(err) => {
                        gst::element_imp_error!(self, gst::StreamError::Failed, ["{err:#}"]);
                        Err(gst::FlowError::Error)
                    }
                };
                let mut q = self.queue.guard();
                if !q.flushing {
                    q.frames = q.frames.saturating_sub(1);
                    if q.flow.is_ok() {
                        q.flow = flow;
                    }
                }
                drop(q);
                self.queue_changed.notify_all();
                if let Err(err) = flow {
                    gst::debug!(CAT, imp = self, "downstream flow {err:?}");
                    // As a source's task would: upstream may have finished already, so say it.
                    if matches!(
                        err,
                        gst::FlowError::NotLinked | gst::FlowError::NotNegotiated
                    ) {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Failed,
                            ["Streaming stopped, reason {err:?}"]
                        );
                    }
                }
            }
        }
    }

    /// Counts a frame going out and, with `post-stats`, posts the statistics once a second.
    fn note_output(&self, inference: Option<Duration>) {
        let now = Instant::now();
        let post = self.settings.guard().post_stats;
        let due = {
            let mut stats = self.stats.guard();
            stats.frames_out += 1;
            if let Some(d) = inference {
                stats.inference_ms.push_back(d.as_secs_f64() * 1000.0);
                if stats.inference_ms.len() > 256 {
                    stats.inference_ms.pop_front();
                }
            }
            stats.out_times.push_back(now);
            while stats.out_times.len() > 2
                && now.duration_since(*stats.out_times.front().expect("non-empty"))
                    > Duration::from_secs(1)
            {
                stats.out_times.pop_front();
            }
            let due = post && now.duration_since(stats.last_post) >= Duration::from_secs(1);
            if due {
                stats.last_post = now;
            }
            due
        };
        if due {
            let s = self.stats_structure();
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
    }

    /// Takes the queue, state and stats locks one at a time: the streaming thread holds the
    /// first two while it counts drops.
    fn stats_structure(&self) -> gst::Structure {
        let depth = self.queue.guard().frames;
        let workers = self.state.guard().as_ref().map_or(0, |s| s.pool.workers());
        self.stats.guard().structure(depth, workers)
    }

    fn src_activate(&self, pad: &gst::Pad, active: bool) -> Result<(), gst::LoggableError> {
        if active {
            self.set_flushing(false);
            let this = self.obj().downgrade();
            pad.start_task(move || {
                if let Some(obj) = this.upgrade() {
                    obj.imp().push_next();
                }
            })
            .map_err(|e| gst::loggable_error!(CAT, "cannot start the src task: {e}"))
        } else {
            self.set_flushing(true);
            pad.stop_task()
                .map_err(|e| gst::loggable_error!(CAT, "cannot stop the src task: {e}"))
        }
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::Qos(qos) = event.view() {
            let (_, _, diff, timestamp) = qos.get();
            if let (Some(state), Some(ts)) = (self.state.guard().as_mut(), timestamp) {
                // Late by `diff`: frames before `timestamp + diff` cannot be shown in time.
                state.qos_earliest = if diff > 0 {
                    Some(ts + gst::ClockTime::from_nseconds(diff as u64))
                } else {
                    None
                };
            }
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn set_caps(&self, caps: &gst::CapsRef) -> bool {
        let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
            gst::warning!(CAT, imp = self, "cannot parse caps {caps}");
            return false;
        };
        if pixel_format(info.format()).is_none() && yuv_format(info.format()).is_none() {
            return false;
        }
        let Ok(gray_info) =
            gst_video::VideoInfo::builder(VideoFormat::Gray8, info.width(), info.height())
                .fps(info.fps())
                .par(info.par())
                .build()
        else {
            return false;
        };
        let Ok(gray_caps) = gray_info.to_caps() else {
            return false;
        };
        let mode = {
            let mut guard = self.state.guard();
            let Some(state) = guard.as_mut() else {
                return false;
            };
            state.in_info = Some(info);
            state.gray_info = Some(gray_info);
            // A new size needs a new class map.
            state.anchor = None;
            state.mode
        };
        let src_caps = match mode {
            Mode::Mask => gray_caps.clone(),
            _ => caps.to_owned(),
        };
        if !self.srcpad.peer_query_accept_caps(&src_caps) && self.srcpad.is_linked() {
            gst::warning!(CAT, imp = self, "downstream does not accept {src_caps}");
            return false;
        }
        gst::debug!(CAT, imp = self, "negotiated {caps}, src {src_caps}");
        // Frames already queued carry their own caps; the new caps reach downstream after them.
        self.enqueue_event(
            Some(gst::event::Caps::new(&src_caps)),
            Some(gst::event::Caps::new(&gray_caps)),
        )
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {event:?}");
        match event.view() {
            EventView::Caps(c) => self.set_caps(c.caps()),
            EventView::StreamStart(s) => {
                let mask = mask_stream_start(s.stream_id(), s.group_id());
                self.enqueue_event(Some(event.clone()), Some(mask))
            }
            EventView::FlushStart(_) => {
                self.set_flushing(true);
                let ok = gst::Pad::event_default(pad, Some(&*self.obj()), event);
                let _ = self.srcpad.pause_task();
                ok
            }
            EventView::FlushStop(_) => {
                let ok = gst::Pad::event_default(pad, Some(&*self.obj()), event);
                self.combiner.guard().reset();
                if self.srcpad.is_active() {
                    if let Err(err) = self.src_activate(&self.srcpad, true) {
                        err.log();
                    }
                }
                ok
            }
            EventView::Segment(s) => {
                if let (Some(state), Ok(segment)) = (
                    self.state.guard().as_mut(),
                    s.segment().clone().downcast::<gst::ClockTime>(),
                ) {
                    state.segment = segment;
                }
                self.enqueue_event(Some(event.clone()), Some(event))
            }
            // Serialized events keep their place between buffers.
            _ if event.is_serialized() => self.enqueue_event(Some(event.clone()), Some(event)),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let downstream = match self.mode() {
                    // Downstream takes GRAY8: any of our formats at the sizes it takes.
                    Mode::Mask => {
                        with_formats(&self.srcpad.peer_query_caps(Some(&gray_caps())), false)
                    }
                    _ => self
                        .srcpad
                        .peer_query_caps(q.filter().map(|f| f.to_owned()).as_ref()),
                };
                let mut caps = downstream.intersect(&pad.pad_template_caps());
                if let Some(filter) = q.filter() {
                    caps = filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First);
                }
                q.set_result(&caps);
                true
            }
            // Buffers are mapped, never handed on as they came, so upstream allocates plain memory.
            QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Latency(q) => {
                let mut upstream = gst::query::Latency::new();
                if !self.sinkpad.peer_query(&mut upstream) {
                    return false;
                }
                let (live, min, max) = upstream.result();
                // A frame spends at least one inference here, and at most max-in-flight of them
                // while queued (measured: p95 of recent inferences, zero before the first).
                let (_, p95) = self.stats.guard().inference();
                let ours = gst::ClockTime::from_nseconds((p95 * 1e6) as u64);
                let in_flight = self.state.guard().as_ref().map_or(1, |s| s.max_in_flight) as u64;
                q.set(live, min + ours, max.map(|m| m + ours * in_flight));
                true
            }
            QueryViewMut::Caps(q) => {
                let gray = pad != &self.srcpad || self.mode() == Mode::Mask;
                let upstream = self.sinkpad.peer_query_caps(None);
                let mut caps = with_formats(&upstream, gray).intersect(&pad.pad_template_caps());
                if !gray {
                    caps = upstream.intersect(&caps);
                }
                if let Some(filter) = q.filter() {
                    caps = filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First);
                }
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for BeitSeg {
    const NAME: &'static str = "GstBeitSeg";
    type Type = super::BeitSeg;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad =
            gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink template"))
                .chain_function(|pad, parent, buffer| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |imp| imp.sink_chain(pad, buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.sink_event(pad, event),
                    )
                })
                .query_function(|pad, parent, query| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.sink_query(pad, query),
                    )
                })
                .build();
        let srcpad =
            gst::Pad::builder_from_template(&klass.pad_template("src").expect("src template"))
                .event_function(|pad, parent, event| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .activatemode_function(|pad, parent, mode, active| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || Err(gst::loggable_error!(CAT, "panic while activating")),
                        |imp| match mode {
                            gst::PadMode::Push => imp.src_activate(pad, active),
                            _ => Err(gst::loggable_error!(CAT, "src pad only works in push mode")),
                        },
                    )
                })
                .query_function(|pad, parent, query| {
                    BeitSeg::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .build();
        Self {
            sinkpad,
            srcpad,
            maskpad: Mutex::new(None),
            combiner: Mutex::new(gst_base::UniqueFlowCombiner::new()),
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            queue: Mutex::new(Queue::default()),
            queue_changed: Condvar::new(),
            stats: Mutex::new(Stats::default()),
            loaded: Mutex::new(None),
            provider_in_use: Mutex::new(None),
        }
    }
}

impl ObjectImpl for BeitSeg {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb(
                        "Path of the ONNX model (.onnx; external weights such as model.onnx.data are read from \
                         beside it). Loaded when the element starts; a bad model fails the state change.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", d.mode)
                    .nick("Mode")
                    .blurb("What the src pad carries: the frame with classes painted over it, the palette image, or GRAY8 class ids.")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("alpha")
                    .nick("Alpha")
                    .blurb("Opacity of the class colours in overlay mode, 0 (frame only) to 1 (colours only).")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.alpha)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("resize", d.resize)
                    .nick("Resize")
                    .blurb("How frames are fitted to the model input: as the model's metadata says (auto), stretched, or letterboxed.")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels")
                    .nick("Labels file")
                    .blurb("Optional file overriding the model's class names: one name per line, or id2label JSON.")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("palette")
                    .nick("Palette file")
                    .blurb("Optional file overriding the model's class colours: one R,G,B or #rrggbb per line, or a JSON list.")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("classes")
                    .nick("Classes")
                    .blurb("Optional comma-separated class ids or names to draw (e.g. \"person,12,car\"); other classes stay unpainted. Empty draws all.")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("workers")
                    .nick("Workers")
                    .blurb(
                        "Worker threads, each with its own ONNX Runtime session, segmenting frames in parallel; \
                         output stays in input order. 0 picks one per CPU core.",
                    )
                    .maximum(256)
                    .default_value(d.workers)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Maximum frames in flight")
                    .blurb(
                        "Frames queued or being processed before the element blocks upstream (bounds memory and \
                         latency). 0 picks twice the number of workers.",
                    )
                    .maximum(1024)
                    .default_value(d.max_in_flight)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("drop-policy", d.drop_policy)
                    .nick("Drop policy")
                    .blurb(
                        "When max-in-flight frames wait: block upstream so every frame comes out (none, for \
                         files), or drop the oldest waiting frame and frames downstream QoS reports as late \
                         (oldest, latest-frame-wins for live cameras). Drops are counted in stats.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb(
                        "Frames a worker runs through the model at once. A model with a fixed batch \
                         dimension uses that batch instead (with a warning when it differs).",
                    )
                    .minimum(1)
                    .maximum(64)
                    .default_value(d.batch_size)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-timeout")
                    .nick("Batch timeout")
                    .blurb("Milliseconds a worker waits for more frames to fill a batch before running a partial one.")
                    .maximum(10_000)
                    .default_value(d.batch_timeout)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("intra-threads")
                    .nick("Threads per session")
                    .blurb(
                        "ONNX Runtime threads inside each worker's session. 0 shares the CPU cores out \
                         between the workers (one each with the automatic worker count).",
                    )
                    .maximum(256)
                    .default_value(d.intra_threads)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("provider", d.provider)
                    .nick("Execution provider")
                    .blurb(
                        "Where the model runs: auto tries TensorRT, then CUDA, then the CPU and posts a \
                         warning saying which it got and why the others failed; naming tensorrt or cuda \
                         makes their failure an error, never a silent CPU fallback.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("device-id")
                    .nick("GPU")
                    .blurb("CUDA device number for the tensorrt and cuda providers.")
                    .default_value(d.device_id)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("engine-cache")
                    .nick("TensorRT engine cache")
                    .blurb(
                        "Folder for TensorRT engines and timing caches, one subfolder per model, GPU, \
                         precision and batch; unset uses ~/.cache/beitseg/tensorrt. Building an engine takes \
                         minutes; later starts reuse it.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("graph-cache")
                    .nick("Optimised graph cache")
                    .blurb(
                        "Folder where ONNX Runtime's optimised graph of a model (CPU) is saved at the first start \
                         and loaded, without optimising again, at later ones; one subfolder per model, ONNX \
                         Runtime version and CPU kind. Unset uses ~/.cache/beitseg/graphs; \"off\" optimises at \
                         every start.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("provider-in-use")
                    .nick("Provider in use")
                    .blurb("The execution provider the loaded model runs on, with why better ones were not used.")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb(
                        "Run the model on every N-th frame and reuse its class map for the frames in \
                         between (1 runs it on every frame).",
                    )
                    .minimum(1)
                    .maximum(1000)
                    .default_value(d.interval)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-stats")
                    .nick("Post statistics")
                    .blurb("Post the stats structure as a beitseg-stats element message on the bus once a second.")
                    .default_value(d.post_stats)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "frames-in, frames-out, dropped, inference-mean-ms and inference-p95-ms (model time \
                         over the last 256 inferences), queue-depth (frames in flight), fps (output over the \
                         last second), workers.",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("input-width")
                    .nick("Input width")
                    .blurb("Width in pixels of the loaded model's input (0 before a model is loaded).")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("input-height")
                    .nick("Input height")
                    .blurb("Height in pixels of the loaded model's input (0 before a model is loaded).")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("num-classes")
                    .nick("Number of classes")
                    .blurb("Number of classes of the loaded model (0 before a model is loaded).")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("ort-version")
                    .nick("ONNX Runtime version")
                    .blurb("Version of the ONNX Runtime library in use, or why it could not be loaded.")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.guard();
        let path = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        match pspec.name() {
            "model" => {
                let new = path();
                gst::info!(CAT, imp = self, "model: {:?} → {:?}", s.model, new);
                s.model = new;
            }
            "mode" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "mode: {:?} → {:?}", s.mode, new);
                s.mode = new;
            }
            "alpha" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "alpha: {} → {}", s.alpha, new);
                s.alpha = new;
            }
            "resize" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "resize: {:?} → {:?}", s.resize, new);
                s.resize = new;
            }
            "labels" => {
                let new = path();
                gst::info!(CAT, imp = self, "labels: {:?} → {:?}", s.labels, new);
                s.labels = new;
            }
            "palette" => {
                let new = path();
                gst::info!(CAT, imp = self, "palette: {:?} → {:?}", s.palette, new);
                s.palette = new;
            }
            "workers" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "workers: {} → {}", s.workers, new);
                s.workers = new;
            }
            "max-in-flight" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "max-in-flight: {} → {}",
                    s.max_in_flight,
                    new
                );
                s.max_in_flight = new;
            }
            "drop-policy" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "drop-policy: {:?} → {:?}",
                    s.drop_policy,
                    new
                );
                s.drop_policy = new;
            }
            "batch-size" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "batch-size: {} → {}", s.batch_size, new);
                s.batch_size = new;
            }
            "batch-timeout" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "batch-timeout: {} → {}",
                    s.batch_timeout,
                    new
                );
                s.batch_timeout = new;
            }
            "intra-threads" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "intra-threads: {} → {}",
                    s.intra_threads,
                    new
                );
                s.intra_threads = new;
            }
            "provider" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "provider: {:?} → {:?}", s.provider, new);
                s.provider = new;
            }
            "device-id" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "device-id: {} → {}", s.device_id, new);
                s.device_id = new;
            }
            "engine-cache" => {
                let new = path();
                gst::info!(
                    CAT,
                    imp = self,
                    "engine-cache: {:?} → {:?}",
                    s.engine_cache,
                    new
                );
                s.engine_cache = new;
            }
            "graph-cache" => {
                let new: Option<String> = value.get().expect("type checked upstream");
                gst::info!(
                    CAT,
                    imp = self,
                    "graph-cache: {:?} → {:?}",
                    s.graph_cache,
                    new
                );
                s.graph_cache = new;
            }
            "interval" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "interval: {} → {}", s.interval, new);
                s.interval = new;
            }
            "post-stats" => {
                let new = value.get().expect("type checked upstream");
                gst::info!(CAT, imp = self, "post-stats: {} → {}", s.post_stats, new);
                s.post_stats = new;
            }
            "classes" => {
                let new = value
                    .get::<Option<String>>()
                    .expect("type checked upstream");
                gst::info!(CAT, imp = self, "classes: {:?} → {:?}", s.classes, new);
                s.classes = new;
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.guard();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        let loaded = *self.loaded.guard();
        match pspec.name() {
            "model" => path(&s.model),
            "mode" => s.mode.to_value(),
            "alpha" => s.alpha.to_value(),
            "resize" => s.resize.to_value(),
            "labels" => path(&s.labels),
            "palette" => path(&s.palette),
            "classes" => s.classes.to_value(),
            "workers" => s.workers.to_value(),
            "max-in-flight" => s.max_in_flight.to_value(),
            "drop-policy" => s.drop_policy.to_value(),
            "interval" => s.interval.to_value(),
            "provider" => s.provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "engine-cache" => path(&s.engine_cache),
            "graph-cache" => s.graph_cache.to_value(),
            "provider-in-use" => self.provider_in_use.guard().to_value(),
            "intra-threads" => s.intra_threads.to_value(),
            "batch-size" => s.batch_size.to_value(),
            "batch-timeout" => s.batch_timeout.to_value(),
            "post-stats" => s.post_stats.to_value(),
            "stats" => {
                drop(s);
                self.stats_structure().to_value()
            }
            "input-width" => loaded.map_or(0, |l| l.0).to_value(),
            "input-height" => loaded.map_or(0, |l| l.1).to_value(),
            "num-classes" => loaded.map_or(0, |l| l.2).to_value(),
            "ort-version" => match runtime::init(None) {
                Ok(()) => runtime::version().unwrap_or("unknown").to_value(),
                Err(err) => format!("not loaded: {err:#}").to_value(),
            },
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("fresh element");
        obj.add_pad(&self.srcpad).expect("fresh element");
        self.combiner.guard().add_pad(&self.srcpad);
    }
}

impl GstObjectImpl for BeitSeg {}

impl ElementImpl for BeitSeg {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Semantic segmentation (BEiT / ONNX Runtime)",
                "Filter/Effect/Video/Analyzer",
                "Segments video frames with an ONNX model and paints or emits the class of every pixel",
                "beitseg developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let rgb = rgb_caps();
            let mut src = rgb.clone();
            src.merge(gray_caps());
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &rgb,
                )
                .expect("valid"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src,
                )
                .expect("valid"),
                gst::PadTemplate::new(
                    "mask",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &gray_caps(),
                )
                .expect("valid"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let mut slot = self.maskpad.guard();
        if slot.is_some() {
            gst::warning!(CAT, imp = self, "the mask pad was already requested");
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name("mask")
            .query_function(|pad, parent, query| {
                BeitSeg::catch_panic_pad_function(parent, || false, |imp| imp.src_query(pad, query))
            })
            .build();
        *slot = Some(pad.clone());
        drop(slot);
        self.combiner.guard().add_pad(&pad);
        self.obj().add_pad(&pad).ok()?;
        // Joining mid-stream: give the new pad the stream's sticky events.
        if let Some(ev) = self.sinkpad.sticky_event::<gst::event::StreamStart>(0) {
            pad.push_event(mask_stream_start(ev.stream_id(), ev.group_id()));
        }
        let gray = self
            .state
            .guard()
            .as_ref()
            .and_then(|s| s.gray_info.clone());
        if let Some(caps) = gray.and_then(|i| i.to_caps().ok()) {
            pad.push_event(gst::event::Caps::new(&caps));
        }
        if let Some(ev) = self.sinkpad.sticky_event::<gst::event::Segment>(0) {
            pad.push_event(ev);
        }
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let mut slot = self.maskpad.guard();
        if slot.as_ref() == Some(pad) {
            *slot = None;
            drop(slot);
            self.combiner.guard().remove_pad(pad);
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(pad);
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::trace!(CAT, imp = self, "changing state {transition:?}");
        if transition == gst::StateChange::ReadyToPaused {
            if let Err(err) = self.start() {
                self.post_error_message(err);
                return Err(gst::StateChangeError);
            }
        }
        let res = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        res
    }
}
