// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The pipeline `beitseg run` builds from its input, output and options.

use std::path::Path;

use anyhow::{bail, Context, Result};
use gstbeitseg::{DropPolicy, Mode};

use crate::args::RunArgs;
use crate::input::{default_model, quoted, Input};
use crate::output::{mask_writer, video_writer, Output};

pub(crate) struct Plan {
    pub(crate) description: String,
    pub(crate) mode: Mode,
    pub(crate) drop_policy: DropPolicy,
    pub(crate) output: Output,
    /// Where the output went, for the closing line.
    pub(crate) shown_as: String,
}

pub(crate) fn plan(args: &RunArgs, input: &Input) -> Result<Plan> {
    let output_arg = match &args.output {
        Some(o) => o.clone(),
        None => {
            let stem = Path::new(&args.input)
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("output")
                .to_string();
            std::fs::create_dir_all("out").context("cannot create out/")?;
            let ext = if matches!(input, Input::Image(_)) {
                "png"
            } else {
                "mp4"
            };
            format!("out/{stem}-seg.{ext}")
        }
    };
    let output = Output::parse(&output_arg)?;
    let mode = args.mode.unwrap_or(match output {
        Output::Folder(_) => Mode::Mask,
        _ => Mode::Overlay,
    });
    if let Some(parent) = match &output {
        Output::Video(p) | Output::Png(p) => p.parent(),
        _ => None,
    } {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            bail!(
                "output {output_arg}: folder {} does not exist",
                parent.display()
            );
        }
    }
    let sink = match &output {
        Output::Display => "videoconvert ! autovideosink".to_string(),
        Output::Png(p) => {
            if !matches!(input, Input::Image(_)) {
                bail!("output {output_arg}: a .png output needs an image input (a folder takes one PNG per frame)");
            }
            format!(
                "videoconvert ! pngenc ! filesink location={}",
                quoted(&p.display().to_string())
            )
        }
        Output::Folder(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("output {output_arg}: cannot create the folder"))?;
            format!(
                "videoconvert ! pngenc ! multifilesink location={}",
                quoted(&dir.join("%06d.png").display().to_string())
            )
        }
        Output::Video(p) => format!("videoconvert ! {}", video_writer(p, args.bitrate)?),
        Output::Rtsp(_) => format!(
            // A file is served at its own pace; a live input as fast as it comes.
            "videoconvert ! video/x-raw,format=I420 ! appsink name=restream max-buffers=5 \
             drop=true sync={}",
            !input.is_live()
        ),
    };
    let model = args.model.clone().unwrap_or_else(default_model);
    let drop_policy = args.drop_policy.unwrap_or(if input.is_live() {
        DropPolicy::Oldest
    } else {
        DropPolicy::None
    });
    // Enum properties are set on the element once it exists (run()), not spelled out here.
    let mut seg = format!(
        "beitseg name=seg model={} alpha={} workers={} batch-size={}",
        quoted(&model.display().to_string()),
        args.alpha,
        args.workers,
        args.batch_size,
    );
    if let Some(c) = &args.classes {
        seg.push_str(&format!(" classes={}", quoted(c)));
    }
    let mut description = format!("{} ! videoconvert ! {seg} ", input.launch());
    match &args.mask_output {
        // One streaming thread feeds both pads: a queue on each branch keeps either from
        // waiting on the other.
        Some(m) => description.push_str(&format!(
            "! queue ! {sink}  seg.mask ! queue ! {}",
            mask_writer(m)?
        )),
        None => description.push_str(&format!("! {sink}")),
    }
    let shown_as = match &output {
        Output::Rtsp(e) => e.client_url(),
        _ => output_arg,
    };
    Ok(Plan {
        description,
        mode,
        drop_policy,
        output,
        shown_as,
    })
}
