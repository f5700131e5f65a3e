// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! ONNX Runtime sessions as beitseg builds them: graph optimisation that cannot blow up, the
//! optimised graph built once and reused by later starts, and one session run from several
//! threads at once (the weights are in memory once, whatever the number of workers). No
//! GStreamer here.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::sys::{OrtStatusPtr, OrtValue};
use ort::AsPointer;

use crate::onnx_graph::Graph;

/// Where optimised graphs are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum GraphCache {
    /// `$XDG_CACHE_HOME/beitseg/graphs` (or `~/.cache/beitseg/graphs`).
    #[default]
    Default,
    /// Optimise at every start, keep nothing.
    Off,
    Dir(PathBuf),
}

impl GraphCache {
    /// The element's and the CLI's spelling: empty for the default folder, `off`, or a folder.
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "" => Self::Default,
            "off" | "none" => Self::Off,
            dir => Self::Dir(PathBuf::from(dir)),
        }
    }

    pub fn root(&self) -> Option<PathBuf> {
        match self {
            Self::Default => Some(crate::provider::cache_home().join("graphs")),
            Self::Off => None,
            Self::Dir(d) => Some(d.clone()),
        }
    }
}

/// How a session came to be, for the log, the bus and the benchmarks.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub seconds: f64,
    /// `built` (optimised now and saved), `reused` (a saved optimised graph), or `off`.
    pub graph_cache: &'static str,
    /// What was chosen and why, one line each.
    pub notes: Vec<String>,
}

/// What loading one model on one provider needs.
pub struct LoadPlan<'a> {
    pub path: &'a Path,
    pub threads: Option<usize>,
    /// The provider's name for the cache key; only the CPU's optimised graphs are cached
    /// (GPU providers assign nodes to the device at load, and TensorRT has its own cache).
    pub provider: &'static str,
    pub cache: &'a GraphCache,
    /// Registers the execution provider, if not the CPU.
    pub register: &'a dyn Fn(SessionBuilder) -> Result<SessionBuilder>,
}

/// The optimiser passes beitseg turns off for a model, and why. Constant folding evaluates, at
/// load, everything that depends only on constants, and keeps every intermediate until the pass
/// ends: for a graph that scatters and gathers over constants (transformers' BEiT exports build
/// their relative position index that way) that is ~1 GB a layer, more than 24 GB for
/// BEiT-large. Such graphs are loaded without constant folding (slower runs, no blow-up).
pub fn disabled_optimizers(path: &Path) -> (Option<&'static str>, Option<String>) {
    match Graph::read(path) {
        Ok(graph) => match graph.fold_risk() {
            Some(risk) => (
                Some("ConstantFolding"),
                Some(format!(
                    "constant folding off: the graph has {risk}, which ONNX Runtime would \
                     expand in memory at load (transformers' BEiT relative position index; \
                     scripts/export_beit.py writes graphs that fold cheaply and run faster)"
                )),
            ),
            None => (None, None),
        },
        // ONNX Runtime says what is wrong with the file.
        Err(_) => (None, None),
    }
}

/// `provider`'s optimised graph of `path` with these options: one folder per model content,
/// ONNX Runtime version, provider, CPU kind and optimiser choice.
pub fn cache_dir(
    root: &Path,
    path: &Path,
    provider: &str,
    disabled: Option<&str>,
) -> Result<PathBuf> {
    let key = format!(
        "{}-{}-ort{}-{provider}-{}-{}",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("model"),
        crate::provider::model_fingerprint(path)?,
        crate::runtime::version().unwrap_or("unknown"),
        cpu_kind(),
        match disabled {
            Some(d) => d.to_ascii_lowercase(),
            None => "all".into(),
        }
    );
    Ok(root.join(key))
}

/// ONNX Runtime's fully optimised CPU graphs use the instruction set of the machine that made
/// them (its NCHWc layout): a cache shared between machines keys on it.
fn cpu_kind() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
        "x86_64"
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::env::consts::ARCH
}

const OPTIMISED: &str = "model.onnx";
const OPTIMISED_DATA: &str = "model.onnx.data";

fn builder(plan: &LoadPlan, disabled: Option<&str>) -> Result<SessionBuilder> {
    let mut builder = Session::builder(crate::runtime::environment()?)
        .map_err(|e| anyhow!("cannot create an ONNX Runtime session: {e}"))?
        .with_log_id("beitseg")
        .map_err(|e| anyhow!("{e}"))?;
    if let Some(n) = plan.threads {
        builder = builder.with_intra_threads(n).map_err(|e| anyhow!("{e}"))?;
    }
    if let Some(d) = disabled {
        builder = builder
            .with_config_entry("optimization.disable_specified_optimizers", d)
            .map_err(|e| anyhow!("{e}"))?;
    }
    (plan.register)(builder)
}

fn commit(mut builder: SessionBuilder, path: &Path) -> Result<Session> {
    // ORT resolves external data (model.onnx.data) relative to the model's own directory.
    builder
        .commit_from_file(path)
        .map_err(|e| anyhow!("not a loadable ONNX model: {e}"))
}

/// Creates the session for `plan`: from the cached optimised graph when there is one, else
/// optimising the model (and caching the result for the next start).
pub fn load(plan: &LoadPlan) -> Result<(Session, LoadReport)> {
    let started = Instant::now();
    let (disabled, why) = disabled_optimizers(plan.path);
    let mut notes: Vec<String> = why.into_iter().collect();
    let cache = match (plan.provider, plan.cache.root()) {
        ("cpu", Some(root)) => match cache_dir(&root, plan.path, plan.provider, disabled) {
            Ok(dir) => Some(dir),
            Err(e) => {
                notes.push(format!("optimised graph cache off: {e:#}"));
                None
            }
        },
        _ => None,
    };
    let mut graph_cache = "off";
    let mut session = None;
    if let Some(dir) = &cache {
        let saved = dir.join(OPTIMISED);
        if saved.is_file() {
            // Already optimised: loading it with the optimiser off is the whole point.
            let reused = builder(plan, None).and_then(|b| {
                commit(
                    b.with_optimization_level(GraphOptimizationLevel::Disable)
                        .map_err(|e| anyhow!("{e}"))?,
                    &saved,
                )
            });
            match reused {
                Ok(s) => {
                    graph_cache = "reused";
                    notes.push(format!("optimised graph from {}", dir.display()));
                    session = Some(s);
                }
                Err(e) => {
                    notes.push(format!(
                        "the optimised graph in {} does not load ({e:#}): optimising again",
                        dir.display()
                    ));
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    }
    let session = match session {
        Some(s) => s,
        None => {
            let staging = match cache.as_deref().map(staging_dir) {
                Some(Ok(tmp)) => Some(tmp),
                Some(Err(e)) => {
                    notes.push(format!("optimised graph not saved: {e:#}"));
                    None
                }
                None => None,
            };
            let mut b = builder(plan, disabled)?;
            if let Some(tmp) = &staging {
                b = b
                    .with_optimized_model_path(tmp.join(OPTIMISED))
                    .and_then(|b| {
                        b.with_config_entry(
                            "session.optimized_model_external_initializers_file_name",
                            OPTIMISED_DATA,
                        )
                    })
                    .and_then(|b| {
                        b.with_config_entry(
                            "session.optimized_model_external_initializers_min_size_in_bytes",
                            "1024",
                        )
                    })
                    .map_err(|e| anyhow!("{e}"))?;
            }
            let session = commit(b, plan.path);
            if let (Some(tmp), Some(dir)) = (&staging, &cache) {
                match &session {
                    Ok(_) if tmp.join(OPTIMISED).is_file() => match publish(tmp, dir) {
                        Ok(()) => {
                            graph_cache = "built";
                            notes.push(format!("optimised graph saved in {}", dir.display()));
                        }
                        Err(e) => notes.push(format!("optimised graph not saved: {e:#}")),
                    },
                    _ => {
                        let _ = std::fs::remove_dir_all(tmp);
                    }
                }
            }
            session?
        }
    };
    release_freed_memory();
    Ok((
        session,
        LoadReport {
            seconds: started.elapsed().as_secs_f64(),
            graph_cache,
            notes,
        },
    ))
}

/// A fresh folder beside `dir` that ONNX Runtime writes the optimised graph into.
fn staging_dir(dir: &Path) -> Result<PathBuf> {
    let parent = dir.parent().context("cache folder has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = parent.join(format!(
        ".{}.{}-{}.tmp",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("graph"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

/// Moves a finished optimised graph into place in one rename: a reader sees all of it or none.
/// Another process that got there first wins; ours is dropped.
fn publish(tmp: &Path, dir: &Path) -> Result<()> {
    let outcome = std::fs::rename(tmp, dir);
    if outcome.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    if dir.join(OPTIMISED).is_file() {
        return Ok(());
    }
    outcome.with_context(|| format!("cannot move it to {}", dir.display()))
}

/// Optimising a graph frees a lot of memory that glibc keeps for later: give it back, so that
/// what a loaded model costs is what it holds.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One output tensor, as ONNX Runtime returned it.
pub struct Output {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// A session that several threads run at once. ONNX Runtime's `Run` is thread-safe (its C API
/// documents it; ort's Rust API takes `&mut self` only to stay on the safe side), so workers
/// share one session: its weights, prepacked kernels and optimised graph exist once.
pub struct SharedSession {
    session: Session,
    input: CString,
    output: CString,
    f16_output: bool,
}

struct Owned(*mut OrtValue);

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a value ONNX Runtime allocated for us and nobody else holds.
            unsafe { (ort::api().ReleaseValue)(self.0) }
        }
    }
}

fn check(status: OrtStatusPtr) -> Result<()> {
    if status.0.is_null() {
        return Ok(());
    }
    let api = ort::api();
    // SAFETY: a non-null status from ONNX Runtime holds a NUL-terminated message; released once.
    let message = unsafe {
        let text = CStr::from_ptr((api.GetErrorMessage)(status.0))
            .to_string_lossy()
            .into_owned();
        (api.ReleaseStatus)(status.0);
        text
    };
    bail!("{message}")
}

impl SharedSession {
    pub fn new(session: Session, input: &str, output: &str, f16_output: bool) -> Result<Self> {
        Ok(Self {
            session,
            input: CString::new(input)?,
            output: CString::new(output)?,
            f16_output,
        })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs the model on one input value; safe to call from several threads at once.
    pub fn run(&self, input: &ort::value::DynValue) -> Result<Output> {
        let api = ort::api();
        let input_names = [self.input.as_ptr()];
        let inputs = [input.ptr()];
        let output_names = [self.output.as_ptr()];
        let mut outputs = [std::ptr::null_mut::<OrtValue>()];
        // SAFETY: names and values outlive the call; ONNX Runtime allocates the output, which
        // `Owned` releases.
        check(unsafe {
            (api.Run)(
                self.session.ptr().cast_mut(),
                std::ptr::null(),
                input_names.as_ptr(),
                inputs.as_ptr(),
                1,
                output_names.as_ptr(),
                1,
                outputs.as_mut_ptr(),
            )
        })?;
        let value = Owned(outputs[0]);
        if value.0.is_null() {
            bail!("ONNX Runtime returned no output");
        }
        // SAFETY: `value` is a tensor of the type the session declared for this output; the
        // shape info is released before returning, the data copied out before `value` drops.
        unsafe {
            let mut info = std::ptr::null_mut();
            check((api.GetTensorTypeAndShape)(value.0, &mut info))?;
            let mut rank = 0usize;
            let mut shape = Vec::new();
            let dims = check((api.GetDimensionsCount)(info, &mut rank)).and_then(|()| {
                shape = vec![0i64; rank];
                check((api.GetDimensions)(info, shape.as_mut_ptr(), rank))
            });
            (api.ReleaseTensorTypeAndShapeInfo)(info);
            dims?;
            let count = shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
                .context("output has a negative dimension")?;
            let mut raw = std::ptr::null_mut();
            check((api.GetTensorMutableData)(value.0, &mut raw))?;
            if count > 0 && raw.is_null() {
                bail!("output has no data");
            }
            let data = if count == 0 {
                Vec::new()
            } else if self.f16_output {
                std::slice::from_raw_parts(raw as *const half::f16, count)
                    .iter()
                    .map(|x| x.to_f32())
                    .collect()
            } else {
                std::slice::from_raw_parts(raw as *const f32, count).to_vec()
            };
            Ok(Output { shape, data })
        }
    }
}
