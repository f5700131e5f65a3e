// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The plain types of a model's self-description: what its ONNX `metadata_props` say (parsed
//! and checked, no ONNX Runtime here) and the preprocessing they describe.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::palette;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F16,
}

/// PIL's resampling filters, by the names transformers uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Resample {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "nearest" | "0" => Self::Nearest,
            "lanczos" | "1" => Self::Lanczos,
            "bilinear" | "linear" | "2" => Self::Bilinear,
            "bicubic" | "cubic" | "3" => Self::Bicubic,
            "box" | "4" => Self::Box,
            "hamming" | "5" => Self::Hamming,
            other => bail!("unknown resample filter {other:?}"),
        })
    }
}

/// How a frame becomes the model's input (and how the logits map back onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Resize to the model size ignoring the aspect ratio (what BEiT's processor does).
    Stretch,
    /// Keep the aspect ratio, pad to the model size; the padding is cropped away after decoding.
    Letterbox,
    /// Keep the aspect ratio with the short side at `shortest_edge`, then cut the model size from
    /// the centre (MobileViT's processor). As transformers does, the logits are then stretched
    /// over the whole frame.
    Crop { shortest_edge: usize },
    /// mmsegmentation's sliding-window inference: keep the aspect ratio with the frame covering
    /// the model size, windows of the model size at a stride of 2/3 of it (one batch), logits
    /// averaged where windows overlap, then upsampled to the frame.
    Slide,
}

impl ResizeMode {
    /// A mode a user can ask for (`crop` is a property of the model, see [`Metadata`]).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stretch" => Ok(Self::Stretch),
            "letterbox" => Ok(Self::Letterbox),
            "slide" => Ok(Self::Slide),
            other => bail!("unknown resize mode {other:?} (stretch, letterbox or slide)"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Stretch => "stretch",
            Self::Letterbox => "letterbox",
            Self::Crop { .. } => "shortest_edge_crop",
            Self::Slide => "slide",
        }
    }
}

/// The order of the three colour channels in the model input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelOrder {
    #[default]
    Rgb,
    /// MobileViT's processor flips RGB to BGR.
    Bgr,
}

impl ChannelOrder {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rgb" => Ok(Self::Rgb),
            "bgr" => Ok(Self::Bgr),
            other => bail!("unknown channel order {other:?} (rgb or bgr)"),
        }
    }
}

/// What the model's output channel(s) mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutputKind {
    /// One score per class; the class is the argmax.
    Logits,
    /// One channel; class 1 where it exceeds `threshold`, class 0 elsewhere.
    Binary { threshold: f32 },
}

/// HF-style preprocessing: `(pixel * rescale - mean) / std` per RGB channel after resizing.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocessing {
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub rescale: f64,
    pub resample: Resample,
    pub resize: ResizeMode,
    pub channel_order: ChannelOrder,
}

/// What a model says about itself in its ONNX `metadata_props`, parsed and checked (each field
/// `None` when the key is absent). Pure, so that it can be fuzzed (fuzz/).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// `input_size`: `[height, width]` as written (checked against the input shape later).
    pub input_size: Option<Value>,
    /// `output`: `logits` or `probability` for a one-channel output.
    pub output: Option<String>,
    pub labels: Option<Vec<String>>,
    pub palette: Option<Vec<palette::Rgb>>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub rescale: Option<f64>,
    pub resample: Option<Resample>,
    pub resize: Option<ResizeMode>,
    pub channel_order: Option<ChannelOrder>,
    /// `family`: which architecture the model is (beit, segformer, …), as its exporter says.
    pub family: Option<String>,
}

impl Metadata {
    /// Parses the keys beitseg reads, from `get(key)` (the metadata_props value, if any).
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let json = |key: &str| -> Result<Option<Value>> {
            let Some(text) = get(key) else {
                return Ok(None);
            };
            serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("metadata {key:?} is not valid JSON: {text:?}"))
        };
        let triple = |key: &str| -> Result<Option<[f32; 3]>> {
            let Some(v) = json(key)? else {
                return Ok(None);
            };
            let nums: Vec<f32> = match &v {
                Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN) as f32; 3],
                Value::Array(items) => items
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect(),
                _ => vec![],
            };
            match nums[..] {
                [a, b, c] if nums.iter().all(|x| x.is_finite()) => Ok(Some([a, b, c])),
                _ => bail!("metadata {key:?} must be three numbers, found {v}"),
            }
        };
        let std = triple("image_std")?;
        if let Some(std) = std {
            if std.contains(&0.0) {
                bail!("metadata image_std {std:?} contains zero");
            }
        }
        Ok(Metadata {
            input_size: json("input_size")?,
            output: get("output"),
            labels: json("id2label")?
                .map(|v| palette::parse_labels_json(&v).context("metadata id2label"))
                .transpose()?,
            palette: json("palette")?
                .map(|v| palette::parse_palette_json(&v).context("metadata palette"))
                .transpose()?,
            mean: triple("image_mean")?,
            std,
            rescale: get("rescale_factor")
                .map(|t| {
                    t.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .with_context(|| format!("metadata rescale_factor {t:?} is not a number"))
                })
                .transpose()?,
            resample: get("resample")
                .map(|t| Resample::parse(&t).context("metadata resample"))
                .transpose()?,
            resize: get("resize_mode")
                .map(|t| match t.trim() {
                    "shortest_edge_crop" => {
                        let edge = get("shortest_edge").unwrap_or_default();
                        match edge.trim().parse::<usize>() {
                            Ok(e) if (1..=16384).contains(&e) => Ok(ResizeMode::Crop { shortest_edge: e }),
                            _ => bail!("metadata resize_mode shortest_edge_crop needs shortest_edge (a size in pixels), found {edge:?}"),
                        }
                    }
                    t => ResizeMode::parse(t).context("metadata resize_mode"),
                })
                .transpose()?,
            channel_order: get("channel_order")
                .map(|t| ChannelOrder::parse(&t).context("metadata channel_order"))
                .transpose()?,
            family: get("family").map(|f| f.trim().to_string()).filter(|f| !f.is_empty()),
        })
    }
}
