#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Stages GStreamer and onnxruntime-gpu for the GPU machine with ../shared/gpu/stage.sh, then
# re-splits onnxruntime into six ~31 MiB chunks (.gpu/ort1 … .gpu/ort6): with this repository's
# ~13 MB of tracked files, a call carrying one of the shared recipe's 47 MiB chunks goes over the
# 64 MiB a device call may carry. Then, on the device, one call per chunk:
#   run carry=[".gpu/env", ".gpu/ortN"]  command: . .gpu/env/device-env.sh      (N = 1 … 6)
# and the benchmark (see scripts/gpu_bench.sh) in the last one, with ".gpu/bin" carried too.
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/gpu/stage.sh
if [ -f .gpu/ort4/payload.sha256 ]; then
  cat .gpu/ort1/part.* .gpu/ort2/part.* .gpu/ort3/part.* .gpu/ort4/part.* > .gpu/ort.tar.xz
  test "$(sha256sum .gpu/ort.tar.xz | cut -d' ' -f1)" = "$(cat .gpu/ort4/payload.sha256)"
  rm -rf .gpu/ort[1-6] && mkdir -p .gpu/split
  (cd .gpu/split && split -n 6 -d ../ort.tar.xz part.)
  for i in 0 1 2 3 4 5; do mkdir -p ".gpu/ort$((i + 1))" && mv ".gpu/split/part.0$i" ".gpu/ort$((i + 1))/"; done
  sha256sum .gpu/ort.tar.xz | cut -d' ' -f1 > .gpu/ort6/payload.sha256
  rm -rf .gpu/split .gpu/ort.tar.xz
fi
chmod u+w .gpu/env/device-env.sh
sed -i 's|for d in .gpu/ort1 .gpu/ort2 .gpu/ort3 .gpu/ort4; do|for d in .gpu/ort1 .gpu/ort2 .gpu/ort3 .gpu/ort4 .gpu/ort5 .gpu/ort6; do|; s|wc -l)" = 4 \]|wc -l)" = 6 ]|; s|/4 chunks|/6 chunks|' .gpu/env/device-env.sh
mkdir -p .gpu/bin
cargo build --release --locked --bin beitseg
cp target/release/beitseg .gpu/bin/beitseg
strip .gpu/bin/beitseg
# The CLI links gst-rtsp-server, which the shared recipe's GStreamer may lack: carry it along
# (gpu_bench.sh puts .gpu/bin on LD_LIBRARY_PATH).
cp -L /usr/lib/x86_64-linux-gnu/libgstrtspserver-1.0.so.0 .gpu/bin/
du -sh .gpu/* | sed 's/^/staged: /'
