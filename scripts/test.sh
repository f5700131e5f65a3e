#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Sets up (scripts/setup.sh) and runs the whole test suite against the real ONNX Runtime and
# GStreamer. No Python is needed at test time: fixtures are committed (scripts/export_beit.py and
# scripts/make_fixtures.py rebuild them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A real Open Inference Protocol server for tests/remote.rs: MLServer from PyPI, in a venv of
# its own (its dependencies stay out of the runtime's .venv).
if [ ! -x .venv-server/bin/mlserver ]; then
  echo "test: installing mlserver==1.6.1 into .venv-server" >&2
  python3 -m venv .venv-server
  .venv-server/bin/pip install -q --disable-pip-version-check mlserver==1.6.1 onnxruntime==1.31.1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --locked --no-fail-fast --features test-hooks "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary), failed or not.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
