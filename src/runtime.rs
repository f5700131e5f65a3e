// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The process-wide ONNX Runtime environment, loaded at run time from the `onnxruntime` wheel.
//!
//! Where the library comes from, first match wins:
//! 1. `ORT_DYLIB_PATH` (a relative path is taken relative to the current directory);
//! 2. the project's own venv, `.venv/lib/python3*/site-packages/onnxruntime/capi/`, next to the
//!    crate that built this plugin, or above the directory the plugin was loaded from.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::{anyhow, Result};

/// What ort was built against; older libraries are refused by ort itself.
pub const ORT_SERIES: &str = "1.31";

pub type LogSink = Arc<dyn Fn(ort::logging::LogLevel, &str) + Send + Sync>;

struct Runtime {
    library: PathBuf,
    version: String,
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

fn venv_candidates(root: &Path) -> Vec<PathBuf> {
    let lib = root.join(".venv").join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/onnxruntime/capi"))
        .filter_map(|capi| {
            let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so.1."))
                })
                .collect();
            libs.sort();
            libs.pop()
        })
        .collect();
    found.sort();
    found
}

/// Where this process would load ONNX Runtime from, without loading it.
pub fn locate_library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        let p = if p.is_relative() {
            std::env::current_dir()?.join(p)
        } else {
            p
        };
        if !p.is_file() {
            return Err(anyhow!(
                "ORT_DYLIB_PATH points to {}, which is not a file",
                p.display()
            ));
        }
        return Ok(p);
    }
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    // A plugin copied out of target/<profile>/ still finds the venv of the tree it sits in.
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    roots
        .iter()
        .find_map(|r| venv_candidates(r).pop())
        .ok_or_else(|| {
            anyhow!(
                "ONNX Runtime {ORT_SERIES} not found: install it with `python3 -m venv .venv && \
                 .venv/bin/pip install onnxruntime=={ORT_SERIES}.1` in {} (scripts/setup.sh does this), \
                 or set ORT_DYLIB_PATH to libonnxruntime.so.{ORT_SERIES}.x",
                env!("CARGO_MANIFEST_DIR")
            )
        })
}

/// Loads ONNX Runtime once per process and creates its environment. Every later call returns the
/// first call's outcome, so a failure is reported the same way each time. Its log goes to the
/// sink of [`set_log_sink`], whenever that is set.
pub fn init() -> Result<()> {
    let outcome = RUNTIME.get_or_init(|| {
        let library = locate_library().map_err(|e| e.to_string())?;
        let builder = ort::init_from(&library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?;
        let version = library_version(&library);
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
        Ok(Runtime {
            library,
            version,
            env,
        })
    });
    outcome.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

fn library_version(library: &Path) -> String {
    // "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=…" names the release it was cut from.
    let info = ort::info();
    info.split("git-branch=rel-")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .map(str::to_string)
        .or_else(|| {
            let name = library.file_name()?.to_str()?;
            name.strip_prefix("libonnxruntime.so.").map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
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
    RUNTIME.get()?.as_ref().ok().map(|r| r.version.as_str())
}

/// The file ONNX Runtime was loaded from.
pub fn library() -> Option<&'static Path> {
    RUNTIME.get()?.as_ref().ok().map(|r| r.library.as_path())
}
