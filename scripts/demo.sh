#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Sets up (scripts/setup.sh), then segments the bundled sample clip with the bundled MediaPipe
# selfie model (a real, trained person segmenter):
#   out/sample-segmented.mp4   the clip with people painted over
#   out/before-after.png       a frame before and after, side by side
# Use another model or input:  scripts/demo.sh [MODEL.onnx [INPUT.mp4 [extra beitseg properties…]]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

model=${1:-samples/selfie/selfie_segmentation_landscape.onnx}
input=${2:-samples/sample.mp4}
shift $(( $# > 2 ? 2 : $# ))
props=("$@")
[ ${#props[@]} -gt 0 ] || props=(classes=person)
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
mkdir -p out

gst-launch-1.0 -q filesrc location="$input" ! decodebin ! videoconvert ! \
  beitseg model="$model" mode=overlay alpha=0.5 "${props[@]}" ! videoconvert ! \
  x264enc ! mp4mux ! filesink location=out/sample-segmented.mp4

# The frame at 2 s of the input and of the result, side by side.
width=$(gst-launch-1.0 -v filesrc location="$input" ! decodebin ! fakesink num-buffers=1 2>/dev/null \
  | grep -o 'width=(int)[0-9]*' | head -n1 | cut -d')' -f2)
frames=out/.frames; rm -rf "$frames"; mkdir -p "$frames"
for pair in "before:$input" "after:out/sample-segmented.mp4"; do
  # One frame every 2 s; the second one is the frame at 2 s.
  gst-launch-1.0 -q filesrc location="${pair#*:}" ! decodebin ! videoconvert ! videorate ! \
    video/x-raw,framerate=1/2 ! pngenc ! multifilesink sync=false location="$frames/${pair%%:*}-%05d.png"
done
gst-launch-1.0 -q compositor name=mix sink_1::xpos="${width:-640}" ! videoconvert ! pngenc ! \
  filesink location=out/before-after.png \
  filesrc location="$frames/before-00001.png" ! pngdec ! imagefreeze num-buffers=1 ! mix. \
  filesrc location="$frames/after-00001.png" ! pngdec ! imagefreeze num-buffers=1 ! mix.
rm -r "$frames"
echo "wrote out/sample-segmented.mp4 and out/before-after.png"
