// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run INPUT [-o OUTPUT]`: one gst-launch-style pipeline around the element, built from
//! what INPUT and OUTPUT are, with a progress bar for files and a status line for live sources.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use gst::prelude::*;

use crate::args::RunArgs;
use crate::console::say;
use crate::input::default_model;

/// "element: error (last line of the debug text)" for an error message.
pub fn error_text(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let from = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    Some(match debug.lines().last() {
        Some(l) if !l.is_empty() => format!("{from}: {} ({l})", e.error()),
        _ => format!("{from}: {}", e.error()),
    })
}

/// A pipeline from gst-launch syntax; `what` names it in the error ("the camera pipeline").
pub fn launch(description: &str, what: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(description)
        .map_err(|e| anyhow!("cannot build {what}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("{what} is not a pipeline"))
}

/// The first signal that asked the run to stop (SIGINT 2, SIGTERM 15, SIGHUP 1), 0 for none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The exit status of a run that a signal stopped: 128 + the signal (130 for Ctrl-C, 143 for
/// SIGTERM), as shells report it; None when no signal came.
pub fn signal_exit_code() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(128 + s as u8),
    }
}

/// Ends the process at once with `code`, its lines written: no destructor or exit handler runs
/// (the main thread may be inside ONNX Runtime or GStreamer, whose static destructors would
/// run beside it).
fn exit_now(code: i32) -> ! {
    crate::console::flush(Duration::from_secs(1));
    // SAFETY: _exit has no preconditions; it ends the process without running any handler.
    unsafe { libc::_exit(code) }
}

/// What the signal handler may touch: whether models are still loading, and the partial
/// files to remove when it stops the process while nothing was segmented.
#[derive(Default)]
pub struct Shutdown {
    /// Inputs whose model is loading, and inputs segmenting.
    loading: AtomicUsize,
    running: AtomicUsize,
    partials: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl Shutdown {
    /// Ctrl-C, SIGTERM (systemd, docker) or SIGHUP sends EOS into every input, so that the
    /// outputs are finalised and playable; the run then exits 128 + the signal. While the
    /// model loads (nothing segmented yet) the run stops at once and removes its empty partial
    /// files. A second signal stops at once too, keeping every file as it is on disk
    /// (fragmented recordings play up to their last fragment).
    pub fn install() -> Arc<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let shutdown = Arc::new(Shutdown::default());
        let handler = shutdown.clone();
        let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]);
        let started = signals.and_then(|mut signals| {
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        handler.on_signal(signal);
                    }
                })
        });
        if let Err(e) = started {
            say!("warning: Ctrl-C will not finalise the output: {e}");
        }
        shutdown
    }

    fn on_signal(&self, signal: i32) {
        let first = match SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => signal,
            Err(first) => {
                let kept: Vec<String> = self
                    .partials()
                    .iter()
                    .filter(|p| p.exists())
                    .map(|p| p.display().to_string())
                    .collect();
                let kept = match kept.is_empty() {
                    true => String::new(),
                    false => format!("; kept as it is on disk: {}", kept.join(", ")),
                };
                say!("\ninterrupted twice: stopped at once{kept}");
                exit_now(128 + first);
            }
        };
        let loading =
            self.loading.load(Ordering::SeqCst) > 0 && self.running.load(Ordering::SeqCst) == 0;
        if loading {
            // Nothing was segmented: the partial files are empty.
            for p in self.partials() {
                let _ = std::fs::remove_file(p);
            }
            say!("\ninterrupted while loading the model: stopped, nothing written");
            exit_now(128 + first);
        }
    }

    /// Partial files this run writes (removed if a signal comes while the model loads).
    pub fn track(&self, partials: impl Iterator<Item = std::path::PathBuf>) {
        self.partials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(partials);
    }

    /// An input starts loading its model (starting its pipeline).
    pub fn begin_loading(&self) {
        self.loading.fetch_add(1, Ordering::SeqCst);
    }

    /// The input's model is loaded (or failed to): it segments.
    pub fn loaded(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.loading.fetch_sub(1, Ordering::SeqCst);
    }

    /// The input has ended.
    pub fn ended(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn interrupted(&self) -> bool {
        SIGNAL.load(Ordering::SeqCst) != 0
    }

    fn partials(&self) -> Vec<std::path::PathBuf> {
        self.partials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Which part of the run's pipeline an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The input's elements (see Input::launch); decoders live inside `dec`.
    Input,
    /// The beitseg element.
    Element,
    /// Anything after it: converters, encoders, muxers, sinks.
    Output,
}

/// The names of the elements that read the input (see Input::launch).
const INPUT_ELEMENTS: [&str; 3] = ["in", "dec", "camera"];

/// Where the pipeline's message `msg` comes from (None: not from an element).
pub fn origin(msg: &gst::Message, pipeline: &gst::Pipeline) -> Option<Origin> {
    let from = msg.src()?;
    if pipeline
        .by_name("seg")
        .is_some_and(|seg| seg.upcast_ref::<gst::Object>() == from)
    {
        return Some(Origin::Element);
    }
    let mut ancestor = Some(from.clone());
    while let Some(obj) = ancestor {
        if INPUT_ELEMENTS.contains(&obj.name().as_str()) {
            return Some(Origin::Input);
        }
        ancestor = obj.parent();
    }
    Some(Origin::Output)
}

/// An error message of the run's pipeline as one line a person can act on, saying what it is
/// about (the input, the model and options, or the output) instead of which element failed;
/// and where it comes from.
pub fn explain(
    msg: &gst::Message,
    pipeline: &gst::Pipeline,
    args: &RunArgs,
    shown_as: &str,
) -> (String, Origin) {
    let origin = origin(msg, pipeline).unwrap_or(Origin::Output);
    let gst::MessageView::Error(e) = msg.view() else {
        return (String::new(), origin);
    };
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let detail = debug.lines().last().unwrap_or("").trim().to_string();
    let error = e.error().to_string();
    let text = match origin {
        Origin::Element => {
            // The element's own text names the setting or file at fault.
            let text = if detail.is_empty() { error } else { detail };
            match text.strip_prefix("classes property: ") {
                Some(rest) => {
                    let model = args.model.clone().unwrap_or_else(default_model);
                    format!(
                        "--classes {}: {rest} (`beitseg inspect {}` lists the classes)",
                        args.classes.as_deref().unwrap_or(""),
                        model.display()
                    )
                }
                None => text,
            }
        }
        Origin::Input => {
            let why = if error.contains("Could not determine type of stream") {
                "not a video or image file".to_string()
            } else if debug.contains("reason not-linked") {
                "no video stream in it".to_string()
            } else if detail.is_empty() || detail == error || detail.contains(".c(") {
                error
            } else {
                format!("{error} ({detail})")
            };
            format!("input {}: {why}", args.input)
        }
        Origin::Output if e.error().matches(gst::ResourceError::NoSpaceLeft) => {
            format!("output {shown_as}: the disk is full (no space left on the device)")
        }
        Origin::Output => format!("output {shown_as}: {error}"),
    };
    (text, origin)
}

/// What the inputs of one `beitseg run` share: signal handling, the progress lines, the worker
/// pool and the metrics.
pub struct RunContext {
    pub shutdown: Arc<Shutdown>,
    /// One line per input when there are several.
    pub lines: Option<indicatif::MultiProgress>,
    /// The element's `pool`: inputs with the same model and settings share their workers.
    pub pool: Option<String>,
    pub metrics: Option<Arc<crate::metrics::Registry>>,
    /// The input's place among the run's inputs (1, 2, …): its `index` label in the metrics
    /// and its status lines' prefix, telling apart inputs that look alike once masked.
    pub index: usize,
}

pub fn run(args: &RunArgs) -> Result<()> {
    if args.config.is_some() || !args.more_inputs.is_empty() {
        return crate::many::run(args);
    }
    let metrics = crate::metrics::Endpoint::start(args.metrics.as_deref())?;
    let context = RunContext {
        shutdown: Shutdown::install(),
        lines: None,
        pool: None,
        metrics: metrics.as_ref().map(|m| m.registry.clone()),
        index: 1,
    };
    crate::record::run_one(args, &context)
}

#[cfg(test)]
mod tests {
    use crate::input::Input;
    use crate::output::{mask_writer, Output};

    #[test]
    fn inputs_and_outputs() {
        gst::init().unwrap();
        assert_eq!(Input::parse("test", 5).unwrap(), Input::Test(5));
        assert_eq!(
            Input::parse("rtsp://cam/1", 0).unwrap(),
            Input::Rtsp("rtsp://cam/1".into())
        );
        assert!(matches!(
            Input::parse("https://example.com/a.mp4", 0).unwrap(),
            Input::Uri(_)
        ));
        assert!(Input::parse("/no/such/file.mp4", 0)
            .unwrap_err()
            .to_string()
            .contains("no such file"));
        assert!(Input::parse("/dev/video99", 0)
            .unwrap_err()
            .to_string()
            .contains("no such video device"));
        assert!(Input::parse("nosuchscheme://x", 0).is_err());
        assert_eq!(Output::parse("display").unwrap(), Output::Display);
        assert!(matches!(
            Output::parse("a/b.MP4").unwrap(),
            Output::Video(_)
        ));
        assert!(matches!(
            Output::parse("masks/").unwrap(),
            Output::Folder(_)
        ));
        assert!(matches!(
            Output::parse("rtsp://0.0.0.0:8554/seg").unwrap(),
            Output::Rtsp(_)
        ));
        assert!(Output::parse("x.avi").is_err());
        assert!(mask_writer("m.mp4", "mask_out", false).is_err());
    }
}
