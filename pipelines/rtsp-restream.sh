#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# RTSP camera → segmented RTSP stream that any player opens (vlc, ffplay, rtspsrc).
#   pipelines/rtsp-restream.sh rtsp://CAMERA/PATH [rtsp://0.0.0.0:8554/segmented]
# gst-launch-1.0 cannot be an RTSP server by itself, so this uses the beitseg CLI, which runs
# gst-rtsp-server and reconnects to the camera when it drops. The same with gst-launch-1.0 and an
# external RTSP server that accepts RECORD (e.g. mediamtx):
#   gst-launch-1.0 rtspsrc location=CAMERA ! decodebin ! videoconvert ! beitseg model=… ! \
#     videoconvert ! x264enc tune=zerolatency ! rtspclientsink location=rtsp://SERVER/segmented
source "$(dirname "$0")/_common.sh"
url=${1:?usage: $0 rtsp://CAMERA/PATH [rtsp://HOST:PORT/PATH]}
serve=${2:-rtsp://0.0.0.0:8554/segmented}
cli="$root/target/release/beitseg"
[ -x "$cli" ] || { echo "$0: $cli is not built: run scripts/setup.sh first" >&2; exit 1; }
# Of PROPS, the CLI takes classes=… (its other settings are flags: see `beitseg run --help`).
classes=()
for p in "${props[@]}"; do
  case $p in classes=*) classes=(--classes "${p#classes=}") ;; esac
done
exec "$cli" run "$url" --model "$MODEL" "${classes[@]}" --transport tcp -o "$serve"
