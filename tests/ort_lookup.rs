// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Where ONNX Runtime is found (src/runtime/lookup.rs), rule by rule, told by `beitseg inspect`:
//! the command is run with the environment a user has (no ORT_DYLIB_PATH, LD_LIBRARY_PATH,
//! VIRTUAL_ENV; HOME a fresh folder), from its place in the tree or copied into an installed
//! layout. Assumes no onnxruntime 1.31 in the system's own Python (a fresh Debian has none).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The tree's ONNX Runtime library (scripts/setup.sh installs it in .venv).
fn tree_library() -> PathBuf {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages/onnxruntime/capi"))
        .flat_map(|capi| std::fs::read_dir(capi).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("libonnxruntime.so.1.31"))
        .expect("run scripts/setup.sh: .venv has no onnxruntime 1.31")
}

fn link(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// `beitseg ARGS` run by `exe` as a user would: (success, stdout, stderr).
fn run(exe: &Path, home: &Path, env: &[(&str, &Path)], args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(home)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("VIRTUAL_ENV")
        .env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The `  library    PATH (RULE)` line of `beitseg inspect`.
fn library_line(exe: &Path, home: &Path, env: &[(&str, &Path)]) -> String {
    let model = selfie();
    let (ok, out, err) = run(exe, home, env, &["inspect", model.to_str().unwrap()]);
    assert!(ok, "{err}");
    out.lines()
        .find(|l| l.trim_start().starts_with("library"))
        .unwrap_or_else(|| panic!("no library line: {out}"))
        .to_string()
}

fn tree_cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_beitseg"))
}

#[test]
fn the_tree_command_uses_the_tree_venv() {
    let home = TempDir::new("lookup-tree");
    let line = library_line(&tree_cli(), &home.0, &[]);
    assert!(line.contains("the .venv of the source tree"), "{line}");
    assert!(
        line.contains(&root().join(".venv").display().to_string()),
        "{line}"
    );
}

#[test]
fn a_virtualenv_package_comes_before_the_tree_and_names_the_gpu_package() {
    let home = TempDir::new("lookup-venv");
    let site = home.join("venv/lib/python3.11/site-packages");
    let lib = site.join("onnxruntime/capi/libonnxruntime.so.1.31.1");
    link(&tree_library(), &lib);
    std::fs::create_dir_all(site.join("onnxruntime_gpu-1.31.1.dist-info")).unwrap();
    let line = library_line(&tree_cli(), &home.0, &[("VIRTUAL_ENV", &home.join("venv"))]);
    assert!(line.contains(&lib.display().to_string()), "{line}");
    assert!(
        line.contains(&format!(
            "Python package onnxruntime-gpu in {}",
            site.display()
        )),
        "{line}"
    );
}

#[test]
fn the_loader_path_comes_before_python_and_ort_dylib_path_before_all() {
    let home = TempDir::new("lookup-loader");
    let lib = home.join("lib/libonnxruntime.so.1");
    link(&tree_library(), &lib);
    let venv_lib = home.join("venv/lib/python3.11/site-packages/onnxruntime/capi");
    link(&tree_library(), &venv_lib.join("libonnxruntime.so.1.31.1"));
    let venv = home.join("venv");
    let lib_dir = home.join("lib");
    let env = [
        ("VIRTUAL_ENV", venv.as_path()),
        ("LD_LIBRARY_PATH", &lib_dir),
    ];
    let line = library_line(&tree_cli(), &home.0, &env);
    assert!(line.contains("the dynamic loader's path"), "{line}");
    assert!(line.contains(&lib.display().to_string()), "{line}");

    let explicit = tree_library();
    let env = [
        ("VIRTUAL_ENV", venv.as_path()),
        ("LD_LIBRARY_PATH", &lib_dir),
        ("ORT_DYLIB_PATH", &explicit),
    ];
    let line = library_line(&tree_cli(), &home.0, &env);
    assert!(line.contains("(ORT_DYLIB_PATH)"), "{line}");
}

#[test]
fn an_installed_layout_uses_its_bundled_runtime_and_model() {
    // /usr/bin/beitseg, /usr/lib/<triplet>/beitseg/libonnxruntime…, /usr/share/beitseg/selfie/,
    // under a temporary prefix: what the Debian package installs.
    let prefix = TempDir::new("lookup-installed");
    let exe = prefix.join("bin/beitseg");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    std::fs::copy(tree_cli(), &exe).unwrap();
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let bundled = prefix.join(&format!("lib/{triplet}/beitseg/libonnxruntime.so.1.31.1"));
    link(&tree_library(), &bundled);
    let home = prefix.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let line = library_line(&exe, &home, &[]);
    assert!(line.contains("(bundled with beitseg)"), "{line}");
    assert!(line.contains(&bundled.display().to_string()), "{line}");

    // The default model comes from share/beitseg; said in one line when it is not there.
    let out = prefix.join("out.mp4");
    let args = ["run", "test", "--frames", "3", "-o", out.to_str().unwrap()];
    let (ok, _, err) = run(&exe, &home, &[], &args);
    assert!(!ok);
    let missing = prefix.join("share/beitseg/selfie/selfie_segmentation_landscape.onnx");
    assert!(
        err.contains(&format!(
            "the bundled model {} is missing",
            missing.display()
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    link(
        &sample("selfie/selfie_segmentation_landscape.onnx"),
        &missing,
    );
    let (ok, _, err) = run(&exe, &home, &[], &args);
    assert!(ok, "{err}");
    assert_eq!(count_video_frames(&out), 3);
}

#[test]
fn nothing_found_is_one_line_that_says_where_it_looked() {
    let dir = TempDir::new("lookup-none");
    let exe = dir.join("beitseg");
    std::fs::copy(tree_cli(), &exe).unwrap();
    let model = selfie();
    let (ok, _, err) = run(&exe, &dir.0, &[], &["inspect", model.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for place in [
        "ONNX Runtime 1.31 not found",
        "ORT_DYLIB_PATH is unset",
        "the loader's path (libonnxruntime.so.1, libonnxruntime.so)",
        "Python packages in",
        "no source tree's .venv",
        &format!(
            "bundled in {}",
            dir.0.parent().unwrap().join("beitseg").display()
        ),
        "pip install onnxruntime==1.31.1",
    ] {
        assert!(err.contains(place), "{place}: {err}");
    }
}
