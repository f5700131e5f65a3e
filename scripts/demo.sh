#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Sets up (scripts/setup.sh), then segments the bundled sample clip with the beitseg CLI and the
# bundled MediaPipe selfie model (a real, trained person segmenter):
#   out/sample-segmented.mp4   the clip with people painted over
#   out/before-after.png       a frame before and after, side by side
#   out/strip.png              four frames of the result, one per second
# Another model or input:  scripts/demo.sh [MODEL.onnx [INPUT [extra `beitseg run` flags…]]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

model=${1:-samples/selfie/selfie_segmentation_landscape.onnx}
input=${2:-samples/sample.mp4}
shift $(( $# > 2 ? 2 : $# ))
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--classes person)
mkdir -p out

target/release/beitseg run "$input" --model "$model" --mode overlay --alpha 0.5 "${flags[@]}" \
  -o out/sample-segmented.mp4 -y   # the demo replaces its own earlier result

# One frame a second of the input and of the result.
width=$(gst-launch-1.0 -v filesrc location="$input" ! decodebin ! fakesink num-buffers=1 2>/dev/null \
  | grep -o 'width=(int)[0-9]*' | head -n1 | cut -d')' -f2 || true)
frames=out/.frames; rm -rf "$frames"; mkdir -p "$frames"
for pair in "before:$input" "after:out/sample-segmented.mp4"; do
  gst-launch-1.0 -q filesrc location="${pair#*:}" ! decodebin ! videoconvert ! videorate ! \
    video/x-raw,framerate=1/1 ! pngenc ! multifilesink sync=false location="$frames/${pair%%:*}-%05d.png"
done
# Before and after at 2 s, side by side.
gst-launch-1.0 -q compositor name=mix sink_1::xpos="${width:-640}" ! videoconvert ! pngenc ! \
  filesink location=out/before-after.png \
  filesrc location="$frames/before-00002.png" ! pngdec ! imagefreeze num-buffers=1 ! mix. \
  filesrc location="$frames/after-00002.png" ! pngdec ! imagefreeze num-buffers=1 ! mix.
# The result at 0, 1, 2 and 3 s, half size, in a row.
strip=(); half=$(( ${width:-640} / 2 ))
for i in 0 1 2 3; do
  strip+=(filesrc location="$frames/after-0000$i.png" ! pngdec ! videoscale ! \
    "video/x-raw,width=$half,pixel-aspect-ratio=1/1" ! imagefreeze num-buffers=1 ! mix.)
done
gst-launch-1.0 -q compositor name=mix sink_1::xpos=$half sink_2::xpos=$((2 * half)) \
  sink_3::xpos=$((3 * half)) ! videoconvert ! pngenc ! filesink location=out/strip.png "${strip[@]}"
rm -r "$frames"
echo "wrote out/sample-segmented.mp4, out/before-after.png and out/strip.png"
