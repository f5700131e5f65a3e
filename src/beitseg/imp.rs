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
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::caps::{self, gray_caps, mask_stream_start, with_formats};
use super::pools::{Member, PoolRequest};
use super::queue::{FrameQueue, Item};
use super::settings::{self, Settings};
use super::stats::{self, Stats};
use super::worker::{self, Job, Rendered, Sources};
use super::{DropPolicy, Guard, Mode};
use crate::model::Model;
use crate::{palette, provider, render, runtime};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "beitseg",
        gst::DebugColorFlags::empty(),
        Some("Semantic segmentation with ONNX Runtime"),
    )
});

/// Runtime state, created when the element starts (READY→PAUSED) and dropped when it stops.
struct State {
    pool: Member,
    paint: Arc<render::Paint>,
    mode: Mode,
    max_in_flight: usize,
    drop_policy: DropPolicy,
    /// Where each frame's class map comes from (`interval`, `smoothing`).
    sources: Sources,
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
    queue: FrameQueue,
    stats: Mutex<Stats>,
    /// Input size and class count of the loaded model, for the read-only properties.
    loaded: Mutex<Option<(u32, u32, u32)>>,
    /// The provider the loaded model runs on, and why better ones were not used.
    provider_in_use: Mutex<Option<String>>,
}

impl BeitSeg {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.guard().clone();
        let Some(path) = settings.model_path() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ["No model set: set the model property to an .onnx file"]
            ));
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Parallelism comes first from frames in flight on several workers.
        let workers = settings.workers(cores);
        let overrides = settings.overrides(cores);
        if let Err(err) = runtime::init() {
            return Err(gst::error_msg!(gst::LibraryError::Init, ["{err:#}"]));
        }
        gst::info!(
            CAT,
            imp = self,
            "loading {} on {workers} workers with ONNX Runtime {}",
            path.display(),
            runtime::describe().unwrap_or_default()
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
        let local = overrides.server.is_none();
        if let Some(note) = local
            .then(|| provider::missing_engine_note(&overrides.provider, &path, overrides.max_batch))
            .flatten()
        {
            gst::element_imp_info!(self, gst::LibraryError::Init, ["{note}"]);
        }
        // One session, shared with every other beitseg of this process that runs the same
        // model, and run by all workers at once: the weights are in memory once.
        let model = Model::shared(&path, &overrides).map_err(load_error)?;
        let info = model.info().clone();
        let provider_line = info.provider_line();
        if !info.provider_notes.is_empty() {
            // A runtime without GPU providers (the CPU wheel) has nothing better to offer: an
            // info. A GPU provider that is there and fails: a warning.
            let note = format!("provider=auto is using {provider_line}");
            if provider::compiled_in().is_ok_and(|names| names.len() > 1) {
                gst::element_imp_warning!(self, gst::LibraryError::Init, ["{note}"]);
            } else {
                gst::element_imp_info!(self, gst::LibraryError::Init, ["{note}"]);
            }
        }
        *self.provider_in_use.guard() = Some(provider_line);
        let loaded = stats::loaded(&path, &info, workers);
        gst::info!(CAT, imp = self, "{loaded}");
        let _ = (self.obj()).post_message(
            gst::message::Element::builder(loaded)
                .src(&*self.obj())
                .build(),
        );
        let draw =
            palette::select_classes(settings.classes.as_deref(), &info.labels).map_err(|err| {
                gst::error_msg!(gst::ResourceError::Settings, ["classes property: {err:#}"])
            })?;
        gst::info!(CAT, imp = self, "{}", stats::model_line(&info));
        let requested = settings.batch_size.max(1) as usize;
        let (batch, pad_to) = worker::batching(&info, requested);
        if let Some(fixed) = info.batch.filter(|&f| requested != f && requested > 1) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                [
                    "batch-size={requested} but {} has a fixed batch of {fixed}: using {fixed}",
                    path.display()
                ]
            );
        }
        let (pool, note) = Member::join(PoolRequest {
            name: settings.pool.as_deref(),
            model: model.clone(),
            workers,
            batch,
            pad_to,
            timeout: Duration::from_millis(settings.batch_timeout as u64),
        })
        .map_err(|err| gst::error_msg!(gst::ResourceError::Settings, ["{err:#}"]))?;
        if let Some(note) = note {
            gst::element_imp_warning!(self, gst::ResourceError::Settings, ["{note}"]);
        }
        *self.loaded.guard() = Some((
            info.width as u32,
            info.height as u32,
            info.num_classes as u32,
        ));
        let max_in_flight = settings.max_in_flight(pool.workers(), pool.batch());
        *self.state.guard() = Some(State {
            pool,
            paint: Arc::new(render::Paint::new(&info.palette, &draw)),
            mode: settings.mode,
            max_in_flight,
            drop_policy: settings.drop_policy,
            sources: Sources::new(settings.interval),
            in_info: None,
            gray_info: None,
            segment: gst::FormattedSegment::new(),
            qos_earliest: None,
        });
        *self.stats.guard() = Stats::default();
        self.combiner.guard().reset();
        Ok(())
    }

    /// Drops what start() made: the workers and the model (unless another element shares it),
    /// and what the read-only properties said about them. The statistics stay readable.
    fn stop(&self) {
        *self.state.guard() = None;
        *self.loaded.guard() = None;
        *self.provider_in_use.guard() = None;
    }

    fn mode(&self) -> Mode {
        match &*self.state.guard() {
            Some(state) => state.mode,
            None => self.settings.guard().mode,
        }
    }

    fn set_flushing(&self, flushing: bool) {
        self.queue.set_flushing(flushing);
        if let Some(state) = self.state.guard().as_mut() {
            state.sources.reset();
            state.qos_earliest = None;
        }
    }

    fn enqueue_event(&self, src: Option<gst::Event>, mask: Option<gst::Event>) -> bool {
        self.queue.push_event(src, mask)
    }

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (alpha, smoothing) = {
            let s = self.settings.guard();
            (s.alpha, s.smoothing)
        };
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
            let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
            let (source, anchor, smooth) = state.sources.next(discont, smoothing);
            let job = Job {
                buffer,
                in_info,
                gray_info,
                mode: state.mode,
                alpha,
                want_mask,
                paint: state.paint.clone(),
                source,
                smooth,
            };
            (job, anchor, state.max_in_flight, drop_oldest)
        };

        // Back-pressure: wait while max-in-flight frames are queued or being pushed, or, for
        // live sources, make room by dropping the oldest frame still waiting.
        let dropped = self.queue.reserve(max_in_flight, drop_oldest)?;
        if dropped > 0 {
            self.stats.guard().dropped += dropped;
        }
        let ticket = {
            let guard = self.state.guard();
            guard
                .as_ref()
                .ok_or(gst::FlowError::Flushing)?
                .pool
                .submit(job)
        };
        self.queue.push_frame(ticket, anchor)
    }

    /// The src pad task: pushes the next item in order, waiting for its worker if needed.
    fn push_next(&self) {
        let Some(item) = self.queue.pop() else {
            let _ = self.srcpad.pause_task();
            return;
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
                        self.queue.fail(gst::FlowError::NotNegotiated);
                    }
                }
            }
            Item::Frame { .. } if self.queue.flow().is_err() => {
                // Downstream failed: frames are dropped, events (EOS above all) still go through.
                item.discard();
                self.queue.frame_done(None);
            }
            Item::Frame { ticket, .. } => {
                let result = loop {
                    if let Some(r) = ticket.wait_timeout(Duration::from_millis(20)) {
                        break r;
                    }
                    if self.queue.is_flushing() {
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
                self.queue.frame_done(Some(flow));
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
        let due = self.stats.guard().count_output(inference, now, post);
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
        let depth = self.queue.depth();
        let pool = self.state.guard().as_ref().map(|s| s.pool.stats());
        self.stats.guard().structure(depth, pool)
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
        let Some((gray_info, gray_caps)) = caps::mask_info(&info) else {
            return false;
        };
        let mode = {
            let mut guard = self.state.guard();
            let Some(state) = guard.as_mut() else {
                return false;
            };
            state.in_info = Some(info);
            state.gray_info = Some(gray_info);
            state.sources.reset();
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
            queue: FrameQueue::default(),
            stats: Mutex::new(Stats::default()),
            loaded: Mutex::new(None),
            provider_in_use: Mutex::new(None),
        }
    }
}

impl ObjectImpl for BeitSeg {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::param_specs);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let mut s = self.settings.guard();
        let before = s.get(name);
        s.set(name, value);
        // A server URL may carry credentials: the log shows them masked.
        let shown = |v: Option<glib::Value>| crate::secrets::masked(&format!("{v:?}"));
        gst::info!(
            CAT,
            imp = self,
            "{name}: {} → {}",
            shown(before),
            shown(s.get(name))
        );
        drop(s);
        // Settings read at start only: say so when the element is already running.
        if !settings::LIVE.contains(&name) && self.state.guard().is_some() {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ["{name} changed while running: it applies at the next start (READY → PAUSED)"]
            );
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if let Some(v) = self.settings.guard().get(pspec.name()) {
            return v;
        }
        let loaded = *self.loaded.guard();
        match pspec.name() {
            "provider-in-use" => self.provider_in_use.guard().to_value(),
            "stats" => self.stats_structure().to_value(),
            "input-width" => loaded.map_or(0, |l| l.0).to_value(),
            "input-height" => loaded.map_or(0, |l| l.1).to_value(),
            "num-classes" => loaded.map_or(0, |l| l.2).to_value(),
            "ort-version" => match runtime::init() {
                Ok(()) => runtime::describe().unwrap_or_default().to_value(),
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
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(caps::pad_templates);
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
        // Joining mid-stream: the new pad gets the stream's sticky events, stored on it (not
        // pushed from this application thread while the src task pushes): the src task sends
        // them ahead of the pad's first buffer.
        let mut sticky = Vec::new();
        if let Some(ev) = self.sinkpad.sticky_event::<gst::event::StreamStart>(0) {
            sticky.push(mask_stream_start(ev.stream_id(), ev.group_id()));
        }
        let gray = self
            .state
            .guard()
            .as_ref()
            .and_then(|s| s.gray_info.clone());
        if let Some(caps) = gray.and_then(|i| i.to_caps().ok()) {
            sticky.push(gst::event::Caps::new(&caps));
        }
        if let Some(ev) = self.sinkpad.sticky_event::<gst::event::Segment>(0) {
            sticky.push(ev.into());
        }
        for event in sticky {
            if let Err(err) = pad.store_sticky_event(&event) {
                gst::debug!(CAT, imp = self, "mask pad: {event:?} not stored: {err:?}");
            }
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
