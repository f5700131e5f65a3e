#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# RTSP camera → segmented MP4, until the camera ends its stream or Ctrl-C (-e finalises the file).
#   pipelines/rtsp-to-file.sh rtsp://CAMERA/PATH [OUTPUT (out/rtsp-to-file.mp4)]
# No camera? `beitseg serve samples/sample.mp4 rtsp://127.0.0.1:8554/camera` plays one.
# drop-policy=oldest keeps up with the camera when segmentation is slower than its frame rate.
# gst-launch stops if the camera drops; `beitseg run rtsp://…` reconnects instead. A stream with
# B-frames can reach x264enc with repeated timestamps (RTP gives it no DTS), which mp4mux refuses
# ("Buffer has no PTS"); `beitseg run` restamps each frame and handles such streams.
source "$(dirname "$0")/_common.sh"
url=${1:?usage: $0 rtsp://CAMERA/PATH [OUTPUT]}
output=${2:-out/rtsp-to-file.mp4}
mkdir -p "$(dirname "$output")"
gst-launch-1.0 -e -q rtspsrc location="$url" latency=200 protocols=tcp ! decodebin ! videoconvert ! \
  beitseg model="$MODEL" mode=overlay drop-policy=oldest "${props[@]}" ! videoconvert ! \
  x264enc tune=zerolatency speed-preset=veryfast ! h264parse ! mp4mux ! filesink location="$output"
echo "wrote $output"
