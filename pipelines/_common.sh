# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Sourced by the pipelines/ scripts: finds the plugin built by scripts/setup.sh and the bundled
# model. Override with MODEL=… and PROPS="…" (extra beitseg properties).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$root/target/release/libgstbeitseg.so" ] && ! gst-inspect-1.0 beitseg >/dev/null 2>&1; then
  echo "$(basename "$0"): the beitseg plugin is not built: run scripts/setup.sh first" >&2
  exit 1
fi
export GST_PLUGIN_PATH="$root/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
# The bundled model is MediaPipe's person segmenter (two classes: background, person).
if [ -z "${MODEL:-}" ]; then
  MODEL="$root/samples/selfie/selfie_segmentation_landscape.onnx"
  PROPS=${PROPS-classes=person}
fi
PROPS=${PROPS-}
# shellcheck disable=SC2206
props=($PROPS)
