// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Loading an ONNX segmentation model, checking it against the contract beitseg supports, reading
//! its self-description (metadata_props), and running it.
//!
//! The contract:
//! - one input, float32 or float16, `[N,3,H,W]` (NCHW) or `[N,H,W,3]` (NHWC), H and W fixed in the
//!   model, N fixed or dynamic;
//! - the first output, float32 or float16, `[N,C,h,w]` for NCHW models or `[N,h,w,C]` for NHWC
//!   models, any h and w. C > 1: per-class logits (argmax decides). C = 1: a person/foreground
//!   probability (threshold 0.5) or, when the metadata says `output=logits`, a logit (threshold 0).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use anyhow::{anyhow, bail, Context, Result};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};

use crate::palette::{self, Rgb};
use crate::provider::{self, Provider, ProviderRequest};
use crate::session::{GraphCache, LoadPlan, LoadReport, SharedSession};

pub use crate::metadata::{
    ChannelOrder, Layout, Metadata, OutputKind, Precision, Preprocessing, Resample, ResizeMode,
};

/// Everything known about a loaded model, shared read-only by whoever needs it.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub input_name: String,
    pub output_name: String,
    pub layout: Layout,
    pub input_precision: Precision,
    pub output_precision: Precision,
    pub height: usize,
    pub width: usize,
    /// `Some(n)` when the model's batch dimension is fixed, `None` when dynamic.
    pub batch: Option<usize>,
    pub output_kind: OutputKind,
    pub num_classes: usize,
    pub labels: Vec<String>,
    pub palette: Vec<Rgb>,
    pub preprocessing: Preprocessing,
    /// The architecture, when the model's metadata names it (`family`).
    pub family: Option<String>,
    /// The execution provider the session runs on, and why better ones were not used.
    pub provider: Provider,
    pub provider_notes: Vec<String>,
    /// How the session was loaded: time, optimised graph cache, optimiser choices.
    pub load: LoadReport,
    /// `Some("grpc://… model NAME")` when an inference server runs the model.
    pub server: Option<String>,
}

impl ModelInfo {
    /// The provider in use, with why better ones were not used.
    pub fn provider_line(&self) -> String {
        if let Some(server) = &self.server {
            return format!("server {server}");
        }
        if self.provider_notes.is_empty() {
            return self.provider.name().to_string();
        }
        format!(
            "{} ({})",
            self.provider.name(),
            self.provider_notes.join("; ")
        )
    }
}

/// User choices that override what the model says about itself.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub labels: Option<PathBuf>,
    pub palette: Option<PathBuf>,
    pub resize: Option<ResizeMode>,
    /// ONNX Runtime intra-op threads for this session; `None` leaves ONNX Runtime's default.
    pub threads: Option<usize>,
    /// Execution provider to run on (CPU unless asked otherwise).
    pub provider: ProviderRequest,
    /// Largest batch the session will run (TensorRT builds its profile for it).
    pub max_batch: usize,
    /// Where optimised graphs are kept between starts.
    pub graph_cache: GraphCache,
    /// Run on an inference server instead of a local session.
    pub server: Option<crate::remote::ServerRequest>,
}

/// Per-class scores of one image, channel-major `[classes][height][width]`.
#[derive(Clone, Debug)]
pub struct Logits {
    pub classes: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

pub struct Model {
    info: ModelInfo,
    backend: Backend,
}

/// What runs the model: a local ONNX Runtime session, or an inference server.
enum Backend {
    Local(SharedSession),
    Remote(Box<crate::remote::RemoteModel>),
}

/// ONNX Runtime sessions created by this process so far.
static SESSIONS_CREATED: AtomicUsize = AtomicUsize::new(0);

pub fn sessions_created() -> usize {
    SESSIONS_CREATED.load(Ordering::Relaxed)
}

/// One entry per model and overrides. Each entry has its own lock, held while its session
/// loads: the same session is never loaded twice, and different ones load in parallel.
type Entry = Arc<Mutex<Weak<Model>>>;

static SHARED: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(Default::default);

impl Model {
    /// The model at `path` with `overrides`, shared by every user in the process that loads the
    /// same file with the same overrides: the one already loaded if any, else a new one. All of
    /// their workers run its one session at once, so the weights are in memory once.
    pub fn shared(path: &Path, overrides: &Overrides) -> Result<Arc<Self>> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = format!("{}|{overrides:?}", canonical.display());
        let entry = {
            let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
            // Forget entries whose session is gone, unless someone is loading them right now.
            shared.retain(|_, entry| match entry.try_lock() {
                Ok(weak) => weak.strong_count() > 0 || Arc::strong_count(entry) > 1,
                Err(_) => true,
            });
            shared.entry(key).or_default().clone()
        };
        let mut weak = entry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(model) = weak.upgrade() {
            return Ok(model);
        }
        let model = Arc::new(Model::load(path, overrides)?);
        *weak = Arc::downgrade(&model);
        Ok(model)
    }
}

/// An input or output tensor as described by a session or a server.
struct Tensor4<'a> {
    name: &'a str,
    precision: Precision,
    shape: &'a [i64],
}

fn tensor_shape(what: &str, ty: &ValueType) -> Result<(Precision, Vec<i64>)> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let precision = match ty {
                TensorElementType::Float32 => Precision::F32,
                TensorElementType::Float16 => Precision::F16,
                other => {
                    bail!("{what} has element type {other:?}; beitseg needs float32 or float16")
                }
            };
            Ok((precision, shape.to_vec()))
        }
        other => bail!("{what} is {other:?}, not a tensor"),
    }
}

fn fixed(dim: i64) -> Option<usize> {
    (dim > 0).then_some(dim as usize)
}

impl Model {
    /// Loads and checks a model. Errors name the file and say what is wrong with it.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self> {
        Self::load_inner(path, overrides).with_context(|| format!("model {}", path.display()))
    }

    fn load_inner(path: &Path, overrides: &Overrides) -> Result<Self> {
        if let Some(server) = &overrides.server {
            return Self::load_remote(path, server, overrides);
        }
        let meta = std::fs::metadata(path).map_err(|e| anyhow!("cannot open the file: {e}"))?;
        if meta.is_dir() {
            bail!("is a directory, not an .onnx file");
        }
        if meta.len() == 0 {
            bail!("the file is empty");
        }
        crate::runtime::init()?;
        // Candidates best first; a GPU provider that cannot load leaves a note and the next one
        // is tried. The CPU, when it is a candidate, reports the model's own problems.
        let mut notes = Vec::new();
        let mut loaded = None;
        for &candidate in overrides.provider.provider.candidates() {
            let register = |builder: ort::session::builder::SessionBuilder| -> Result<_> {
                match provider::dispatch(
                    candidate,
                    &overrides.provider,
                    path,
                    true,
                    overrides.max_batch.max(1),
                )? {
                    Some(ep) => builder
                        .with_execution_providers([ep])
                        .map_err(|e| anyhow!("{e}")),
                    None => Ok(builder),
                }
            };
            let attempt = crate::session::load(&LoadPlan {
                path,
                threads: overrides.threads,
                provider: candidate.name(),
                cache: &overrides.graph_cache,
                register: &register,
            });
            match attempt {
                Ok(session) => {
                    loaded = Some((candidate, session));
                    break;
                }
                Err(e) if candidate == Provider::Cpu => return Err(e),
                Err(e) => notes.push(format!("{}: {e:#}", candidate.name())),
            }
        }
        let Some((provider, (session, load))) = loaded else {
            bail!(
                "provider={} cannot be used: {}",
                overrides.provider.provider.name(),
                notes.join("; ")
            );
        };
        let mut info = Self::inspect(path, &session, overrides)?;
        info.provider = provider;
        info.provider_notes = notes;
        info.load = load;
        let session = SharedSession::new(
            session,
            &info.input_name,
            &info.output_name,
            info.output_precision == Precision::F16,
        )?;
        SESSIONS_CREATED.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            info,
            backend: Backend::Local(session),
        })
    }

    /// A model an inference server runs: its tensors as the server describes them, its
    /// self-description (labels, palette, preprocessing) from the .onnx file's metadata when
    /// `path` names one (its weights are not read), else defaults and the label files.
    fn load_remote(
        path: &Path,
        server: &crate::remote::ServerRequest,
        overrides: &Overrides,
    ) -> Result<Self> {
        let started = std::time::Instant::now();
        let remote = crate::remote::RemoteModel::connect(server)?;
        let served = remote.served();
        // Its address as every message shows it: credentials masked.
        let url = crate::secrets::masked(&server.url);
        let (Some(output), [input]) = (served.outputs.first(), served.inputs.as_slice()) else {
            bail!(
                "server {}: model {} has {} inputs and {} outputs; beitseg feeds exactly one \
                 image tensor and reads the first output",
                url,
                server.model,
                served.inputs.len(),
                served.outputs.len()
            );
        };
        let precision = |what: &str, t: &crate::remote::TensorSpec| match t.datatype.as_str() {
            "FP32" => Ok(Precision::F32),
            "FP16" => Ok(Precision::F16),
            other => bail!("{what} {:?} is {other}; beitseg needs FP32 or FP16", t.name),
        };
        // A served model that returns class ids ([N,h,w] or [N,1,h,w] integers) instead of
        // logits: its classes, not yet known, are counted from the labels.
        let class_ids = crate::remote::is_class_ids(output);
        let output_shape = crate::remote::scores_shape(input, output)
            .with_context(|| format!("server {}: model {}", url, server.model))?;
        let props = if path.as_os_str().is_empty() {
            Vec::new()
        } else {
            crate::onnx_graph::Graph::read(path)?.metadata
        };
        let mut info = Self::describe(
            path,
            Tensor4 {
                name: &input.name,
                precision: precision("input", input)?,
                shape: &input.shape,
            },
            Tensor4 {
                name: &output.name,
                precision: if class_ids {
                    Precision::F32
                } else {
                    precision("output", output)?
                },
                shape: &output_shape,
            },
            |key| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            overrides,
        )
        .with_context(|| format!("server {}: model {}", url, server.model))?;
        // The engine hands FP32 to the backend; the client sends what the served model takes.
        info.input_precision = Precision::F32;
        info.server = Some(format!(
            "{} model {}{}",
            url,
            server.model,
            if class_ids {
                " (class ids: no full-resolution bilinear)"
            } else {
                ""
            }
        ));
        let mut remote = remote;
        remote.class_ids = class_ids;
        info.load.seconds = started.elapsed().as_secs_f64();
        Ok(Self {
            info,
            backend: Backend::Remote(Box::new(remote)),
        })
    }

    fn inspect(path: &Path, session: &Session, overrides: &Overrides) -> Result<ModelInfo> {
        let inputs = session.inputs();
        if inputs.len() != 1 {
            bail!(
                "has {} inputs; beitseg feeds exactly one image tensor",
                inputs.len()
            );
        }
        let outputs = session.outputs();
        let Some(output) = outputs.first() else {
            bail!("has no outputs")
        };
        let input = &inputs[0];
        let (input_precision, ishape) =
            tensor_shape(&format!("input {:?}", input.name()), input.dtype())?;
        let (output_precision, oshape) =
            tensor_shape(&format!("output {:?}", output.name()), output.dtype())?;
        let props = session.metadata().ok();
        Self::describe(
            path,
            Tensor4 {
                name: input.name(),
                precision: input_precision,
                shape: &ishape,
            },
            Tensor4 {
                name: output.name(),
                precision: output_precision,
                shape: &oshape,
            },
            |key| props.as_ref().and_then(|m| m.custom(key)),
            overrides,
        )
    }

    /// The model from its input and output tensors and its metadata (`meta(key)`), checked
    /// against the contract.
    fn describe(
        path: &Path,
        input: Tensor4<'_>,
        output: Tensor4<'_>,
        meta: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<ModelInfo> {
        let (input_precision, ishape) = (input.precision, input.shape.to_vec());
        let (output_precision, oshape) = (output.precision, output.shape.to_vec());
        if ishape.len() != 4 {
            bail!(
                "input {:?} has rank {} ({ishape:?}); expected [N,3,H,W] or [N,H,W,3]",
                input.name,
                ishape.len()
            );
        }
        let layout = if ishape[1] == 3 {
            Layout::Nchw
        } else if ishape[3] == 3 {
            Layout::Nhwc
        } else {
            bail!("input {:?} has shape {ishape:?}: expected 3 colour channels, [N,3,H,W] or [N,H,W,3]", input.name);
        };
        let (h, w) = match layout {
            Layout::Nchw => (ishape[2], ishape[3]),
            Layout::Nhwc => (ishape[1], ishape[2]),
        };
        let (Some(height), Some(width)) = (fixed(h), fixed(w)) else {
            bail!(
                "input {:?} has shape {ishape:?}: height and width must be fixed in the model",
                input.name
            );
        };
        let meta = Metadata::parse(meta)?;
        if let Some(size) = &meta.input_size {
            let ok = size.as_array().is_some_and(|a| {
                a.len() == 2
                    && a[0].as_u64() == Some(height as u64)
                    && a[1].as_u64() == Some(width as u64)
            });
            if !ok {
                bail!("metadata input_size {size} disagrees with the input shape {ishape:?}");
            }
        }
        let batch = fixed(ishape[0]);
        if oshape.len() != 4 {
            bail!(
                "output {:?} has rank {} ({oshape:?}); expected [N,C,h,w] (or [N,h,w,C] for an NHWC model)",
                output.name,
                oshape.len()
            );
        }
        let channels = match layout {
            Layout::Nchw => oshape[1],
            Layout::Nhwc => oshape[3],
        };
        let output_kind = match (channels, meta.output.as_deref()) {
            (1, Some("logits")) => OutputKind::Binary { threshold: 0.0 },
            (1, _) => OutputKind::Binary { threshold: 0.5 },
            _ => OutputKind::Logits,
        };

        // Labels and palette: user files, else metadata, else defaults.
        let labels = match &overrides.labels {
            Some(file) => Some(palette::load_labels(file)?),
            None => meta.labels.clone(),
        };
        let colours = match &overrides.palette {
            Some(file) => Some(palette::load_palette(file)?),
            None => meta.palette.clone(),
        };
        let num_classes = match (output_kind, fixed(channels)) {
            (OutputKind::Binary { .. }, _) => 2,
            (OutputKind::Logits, Some(c)) => c,
            // A dynamic class axis: trust the labels (checked against the output at the first run).
            (OutputKind::Logits, None) => labels
                .as_ref()
                .map(Vec::len)
                .or(colours.as_ref().map(Vec::len))
                .unwrap_or(150),
        };
        let is_binary = matches!(output_kind, OutputKind::Binary { .. });
        let default_is_ade = !is_binary && num_classes == 150;
        let labels = match labels {
            Some(l) => l,
            None if default_is_ade => palette::ade20k_labels(),
            None => palette::generic_labels(num_classes),
        };
        let colours = match colours {
            Some(c) => c,
            None if default_is_ade => palette::ade20k_palette(),
            None => palette::generic_palette(num_classes),
        };
        if labels.len() != num_classes {
            bail!(
                "the output has {num_classes} classes but the labels{} name {}",
                overrides
                    .labels
                    .as_ref()
                    .map(|p| format!(" file {}", p.display()))
                    .unwrap_or_default(),
                labels.len()
            );
        }
        if colours.len() != num_classes {
            bail!(
                "the output has {num_classes} classes but the palette{} has {} colours",
                overrides
                    .palette
                    .as_ref()
                    .map(|p| format!(" file {}", p.display()))
                    .unwrap_or_default(),
                colours.len()
            );
        }
        if num_classes > 256 {
            bail!("the output has {num_classes} classes; class-id masks are 8-bit, so at most 256 are supported");
        }

        // Preprocessing: metadata, else BEiT-ADE's for logits models and plain [0,1] scaling for
        // one-channel probability models (MediaPipe-style).
        let (dmean, dstd) = if is_binary {
            ([0.0; 3], [1.0; 3])
        } else {
            ([0.5; 3], [0.5; 3])
        };
        let mean = meta.mean.unwrap_or(dmean);
        let std = meta.std.unwrap_or(dstd);
        let rescale = meta.rescale.unwrap_or(1.0 / 255.0);
        let resample = meta.resample.unwrap_or(Resample::Bilinear);
        let resize = overrides
            .resize
            .or(meta.resize)
            .unwrap_or(ResizeMode::Stretch);

        Ok(ModelInfo {
            path: path.to_path_buf(),
            input_name: input.name.to_string(),
            output_name: output.name.to_string(),
            layout,
            input_precision,
            output_precision,
            height,
            width,
            batch,
            output_kind,
            num_classes,
            labels,
            palette: colours,
            preprocessing: Preprocessing {
                mean,
                std,
                rescale,
                resample,
                resize,
                channel_order: meta.channel_order.unwrap_or_default(),
            },
            family: meta.family.clone(),
            provider: Provider::Cpu,
            provider_notes: Vec::new(),
            load: LoadReport {
                seconds: 0.0,
                graph_cache: "off",
                notes: Vec::new(),
            },
            server: None,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Requests to an inference server tried again (0 for a local session).
    pub fn retries(&self) -> u64 {
        match &self.backend {
            Backend::Remote(r) => r.retries(),
            Backend::Local(_) => 0,
        }
    }

    /// Runs the model on `batch` preprocessed images laid out as the model's input expects and
    /// returns one [`Logits`] per image.
    /// Safe to call from several threads at once: they share the session.
    pub fn run(&self, input: Vec<f32>, batch: usize) -> Result<Vec<Logits>> {
        let info = &self.info;
        let shape = match info.layout {
            Layout::Nchw => [batch, 3, info.height, info.width],
            Layout::Nhwc => [batch, info.height, info.width, 3],
        };
        if input.len() != shape.iter().product::<usize>() {
            bail!(
                "internal error: input has {} values for shape {shape:?}",
                input.len()
            );
        }
        if let Backend::Remote(remote) = &self.backend {
            let output = remote.run(&shape, &input, info.num_classes, info.layout)?;
            return split_logits(info, &output.shape, output.data, batch);
        }
        let value = match info.input_precision {
            Precision::F32 => Tensor::from_array((shape, input))?.into_dyn(),
            Precision::F16 => {
                // Vectorised (F16C where the CPU has it); the same rounding as f16::from_f32.
                let mut halves = vec![half::f16::ZERO; input.len()];
                half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut halves[..], &input);
                Tensor::from_array((shape, halves))?.into_dyn()
            }
        };
        let Backend::Local(session) = &self.backend else {
            bail!("internal error: a remote model reached the local session");
        };
        let output = session
            .run(&value)
            .map_err(|e| anyhow!("inference failed: {e}"))?;
        split_logits(info, &output.shape, output.data, batch)
    }
}

/// Turns the raw output into per-image channel-major logits, checking its shape. A one-channel
/// output becomes two channels `[threshold, value]`, so that argmax (ties go to class 0) is the
/// threshold test and the same exact decoder serves both kinds of model.
fn split_logits(
    info: &ModelInfo,
    shape: &[i64],
    data: Vec<f32>,
    batch: usize,
) -> Result<Vec<Logits>> {
    let dims: Vec<usize> = shape.iter().map(|d| *d as usize).collect();
    let (n, c, h, w) = match (info.layout, &dims[..]) {
        (Layout::Nchw, [n, c, h, w]) => (*n, *c, *h, *w),
        (Layout::Nhwc, [n, h, w, c]) => (*n, *c, *h, *w),
        _ => bail!("output has shape {shape:?}; expected rank 4"),
    };
    let expected_c = match info.output_kind {
        OutputKind::Binary { .. } => 1,
        OutputKind::Logits => info.num_classes,
    };
    if n != batch || c != expected_c || h == 0 || w == 0 {
        bail!("output has shape {shape:?}; expected {batch} images of {expected_c} channels");
    }
    let plane = h * w;
    let per_image = c * plane;
    let mut result = Vec::with_capacity(n);
    for img in data.chunks_exact(per_image) {
        let chw: Vec<f32> = match info.layout {
            Layout::Nchw => img.to_vec(),
            Layout::Nhwc => {
                let mut t = vec![0.0; per_image];
                for (p, px) in img.chunks_exact(c).enumerate() {
                    for (k, v) in px.iter().enumerate() {
                        t[k * plane + p] = *v;
                    }
                }
                t
            }
        };
        result.push(match info.output_kind {
            OutputKind::Logits => Logits {
                classes: c,
                height: h,
                width: w,
                data: chw,
            },
            OutputKind::Binary { threshold } => {
                let mut two = vec![threshold; plane];
                two.extend_from_slice(&chw);
                Logits {
                    classes: 2,
                    height: h,
                    width: w,
                    data: two,
                }
            }
        });
    }
    Ok(result)
}
