#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Fuzzes the parsers of untrusted text (cargo-fuzz, libFuzzer + AddressSanitizer): model metadata
# (fuzz/fuzz_targets/metadata.rs) and labels/palette files with the `classes` selection
# (labels_palette.rs). Each target runs FUZZ_SECONDS (default 30) from the seeds in fuzz/seeds/;
# a crash stops the script with the reproducer under fuzz/artifacts/. CI runs it briefly; run it
# longer by hand:  FUZZ_SECONDS=600 scripts/fuzz.sh
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in metadata labels_palette onnx_graph; do
  mkdir -p "corpus/$target"
  cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
  echo "fuzz: $target for ${seconds} s" >&2
  log=$(mktemp)
  if ! cargo fuzz run "$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    rm -f "$log"
    echo "fuzz: $target failed (a crash leaves its reproducer in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  { grep -E "^Done" "$log" || true; } | sed "s/^/fuzz: $target: /" >&2
  rm -f "$log"
done
