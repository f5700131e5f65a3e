#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# GPU benchmark, run on the GPU machine from the repository root once ../shared/gpu/README.md's
# device-env.sh has put GStreamer and onnxruntime-gpu there:
#
#   scripts/gpu_stage.sh   # here: GStreamer, onnxruntime-gpu in six chunks, .gpu/bin/beitseg
#   . .gpu/env/device-env.sh && scripts/gpu_bench.sh "cuda 1 1" "cuda 4 2"   # there
#
# Builds the full-size BEiT-large ADE architecture with random weights (same cost as the real
# model) with the machine's python3, exports it as ONNX (fp16; PRECISION=fp32 for fp32), and runs
# `beitseg bench model` for each "PROVIDER BATCH WORKERS [FRAMES]" given: the raw session's and the
# element's frames/s (JSON lines).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${BEIT_GPU_MODELS:-/tmp/beit-large}
mkdir -p "$models"
precision=${PRECISION:-fp16}
model="$models/beit-large-ade-random-$precision.onnx"
if [ ! -f "$model" ]; then
  flag=""; [ "$precision" = fp16 ] && flag="--fp16"
  t0=$(date +%s)
  python3 scripts/export_beit.py --random-large $flag --out "$model" 2>&1 | grep -v "^\[torch.onnx\]" | tail -3
  echo "exported $model in $(( $(date +%s) - t0 )) s"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# Default sweep: batch 1, 4 and 8 (a run of one config costs ~2 min there: session creation with
# cuDNN's algorithm search, then 200 frames). For the engine cache, run a "tensorrt B W" config
# twice: the second run's load_s is the cached start.
[ $# -gt 0 ] || set -- "cuda 1 1" "cuda 4 2" "cuda 8 2"
bin=${GPU_BENCH_BIN:-.gpu/bin/beitseg}
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(cd "$(dirname "$bin")" && pwd)"
for cfg in "$@"; do
  # shellcheck disable=SC2086
  set -- $cfg
  "$bin" bench model --json --model "$model" --provider "$1" \
    --batch-size "$2" --workers "$3" --frames "${4:-200}" --iterations 20
done
