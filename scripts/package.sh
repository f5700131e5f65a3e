#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Builds the Debian package target/debian/beitseg_<version>_amd64.deb with cargo-deb (installed
# into ~/.cargo/bin when missing): the plugin in /usr/lib/x86_64-linux-gnu/gstreamer-1.0, the
# command in /usr/bin, the selfie model in /usr/share/beitseg, and the ONNX Runtime CPU library
# of .venv (the PyPI wheel onnxruntime==1.31.1, with its licence) in /usr/lib/x86_64-linux-gnu/
# beitseg. What goes where: [package.metadata.deb] in Cargo.toml. Install it with
#   sudo apt install ./target/debian/beitseg_*.deb
# scripts/package_check.sh installs, uses and removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo_deb_version=3.8.0

# apt packages, .venv with onnxruntime 1.31.1 (the bundled library comes from there).
scripts/setup.sh
# dpkg-shlibdeps computes the libraries the binaries need ($auto in Cargo.toml's depends).
if ! command -v dpkg-shlibdeps >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "package: installing dpkg-dev" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends dpkg-dev
fi
if ! cargo deb --version 2>/dev/null | grep -qF "$cargo_deb_version"; then
  echo "package: installing cargo-deb $cargo_deb_version" >&2
  cargo install cargo-deb --locked --version "$cargo_deb_version"
fi
# The shipped build: default features, no test hooks (scripts/test.sh builds with them).
cargo build --release --locked
deb=$(cargo deb --no-build --locked --strip 2>&1 | tee /dev/stderr | tail -n1)
case "$deb" in
  */beitseg_*_amd64.deb) echo "package: $deb" ;;
  *) echo "package: cargo deb made no package" >&2; exit 1 ;;
esac
