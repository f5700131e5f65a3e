#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# One inference, two outputs: the overlay video (src pad) and the class-id mask stream (the
# `mask` request pad, GRAY8, one byte per pixel = class id) into two files.
#   pipelines/overlay-and-mask.sh [INPUT (samples/sample.mp4)] [OUTDIR (out/overlay-and-mask)]
# writes OUTDIR/overlay.mp4 and OUTDIR/mask.mkv (FFV1: lossless, so class ids survive).
# One streaming thread feeds both pads: each branch needs its queue, as after a tee. The mask's
# queue counts frames, not time: while the mask sink waits prerolled, x264enc must still get
# the frames it holds before its first output (lookahead plus one per thread); a queue of one
# second (the default) is 12 frames at 12 frames/s, and the pipeline would never start.
source "$(dirname "$0")/_common.sh"
input=${1:-$root/samples/sample.mp4}
outdir=${2:-out/overlay-and-mask}
mkdir -p "$outdir"
gst-launch-1.0 -e -q filesrc location="$input" ! decodebin ! videoconvert ! \
  beitseg name=seg model="$MODEL" mode=overlay "${props[@]}" ! queue ! videoconvert ! \
  x264enc speed-preset=veryfast ! h264parse ! mp4mux ! filesink location="$outdir/overlay.mp4" \
  seg.mask ! queue max-size-buffers=256 max-size-time=0 max-size-bytes=0 ! avenc_ffv1 ! matroskamux ! filesink location="$outdir/mask.mkv"
echo "wrote $outdir/overlay.mp4 and $outdir/mask.mkv"
