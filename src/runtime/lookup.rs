// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Where ONNX Runtime is found, first match wins:
//! 1. `ORT_DYLIB_PATH` (a relative path is taken relative to the current directory), as given;
//! 2. `libonnxruntime.so.1` or `libonnxruntime.so` where the dynamic loader finds them
//!    (LD_LIBRARY_PATH, ld.so.cache);
//! 3. the `onnxruntime` or `onnxruntime-gpu` package of a Python: the active virtualenv
//!    (`VIRTUAL_ENV`), the user's site (`~/.local`), the system's (`/usr/local`, `/usr`), so that
//!    `pip install onnxruntime-gpu==1.31.1` is all a GPU user adds;
//! 4. the `.venv` of the source tree the plugin or command sits in (`scripts/setup.sh` makes it);
//! 5. the CPU library the Debian package installs beside the plugin (`/usr/lib/<triplet>/beitseg/`).
//!
//! From 2 on, a library of another series than [`ORT_SERIES`] is passed over for a later one of
//! the series, and the outcome says so; a newer one is used when no later place has the series.
//! Each candidate is opened to ask its own version (`OrtGetApiBase()->GetVersionString()`): file
//! names and package metadata can lie, the library cannot.

use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::ORT_SERIES;
use crate::location;

/// Names the dynamic loader is asked for: the soname first, then the development link.
const LOADER_NAMES: [&str; 2] = ["libonnxruntime.so.1", "libonnxruntime.so"];

/// The ONNX Runtime library the lookup chose.
#[derive(Debug, Clone)]
pub struct Found {
    pub library: PathBuf,
    pub version: String,
    /// Which rule of the lookup found it, e.g. "bundled with beitseg".
    pub rule: String,
    /// Libraries found earlier in the lookup and not used, each with why.
    pub passed_over: Vec<String>,
}

/// The C API's entry point (`OrtApiBase` in onnxruntime_c_api.h).
#[repr(C)]
struct ApiBase {
    get_api: unsafe extern "C" fn(u32) -> *const c_void,
    get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// Opens `target` (a path, or a bare name the loader searches for) and asks the library its
/// version. The library stays open when `keep`: the one chosen is loaded once.
fn probe(target: &Path, keep: bool) -> std::result::Result<(PathBuf, String), String> {
    let name = CString::new(target.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: dlopen/dlsym/dladdr/dlclose with valid C strings; OrtGetApiBase is the documented
    // entry point of every ONNX Runtime release, a C function without arguments returning a
    // pointer to a static table whose second entry returns a static C string.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            let err = libc::dlerror();
            return Err(if err.is_null() {
                "cannot be opened".into()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            });
        }
        let close = |outcome: std::result::Result<(PathBuf, String), String>| {
            if !keep || outcome.is_err() {
                libc::dlclose(handle);
            }
            outcome
        };
        let sym = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
        if sym.is_null() {
            return close(Err("not ONNX Runtime (no OrtGetApiBase)".into()));
        }
        let get_base: unsafe extern "C" fn() -> *const ApiBase = std::mem::transmute(sym);
        let base = get_base();
        let version = (!base.is_null())
            .then(|| ((*base).get_version_string)())
            .filter(|v| !v.is_null())
            .map(|v| CStr::from_ptr(v).to_string_lossy().into_owned());
        let mut info: libc::Dl_info = std::mem::zeroed();
        let path = if libc::dladdr(sym, &mut info) != 0 && !info.dli_fname.is_null() {
            PathBuf::from(OsStr::from_bytes(CStr::from_ptr(info.dli_fname).to_bytes()))
        } else {
            target.to_path_buf()
        };
        match version {
            Some(v) => close(Ok((path, v))),
            None => close(Err("does not say its version".into())),
        }
    }
}

/// How a version relates to the supported series.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Fit {
    Series,
    Newer,
    Older,
}

pub(crate) fn fit(version: &str) -> Fit {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map_while(|p| p.parse().ok()).collect() };
    let (have, want) = (parse(version), parse(ORT_SERIES));
    match have.get(..2).map(|h| h.cmp(&want[..])) {
        Some(std::cmp::Ordering::Equal) => Fit::Series,
        Some(std::cmp::Ordering::Greater) => Fit::Newer,
        _ => Fit::Older,
    }
}

/// The numbers of a name's version suffix, for picking the newest of several files.
fn version_key(name: &str, prefix: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix(prefix)?;
    Some(rest.split('.').map_while(|p| p.parse().ok()).collect())
}

/// The newest `libonnxruntime.so.1.*` in `dir`.
fn newest_library(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((version_key(&name, "libonnxruntime.so.")?, e.path()))
        })
        .max()
        .map(|(_, p)| p)
}

/// `base/python3*/rest` for every Python of `base`, the newest Python first.
fn per_python(base: &Path, rest: &str) -> Vec<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((version_key(&name, "python")?, e.path().join(rest)))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The site-packages folders of the Pythons on this system, in lookup order.
pub(crate) fn python_sites(venv: Option<&Path>, home: Option<&Path>, root: &Path) -> Vec<PathBuf> {
    let mut sites = Vec::new();
    if let Some(v) = venv {
        sites.extend(per_python(&v.join("lib"), "site-packages"));
    }
    if let Some(h) = home {
        sites.extend(per_python(&h.join(".local/lib"), "site-packages"));
    }
    let local = root.join("usr/local/lib");
    sites.extend(per_python(&local, "dist-packages"));
    sites.extend(per_python(&local, "site-packages"));
    sites.push(root.join("usr/lib/python3/dist-packages"));
    sites.extend(per_python(&root.join("usr/lib"), "site-packages"));
    let mut seen = HashSet::new();
    sites.retain(|s| s.is_dir() && seen.insert(s.clone()));
    sites
}

/// The ONNX Runtime library of the onnxruntime (or onnxruntime-gpu) wheel in `site`, with the
/// package's name.
pub(crate) fn wheel_library(site: &Path) -> Option<(PathBuf, &'static str)> {
    let library = newest_library(&site.join("onnxruntime/capi"))?;
    let gpu = std::fs::read_dir(site).ok()?.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("onnxruntime_gpu-") && name.ends_with(".dist-info")
    });
    Some((
        library,
        if gpu {
            "onnxruntime-gpu"
        } else {
            "onnxruntime"
        },
    ))
}

/// One place to try, and the rule it comes from.
struct Candidate {
    rule: String,
    target: PathBuf,
}

/// Every place rules 2 to 5 name for code loaded from `module`, and, per rule, where it looked.
fn candidates(module: Option<&Path>) -> (Vec<Candidate>, Vec<String>) {
    let mut list: Vec<Candidate> = LOADER_NAMES
        .iter()
        .map(|n| Candidate {
            rule: "the dynamic loader's path".into(),
            target: PathBuf::from(n),
        })
        .collect();
    let mut looked = vec![format!("the loader's path ({})", LOADER_NAMES.join(", "))];

    let venv = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty());
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty());
    let sites = python_sites(
        venv.as_deref().map(Path::new),
        home.as_deref().map(Path::new),
        Path::new("/"),
    );
    for site in &sites {
        if let Some((target, package)) = wheel_library(site) {
            let rule = format!("Python package {package} in {}", site.display());
            list.push(Candidate { rule, target });
        }
    }
    looked.push(format!(
        "Python packages in {}",
        if sites.is_empty() {
            "(no site-packages)".to_string()
        } else {
            join(&sites)
        }
    ));

    match module.and_then(location::source_tree_of) {
        Some(tree) => {
            let venv = tree.join(".venv");
            for site in per_python(&venv.join("lib"), "site-packages") {
                if let Some((target, _)) = wheel_library(&site) {
                    let rule = format!("the .venv of the source tree {}", tree.display());
                    list.push(Candidate { rule, target });
                }
            }
            looked.push(format!("{}", venv.display()));
        }
        None => looked.push("no source tree's .venv".into()),
    }

    let private = module
        .map(location::private_lib_dirs_of)
        .unwrap_or_default();
    for dir in &private {
        if let Some(target) = newest_library(dir) {
            let rule = "bundled with beitseg".to_string();
            list.push(Candidate { rule, target });
        }
    }
    looked.push(format!("bundled in {}", join(&private)));
    (list, looked)
}

fn join(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn ort_dylib_path(p: &OsStr) -> Result<Found> {
    let p = PathBuf::from(p);
    let p = if p.is_relative() {
        std::env::current_dir()?.join(p)
    } else {
        p
    };
    if !p.is_file() {
        bail!(
            "ORT_DYLIB_PATH points to {}, which is not a file",
            p.display()
        );
    }
    let (library, version) =
        probe(&p, true).map_err(|e| anyhow!("ORT_DYLIB_PATH points to {}: {e}", p.display()))?;
    if fit(&version) == Fit::Older {
        bail!(
            "ORT_DYLIB_PATH points to {}, ONNX Runtime {version}: beitseg needs {ORT_SERIES}.x",
            p.display()
        );
    }
    Ok(Found {
        library,
        version,
        rule: "ORT_DYLIB_PATH".into(),
        passed_over: Vec::new(),
    })
}

/// Where this process loads ONNX Runtime from (see the module's documentation). The chosen
/// library is opened (to read its version) and stays open.
pub fn locate() -> Result<Found> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return ort_dylib_path(&p);
    }
    let module = location::module_file();
    let (list, looked) = candidates(module.as_deref());
    let mut passed_over = Vec::new();
    // The first newer library, and the note that says it was passed over when the series is found.
    let mut newer: Option<(Candidate, String)> = None;
    let mut seen = HashSet::new();
    for c in list {
        match probe(&c.target, false) {
            Ok((path, version)) => {
                if !seen.insert(path.canonicalize().unwrap_or(path.clone())) {
                    continue;
                }
                let note = format!(
                    "{} ({}): ONNX Runtime {version}, not {ORT_SERIES}.x",
                    path.display(),
                    c.rule
                );
                match fit(&version) {
                    Fit::Series => {
                        passed_over.extend(newer.map(|(_, note)| note));
                        let (library, version) = probe(&path, true).map_err(|e| anyhow!(e))?;
                        return Ok(Found {
                            library,
                            version,
                            rule: c.rule,
                            passed_over,
                        });
                    }
                    Fit::Newer if newer.is_none() => {
                        let target = path;
                        newer = Some((Candidate { target, ..c }, note));
                    }
                    _ => passed_over.push(note),
                }
            }
            // A name the loader does not know is the common case, not worth a note.
            Err(_) if c.target.is_relative() => {}
            Err(e) => passed_over.push(format!("{} ({}): {e}", c.target.display(), c.rule)),
        }
    }
    if let Some((c, _)) = newer {
        let (library, version) = probe(&c.target, true).map_err(|e| anyhow!(e))?;
        return Ok(Found {
            library,
            version,
            rule: format!(
                "{}, newer than the {ORT_SERIES} series beitseg is built for",
                c.rule
            ),
            passed_over,
        });
    }
    let refused = if passed_over.is_empty() {
        String::new()
    } else {
        format!("; passed over {}", passed_over.join("; "))
    };
    bail!(
        "ONNX Runtime {ORT_SERIES} not found (ORT_DYLIB_PATH is unset; looked in {}{refused}): \
         install it with `pip install onnxruntime=={ORT_SERIES}.1` (or onnxruntime-gpu), \
         install the beitseg package, run scripts/setup.sh in the source tree, or set \
         ORT_DYLIB_PATH to libonnxruntime.so.{ORT_SERIES}.x",
        looked.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_sorted_into_the_series() {
        assert_eq!(fit(&format!("{ORT_SERIES}.1")), Fit::Series);
        assert_eq!(fit(&format!("{ORT_SERIES}.0")), Fit::Series);
        assert_eq!(fit("1.20.0"), Fit::Older);
        assert_eq!(fit("1.3.0"), Fit::Older);
        assert_eq!(fit("1.40.0"), Fit::Newer);
        assert_eq!(fit("2.0.0"), Fit::Newer);
        assert_eq!(fit("garbage"), Fit::Older);
    }

    #[test]
    fn pythons_and_wheels_are_found_in_lookup_order() {
        let root = std::env::temp_dir().join(format!("beitseg-sites-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |p: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let venv = mk("venv/lib/python3.11/site-packages");
        let user9 = mk("home/.local/lib/python3.9/site-packages");
        let user11 = mk("home/.local/lib/python3.11/site-packages");
        let local = mk("usr/local/lib/python3.11/dist-packages");
        let system = mk("usr/lib/python3/dist-packages");
        let sites = python_sites(Some(&root.join("venv")), Some(&root.join("home")), &root);
        assert_eq!(sites, [venv, user11, user9.clone(), local, system.clone()]);

        assert_eq!(wheel_library(&system), None);
        let capi = mk("usr/lib/python3/dist-packages/onnxruntime/capi");
        for name in [
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.31.1",
            "other.so",
        ] {
            std::fs::write(capi.join(name), b"").unwrap();
        }
        mk("usr/lib/python3/dist-packages/onnxruntime_gpu-1.31.1.dist-info");
        assert_eq!(
            wheel_library(&system),
            Some((capi.join("libonnxruntime.so.1.31.1"), "onnxruntime-gpu"))
        );
        let capi = mk("home/.local/lib/python3.9/site-packages/onnxruntime/capi");
        std::fs::write(capi.join("libonnxruntime.so.1.31.0"), b"").unwrap();
        assert_eq!(wheel_library(&user9).unwrap().1, "onnxruntime");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_file_that_is_not_onnx_runtime_is_refused_with_why() {
        let err = probe(Path::new("/nonexistent/libonnxruntime.so.1.31.1"), false).unwrap_err();
        assert!(err.contains("/nonexistent"), "{err}");
        let libc = probe(Path::new("libc.so.6"), false).unwrap_err();
        assert!(libc.contains("not ONNX Runtime"), "{libc}");
    }
}
