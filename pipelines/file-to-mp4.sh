#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Video file → segmented MP4 (overlay).
#   pipelines/file-to-mp4.sh [INPUT (samples/sample.mp4)] [OUTPUT (out/file-to-mp4.mp4)]
# Any container/codec GStreamer decodes; -e finalises the MP4 on Ctrl-C.
source "$(dirname "$0")/_common.sh"
input=${1:-$root/samples/sample.mp4}
output=${2:-out/file-to-mp4.mp4}
mkdir -p "$(dirname "$output")"
gst-launch-1.0 -e -q filesrc location="$input" ! decodebin ! videoconvert ! \
  beitseg model="$MODEL" mode=overlay alpha=0.5 "${props[@]}" ! videoconvert ! \
  x264enc speed-preset=veryfast ! h264parse ! mp4mux ! filesink location="$output"
echo "wrote $output"
