#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Webcam (V4L2) → segmented video in a window. Needs a camera and a display.
#   pipelines/webcam-to-display.sh [DEVICE (/dev/video0)]
# drop-policy=oldest keeps the picture live when segmentation is slower than the camera.
source "$(dirname "$0")/_common.sh"
device=${1:-/dev/video0}
[ -e "$device" ] || { echo "$0: $device: no such video device" >&2; exit 1; }
gst-launch-1.0 v4l2src device="$device" ! decodebin ! videoconvert ! \
  beitseg model="$MODEL" mode=overlay drop-policy=oldest "${props[@]}" ! videoconvert ! \
  autovideosink sync=false
