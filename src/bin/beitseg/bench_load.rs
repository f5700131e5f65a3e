// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg bench load`: what a model costs to load, in time and memory, with beitseg's session
//! options and with plain ONNX Runtime (default and disabled graph optimisation) in the same run.
//! Each measurement runs in a process of its own (`beitseg load-probe`, hidden), so that
//! its peak memory is its own; a process that runs out of memory is reported as such.

use crate::console::out;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use gstbeitseg::model::{Model, Overrides};
use gstbeitseg::session::GraphCache;
use serde_json::{json, Value};

/// One way of loading a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// beitseg, with an empty optimised graph cache.
    Cold,
    /// beitseg, with the graph the cold start saved.
    Warm,
    /// One session per worker and no optimised graph cache, as beitseg loaded before.
    PerWorker,
    /// Plain ONNX Runtime, default options (all graph optimisations).
    OrtDefault,
    /// Plain ONNX Runtime, graph optimisation disabled.
    OrtDisabled,
}

#[derive(clap::Args)]
pub struct ProbeArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The optimised graph cache folder (cold and warm).
    #[arg(long)]
    cache: PathBuf,
    /// Timed runs after one untimed warm-up run; 0 skips running.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn status_kb(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

fn mb(kb: Option<u64>) -> Value {
    kb.map_or(Value::Null, |kb| json!((kb as f64 / 1024.0).round()))
}

/// Plain ONNX Runtime, as another program would use it: one session, its defaults or no graph
/// optimisation, nothing of beitseg's options.
fn plain_ort(model: &Path, optimise: bool) -> Result<ort::session::Session> {
    use ort::session::builder::GraphOptimizationLevel;
    gstbeitseg::runtime::init()?;
    let mut builder = ort::session::Session::builder(gstbeitseg::runtime::environment()?)
        .map_err(|e| anyhow!("{e}"))?;
    if !optimise {
        builder = builder
            .with_optimization_level(GraphOptimizationLevel::Disable)
            .map_err(|e| anyhow!("{e}"))?;
    }
    builder.commit_from_file(model).map_err(|e| anyhow!("{e}"))
}

/// `beitseg load-probe`: loads once as `variant` says, runs, prints one JSON line.
pub fn probe(args: &ProbeArgs) -> Result<()> {
    let cache = GraphCache::Dir(args.cache.clone());
    let overrides = |workers: usize| Overrides {
        graph_cache: cache.clone(),
        threads: Some((cores() / workers).max(1)),
        ..Default::default()
    };
    let t = Instant::now();
    let mut graph_cache = Value::Null;
    let mut notes = Value::Null;
    // What runs: beitseg's models (one shared, or one per worker), or a plain session.
    let mut models: Vec<Arc<Model>> = Vec::new();
    let mut plain = None;
    match args.variant {
        Variant::Cold | Variant::Warm => {
            let m = Model::load(&args.model, &overrides(args.workers))?;
            graph_cache = json!(m.info().load.graph_cache);
            notes = json!(m.info().load.notes);
            models.push(Arc::new(m));
        }
        Variant::PerWorker => {
            let o = Overrides {
                graph_cache: GraphCache::Off,
                ..overrides(args.workers)
            };
            for _ in 0..args.workers {
                models.push(Arc::new(Model::load(&args.model, &o)?));
            }
        }
        Variant::OrtDefault | Variant::OrtDisabled => {
            plain = Some(plain_ort(&args.model, args.variant == Variant::OrtDefault)?);
        }
    }
    let load = t.elapsed().as_secs_f64();
    let (peak_load, after_load) = (status_kb("VmHWM:"), status_kb("VmRSS:"));
    let mut run_ms = Value::Null;
    if args.runs > 0 {
        let info = match (&models.first(), &plain) {
            (Some(m), _) => m.info().clone(),
            // Plain sessions get the same input a beitseg session would.
            (None, _) => Model::load(
                &args.model,
                &Overrides {
                    graph_cache: GraphCache::Off,
                    ..Default::default()
                },
            )?
            .info()
            .clone(),
        };
        let len = 3 * info.width * info.height;
        let input: Vec<f32> = (0..len)
            .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let shape = [1, 3, info.height, info.width];
        let mut once = |input: &[f32]| -> Result<()> {
            if let Some(session) = plain.as_mut() {
                let value = ort::value::Tensor::from_array((shape, input.to_vec()))?;
                session
                    .run(ort::inputs![info.input_name.as_str() => value])
                    .map_err(|e| anyhow!("{e}"))?;
                return Ok(());
            }
            // Every worker runs once, at the same time, as an element's would.
            let workers = args.workers.max(1);
            std::thread::scope(|s| {
                let runs: Vec<_> = (0..workers)
                    .map(|w| {
                        let m = &models[w % models.len()];
                        s.spawn(move || m.run(input.to_vec(), 1).map(|_| ()))
                    })
                    .collect();
                runs.into_iter()
                    .try_for_each(|r| r.join().map_err(|_| anyhow!("a run panicked"))?)
            })
        };
        once(&input)?;
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            once(&input)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        run_ms = json!(times[times.len() / 2]);
    }
    out!(
        "{}",
        json!({
            "load_s": load,
            "peak_rss_mb": mb(peak_load),
            "rss_after_load_mb": mb(after_load),
            "rss_after_runs_mb": mb(status_kb("VmRSS:")),
            "peak_rss_all_mb": mb(status_kb("VmHWM:")),
            "run_ms": run_ms,
            "graph_cache": graph_cache,
            "notes": notes,
        })
    );
    Ok(())
}

fn variant_name(variant: Variant) -> String {
    variant
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The machine's memory, for the children's address-space limit.
fn mem_total_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

fn run_probe(model: &Path, variant: Variant, workers: usize, cache: &Path, runs: usize) -> Value {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let mut cmd = Command::new(exe);
    cmd.args(["load-probe", "--variant"])
        .arg(variant_name(variant))
        .arg("--model")
        .arg(model)
        .arg("--cache")
        .arg(cache)
        .args([
            "--workers",
            &workers.to_string(),
            "--runs",
            &runs.to_string(),
        ]);
    // A load that needs more than 85 % of the machine fails with "out of memory" in its own
    // process, instead of waking the kernel's OOM killer.
    if let Some(total) = mem_total_kb() {
        let limit = total * 1024 / 100 * 85;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(v) = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        return v;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let oom = stderr.contains("bad_alloc")
        || stderr.contains("memory allocation")
        || stderr.contains("out of memory")
        || out.status.code().is_none();
    let last = stderr.lines().last().unwrap_or("").trim().to_string();
    json!({"error": if oom { format!("out of memory ({last})") } else { last }})
}

/// `beitseg bench load`: the rows for each model.
pub fn load(models: &[PathBuf], runs: usize, json_out: bool) -> Result<()> {
    for model in models {
        if !model.is_file() {
            bail!("model {}: no such file", model.display());
        }
        let weights = std::fs::metadata(model)?.len()
            + std::fs::metadata(format!("{}.data", model.display())).map_or(0, |m| m.len());
        let cache = std::env::temp_dir().join(format!("beitseg-bench-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache).context("cannot create a cache folder")?;
        let rows = [
            (Variant::OrtDefault, 1),
            (Variant::OrtDisabled, 1),
            (Variant::Cold, 1),
            (Variant::Warm, 1),
            (Variant::Warm, 2),
            (Variant::Warm, 4),
            (Variant::PerWorker, 2),
            (Variant::PerWorker, 4),
        ];
        for (variant, workers) in rows {
            let mut row = run_probe(model, variant, workers, &cache, runs);
            let fields = row.as_object_mut().expect("probe rows are objects");
            let name = variant_name(variant);
            fields.insert("bench".into(), json!("load"));
            fields.insert("model".into(), json!(model.display().to_string()));
            fields.insert(
                "weights_mb".into(),
                json!((weights as f64 / 1048576.0).round()),
            );
            fields.insert("variant".into(), json!(name));
            fields.insert("workers".into(), json!(workers));
            if json_out {
                out!("{row}");
            } else {
                let num = |k: &str| row[k].as_f64().map_or("-".into(), |v| format!("{v:.2}"));
                match row["error"].as_str() {
                    Some(e) => out!("{} {name} x{workers}: {e}", model.display()),
                    None => out!(
                        "{} {name} x{workers}: load {} s, peak {} MB, after load {} MB, run {} ms",
                        model.display(),
                        num("load_s"),
                        num("peak_rss_mb"),
                        num("rss_after_load_mb"),
                        num("run_ms")
                    ),
                }
            }
        }
        let _ = std::fs::remove_dir_all(&cache);
    }
    Ok(())
}
