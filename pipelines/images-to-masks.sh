#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Images → class-id mask PNGs (8-bit grey, pixel value = class id), one per image, same size.
#   pipelines/images-to-masks.sh OUTDIR [IMAGE…]   (default: the bundled photos)
source "$(dirname "$0")/_common.sh"
outdir=${1:-out/masks}
shift $(( $# > 0 ? 1 : 0 ))
images=("$@")
[ ${#images[@]} -gt 0 ] || images=("$root"/samples/beit-tiny-ade/{astronaut,coffee,chelsea}.png)
mkdir -p "$outdir"
for image in "${images[@]}"; do
  name=$(basename "${image%.*}")
  gst-launch-1.0 -q filesrc location="$image" ! decodebin ! videoconvert ! \
    beitseg model="$MODEL" mode=mask "${props[@]}" ! pngenc ! filesink location="$outdir/$name.png"
  echo "wrote $outdir/$name.png"
done
