#!/usr/bin/python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Per-class pixel shares of every frame, read from beitseg's `mask` pad in Python.

    python3 examples/python/segment.py [INPUT] [--model MODEL.onnx] [--labels FILE] [--frames N]

Runs INPUT (a video file; without one, a 2-second test pattern) through the beitseg element,
takes the GRAY8 class ids of each frame from its `mask` request pad through an appsink as a
numpy array, prints the share of each class in the frame, and prints the `beitseg-stats`
messages the element posts on the bus once a second (`post-stats=true`). The pipeline runs at
the input's own speed (synchronised sinks), as a player would.

Needs python3-gi, python3-numpy, gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0 (apt),
and the plugin: the beitseg package installed, or GST_PLUGIN_PATH=target/release in the source
tree. MODEL defaults to the selfie model beitseg ships; labels to ADE20k's for a 150-class model.
"""

import argparse
import json
import pathlib
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402,F401 (GstApp: appsink's methods)

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
# The installed package's files, then the source tree's.
SHARE = [pathlib.Path("/usr/share/beitseg"), HERE.parent.parent / "samples"]
ADE20K = [pathlib.Path("/usr/share/beitseg/ade20k.json"), HERE.parent.parent / "src/palette/ade20k.json"]


def first_file(paths):
    return next((p for p in paths if p.is_file()), None)


def read_labels(path):
    """One label per line, or JSON: a list, {"labels": [...]}, or an id2label object."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = data.get("labels", data.get("id2label", data))
    if isinstance(data, dict):
        return [data[k] for k in sorted(data, key=int)]
    return list(data)


def gray_frame(sample):
    """The frame of a GRAY8 sample as a height x width uint8 array: rows are `stride` bytes
    apart (GStreamer pads them to 4 bytes), so the padding is cut off."""
    buffer = sample.get_buffer()
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    meta = GstVideo.buffer_get_video_meta(buffer)
    stride, offset = (meta.stride[0], meta.offset[0]) if meta else (info.stride[0], info.offset[0])
    ok, mapped = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise RuntimeError("cannot map a mask buffer")
    try:
        data = np.frombuffer(mapped.data, dtype=np.uint8, count=stride * info.height, offset=offset)
        return data.reshape(info.height, stride)[:, : info.width].copy()
    finally:
        buffer.unmap(mapped)


def shares_line(index, pts, classes, labels):
    counts = np.bincount(classes.ravel(), minlength=256)
    total = classes.size
    parts = []
    for cls in np.argsort(-counts, kind="stable"):
        if counts[cls] == 0:
            break
        name = labels[cls].strip() if cls < len(labels) else f"class {cls}"
        parts.append(f"{name} {100.0 * counts[cls] / total:.2f} %")
    when = f"{pts / Gst.SECOND:.3f} s" if pts != Gst.CLOCK_TIME_NONE else "?"
    height, width = classes.shape
    return f"frame {index} at {when}, {width}x{height}: " + ", ".join(parts)


def stats_line(structure):
    fields = ["frames-in", "frames-out", "dropped", "fps", "inference-p50-ms", "inference-p95-ms"]
    values = []
    for f in fields:
        v = structure.get_value(f)
        values.append(f"{f}={v:.2f}" if isinstance(v, float) else f"{f}={v}")
    return "stats: " + " ".join(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="a video file (default: a test pattern)")
    parser.add_argument("--model", type=pathlib.Path, help="the .onnx model (default: the bundled selfie model)")
    parser.add_argument("--labels", type=pathlib.Path, help="class names: one per line, or JSON")
    parser.add_argument("--frames", type=int, default=30, help="frames of the test pattern (15 a second)")
    args = parser.parse_args()

    Gst.init(None)
    model = args.model or first_file(s / "selfie/selfie_segmentation_landscape.onnx" for s in SHARE)
    if model is None or not model.is_file():
        sys.exit(f"error: model {model or 'selfie/selfie_segmentation_landscape.onnx'}: no such file")
    if Gst.ElementFactory.find("beitseg") is None:
        sys.exit("error: no beitseg element: install the beitseg package, or set GST_PLUGIN_PATH=target/release")

    if args.input:
        source = "filesrc name=src ! decodebin ! videoconvert"
    else:
        source = (f"videotestsrc num-buffers={args.frames} pattern=ball ! "
                  "video/x-raw,width=320,height=240,framerate=15/1")
    # A queue on each branch: the element pushes its src and mask pads from one thread, and
    # each synchronised sink waits for the other to preroll. Short queues, so that the element
    # runs at the sinks' pace (and its once-a-second stats come while the frames do).
    queue = "queue max-size-buffers=2 max-size-bytes=0 max-size-time=0"
    pipeline = Gst.parse_launch(
        f"{source} ! beitseg name=seg post-stats=true ! {queue} ! fakesink sync=true "
        f"seg.mask ! {queue} ! appsink name=masks sync=true")
    if args.input:
        pipeline.get_by_name("src").set_property("location", args.input)
    seg = pipeline.get_by_name("seg")
    seg.set_property("model", str(model))
    sink = pipeline.get_by_name("masks")

    labels = []
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        pass  # the bus says why, below
    bus = pipeline.get_bus()
    frames, eos, failed = 0, False, None
    while failed is None:
        message = bus.pop()
        if message is None:
            sample = sink.try_pull_sample(100 * Gst.MSECOND)
            if sample is not None:
                if frames == 0:
                    labels = choose_labels(args.labels, seg.get_property("num-classes"))
                pts = sample.get_buffer().pts
                print(shares_line(frames, pts, gray_frame(sample), labels), flush=True)
                frames += 1
            elif eos or sink.is_eos():
                break
            continue
        if message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            failed = f"{err.message} ({debug})" if debug else err.message
        elif message.type == Gst.MessageType.EOS:
            eos = True
        elif message.type == Gst.MessageType.ELEMENT:
            structure = message.get_structure()
            if structure is not None and structure.get_name() == "beitseg-stats":
                print(stats_line(structure), flush=True)
    pipeline.set_state(Gst.State.NULL)
    if failed:
        sys.exit(f"error: {failed}")
    print(f"{frames} frames, ONNX Runtime {seg.get_property('ort-version')}")


def choose_labels(path, num_classes):
    if path is not None:
        return read_labels(path)
    ade20k = first_file(ADE20K)
    if num_classes == 150 and ade20k is not None:
        return read_labels(ade20k)
    return []


if __name__ == "__main__":
    main()
