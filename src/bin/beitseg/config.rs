// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg run --config cameras.toml`: inputs with their own outputs and options.
//!
//! ```toml
//! model = "models/beit.onnx"      # options for every input: any `run` option, no dashes
//! drop-policy = "oldest"
//! metrics = "127.0.0.1:9464"      # for the whole run
//!
//! [[input]]
//! input = "rtsp://admin:${CAM1_PASSWORD}@10.0.0.5/stream"
//! output = "out/cam1.mp4"
//!
//! [[input]]
//! input = "rtsp://10.0.0.6/stream"
//! output = "rtsp://127.0.0.1:8554/cam2"
//! mode = "color"
//! ```
//!
//! Each input's options go through the same parser as the command line's, so every option
//! means the same in both places; a mistake is one line that names the file, the input and the
//! option.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Command, Parser};

use crate::args::RunArgs;

/// One input's options, parsed as `beitseg run` parses its own.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct One {
    #[command(flatten)]
    run: RunArgs,
}

/// Keys a config may not hold: they name other config sources.
const NOT_IN_CONFIG: [&str; 3] = ["config", "input-file", "more-inputs"];

/// The runs of a config file, and its `metrics` address.
pub fn load(path: &Path) -> Result<(Vec<RunArgs>, Option<String>)> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("config {shown}: {e}"))?;
    // It may name passwords: a file others can read is a warning.
    crate::server::warn_if_shared(path);
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        anyhow!("config {shown}: {at}{}", e.message().trim())
    })?;
    let options = options();
    let mut defaults = Vec::new();
    let mut metrics = None;
    let mut inputs = None;
    for (key, value) in &table {
        match key.as_str() {
            "input" => inputs = Some(value),
            "metrics" => {
                metrics = Some(
                    value
                        .as_str()
                        .ok_or_else(|| anyhow!("config {shown}: metrics: expected \"HOST:PORT\""))?
                        .to_string(),
                )
            }
            _ => defaults.push((key.clone(), value.clone())),
        }
    }
    for (key, _) in &defaults {
        check_key(&options, key).map_err(|e| anyhow!("config {shown}: {e}"))?;
    }
    let Some(inputs) = inputs.and_then(|v| v.as_array()) else {
        bail!("config {shown}: no [[input]] tables: nothing to segment");
    };
    if inputs.is_empty() {
        bail!("config {shown}: no [[input]] tables: nothing to segment");
    }
    let mut runs = Vec::new();
    for (i, entry) in inputs.iter().enumerate() {
        let n = i + 1;
        let Some(entry) = entry.as_table() else {
            bail!("config {shown}: input {n}: expected a table ([[input]])");
        };
        let Some(input) = entry.get("input").and_then(|v| v.as_str()) else {
            bail!("config {shown}: input {n}: no `input = \"…\"` in it");
        };
        let at = format!(
            "config {shown}: input {n} ({})",
            crate::secrets::masked(input)
        );
        let mut argv = vec![input.to_string()];
        let mut merged = defaults.clone();
        for (key, value) in entry.iter().filter(|(k, _)| k.as_str() != "input") {
            if key == "metrics" {
                bail!("{at}: metrics is for the whole run: put it before the first [[input]]");
            }
            check_key(&options, key).map_err(|e| anyhow!("{at}: {e}"))?;
            merged.retain(|(k, _)| k != key);
            merged.push((key.clone(), value.clone()));
        }
        for (key, value) in &merged {
            let takes_value = options
                .iter()
                .find(|(name, _)| name == key)
                .is_some_and(|(_, v)| *v);
            push_option(&mut argv, key, value, takes_value).map_err(|e| anyhow!("{at}: {e}"))?;
        }
        let one = One::try_parse_from(&argv).map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("").trim();
            anyhow!("{at}: {}", first.strip_prefix("error: ").unwrap_or(first))
        })?;
        runs.push(one.run);
    }
    Ok((runs, metrics))
}

/// Every long option of `run`, and whether it takes a value.
fn options() -> Vec<(String, bool)> {
    RunArgs::augment_args(Command::new("run"))
        .get_arguments()
        .filter_map(|a| {
            let name = a.get_long()?.to_string();
            let takes_value = a.get_action().takes_values();
            Some((name, takes_value))
        })
        .collect()
}

fn check_key(options: &[(String, bool)], key: &str) -> Result<()> {
    if NOT_IN_CONFIG.contains(&key) {
        bail!("{key}: not in a config file");
    }
    if options.iter().any(|(name, _)| name == key) {
        return Ok(());
    }
    let closest = options
        .iter()
        .map(|(name, _)| (strsim::levenshtein(name, key), name))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, name)| format!(" (did you mean {name}?)"))
        .unwrap_or_default();
    bail!("unknown option {key}{closest}")
}

/// `key = value` as command-line words: `--key value`, or `--key` alone for a switch set to true.
fn push_option(
    argv: &mut Vec<String>,
    key: &str,
    value: &toml::Value,
    takes_value: bool,
) -> Result<()> {
    let flag = format!("--{key}");
    if !takes_value {
        match value.as_bool() {
            Some(true) => argv.push(flag),
            Some(false) => {}
            None => bail!("{key}: expected true or false"),
        }
        return Ok(());
    }
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => bail!("{key}: expected a string, number or true/false"),
    };
    // `--key=value`: a value starting with a dash stays a value.
    argv.push(format!("{flag}={text}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("beitseg-config-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn options_apply_to_every_input_and_inputs_override_them() {
        let path = write(
            "ok.toml",
            "provider = \"cpu\"\nno-audio = true\nmetrics = \"9464\"\n\
             [[input]]\ninput = \"a.mp4\"\noutput = \"out/a.mp4\"\n\
             [[input]]\ninput = \"b.mp4\"\nprovider = \"auto\"\nreconnect = false\nstall-timeout = 2\n",
        );
        let (runs, metrics) = load(&path).unwrap();
        assert_eq!(metrics.as_deref(), Some("9464"));
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].input, "a.mp4");
        assert_eq!(runs[0].output.as_deref(), Some("out/a.mp4"));
        assert_eq!(runs[0].provider, gstbeitseg::ProviderSetting::Cpu);
        assert!(runs[0].no_audio && runs[1].no_audio);
        assert_eq!(runs[1].provider, gstbeitseg::ProviderSetting::Auto);
        assert!(!runs[1].reconnect);
        assert_eq!(runs[1].stall_timeout, 2.0);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn mistakes_are_one_line_naming_file_input_and_option() {
        for (text, says) in [
            (
                "[[input]]\ninput = \"a.mp4\"\noutptu = \"x.mp4\"\n",
                "input 1 (a.mp4): unknown option outptu (did you mean output?)",
            ),
            (
                "[[input]]\noutput = \"x.mp4\"\n",
                "input 1: no `input = \"…\"` in it",
            ),
            (
                "provider = \"gpu\"\n[[input]]\ninput = \"a.mp4\"\n",
                "input 1 (a.mp4): invalid value 'gpu' for '--provider",
            ),
            ("model = \"m.onnx\"\n", "no [[input]] tables"),
            (
                "[[input]]\ninput = \"a.mp4\"\nmetrics = \"1\"\n",
                "metrics is for the whole run",
            ),
            ("[[input]\n", "line 1: "),
            (
                "input-file = \"x\"\n[[input]]\ninput = \"a\"\n",
                "input-file: not in a config file",
            ),
        ] {
            let path = write("bad.toml", text);
            let err = load(&path).err().expect("an error").to_string();
            assert!(
                err.starts_with(&format!("config {}: ", path.display())),
                "{err}"
            );
            assert!(err.contains(says), "{text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            let _ = std::fs::remove_file(path);
        }
    }
}
