// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The process-wide ONNX Runtime environment, loaded at run time (ort's `load-dynamic`) from the
//! library [`lookup`] finds: ORT_DYLIB_PATH, the loader's path, a Python's onnxruntime package,
//! the source tree's `.venv`, or the copy the Debian package bundles.

pub mod lookup;

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::{anyhow, Result};

pub use lookup::Found;

/// What ort was built against; older libraries are refused by ort itself.
pub const ORT_SERIES: &str = "1.31";

pub type LogSink = Arc<dyn Fn(ort::logging::LogLevel, &str) + Send + Sync>;

struct Runtime {
    found: Found,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// Where ONNX Runtime's log goes; settable before or after the runtime is loaded, so the log
/// reaches it whichever caller loads the runtime first.
static LOG_SINK: RwLock<Option<LogSink>> = RwLock::new(None);

/// Sends ONNX Runtime's log to `sink` from now on (the plugin sets its debug category).
pub fn set_log_sink(sink: LogSink) {
    *LOG_SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
}

/// Loads ONNX Runtime once per process and creates its environment. Every later call returns the
/// first call's outcome, so a failure is reported the same way each time. Its log goes to the
/// sink of [`set_log_sink`], whenever that is set.
pub fn init() -> Result<()> {
    let outcome = RUNTIME.get_or_init(|| {
        let found = lookup::locate().map_err(|e| format!("{e:#}"))?;
        let library = &found.library;
        let builder = ort::init_from(library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?;
        let builder = builder.with_name("beitseg").with_telemetry(false);
        let builder = builder.with_logger(Arc::new(
            |level, _category, _id, _location, message: &str| {
                if let Some(sink) = LOG_SINK.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    sink(level, message);
                }
            },
        ));
        let env = builder.build().map_err(|e| {
            format!(
                "cannot create the ONNX Runtime environment ({}): {e}",
                library.display()
            )
        })?;
        Ok(Runtime { found, env })
    });
    outcome.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// The process's ONNX Runtime environment; [`init`] must have succeeded.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    match RUNTIME.get() {
        Some(Ok(r)) => Ok(&r.env),
        Some(Err(e)) => Err(anyhow!("{e}")),
        None => Err(anyhow!("ONNX Runtime is not initialised")),
    }
}

/// The loaded ONNX Runtime's version, e.g. "1.31.1"; `None` before a successful [`init`].
pub fn version() -> Option<&'static str> {
    found().map(|f| f.version.as_str())
}

/// The file ONNX Runtime was loaded from.
pub fn library() -> Option<&'static Path> {
    found().map(|f| f.library.as_path())
}

/// The loaded library, where it is and which rule of the lookup found it.
pub fn found() -> Option<&'static Found> {
    RUNTIME.get()?.as_ref().ok().map(|r| &r.found)
}

/// One line: the version, the file, the rule that found it, and what was passed over, e.g.
/// "1.31.1 from /usr/lib/x86_64-linux-gnu/beitseg/libonnxruntime.so.1.31.1 (bundled with beitseg)".
pub fn describe() -> Option<String> {
    let f = found()?;
    let mut line = format!("{} from {} ({})", f.version, f.library.display(), f.rule);
    if !f.passed_over.is_empty() {
        line += &format!("; passed over {}", f.passed_over.join("; "));
    }
    Some(line)
}
