// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run`'s options checked and handed to the element: every property under its own
//! flag, checked against the element's own range before anything is opened; and the
//! `--frames`/`--duration` limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gst::prelude::*;

use crate::args::RunArgs;

/// Sets the element's property `prop` from the command-line flag `flag`, checked against the
/// property's own range first: a one-line error instead of a GLib warning.
fn set_checked(seg: &gst::Element, flag: &str, prop: &str, value: u32) -> Result<()> {
    let pspec = seg
        .find_property(prop)
        .with_context(|| format!("the element has no property {prop}"))?;
    if let Some(p) = pspec.downcast_ref::<gst::glib::ParamSpecUInt>() {
        if value < p.minimum() || value > p.maximum() {
            bail!(
                "{flag} {value}: must be between {} and {}",
                p.minimum(),
                p.maximum()
            );
        }
    }
    seg.set_property(prop, value);
    Ok(())
}

/// Every element property the command line sets, checked.
pub(crate) fn configure(
    seg: &gst::Element,
    args: &RunArgs,
    mode: gstbeitseg::Mode,
    drop_policy: gstbeitseg::DropPolicy,
) -> Result<()> {
    seg.set_property("alpha", args.alpha);
    set_checked(seg, "--workers", "workers", args.workers)?;
    set_checked(seg, "--batch-size", "batch-size", args.batch_size)?;
    let e = &args.element;
    for (flag, prop, value) in [
        ("--interval", "interval", e.interval),
        ("--intra-threads", "intra-threads", e.intra_threads),
        ("--device-id", "device-id", e.device_id),
        ("--max-in-flight", "max-in-flight", e.max_in_flight),
        ("--batch-timeout", "batch-timeout", e.batch_timeout),
        ("--server-timeout", "server-timeout", e.server_timeout),
        ("--server-give-up", "server-give-up", e.server_give_up),
    ] {
        if let Some(v) = value {
            set_checked(seg, flag, prop, v)?;
        }
    }
    for (flag, prop, file) in [
        ("--labels", "labels", &e.labels),
        ("--palette", "palette", &e.palette),
    ] {
        if let Some(f) = file {
            if !f.is_file() {
                bail!("{flag} {}: no such file", f.display());
            }
            seg.set_property(prop, f.display().to_string());
        }
    }
    if let Some(ca) = &e.server_ca {
        if !ca.is_file() {
            bail!("--server-ca {}: no such file", ca.display());
        }
        seg.set_property("server-ca", ca.display().to_string());
    }
    if let Some(d) = &e.engine_cache {
        seg.set_property("engine-cache", d.display().to_string());
    }
    if let Some(d) = &e.graph_cache {
        seg.set_property("graph-cache", d);
    }
    for (prop, value) in [
        ("server", &e.server),
        ("server-model", &e.server_model),
        ("server-model-version", &e.server_model_version),
    ] {
        if let Some(v) = value {
            seg.set_property(prop, v);
        }
    }
    if let Some(r) = e.resize {
        seg.set_property("resize", r);
    }
    if let Some(v) = e.smoothing {
        let p = seg
            .find_property("smoothing")
            .and_then(|p| p.downcast::<gst::glib::ParamSpecDouble>().ok())
            .context("the element has no property smoothing")?;
        if !(v >= p.minimum() && v <= p.maximum()) {
            bail!(
                "--smoothing {v}: must be between {} and {}",
                p.minimum(),
                p.maximum()
            );
        }
        seg.set_property("smoothing", v);
    }
    if let Some(c) = &args.classes {
        seg.set_property("classes", c);
    }
    seg.set_property("mode", mode);
    seg.set_property("drop-policy", drop_policy);
    seg.set_property("provider", args.provider);
    Ok(())
}

/// Checks the options that need no pipeline.
pub(crate) fn check_args(args: &RunArgs) -> Result<()> {
    if let Some(ca) = &args.element.server_ca {
        crate::tls::check_authority("--server-ca", ca)?;
    }
    if let Some(ca) = &args.ca {
        if !args.input.to_ascii_lowercase().starts_with("rtsps://") {
            bail!(
                "--ca {}: trusts an rtsps:// camera's authority; the input is not one",
                ca.display()
            );
        }
        crate::tls::check_authority("--ca", ca)?;
    }
    if !(0.0..=1.0).contains(&args.alpha) {
        bail!("--alpha {}: must be between 0 and 1", args.alpha);
    }
    for (flag, v) in [
        ("--stall-timeout", args.stall_timeout),
        ("--give-up-after", args.give_up_after),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            bail!("{flag} {v}: must be a number of seconds, 0 or more");
        }
    }
    if args.bitrate == 0 || args.bitrate > 2_048_000 {
        bail!(
            "--bitrate {}: must be between 1 and 2048000 kbit/s",
            args.bitrate
        );
    }
    if args.frames == Some(0) {
        bail!("--frames 0: give at least one frame");
    }
    if let Some(d) = args.duration {
        if !(d > 0.0 && d.is_finite()) {
            bail!("--duration {d}: must be a positive number of seconds");
        }
    }
    match crate::input::model_of(args) {
        Some(m) if args.model.is_none() && !m.is_file() => bail!(
            "the bundled model {} is missing (beitseg looks in samples/ of its source tree, or \
             share/beitseg/ of the prefix it is installed under): reinstall beitseg, or give a \
             model with --model",
            m.display()
        ),
        Some(m) => check_model(&m),
        None => Ok(()),
    }
}

/// A model path that can be opened (a named pipe too), or a one-line reason.
pub(crate) fn check_model(model: &std::path::Path) -> Result<()> {
    if model.is_dir() {
        bail!("model {}: a folder, not an .onnx file", model.display());
    }
    if !model.exists() {
        bail!("model {}: no such file", model.display());
    }
    Ok(())
}

/// Stops the run after `--frames` frames or `--duration` seconds of input: frames past the
/// limit are dropped before the element and `limit_reached` is set for the main loop, which
/// then ends the stream.
/// Drops the probed buffer: taken and released here, reported as handled (returning `Drop`
/// with the buffer still in `info` made GStreamer unref it a second time, as a NULL, with a
/// GStreamer-CRITICAL per dropped frame).
fn drop_buffer(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    drop(info.take_buffer());
    gst::PadProbeReturn::Handled
}

/// `--duration S` on the audio too: audio from S seconds after its first sample on is dropped
/// before the muxer (the video's limit is the same, from its own first frame).
pub(crate) fn limit_audio(pipeline: &gst::Pipeline, args: &RunArgs) {
    let (Some(seconds), Some(queue)) = (args.duration, pipeline.by_name("audioq")) else {
        return;
    };
    let Some(pad) = queue.static_pad("sink") else {
        return;
    };
    let duration = gst::ClockTime::from_seconds_f64(seconds);
    let first = std::sync::Mutex::new(None::<gst::ClockTime>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let start = *first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(pts);
        if pts >= start + duration {
            drop_buffer(info)
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

pub(crate) fn limit(
    seg: &gst::Element,
    args: &RunArgs,
    limit_reached: Arc<AtomicBool>,
) -> Result<()> {
    if args.frames.is_none() && args.duration.is_none() {
        return Ok(());
    }
    let frames = args.frames;
    let duration = args.duration.map(gst::ClockTime::from_seconds_f64);
    let pad = seg
        .static_pad("sink")
        .context("beitseg without a sink pad")?;
    // (frames let through, first timestamp)
    let counted = std::sync::Mutex::new((0u64, None::<gst::ClockTime>));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let pts = info.buffer().and_then(|b| b.pts());
        let mut counted = counted.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, first) = &mut *counted;
        let start = *first.get_or_insert(pts.unwrap_or(gst::ClockTime::ZERO));
        let past_time = match (duration, pts) {
            (Some(d), Some(pts)) => pts >= start + d,
            _ => false,
        };
        if limit_reached.load(Ordering::SeqCst) || past_time || frames.is_some_and(|n| *seen >= n) {
            limit_reached.store(true, Ordering::SeqCst);
            return drop_buffer(info);
        }
        *seen += 1;
        if frames.is_some_and(|n| *seen >= n) {
            limit_reached.store(true, Ordering::SeqCst);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}
