#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Make samples/sample.mp4: a 4 s, 640x360, 25 fps H.264 clip with a person in it, from the
public-domain scikit-image photo `astronaut` (NASA) with a slow pan and zoom over a backdrop
built from `coffee` (CC0), so segmentation output shows real, moving results.

Needs numpy, pillow, scikit-image and gst-launch-1.0 with x264enc (gstreamer1.0-plugins-ugly).
"""

import os
import subprocess

import numpy as np
from PIL import Image
from skimage import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W, H, FPS, SECONDS = 640, 360, 25, 4


def frames():
    person = Image.fromarray(data.astronaut())  # 512x512
    backdrop = Image.fromarray(data.coffee()).resize((W * 2, H * 2), Image.Resampling.BILINEAR)
    n = FPS * SECONDS
    for i in range(n):
        t = i / (n - 1)
        # Backdrop drifts; the astronaut slides in from the left and zooms in a little.
        bx = int(t * W * 0.5)
        canvas = backdrop.crop((bx, H // 2, bx + W, H // 2 + H)).copy()
        size = int(300 + 60 * t)
        p = person.resize((size, size), Image.Resampling.BILINEAR)
        x = int(40 + t * 220)
        canvas.paste(p, (x, H - size))
        yield np.asarray(canvas, dtype=np.uint8)


def main():
    out = os.path.join(ROOT, "samples", "sample.mp4")
    cmd = [
        "gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
        "rawvideoparse", f"width={W}", f"height={H}", "format=rgb", f"framerate={FPS}/1", "!",
        "videoconvert", "!", "video/x-raw,format=I420", "!",
        "x264enc", "speed-preset=slow", "bitrate=900", "key-int-max=50", "!",
        "video/x-h264,profile=main", "!", "mp4mux", "!", "filesink", f"location={out}",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for f in frames():
        proc.stdin.write(f.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("gst-launch-1.0 failed")
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
