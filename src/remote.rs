// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A client of the Open Inference Protocol (KServe v2 over gRPC, `inference.GRPCInferenceService`):
//! the protocol Triton, KServe, MLServer and OpenVINO Model Server speak. Calls block the caller
//! (a worker thread) on one process-wide async runtime, with a deadline each. Errors are one line
//! that names the server and, where it applies, the model. No GStreamer here.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The messages and the client generated from `proto/kserve_v2.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_client::GrpcInferenceServiceClient;

/// One runtime for every connection of the process (gst-plugins-rs elements share theirs the
/// same way); its two threads only move bytes.
static RUNTIME: LazyLock<std::result::Result<tokio::runtime::Runtime, String>> =
    LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("beitseg-grpc")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    RUNTIME
        .as_ref()
        .map_err(|e| anyhow!("cannot start the gRPC runtime: {e}"))
}

/// The largest request or answer (a batch of frames or its logits).
const MAX_MESSAGE: usize = 1 << 30;

/// A tensor as the server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// "FP32", "FP16", "INT64", …
    pub datatype: String,
    /// -1 for a free dimension.
    pub shape: Vec<i64>,
}

/// What the server says about a model.
#[derive(Clone, Debug)]
pub struct ServedModel {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// A connection to an inference server.
#[derive(Clone)]
pub struct Server {
    url: String,
    client: GrpcInferenceServiceClient<Channel>,
    timeout: Duration,
}

/// A failed call: what happened, and whether trying again later may work (the server is down,
/// restarting, overloaded or slow) or not (no such model, a wrong request).
#[derive(Debug)]
pub struct CallError {
    pub transient: bool,
    pub text: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl CallError {
    fn of(status: &tonic::Status) -> Self {
        use tonic::Code;
        let message = status.message();
        let too_large = message.contains("larger than max");
        // A connection lost mid-request (the server killed or restarting) comes as Unknown.
        let lost = ["transport", "connection", "h2 protocol", "broken pipe"]
            .iter()
            .any(|w| message.contains(w));
        CallError {
            // Cancelled: a server shutting down (a rolling restart) cancels the calls it holds.
            transient: matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled
            ) || (status.code() == Code::ResourceExhausted && !too_large)
                || (status.code() == Code::Unknown && lost),
            text: status_text(status),
        }
    }
}

/// The server's answer to a failed call, in a person's words.
fn status_text(status: &tonic::Status) -> String {
    let message = status.message().trim();
    match status.code() {
        tonic::Code::Unavailable => format!("unavailable ({message})"),
        tonic::Code::DeadlineExceeded => "no answer in time".to_string(),
        tonic::Code::NotFound => format!("not found ({message})"),
        tonic::Code::ResourceExhausted if message.contains("larger than max") => format!(
            "ResourceExhausted: {message} (raise the server's gRPC message limit: a 640x640 \
             frame is 4.9 MB)"
        ),
        _ if message.is_empty() => format!("{:?}", status.code()),
        _ => format!("{:?}: {message}", status.code()),
    }
}

impl Server {
    /// Connects to `grpc://HOST:PORT`, or `grpcs://HOST:PORT` over TLS (the system's
    /// certificate authorities, and `ca` if given), and checks that an inference server answers
    /// there, each step within `timeout`.
    pub fn connect(address: &str, timeout: Duration, ca: Option<&std::path::Path>) -> Result<Self> {
        // In every message: its credentials masked.
        let url = &crate::secrets::masked(address);
        let bad = || anyhow!("server {url}: expected grpc://HOST:PORT or grpcs://HOST:PORT");
        let (tls, rest) = match address.split_once("://") {
            Some(("grpc", rest)) => (false, rest),
            Some(("grpcs", rest)) => (true, rest),
            _ => return Err(bad()),
        };
        if rest.is_empty() || rest.contains('/') {
            return Err(bad());
        }
        let scheme = if tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{rest}"))
            .map_err(|e| anyhow!("server {url}: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if tls {
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = ca {
                let pem = std::fs::read(ca)
                    .map_err(|e| anyhow!("server {url}: CA certificate {}: {e}", ca.display()))?;
                config = config.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| anyhow!("server {url}: TLS: {e}"))?;
        } else if let Some(ca) = ca {
            bail!(
                "server {url}: a CA certificate ({}) is for grpcs://, not grpc://",
                ca.display()
            );
        }
        let rt = runtime()?;
        let channel = rt
            .block_on(async { tokio::time::timeout(timeout, endpoint.connect()).await })
            .map_err(|_| anyhow!("server {url}: no connection within {timeout:?}"))?
            .map_err(|e| {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = s.to_string();
                    source = s.source();
                }
                anyhow!("server {url}: cannot connect ({why})")
            })?;
        // Frames and logits are megabytes: gRPC's default 4 MB limit would refuse them.
        let client = GrpcInferenceServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let server = Server {
            url: url.to_string(),
            client,
            timeout,
        };
        let live = server
            .call(|mut c| async move { c.server_live(proto::ServerLiveRequest {}).await })
            .map_err(|e| anyhow!("server {url}: not an inference server that answers ({e})"))?;
        if !live.live {
            bail!("server {url}: says it is not live");
        }
        Ok(server)
    }

    /// Its address as shown: credentials masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One call with the deadline, on the shared runtime.
    fn call<T, F, Fut>(&self, f: F) -> std::result::Result<T, CallError>
    where
        F: FnOnce(GrpcInferenceServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_within(self.timeout, f)
    }

    /// One call that may take at most `limit`.
    fn call_within<T, F, Fut>(&self, limit: Duration, f: F) -> std::result::Result<T, CallError>
    where
        F: FnOnce(GrpcInferenceServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let rt = runtime().map_err(|e| CallError {
            transient: false,
            text: e.to_string(),
        })?;
        let client = self.client.clone();
        match rt.block_on(async { tokio::time::timeout(limit, f(client)).await }) {
            Err(_) => Err(CallError {
                transient: true,
                text: "no answer in time".into(),
            }),
            Ok(Err(status)) => Err(CallError::of(&status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// What the server says about `name` (`version` empty: the server's choice), once the model
    /// is ready.
    pub fn model(&self, name: &str, version: &str) -> Result<ServedModel> {
        let at = |e: CallError| anyhow!("server {}: model {name}: {e}", self.url);
        let (n, v) = (name.to_string(), version.to_string());
        let ready = self
            .call(|mut c| async move {
                c.model_ready(proto::ModelReadyRequest {
                    name: n,
                    version: v,
                })
                .await
            })
            .map_err(at)?;
        if !ready.ready {
            bail!("server {}: model {name}: not ready", self.url);
        }
        let (n, v) = (name.to_string(), version.to_string());
        let meta = self
            .call(|mut c| async move {
                c.model_metadata(proto::ModelMetadataRequest {
                    name: n,
                    version: v,
                })
                .await
            })
            .map_err(at)?;
        let spec = |t: proto::model_metadata_response::TensorMetadata| TensorSpec {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
        };
        Ok(ServedModel {
            name: meta.name,
            versions: meta.versions,
            platform: meta.platform,
            inputs: meta.inputs.into_iter().map(spec).collect(),
            outputs: meta.outputs.into_iter().map(spec).collect(),
        })
    }

    /// Runs `model` on one input tensor of `input.shape` (sent as raw little-endian FP32, or FP16
    /// when `input.datatype` says so) and returns its first output's shape and values as f32
    /// (FP32 or FP16 on the wire).
    pub fn infer(
        &self,
        model: &str,
        version: &str,
        input: &TensorSpec,
        data: &[f32],
    ) -> Result<(Vec<i64>, Vec<f32>)> {
        self.try_infer(model, version, input, data, self.timeout)
            .map_err(|e| anyhow!("{e}"))
    }

    /// [`Server::infer`] within `limit` (at most the server's timeout), telling a passing
    /// failure from a lasting one.
    pub fn try_infer(
        &self,
        model: &str,
        version: &str,
        input: &TensorSpec,
        data: &[f32],
        limit: Duration,
    ) -> std::result::Result<(Vec<i64>, Vec<f32>), CallError> {
        // As the served model takes it: FP32, or FP16 (a server does not convert).
        let fp16 = input.datatype == "FP16";
        let raw: Vec<u8> = if fp16 {
            data.iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect()
        } else {
            data.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        let request = proto::ModelInferRequest {
            model_name: model.to_string(),
            model_version: version.to_string(),
            id: String::new(),
            inputs: vec![proto::model_infer_request::InferInputTensor {
                name: input.name.clone(),
                datatype: if fp16 { "FP16" } else { "FP32" }.into(),
                shape: input.shape.clone(),
                contents: None,
            }],
            outputs: Vec::new(),
            raw_input_contents: vec![raw],
        };
        let response = self
            .call_within(limit.min(self.timeout), |mut c| async move {
                c.model_infer(request).await
            })
            .map_err(|e| CallError {
                transient: e.transient,
                text: format!("server {}: model {model}: inference failed: {e}", self.url),
            })?;
        let bad = |why: &str| CallError {
            transient: false,
            text: format!("server {}: model {model}: {why}", self.url),
        };
        let output = response
            .outputs
            .first()
            .ok_or_else(|| bad("the answer has no output"))?;
        let values: Vec<f32> = match (
            output.datatype.as_str(),
            response.raw_output_contents.first(),
        ) {
            ("FP32", Some(raw)) => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            ("FP16", Some(raw)) => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            ("FP32", None) => output
                .contents
                .as_ref()
                .map(|c| c.fp32_contents.clone())
                .unwrap_or_default(),
            // Class ids, carried as f32 (exact up to 2^24).
            ("INT64", Some(raw)) => raw
                .chunks_exact(8)
                .map(|b| {
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            ("INT32", Some(raw)) => raw
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
                .collect(),
            ("INT64", None) => output
                .contents
                .as_ref()
                .map(|c| c.int64_contents.iter().map(|v| *v as f32).collect())
                .unwrap_or_default(),
            ("INT32", None) => output
                .contents
                .as_ref()
                .map(|c| c.int_contents.iter().map(|v| *v as f32).collect())
                .unwrap_or_default(),
            (other, _) => {
                return Err(bad(&format!(
                    "output {} is {other}, not FP32, FP16 or class ids (INT64, INT32)",
                    output.name
                )))
            }
        };
        let expected: i64 = output.shape.iter().product();
        if output.shape.iter().any(|d| *d < 0) || expected as usize != values.len() {
            return Err(bad(&format!(
                "output {} has shape {:?} but {} values",
                output.name,
                output.shape,
                values.len()
            )));
        }
        Ok((output.shape.clone(), values))
    }
}

/// What an element or the CLI asks for: which server and model, and how patient to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerRequest {
    /// `grpc://HOST:PORT`.
    pub url: String,
    pub model: String,
    /// Empty: the server's choice.
    pub version: String,
    /// Per call.
    pub timeout: Duration,
    /// How long a server that is down, restarting or overloaded is retried (with backoff)
    /// before a frame fails.
    pub give_up: Duration,
    /// grpcs://: a certificate authority to trust besides the system's (PEM).
    pub ca: Option<std::path::PathBuf>,
}

/// A model an inference server runs, as [`crate::model::Model`] uses it.
pub struct RemoteModel {
    server: Server,
    request: ServerRequest,
    served: ServedModel,
    retries: std::sync::atomic::AtomicU64,
    /// When the server stopped answering (the first passing failure since its last answer):
    /// every frame gives up `give_up` after it, however many wait behind one another.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// The served model returns class ids, not logits.
    pub class_ids: bool,
}

/// Whether a served output holds class ids (integers) rather than scores.
pub fn is_class_ids(output: &TensorSpec) -> bool {
    matches!(output.datatype.as_str(), "INT64" | "INT32")
}

/// The shape of the scores a served output stands for: its own, or for class ids (`[N,h,w]`,
/// with or without a 1-channel axis) the one-hot scores they become, their class count free
/// (-1), laid out as the input is (NCHW or NHWC).
pub fn scores_shape(input: &TensorSpec, output: &TensorSpec) -> Result<Vec<i64>> {
    if !is_class_ids(output) {
        return Ok(output.shape.clone());
    }
    let nchw = input.shape.get(1) == Some(&3);
    Ok(match output.shape.as_slice() {
        [n, h, w] | [n, 1, h, w] if nchw => vec![*n, -1, *h, *w],
        [n, h, w] | [n, h, w, 1] => vec![*n, *h, *w, -1],
        s => bail!(
            "class-id output {:?} has shape {s:?}; expected [N,h,w]",
            output.name
        ),
    })
}

impl RemoteModel {
    /// Connects and asks the server about the model: an error if either fails.
    pub fn connect(request: &ServerRequest) -> Result<Self> {
        let server = Server::connect(&request.url, request.timeout, request.ca.as_deref())?;
        let served = server.model(&request.model, &request.version)?;
        Ok(RemoteModel {
            server,
            request: request.clone(),
            served,
            retries: Default::default(),
            down_since: Default::default(),
            class_ids: false,
        })
    }

    pub fn served(&self) -> &ServedModel {
        &self.served
    }

    /// Requests tried again so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One batch of preprocessed images (`shape`, FP32) through the server. A passing failure
    /// (the server down, restarting, cancelling its calls, overloaded or slow) is retried after
    /// 0.1 s, 0.2 s … 2 s until `give_up` has passed since the server stopped answering (the
    /// channel reconnects by itself when the server is back); no call outlasts that moment.
    /// Then, or at a lasting failure, an error.
    ///
    /// Class ids become one-hot scores over `classes` (laid out as `layout`), so that the exact
    /// decoder turns them back into classes: at the server's resolution, upsampled without the
    /// logits' bilinear detail.
    pub fn run(
        &self,
        shape: &[usize; 4],
        input: &[f32],
        classes: usize,
        layout: crate::model::Layout,
    ) -> Result<crate::session::Output> {
        let mut spec = self.served.inputs[0].clone();
        spec.shape = shape.iter().map(|d| *d as i64).collect();
        let mut delay = Duration::from_millis(100);
        loop {
            let Some(left) = self.time_left() else {
                bail!(
                    "server {}: model {}: no answer; gave up after {:.0} s",
                    self.server.url,
                    self.request.model,
                    self.request.give_up.as_secs_f64()
                );
            };
            let tried = self.server.try_infer(
                &self.request.model,
                &self.request.version,
                &spec,
                input,
                left,
            );
            match tried {
                Ok((shape, data)) => {
                    *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    if !self.class_ids {
                        return Ok(crate::session::Output { shape, data });
                    }
                    return one_hot(&shape, &data, classes, layout).map_err(|e| {
                        anyhow!(
                            "server {}: model {}: {e}",
                            self.server.url,
                            self.request.model
                        )
                    });
                }
                Err(e) if e.transient => {
                    self.down_since
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(std::time::Instant::now);
                    let Some(left) = self.time_left() else {
                        bail!(
                            "{e}; gave up after {:.0} s",
                            self.request.give_up.as_secs_f64()
                        );
                    };
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(delay.min(left));
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => bail!("{e}"),
            }
        }
    }

    /// How long a call may still take: `give_up` less the time the server has been away, no
    /// limit but the server's timeout while it answers, None once given up.
    fn time_left(&self) -> Option<Duration> {
        match *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(since) => Some(self.request.give_up.saturating_sub(since.elapsed()))
                .filter(|left| !left.is_zero()),
            None => Some(Duration::MAX),
        }
    }
}

/// Class ids `[N,h,w]` (or with a 1-channel axis) as one-hot scores `[N,C,h,w]` (NCHW) or
/// `[N,h,w,C]` (NHWC).
fn one_hot(
    shape: &[i64],
    ids: &[f32],
    classes: usize,
    layout: crate::model::Layout,
) -> Result<crate::session::Output> {
    let dims: Vec<usize> = shape.iter().map(|d| (*d).max(0) as usize).collect();
    let (n, h, w) = match dims.as_slice() {
        [n, h, w] | [n, 1, h, w] | [n, h, w, 1] => (*n, *h, *w),
        _ => bail!("class ids of shape {shape:?}; expected [N,h,w]"),
    };
    let plane = h * w;
    let mut data = vec![0f32; n * classes * plane];
    for (i, id) in ids.iter().enumerate() {
        let class = *id as usize;
        if *id < 0.0 || class >= classes {
            bail!("class id {id} where the model has {classes} classes");
        }
        let (img, p) = (i / plane, i % plane);
        let at = match layout {
            crate::model::Layout::Nchw => img * classes * plane + class * plane + p,
            crate::model::Layout::Nhwc => (img * plane + p) * classes + class,
        };
        data[at] = 1.0;
    }
    let c = classes as i64;
    let shape = match layout {
        crate::model::Layout::Nchw => vec![n as i64, c, h as i64, w as i64],
        crate::model::Layout::Nhwc => vec![n as i64, h as i64, w as i64, c],
    };
    Ok(crate::session::Output { shape, data })
}
