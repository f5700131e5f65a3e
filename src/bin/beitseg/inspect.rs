// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg inspect MODEL`: the model in plain words, every class, and where it would run.

use crate::console::out;
use std::path::Path;

use anyhow::Result;
use gstbeitseg::model::{
    ChannelOrder, Layout, Model, ModelInfo, OutputKind, Overrides, Precision, ResizeMode,
};
use gstbeitseg::preprocess::Preprocessor;
use gstbeitseg::provider::ProviderRequest;
use gstbeitseg::ProviderSetting;

fn precision(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "float32",
        Precision::F16 => "float16",
    }
}

pub fn inspect(model: &Path, provider: ProviderSetting) -> Result<()> {
    crate::options::check_model(model)?;
    let with = |provider: ProviderSetting| Overrides {
        provider: ProviderRequest {
            provider: provider.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    // A provider that cannot load still leaves a model to describe (on the CPU).
    let (m, refused) = match Model::load(model, &with(provider)) {
        Ok(m) => (m, None),
        Err(e) if provider != ProviderSetting::Cpu => {
            let m = Model::load(model, &with(ProviderSetting::Cpu)).map_err(|_| e)?;
            (m, Some(provider))
        }
        Err(e) => return Err(e),
    };
    let i = m.info();
    describe(i);
    match refused {
        Some(p) => out!(
            "provider     {} cannot be used here; described on the cpu",
            format!("{p:?}").to_lowercase()
        ),
        None => out!("provider     {}", i.provider_line()),
    }
    out!(
        "runtime      ONNX Runtime {} with {}",
        gstbeitseg::runtime::version().unwrap_or("?"),
        gstbeitseg::provider::compiled_in()?.join(", ")
    );
    if let Some(found) = gstbeitseg::runtime::found() {
        out!("  library    {} ({})", found.library.display(), found.rule);
        for p in &found.passed_over {
            out!("  passed over {p}");
        }
    }
    out!("classes      {}", i.num_classes);
    let width = i.num_classes.saturating_sub(1).to_string().len();
    for (id, label) in i.labels.iter().enumerate() {
        out!("  {id:>width$}  {}", label.trim());
    }
    Ok(())
}

fn describe(i: &ModelInfo) {
    out!("model        {}", i.path.display());
    out!(
        "family       {}",
        i.family
            .as_deref()
            .unwrap_or("not named in the model's metadata")
    );
    let layout = match i.layout {
        Layout::Nchw => "channels first (NCHW)",
        Layout::Nhwc => "channels last (NHWC)",
    };
    out!(
        "input        {}: {}x{} RGB, {}, {layout}, batch {}",
        i.input_name,
        i.width,
        i.height,
        precision(i.input_precision),
        i.batch.map_or("any size".to_string(), |b| b.to_string())
    );
    let output = match i.output_kind {
        OutputKind::Logits => "one score per class (the class is the highest)".to_string(),
        OutputKind::Binary { threshold } => {
            format!("one channel (class 1 above {threshold}, class 0 below)")
        }
    };
    out!(
        "output       {}: {output}, {}",
        i.output_name,
        precision(i.output_precision)
    );
    let p = &i.preprocessing;
    let scale = if (p.rescale - 1.0 / 255.0).abs() < 1e-9 {
        "divided by 255".to_string()
    } else {
        format!("times {}", p.rescale)
    };
    let (w, h) = (i.width, i.height);
    let resize = match p.resize {
        ResizeMode::Stretch => format!("stretched to {w}x{h}"),
        ResizeMode::Letterbox => format!("letterboxed into {w}x{h}"),
        ResizeMode::Crop { shortest_edge } => format!(
            "short side to {shortest_edge} keeping the aspect ratio, the centre {w}x{h} cut out"
        ),
        ResizeMode::Slide => format!("windows of {w}x{h} slid over the frame"),
    };
    let order = match p.channel_order {
        ChannelOrder::Rgb => "",
        ChannelOrder::Bgr => ", channels in BGR order",
    };
    out!(
        "preprocess   {resize} ({} filter), pixels {scale}, then minus mean {:?}, over std {:?}{order}",
        format!("{:?}", p.resample).to_lowercase(),
        p.mean,
        p.std
    );
    // What `resize=slide` costs: model runs a frame at common sizes.
    let mut slid = p.clone();
    slid.resize = ResizeMode::Slide;
    let pre = Preprocessor::with(w, h, i.layout, &slid);
    let runs: Vec<String> = [(1280, 720), (1920, 1080), (3840, 2160)]
        .iter()
        .map(|&(fw, fh)| format!("{} at {fw}x{fh}", pre.slide_plan(fw, fh).windows.len()))
        .collect();
    out!(
        "slide        resize=slide: model runs a frame {}",
        runs.join(", ")
    );
    out!("loaded in    {:.1} s", i.load.seconds);
}

/// `beitseg inspect --server grpc://HOST:PORT NAME`: what the server says about a model it
/// serves, and whether beitseg can feed it.
pub fn inspect_served(
    url: &str,
    name: &str,
    version: &str,
    timeout: f64,
    ca: Option<&std::path::Path>,
) -> Result<()> {
    let timeout = std::time::Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            anyhow::anyhow!("--server-timeout {timeout}: must be a positive number of seconds")
        })?;
    let server = gstbeitseg::remote::Server::connect(url, timeout, ca)?;
    let m = server.model(name, version)?;
    out!("server: {}", crate::secrets::masked(url));
    out!("model: {}", m.name);
    if !m.versions.is_empty() {
        out!("versions: {}", m.versions.join(", "));
    }
    if !m.platform.is_empty() {
        out!("platform: {}", m.platform);
    }
    let shape = |s: &[i64]| {
        s.iter()
            .map(|d| {
                if *d < 0 {
                    "N".to_string()
                } else {
                    d.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("x")
    };
    for t in &m.inputs {
        out!("input: {} {} {}", t.name, t.datatype, shape(&t.shape));
    }
    for t in &m.outputs {
        out!("output: {} {} {}", t.name, t.datatype, shape(&t.shape));
    }
    // The same contract as a local model: one image input, per-pixel scores out.
    let usable = m.inputs.len() == 1
        && m.inputs[0].shape.len() == 4
        && (m.inputs[0].shape[1] == 3 || m.inputs[0].shape[3] == 3)
        && ["FP32", "FP16"].contains(&m.inputs[0].datatype.as_str())
        && m.outputs.first().is_some_and(|o| {
            o.shape.len() == 4 || (gstbeitseg::remote::is_class_ids(o) && o.shape.len() == 3)
        });
    out!(
        "beitseg can feed it: {}",
        if usable {
            "yes (one 3-channel image input; scores, or class ids, out)"
        } else {
            "no (beitseg needs one [N,3,H,W] or [N,H,W,3] FP32/FP16 input and a rank-4 output)"
        }
    );
    Ok(())
}
