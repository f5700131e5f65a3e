// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run PHOTOS/ -o OUT/`: a folder of images, one PNG out per image (class ids by
//! default), through one element (the model loads once). Each photo is decoded on its own
//! (sizes differ), turned upright by its EXIF orientation, and pushed into the segmentation
//! pipeline; its result comes back in order.

use crate::console::say;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use gstbeitseg::{DropPolicy, Mode};

use crate::args::RunArgs;
use crate::input::{exif_orientation, extension, flip_for, IMAGE_EXTENSIONS};
use crate::limits::MaxResolution;
use crate::options::{check_args, configure};

/// The images of `dir` (by name), or an error saying there are none.
pub(crate) fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("input {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && IMAGE_EXTENSIONS.contains(&extension(&p.to_string_lossy()).as_str())
        })
        .collect();
    found.sort();
    if found.is_empty() {
        bail!(
            "input {}: a folder with no images (.png, .jpg) in it; give a video or image file, or \
             a folder of images",
            dir.display()
        );
    }
    Ok(found)
}

/// One photo decoded to RGB, upright.
fn decode(path: &Path, upright: bool, max: MaxResolution) -> Result<gst::Sample> {
    let flip = match exif_orientation(path) {
        Some(o) if upright && o != 1 => format!("videoflip video-direction={} ! ", flip_for(o)),
        _ => String::new(),
    };
    let pipeline = crate::run::launch(
        &format!(
            "filesrc name=in ! decodebin name=dec ! videoconvert ! {flip}videoconvert ! \
         video/x-raw,format=RGB ! appsink name=out sync=false"
        ),
        "the decoder",
    )?;
    let src = pipeline
        .by_name("in")
        .context("decoder without its filesrc")?;
    src.set_property("location", path);
    let refused = pipeline
        .by_name("dec")
        .map(|dec| max.guard(&dec))
        .unwrap_or_default();
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("decoder without its appsink")?;
    let _ = pipeline.set_state(gst::State::Playing);
    // The picture, or the decoder's error as soon as it comes (at most 30 s).
    let bus = pipeline.bus().context("decoder without a bus")?;
    let t0 = std::time::Instant::now();
    let (mut sample, mut error) = (None, None);
    while sample.is_none() && error.is_none() && t0.elapsed() < std::time::Duration::from_secs(30) {
        sample = sink.try_pull_sample(gst::ClockTime::from_mseconds(50));
        error = bus
            .pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            });
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(why) = refused.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bail!("input {}: {why}", path.display());
    }
    sample.ok_or_else(|| {
        anyhow!(
            "input {}: not an image GStreamer can read{}",
            path.display(),
            error.map(|e| format!(" ({e})")).unwrap_or_default()
        )
    })
}

pub(crate) fn run_folder(args: &RunArgs, dir: &Path) -> Result<()> {
    check_args(args)?;
    let images = images_in(dir)?;
    let out = match &args.output {
        Some(o) if o.ends_with('/') || Path::new(o).is_dir() => PathBuf::from(o),
        Some(o) => bail!("output {o}: a folder of images needs a folder out (ending in /)"),
        None => PathBuf::from("out").join(format!(
            "{}-seg",
            dir.file_name().unwrap_or_default().to_string_lossy()
        )),
    };
    let targets: Vec<PathBuf> = images
        .iter()
        .map(|p| {
            out.join(format!(
                "{}.png",
                p.file_stem().unwrap_or_default().to_string_lossy()
            ))
        })
        .collect();
    // a.jpg and a.png would both become a.png.
    for (i, t) in targets.iter().enumerate() {
        if let Some(j) = targets[..i].iter().position(|u| u == t) {
            bail!(
                "input {}: {} and {} would both be written to {}; rename one",
                dir.display(),
                images[j].display(),
                images[i].display(),
                t.display()
            );
        }
    }
    if let Some(t) = targets.iter().find(|t| t.exists()) {
        bail!(
            "output {}: {} already exists (an earlier run?); remove it or choose another folder",
            out.display(),
            t.display()
        );
    }
    let started = std::time::Instant::now();
    let created = !out.exists();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("output {}: cannot create the folder", out.display()))?;
    let result = segment_into(args, &images, &targets);
    if result.is_err() && created {
        // Only when still empty: the PNGs already written stay, each one complete.
        let _ = std::fs::remove_dir(&out);
    }
    result?;
    say!(
        "wrote {}: {} images in {:.1} s",
        out.display(),
        images.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Segments each image into its target, in order, through one element.
fn segment_into(args: &RunArgs, images: &[PathBuf], targets: &[PathBuf]) -> Result<()> {
    let model = crate::input::model_of(args);
    let pipeline = crate::run::launch(
        "appsrc name=frames format=time ! videoconvert ! beitseg name=seg ! videoconvert ! \
         pngenc ! appsink name=png sync=false",
        "the pipeline",
    )?;
    let seg = pipeline
        .by_name("seg")
        .context("no beitseg in the pipeline")?;
    if let Some(model) = model {
        seg.set_property("model", model.display().to_string());
    }
    configure(
        &seg,
        args,
        args.mode.unwrap_or(Mode::Mask),
        DropPolicy::None,
    )?;
    let src = pipeline
        .by_name("frames")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .context("no appsrc")?;
    let sink = pipeline
        .by_name("png")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("no appsink")?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    let failed = |pipeline: &gst::Pipeline| {
        let _ = pipeline.set_state(gst::State::Null);
        let why = bus
            .iter_timed(gst::ClockTime::ZERO)
            .find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(
                    e.debug()
                        .and_then(|d| d.lines().last().map(str::to_string))
                        .unwrap_or_else(|| e.error().to_string()),
                ),
                _ => None,
            });
        anyhow!(
            "{}",
            why.unwrap_or_else(|| "cannot start the pipeline".into())
        )
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        return Err(failed(&pipeline));
    }
    for (i, (image, target)) in images.iter().zip(targets).enumerate() {
        let frame = decode(image, !args.no_orientation, args.max_resolution)?;
        let (Some(buffer), Some(caps)) = (frame.buffer_owned(), frame.caps_owned()) else {
            bail!("input {}: no picture in it", image.display());
        };
        let mut buffer = buffer;
        buffer
            .make_mut()
            .set_pts(gst::ClockTime::from_seconds(i as u64));
        src.set_caps(Some(&caps));
        src.push_buffer(buffer).map_err(|_| failed(&pipeline))?;
        let png = sink
            .try_pull_sample(gst::ClockTime::from_seconds(600))
            .ok_or_else(|| failed(&pipeline))?;
        let map = png
            .buffer()
            .context("an empty result")?
            .map_readable()
            .context("cannot read the result")?;
        std::fs::write(target, map.as_slice())
            .with_context(|| format!("output {}: cannot write it", target.display()))?;
    }
    let _ = src.end_of_stream();
    let _ = pipeline.set_state(gst::State::Null);
    Ok(())
}
