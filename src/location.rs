// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Where this code runs from, found at run time: the plugin's `.so` when GStreamer loaded it, or
//! the executable the library is linked into (the `beitseg` command, a test); and around it, the
//! source tree it was built in or the installation prefix it was installed under. Nothing here
//! is a path of the build machine, so a plugin or command copied or installed elsewhere looks
//! around itself.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How many directories above its own a binary of a source tree sits: `target/release/` (the
/// plugin, the command), `target/release/deps/` or `examples/` (tests, examples).
const TREE_DEPTH: usize = 4;

/// The file this library's code was loaded from: the plugin (`libgstbeitseg.so`), or the
/// executable it is linked into. Symbolic links resolved.
pub fn module_file() -> Option<PathBuf> {
    // SAFETY: dladdr only reads the loader's tables; the address is a function of this module,
    // and the name it returns lives as long as the module, which outlives this call.
    let from_loader = unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let addr = module_file as *const () as *const libc::c_void;
        (libc::dladdr(addr, &mut info) != 0 && !info.dli_fname.is_null())
            .then(|| PathBuf::from(OsStr::from_bytes(CStr::from_ptr(info.dli_fname).to_bytes())))
    };
    // For the main program the loader may only know argv[0], which can be relative or bare.
    from_loader
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::current_exe().ok())
        .and_then(|p| p.canonicalize().ok())
}

/// The source tree (the folder with `Cargo.toml`) whose `target/` holds `module`, if it is in one.
pub fn source_tree_of(module: &Path) -> Option<PathBuf> {
    module
        .ancestors()
        .skip(1)
        .take(TREE_DEPTH)
        .find(|dir| dir.join("Cargo.toml").is_file() && module.starts_with(dir.join("target")))
        .map(Path::to_path_buf)
}

/// The source tree this code was built in, when it runs from there.
pub fn source_tree() -> Option<PathBuf> {
    source_tree_of(&module_file()?)
}

/// Where the files beitseg ships (the selfie model, its licence) are for `module`: `samples/`
/// of its source tree, else `share/beitseg/` of the prefix it is installed under
/// (`/usr/bin/beitseg` → `/usr/share/beitseg`, `/usr/lib/<triplet>/gstreamer-1.0/…` → the same).
pub fn data_dir_of(module: &Path) -> PathBuf {
    if let Some(tree) = source_tree_of(module) {
        return tree.join("samples");
    }
    module
        .ancestors()
        .skip(1)
        .find(|dir| dir.file_name().is_some_and(|n| n == "bin" || n == "lib"))
        .and_then(Path::parent)
        .unwrap_or(Path::new("/usr"))
        .join("share/beitseg")
}

/// [`data_dir_of`] this code's own file (`/usr/share/beitseg` when that is unknown).
pub fn data_dir() -> PathBuf {
    module_file().map_or_else(|| PathBuf::from("/usr/share/beitseg"), |m| data_dir_of(&m))
}

/// The private folders an installed beitseg keeps its ONNX Runtime in, for `module`: beside the
/// GStreamer plugin folder (`/usr/lib/<triplet>/gstreamer-1.0/` → `/usr/lib/<triplet>/beitseg/`),
/// or, for the command in `/usr/bin/`, `/usr/lib/<triplet>/beitseg/`.
pub fn private_lib_dirs_of(module: &Path) -> Vec<PathBuf> {
    let Some(dir) = module.parent() else {
        return Vec::new();
    };
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let mut dirs = Vec::new();
    if let Some(up) = dir.parent() {
        dirs.push(up.join("beitseg"));
        dirs.push(up.join("lib").join(&triplet).join("beitseg"));
        dirs.push(up.join("lib/beitseg"));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_runs_from_its_source_tree() {
        let module = module_file().unwrap();
        assert!(module.is_absolute() && module.is_file(), "{module:?}");
        let tree = source_tree().expect("a test binary sits in target/ of the tree");
        assert!(tree.join("Cargo.toml").is_file() && tree.join("src/location.rs").is_file());
        assert_eq!(data_dir(), tree.join("samples"));
    }

    #[test]
    fn installed_files_are_found_beside_the_prefix() {
        let plugin = Path::new("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstbeitseg.so");
        let cli = Path::new("/usr/bin/beitseg");
        assert_eq!(source_tree_of(plugin), None);
        assert_eq!(data_dir_of(plugin), Path::new("/usr/share/beitseg"));
        assert_eq!(data_dir_of(cli), Path::new("/usr/share/beitseg"));
        assert_eq!(
            data_dir_of(Path::new("/opt/b/bin/beitseg")),
            Path::new("/opt/b/share/beitseg")
        );
        let private = Path::new("/usr/lib/x86_64-linux-gnu/beitseg");
        assert!(private_lib_dirs_of(plugin).iter().any(|d| d == private));
        if std::env::consts::ARCH == "x86_64" {
            assert!(private_lib_dirs_of(cli).iter().any(|d| d == private));
        }
    }

    #[test]
    fn a_tree_needs_its_binary_under_target() {
        let tree = source_tree().unwrap();
        assert_eq!(source_tree_of(&tree.join("src/lib.rs")), None);
        assert_eq!(
            source_tree_of(&tree.join("target/release/libgstbeitseg.so")),
            Some(tree.clone())
        );
    }
}
