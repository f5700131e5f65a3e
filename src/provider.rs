// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Execution providers: which one a session asks for, finding CUDA 13 / cuDNN 9 libraries, the
//! TensorRT engine cache, and the order `auto` tries them in. No GStreamer here.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use ort::ep::{self, ExecutionProviderDispatch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// TensorRT, then CUDA, then the CPU, whichever loads first.
    Auto,
    TensorRt,
    Cuda,
    Cpu,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::TensorRt => "tensorrt",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        }
    }

    /// The providers to try, best first.
    pub fn candidates(self) -> &'static [Provider] {
        match self {
            Self::Auto => &[Self::TensorRt, Self::Cuda, Self::Cpu],
            Self::TensorRt => &[Self::TensorRt],
            Self::Cuda => &[Self::Cuda],
            Self::Cpu => &[Self::Cpu],
        }
    }
}

/// What a session asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderRequest {
    pub provider: Provider,
    pub device_id: u32,
    /// TensorRT engine and timing caches; `None` uses [`default_engine_cache`].
    pub engine_cache: Option<PathBuf>,
}

impl Default for ProviderRequest {
    fn default() -> Self {
        Self {
            provider: Provider::Cpu,
            device_id: 0,
            engine_cache: None,
        }
    }
}

/// `$XDG_CACHE_HOME/beitseg` or `~/.cache/beitseg`: TensorRT engines and optimised graphs.
pub fn cache_home() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("beitseg")
}

/// `$XDG_CACHE_HOME/beitseg/tensorrt` or `~/.cache/beitseg/tensorrt`.
pub fn default_engine_cache() -> PathBuf {
    cache_home().join("tensorrt")
}

/// A short stable fingerprint of a model file (size, and FNV-1a over its first and last MiB;
/// reading all of a 2 GB model at every start would cost seconds), plus its external data.
pub fn model_fingerprint(path: &Path) -> Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    let data = path.with_extension(format!(
        "{}.data",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    for file in [path.to_path_buf(), data] {
        let Ok(mut f) = std::fs::File::open(&file) else {
            continue;
        };
        let len = f.metadata()?.len();
        feed(&len.to_le_bytes());
        let mut buf = vec![0u8; (1 << 20).min(len as usize)];
        f.read_exact(&mut buf)?;
        feed(&buf);
        f.seek(SeekFrom::Start(len - buf.len() as u64))?;
        f.read_exact(&mut buf)?;
        feed(&buf);
    }
    Ok(format!("{hash:016x}"))
}

/// The engine cache folder of one model, device, precision and batch profile.
pub fn engine_cache_dir(
    root: &Path,
    model: &Path,
    device_id: u32,
    fp16: bool,
    batch: usize,
) -> Result<PathBuf> {
    let key = format!(
        "{}-{}-dev{device_id}-{}-b{batch}",
        model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model"),
        model_fingerprint(model)?,
        if fp16 { "fp16" } else { "fp32" }
    );
    Ok(root.join(key))
}

/// Whether `dir` holds a TensorRT engine that ONNX Runtime built earlier (`*.engine`).
pub fn has_cached_engine(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "engine"))
    })
}

/// When a session with `request` on `model` would build a TensorRT engine (minutes) because none
/// is cached yet, what to tell the user first.
pub fn missing_engine_note(
    request: &ProviderRequest,
    model: &Path,
    max_batch: usize,
) -> Option<String> {
    if !matches!(request.provider, Provider::Auto | Provider::TensorRt)
        || !compiled_in().is_ok_and(|p| p.contains(&"tensorrt"))
    {
        return None;
    }
    let root = request
        .engine_cache
        .clone()
        .unwrap_or_else(default_engine_cache);
    let dir = engine_cache_dir(&root, model, request.device_id, true, max_batch).ok()?;
    (!has_cached_engine(&dir)).then(|| {
        format!(
            "TensorRT: no cached engine for {} in {}: the first start builds one, which can take \
             minutes; later starts reuse it",
            model.display(),
            dir.display()
        )
    })
}

/// Folders next to the loaded ONNX Runtime (the onnxruntime-gpu wheel's pip dependencies) that
/// hold CUDA 13 and cuDNN 9.
fn pip_cuda_dirs() -> (Option<PathBuf>, Option<PathBuf>) {
    let Some(site) = crate::runtime::library().and_then(|l| l.ancestors().nth(3)) else {
        return (None, None);
    };
    let cuda = site.join("nvidia/cu13/lib");
    let cudnn = site.join("nvidia/cudnn/lib");
    (
        cuda.is_dir().then_some(cuda),
        cudnn.is_dir().then_some(cudnn),
    )
}

/// Loads CUDA and cuDNN from the wheel's pip dependencies when they are there, so nobody has to
/// set LD_LIBRARY_PATH; otherwise ONNX Runtime looks on the system's library path.
pub fn preload_cuda() -> Result<()> {
    match pip_cuda_dirs() {
        (None, None) => Ok(()),
        (cuda, cudnn) => {
            ep::cuda::preload_dylibs(cuda.as_deref(), cudnn.as_deref()).map_err(|e| anyhow!("{e}"))
        }
    }
}

/// The execution provider registration for one candidate (`None` for the CPU).
pub fn dispatch(
    provider: Provider,
    request: &ProviderRequest,
    model: &Path,
    fp16: bool,
    batch: usize,
) -> Result<Option<ExecutionProviderDispatch>> {
    Ok(match provider {
        Provider::Cpu | Provider::Auto => None,
        Provider::Cuda => {
            preload_cuda()?;
            Some(
                ep::CUDA::default()
                    .with_device_id(request.device_id as i32)
                    .build()
                    .error_on_failure(),
            )
        }
        Provider::TensorRt => {
            preload_cuda()?;
            let root = request
                .engine_cache
                .clone()
                .unwrap_or_else(default_engine_cache);
            let dir = engine_cache_dir(&root, model, request.device_id, fp16, batch)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow!("cannot create the engine cache {}: {e}", dir.display()))?;
            let dir = dir.display().to_string();
            Some(
                ep::TensorRT::default()
                    .with_device_id(request.device_id as i32)
                    .with_fp16(fp16)
                    .with_engine_cache(true)
                    .with_engine_cache_path(&dir)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&dir)
                    .build()
                    .error_on_failure(),
            )
        }
    })
}

/// The execution providers this ONNX Runtime build was compiled with (the runtime must be
/// loaded: see [`crate::runtime::init`]). Compiled in does not mean usable: CUDA and TensorRT
/// also need their libraries and a GPU when a session registers them.
pub fn compiled_in() -> Result<Vec<&'static str>> {
    use ort::ep::ExecutionProvider;
    let mut names = Vec::new();
    if ep::TensorRT::is_available()? {
        names.push("tensorrt");
    }
    if ep::CUDA::is_available()? {
        names.push("cuda");
    }
    names.push("cpu");
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_engine_is_an_engine_file_in_the_folder() {
        let dir = std::env::temp_dir().join(format!("beitseg-engine-{}", std::process::id()));
        assert!(!has_cached_engine(&dir));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("TensorrtExecutionProvider_cache_sm90.timing"),
            b"t",
        )
        .unwrap();
        assert!(!has_cached_engine(&dir));
        std::fs::write(
            dir.join("TensorrtExecutionProvider_TRTKernel_graph_1_0_sm90.engine"),
            b"e",
        )
        .unwrap();
        assert!(has_cached_engine(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn auto_tries_tensorrt_then_cuda_then_cpu() {
        assert_eq!(
            Provider::Auto.candidates(),
            &[Provider::TensorRt, Provider::Cuda, Provider::Cpu]
        );
        assert_eq!(Provider::Cuda.candidates(), &[Provider::Cuda]);
    }

    #[test]
    fn engine_cache_key_names_model_device_precision_and_batch() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/beit-tiny-ade/model.onnx");
        let a = engine_cache_dir(Path::new("/c"), &model, 0, true, 4).unwrap();
        let name = a.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with("model-") && name.ends_with("-dev0-fp16-b4"),
            "{name}"
        );
        assert_eq!(
            a,
            engine_cache_dir(Path::new("/c"), &model, 0, true, 4).unwrap(),
            "stable"
        );
        assert_ne!(
            a,
            engine_cache_dir(Path::new("/c"), &model, 1, true, 4).unwrap()
        );
        let other =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/beit-tiny-ade/model-fp16.onnx");
        assert_ne!(
            model_fingerprint(&model).unwrap(),
            model_fingerprint(&other).unwrap()
        );
    }
}
