// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The element's settings: the properties, their defaults and limits (the ParamSpecs), get and
//! set by name, and what the engine is asked for at start. Nothing here touches the element.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use super::{DropPolicy, Mode, ProviderSetting, ResizeSetting};
use crate::model::Overrides;
use crate::provider::ProviderRequest;
use crate::session::GraphCache;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) model: Option<PathBuf>,
    pub(super) mode: Mode,
    pub(super) alpha: f64,
    pub(super) resize: ResizeSetting,
    pub(super) labels: Option<PathBuf>,
    pub(super) palette: Option<PathBuf>,
    pub(super) classes: Option<String>,
    pub(super) workers: u32,
    pub(super) max_in_flight: u32,
    pub(super) drop_policy: DropPolicy,
    pub(super) interval: u32,
    pub(super) smoothing: f64,
    pub(super) post_stats: bool,
    pub(super) batch_size: u32,
    pub(super) batch_timeout: u32,
    pub(super) intra_threads: u32,
    pub(super) provider: ProviderSetting,
    pub(super) device_id: u32,
    pub(super) engine_cache: Option<PathBuf>,
    pub(super) graph_cache: Option<String>,
    pub(super) pool: Option<String>,
    pub(super) server: Option<String>,
    pub(super) server_model: Option<String>,
    pub(super) server_model_version: Option<String>,
    /// Milliseconds per request.
    pub(super) server_timeout: u32,
    /// Seconds a server that is down or overloaded is retried before a frame fails.
    pub(super) server_give_up: u32,
    pub(super) server_ca: Option<PathBuf>,
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
            smoothing: 0.0,
            post_stats: false,
            batch_size: 1,
            batch_timeout: 10,
            // 0: the cores shared out between the workers (one each when workers is automatic).
            intra_threads: 0,
            provider: ProviderSetting::Auto,
            device_id: 0,
            engine_cache: None,
            graph_cache: None,
            pool: None,
            server: None,
            server_model: None,
            server_model_version: None,
            server_timeout: 10_000,
            server_give_up: 30,
            server_ca: None,
        }
    }
}

/// Every property of the element, writable ones with their defaults and limits.
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
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
            .blurb("How frames are fitted to the model input: as the model's metadata says (auto), stretched, letterboxed, or in sliding windows (slide: several model runs a frame).")
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
                "Worker threads segmenting frames in parallel, all running one shared ONNX Runtime \
                 session (the weights are in memory once); output stays in input order. 0 picks one \
                 per CPU core.",
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
                "ONNX Runtime threads each worker's runs may use. 0 shares the CPU cores out \
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
        glib::ParamSpecDouble::builder("smoothing")
            .nick("Smoothing")
            .blurb(
                "Steadier video: each frame's logits are averaged with the previous frames' \
                 (exponential moving average, this weight on the past; 0 is off, 0.5 halves the \
                 weight of a frame each frame), reset at flushes, new caps and discontinuities. \
                 With interval > 1 it averages the frames the model runs on.",
            )
            .minimum(0.0)
            .maximum(0.99)
            .default_value(d.smoothing)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("post-stats")
            .nick("Post statistics")
            .blurb("Post the stats structure as a beitseg-stats element message on the bus once a second.")
            .default_value(d.post_stats)
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("pool")
            .nick("Pool")
            .blurb(
                "Name of a worker pool shared with every beitseg of this process that names it: \
                 one set of workers whose batches take frames from all of those streams (each \
                 element still pushes its own frames, in order). The first element to start sets \
                 the pool's workers, batch-size and batch-timeout; the others must run the same \
                 model with the same settings. Empty: workers of its own.",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("server")
            .nick("Inference server")
            .blurb(
                "grpc://HOST:PORT (grpcs:// for TLS) of an Open Inference Protocol (KServe v2) server — Triton, \
                 KServe, MLServer, OpenVINO Model Server — that runs the model instead of a \
                 local ONNX Runtime session; `model` may still name the .onnx file for its \
                 labels, palette and preprocessing (its weights are not read). Each worker is \
                 one request in flight.",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("server-model")
            .nick("Served model")
            .blurb("The model's name on the server (default: the model file's name without .onnx).")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("server-model-version")
            .nick("Served model version")
            .blurb("The model version on the server (empty: the server's choice).")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("server-timeout")
            .nick("Server timeout")
            .blurb("Milliseconds a request to the server may take.")
            .minimum(100)
            .maximum(600_000)
            .default_value(d.server_timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("server-give-up")
            .nick("Server give-up time")
            .blurb(
                "Seconds a server that is down, restarting or overloaded is retried (backoff 0.1 \
                 to 2 s) before the stream fails; meanwhile frames wait or, with \
                 drop-policy=oldest, are dropped and counted.",
            )
            .maximum(86_400)
            .default_value(d.server_give_up)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("server-ca")
            .nick("Server CA certificate")
            .blurb("grpcs:// servers: a certificate authority (PEM file) to trust besides the system's.")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(
                "frames-in, frames-out, dropped, inference-mean-ms, -p50-ms and -p95-ms (model \
                 time over the last 256 inferences), queue-depth (frames in flight), fps (output \
                 over the last second), workers; and the pool's: pool (its name, empty for workers \
                 of its own), pool-streams (elements in it), pool-queue-depth (frames waiting for \
                 a worker), pool-batch-fill (frames per batch over batch-size, 0 to 1), \
                 pool-frames (frames run); server-retries (requests to the inference server tried again).",
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
            .blurb(
                "Version of the ONNX Runtime library in use, the file it was loaded from and the \
                 rule of the lookup that found it (ORT_DYLIB_PATH, the loader's path, a Python \
                 package, the source tree's .venv, bundled), or why none could be loaded.",
            )
            .read_only()
            .build(),
    ]
}

/// Properties that take effect while the element runs; the others apply at the next start.
pub(super) const LIVE: [&str; 3] = ["alpha", "post-stats", "smoothing"];

impl Settings {
    /// Sets the writable property `name` (its type checked by GObject against the ParamSpec).
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        let path = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        match name {
            "model" => self.model = path(),
            "mode" => self.mode = value.get().expect("type checked upstream"),
            "alpha" => self.alpha = value.get().expect("type checked upstream"),
            "resize" => self.resize = value.get().expect("type checked upstream"),
            "labels" => self.labels = path(),
            "palette" => self.palette = path(),
            "workers" => self.workers = value.get().expect("type checked upstream"),
            "max-in-flight" => self.max_in_flight = value.get().expect("type checked upstream"),
            "drop-policy" => self.drop_policy = value.get().expect("type checked upstream"),
            "batch-size" => self.batch_size = value.get().expect("type checked upstream"),
            "batch-timeout" => self.batch_timeout = value.get().expect("type checked upstream"),
            "intra-threads" => self.intra_threads = value.get().expect("type checked upstream"),
            "provider" => self.provider = value.get().expect("type checked upstream"),
            "device-id" => self.device_id = value.get().expect("type checked upstream"),
            "engine-cache" => self.engine_cache = path(),
            "graph-cache" => self.graph_cache = value.get().expect("type checked upstream"),
            "interval" => self.interval = value.get().expect("type checked upstream"),
            "smoothing" => self.smoothing = value.get().expect("type checked upstream"),
            "post-stats" => self.post_stats = value.get().expect("type checked upstream"),
            "classes" => self.classes = value.get().expect("type checked upstream"),
            "server" | "server-model" | "server-model-version" => {
                let text = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|p| !p.is_empty());
                match name {
                    "server" => self.server = text,
                    "server-model" => self.server_model = text,
                    _ => self.server_model_version = text,
                }
            }
            "server-timeout" => self.server_timeout = value.get().expect("type checked upstream"),
            "server-give-up" => self.server_give_up = value.get().expect("type checked upstream"),
            "server-ca" => self.server_ca = path(),
            "pool" => {
                self.pool = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|p| !p.is_empty())
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    /// The value of the writable property `name`; `None` for the element's read-only ones.
    pub(super) fn get(&self, name: &str) -> Option<glib::Value> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        match name {
            "model" => Some(path(&self.model)),
            "mode" => Some(self.mode.to_value()),
            "alpha" => Some(self.alpha.to_value()),
            "resize" => Some(self.resize.to_value()),
            "labels" => Some(path(&self.labels)),
            "palette" => Some(path(&self.palette)),
            "classes" => Some(self.classes.to_value()),
            "workers" => Some(self.workers.to_value()),
            "max-in-flight" => Some(self.max_in_flight.to_value()),
            "drop-policy" => Some(self.drop_policy.to_value()),
            "interval" => Some(self.interval.to_value()),
            "smoothing" => Some(self.smoothing.to_value()),
            "provider" => Some(self.provider.to_value()),
            "device-id" => Some(self.device_id.to_value()),
            "engine-cache" => Some(path(&self.engine_cache)),
            "graph-cache" => Some(self.graph_cache.to_value()),
            "intra-threads" => Some(self.intra_threads.to_value()),
            "batch-size" => Some(self.batch_size.to_value()),
            "batch-timeout" => Some(self.batch_timeout.to_value()),
            "post-stats" => Some(self.post_stats.to_value()),
            "pool" => Some(self.pool.to_value()),
            "server" => Some(self.server.to_value()),
            "server-model" => Some(self.server_model.to_value()),
            "server-model-version" => Some(self.server_model_version.to_value()),
            "server-timeout" => Some(self.server_timeout.to_value()),
            "server-give-up" => Some(self.server_give_up.to_value()),
            "server-ca" => Some(path(&self.server_ca)),
            _ => None,
        }
    }

    /// The .onnx file to load: `model`; with a server, none is needed (it only describes the
    /// model), an empty path then.
    pub(super) fn model_path(&self) -> Option<PathBuf> {
        self.model
            .clone()
            .or_else(|| self.server.as_ref().map(|_| PathBuf::new()))
    }

    /// Workers to start on a machine with `cores` cores.
    pub(super) fn workers(&self, cores: usize) -> usize {
        match self.workers {
            0 => cores,
            n => n as usize,
        }
    }

    /// Frames queued or in work before upstream blocks (or the oldest waiting one is dropped).
    pub(super) fn max_in_flight(&self, workers: usize, batch: usize) -> usize {
        match self.max_in_flight {
            0 => 2 * workers * batch,
            n => n as usize,
        }
    }

    /// What the engine is asked for: provider, batch, caches, label files, resize, threads.
    pub(super) fn overrides(&self, cores: usize) -> Overrides {
        let workers = self.workers(cores);
        Overrides {
            provider: ProviderRequest {
                provider: self.provider.into(),
                device_id: self.device_id,
                engine_cache: self.engine_cache.clone(),
            },
            max_batch: self.batch_size.max(1) as usize,
            graph_cache: GraphCache::parse(self.graph_cache.as_deref().unwrap_or("")),
            labels: self.labels.clone(),
            palette: self.palette.clone(),
            resize: self.resize.into(),
            server: self
                .server
                .as_ref()
                .map(|url| crate::remote::ServerRequest {
                    url: url.clone(),
                    model: self.server_model.clone().unwrap_or_else(|| {
                        self.model
                            .as_ref()
                            .and_then(|p| p.file_stem())
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    }),
                    version: self.server_model_version.clone().unwrap_or_default(),
                    timeout: std::time::Duration::from_millis(self.server_timeout as u64),
                    give_up: std::time::Duration::from_secs(self.server_give_up as u64),
                    ca: self.server_ca.clone(),
                }),
            threads: Some(match self.intra_threads {
                0 => (cores / workers).max(1),
                n => n as usize,
            }),
        }
    }
}
