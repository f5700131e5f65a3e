#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Makes a fresh Debian 12 ready to build and run beitseg: GStreamer 1.22 development files and
# plugins (apt), ONNX Runtime 1.31.1 from PyPI in the project's .venv, and a release build of the
# plugin (target/release/libgstbeitseg.so). Safe to run again; it only does what is missing.
# (procps: the tests send Ctrl-C to the CLI with kill; python3-gi, python3-numpy and the gir1.2
# packages: examples/python/ and its test.)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  libgstrtspserver-1.0-dev gstreamer1.0-rtsp
  procps
  python3-gi python3-numpy gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1 >/dev/null 2>&1; then
  echo "setup: installing onnxruntime==1.31.1 into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check onnxruntime==1.31.1
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
cargo build --release --locked
