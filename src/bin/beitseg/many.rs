// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run IN1 IN2 … -o DIR/` and `beitseg run --config cameras.toml`: several inputs in one
//! process. Each input runs as `beitseg run` would run it alone (its own pipeline, camera
//! reconnection, output and closing line), on its own thread; inputs with the same model and
//! settings share one worker pool (the element's `pool`), so their frames share batches. One
//! input's failure ends only that input; the run ends when every input has ended.

use crate::console::say;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::args::RunArgs;
use crate::input::Input;
use crate::output::Output;
use crate::record::run_one;
use crate::run::{RunContext, Shutdown};

pub fn run(args: &RunArgs) -> Result<()> {
    let (runs, metrics) = match &args.config {
        Some(path) => {
            refuse_other_options(path)?;
            let (runs, metrics) = crate::config::load(path)?;
            (runs, args.metrics.clone().or(metrics))
        }
        None => (from_command_line(args)?, args.metrics.clone()),
    };
    check(&runs)?;
    let pools = pool_names(&runs);
    let metrics = crate::metrics::Endpoint::start(metrics.as_deref())?;
    let shutdown = Shutdown::install();
    let lines = indicatif::MultiProgress::new();
    let models: std::collections::BTreeSet<PathBuf> =
        runs.iter().map(crate::input::model_label).collect();
    for m in &models {
        say!(
            "loading {} for {} input{}",
            m.display(),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        );
    }
    let failed: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .zip(pools)
            .enumerate()
            .map(|(i, (one, pool))| {
                let context = RunContext {
                    shutdown: shutdown.clone(),
                    lines: Some(lines.clone()),
                    pool: Some(pool),
                    metrics: metrics.as_ref().map(|m| m.registry.clone()),
                    index: i + 1,
                };
                let lines = lines.clone();
                scope.spawn(move || match run_one(one, &context) {
                    Ok(()) => false,
                    Err(e) => {
                        let line = crate::secrets::masked(&format!("{e:#}"));
                        lines.suspend(|| say!("error: [{}] {line}", i + 1));
                        true
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(true))
            .collect()
    });
    let n = failed.iter().filter(|f| **f).count();
    if n > 0 {
        bail!("{n} of {} inputs failed (see above)", runs.len());
    }
    Ok(())
}

/// With --config, options belong in the file (besides --metrics): one given on the command line
/// too would be ignored, so it is an error.
fn refuse_other_options(config: &Path) -> Result<()> {
    let words: Vec<String> = std::env::args()
        .skip_while(|a| a != "run")
        .skip(1)
        .collect();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let name = w.split('=').next().unwrap_or(w);
        match name {
            "--config" | "--metrics" => i += if w.contains('=') { 1 } else { 2 },
            _ => bail!(
                "{w}: with --config {}, options go in the file (as `{} = …`)",
                config.display(),
                name.trim_start_matches('-')
            ),
        }
    }
    Ok(())
}

/// `beitseg run IN1 IN2 … [-o DIR/]`: one run per input, its output in DIR named after it.
fn from_command_line(args: &RunArgs) -> Result<Vec<RunArgs>> {
    let inputs: Vec<&String> = std::iter::once(&args.input)
        .chain(&args.more_inputs)
        .collect();
    let folder = |flag: &str, value: &Option<String>| -> Result<Option<PathBuf>> {
        match value {
            None => Ok(None),
            Some(o) if o.ends_with('/') || Path::new(o).is_dir() => Ok(Some(PathBuf::from(o))),
            Some(o) => bail!(
                "{flag} {o}: with {} inputs it names a folder (ending in /) for one output each",
                inputs.len()
            ),
        }
    };
    let out = folder("output", &args.output)?.unwrap_or_else(|| PathBuf::from("out"));
    let masks = folder("--mask-output", &args.mask_output)?;
    for dir in std::iter::once(&out).chain(masks.as_ref()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow!("output {}: cannot create the folder: {e}", dir.display()))?;
    }
    inputs
        .into_iter()
        .map(|input| {
            let resolved = crate::secrets::expand_env(input)?;
            let kind = Input::parse(&resolved, args.num_buffers)?;
            let name = output_name(&kind);
            let output = match kind {
                Input::Image(_) => out.join(format!("{name}.png")),
                Input::Images(_) => out.join(format!("{name}/")),
                _ => out.join(format!("{name}.mp4")),
            };
            Ok(RunArgs {
                input: input.clone(),
                more_inputs: Vec::new(),
                output: Some(output.display().to_string()),
                mask_output: masks
                    .as_ref()
                    .map(|m| format!("{}/", m.join(&name).display())),
                ..args.clone()
            })
        })
        .collect()
}

/// The name of an input's output: a file's stem, a folder's name, `host_port_path` for a
/// camera or URL, the device's name.
pub(crate) fn output_name(kind: &Input) -> String {
    let raw = match kind {
        Input::Test(_) => "test".to_string(),
        Input::Image(p) | Input::File(p) | Input::V4l2(p) => p
            .file_stem()
            .map_or("input".into(), |s| s.to_string_lossy().into_owned()),
        Input::Images(p) => p
            .file_name()
            .map_or("images".into(), |s| s.to_string_lossy().into_owned()),
        Input::Rtsp(u) | Input::Uri(u) => match url::Url::parse(u) {
            Ok(url) => {
                let mut name = url.host_str().unwrap_or("camera").to_string();
                if let Some(port) = url.port() {
                    name.push_str(&format!("_{port}"));
                }
                name.push_str(url.path());
                name
            }
            Err(_) => "camera".to_string(),
        },
    };
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches(['_', '.']).to_string();
    if name.is_empty() {
        "input".into()
    } else {
        name
    }
}

/// Before anything starts: every input exists, and no two inputs write or serve the same
/// place.
fn check(runs: &[RunArgs]) -> Result<()> {
    let mut taken: Vec<(String, String)> = Vec::new();
    for run in runs {
        // The options and the model, as a run of one input checks them.
        crate::options::check_args(run)?;
        let shown = crate::secrets::masked(&run.input);
        if run.input_file.is_none() {
            Input::parse(&crate::secrets::expand_env(&run.input)?, run.num_buffers)?;
        }
        for target in [&run.output, &run.mask_output].into_iter().flatten() {
            let place = place_of(target)?;
            if let Some((other, _)) = taken.iter().find(|(_, p)| *p == place) {
                bail!("inputs {other} and {shown} would both write {target}; give each its own output");
            }
            taken.push((shown.clone(), place));
        }
    }
    Ok(())
}

/// Where an output goes, comparable between inputs: an absolute path, or a served endpoint.
fn place_of(target: &str) -> Result<String> {
    Ok(match Output::parse(target)? {
        Output::Rtsp(e) => format!("rtsp {}:{}{}", e.host, e.port, e.path),
        Output::Display => format!("display {}", target),
        _ => {
            let p = Path::new(target.trim_end_matches('/'));
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            abs.display().to_string()
        }
    })
}

/// A pool per set of inputs that run the same model with the same settings.
fn pool_names(runs: &[RunArgs]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    runs.iter()
        .map(|r| {
            let e = &r.element;
            let key = format!(
                "{:?}",
                (
                    (crate::input::model_of(r), &e.server, &e.server_model),
                    r.provider,
                    r.workers,
                    r.batch_size,
                    (
                        e.resize,
                        &e.labels,
                        &e.palette,
                        e.intra_threads,
                        e.device_id
                    ),
                    (e.batch_timeout, &e.engine_cache, &e.graph_cache),
                )
            );
            let i = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            format!("pool-{}", i + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_after_their_inputs() {
        gst::init().unwrap();
        let cam = |u: &str| output_name(&Input::Rtsp(u.into()));
        assert_eq!(
            cam("rtsp://admin:pw@10.0.0.5:8554/live/main"),
            "10.0.0.5_8554_live_main"
        );
        assert_eq!(cam("rtsp://cam.local/stream"), "cam.local_stream");
        assert_eq!(output_name(&Input::File("videos/a b.mp4".into())), "a_b");
        assert_eq!(output_name(&Input::Test(5)), "test");
    }
}
