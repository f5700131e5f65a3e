// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run`'s progress: a bar for files, a status line for live sources, plain lines when
//! stderr is not a terminal, a spinner while the model loads.

use crate::console::say;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Progress for a file (bar with position, duration, speed, ETA) or a live source (one status
/// line); plain lines every few seconds when stderr is not a terminal.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    live: bool,
    tty: bool,
    last_line: Instant,
    /// With several inputs: the bars they share, and this input's name at the start of its
    /// lines.
    lines: Option<indicatif::MultiProgress>,
    label: String,
}

impl Progress {
    /// A bar or status line for one input: alone, or one of `lines` (several inputs), its
    /// lines then starting with `label`.
    pub(crate) fn new(live: bool, lines: Option<&indicatif::MultiProgress>, label: &str) -> Self {
        let tty = std::io::stderr().is_terminal();
        let label = match lines {
            Some(_) => format!("{label}: "),
            None => String::new(),
        };
        let bar = if !tty {
            indicatif::ProgressBar::hidden()
        } else if live {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        } else {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:20} {prefix} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        };
        let bar = match lines {
            Some(lines) if tty => lines.add(bar),
            _ => bar,
        };
        Progress {
            bar,
            live,
            tty,
            last_line: Instant::now(),
            lines: lines.cloned(),
            label,
        }
    }

    pub(crate) fn update(
        &mut self,
        position: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
        stats: &gst::Structure,
    ) {
        let frames = stats.get::<u64>("frames-out").unwrap_or(0);
        let fps = stats.get::<f64>("fps").unwrap_or(0.0);
        let dropped = stats.get::<u64>("dropped").unwrap_or(0);
        let p95 = stats.get::<f64>("inference-p95-ms").unwrap_or(0.0);
        let msg = format!("{frames} frames {fps:.1} fps p95 {p95:.0} ms {dropped} dropped");
        let secs = |t: Option<gst::ClockTime>| {
            t.map_or("-".into(), |t| format!("{:.1}s", t.seconds_f64()))
        };
        if !self.live {
            if let Some(d) = duration {
                self.bar.set_length(d.mseconds());
            }
            if let Some(p) = position {
                self.bar.set_position(p.mseconds());
            }
            self.bar
                .set_prefix(format!("{} / {}", secs(position), secs(duration)));
        }
        let label = &self.label;
        if self.live {
            let elapsed = indicatif::HumanDuration(self.bar.elapsed());
            self.bar.set_message(format!("{label}live {elapsed} {msg}"));
        } else {
            let eta = indicatif::HumanDuration(self.bar.eta());
            self.bar.set_message(format!("{label}{msg} ETA {eta}"));
        }
        self.bar.tick();
        if !self.tty && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            say!("{label}{} / {}  {msg}", secs(position), secs(duration));
        }
    }

    /// A spinner with the elapsed time while the element loads the model (the state change
    /// that loads it blocks this thread); one plain line without a terminal.
    pub(crate) fn loading(model: &Path) -> indicatif::ProgressBar {
        // A file by its name; a served model ("NAME on grpc://HOST:PORT") whole.
        let shown = model.display().to_string();
        let name = match model.file_name() {
            Some(n) if !shown.contains("://") => n.to_string_lossy().into_owned(),
            _ => shown,
        };
        if !std::io::stderr().is_terminal() {
            say!("loading {name}");
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} loading {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(name);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    pub(crate) fn say(&self, line: &str) {
        let line = crate::secrets::masked(line);
        match &self.lines {
            Some(lines) => lines.suspend(|| say!("{line}")),
            None => self.bar.suspend(|| say!("{line}")),
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
