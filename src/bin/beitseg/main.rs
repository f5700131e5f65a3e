// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg`: segment a video file, an RTSP camera, a webcam, an image or a test pattern with the
//! beitseg element and write, serve or show the result; describe a model; serve a file as an RTSP
//! camera; run the benchmarks. The element is registered statically, so no GST_PLUGIN_PATH is
//! needed.

mod args;
mod audio;
mod bench;
mod bench_load;
mod bench_streams;
mod camera;
mod config;
mod console;
mod images;
mod input;
mod inspect;
mod limits;
mod many;
mod metrics;
mod options;
mod output;
mod plan;
mod progress;
mod record;
mod run;
mod secrets;
mod server;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use console::say;

#[derive(Parser)]
#[command(
    version,
    about = "Real-time semantic segmentation with the beitseg GStreamer element"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segment INPUT and write, serve or show the result.
    Run(Box<args::RunArgs>),
    /// Describe a model: input, output, classes, preprocessing, and the provider it would run on;
    /// with --server, what an inference server says about a model it serves.
    Inspect {
        /// The .onnx file; with --server, the served model's name.
        model: PathBuf,
        /// Execution provider to try.
        #[arg(long, value_enum, default_value_t = gstbeitseg::ProviderSetting::Auto)]
        provider: gstbeitseg::ProviderSetting,
        /// An Open Inference Protocol (KServe v2) server: grpc://HOST:PORT, or grpcs:// for TLS
        /// (Triton, KServe, MLServer, OpenVINO Model Server).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// With --server: the model version (default: the server's choice).
        #[arg(
            long,
            value_name = "VERSION",
            default_value = "",
            hide_default_value = true
        )]
        server_model_version: String,
        /// With --server: seconds each call may take.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        server_timeout: f64,
        /// With a grpcs:// --server: a certificate authority (PEM) to trust besides the system's.
        #[arg(long, value_name = "FILE")]
        server_ca: Option<PathBuf>,
    },
    /// Serve a video file (unchanged, re-encoded as H.264) as an RTSP camera, e.g. to try
    /// `beitseg run rtsp://…` without a camera. Each client gets the file from its start.
    Serve {
        /// The video file.
        input: PathBuf,
        /// Where to serve: rtsp://HOST:PORT/PATH.
        #[arg(default_value = "rtsp://127.0.0.1:8554/camera")]
        url: String,
        /// Play the file on and on, live and shared by all clients, as a camera does.
        #[arg(long = "loop")]
        looped: bool,
        #[command(flatten)]
        access: args::AccessArgs,
    },
    /// Run the benchmarks and print their numbers (one JSON object per line with --json).
    Bench(bench::BenchArgs),
    /// One row of `beitseg bench load`, in a process of its own.
    #[command(hide = true)]
    LoadProbe(bench_load::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout; a mistake to stderr, masked (clap quotes the
            // value it refuses, which may be a camera URL with its password).
            let text = e.render().to_string();
            if e.use_stderr() {
                say!("{}", secrets::masked(text.trim_end()));
            } else {
                console::stdout(text);
            }
            console::flush(std::time::Duration::from_secs(2));
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = gst::init()
        .map_err(|e| anyhow!("cannot initialise GStreamer: {e}"))
        .and_then(|()| {
            gstbeitseg::plugin_register_static()
                .map_err(|e| anyhow!("cannot register beitseg: {e}"))
        })
        .and_then(|()| match &cli.command {
            Command::Run(args) => run::run(args),
            Command::Inspect {
                model,
                provider,
                server: Some(url),
                server_model_version,
                server_timeout,
                server_ca,
            } => {
                let _ = provider;
                if let Some(ca) = server_ca {
                    tls::check_authority("--server-ca", ca)?;
                }
                inspect::inspect_served(
                    url,
                    &model.to_string_lossy(),
                    server_model_version,
                    *server_timeout,
                    server_ca.as_deref(),
                )
            }
            Command::Inspect {
                model, provider, ..
            } => inspect::inspect(model, *provider),
            Command::Serve {
                input,
                url,
                looped,
                access,
            } => server::serve_file(input, url, *looped, access),
            Command::Bench(args) => bench::bench(args),
            Command::LoadProbe(args) => bench_load::probe(args),
        });
    let code = match result {
        // Stopped by a signal (outputs finished, or not when it failed): 128 + the signal, as
        // shells say it.
        Ok(()) => run::signal_exit_code().map_or(ExitCode::SUCCESS, ExitCode::from),
        Err(e) => {
            // Whatever the error quotes (a URL, GStreamer's own text), never a password.
            say!("error: {}", secrets::masked(&format!("{e:#}")));
            run::signal_exit_code().map_or(ExitCode::FAILURE, ExitCode::from)
        }
    };
    console::flush(std::time::Duration::from_secs(2));
    code
}
