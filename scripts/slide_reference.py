#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Slide-window class maps for an exported model: mmsegmentation's EncoderDecoder.slide_inference
(test_cfg mode='slide', crop = the model's input size, stride = 2/3 of it) reimplemented with
ONNX Runtime, on the committed tiny BEiT by default (so the weights are the committed ones):

    .venv-export/bin/python scripts/slide_reference.py            # writes into samples/beit-tiny-ade

1. Resize keeping the aspect ratio so that the short side equals the model size:
   scale = max(H_m / h, W_m / w), new size (int(w * scale + 0.5), int(h * scale + 0.5)) as mmcv's
   rescale rounds it; PIL resize with the model's metadata resample filter, then its
   normalisation (x rescale_factor, - mean, / std, channel order, NCHW).
2. Windows: crop = (H_m, W_m), stride = (2 * H_m // 3, 2 * W_m // 3);
   grids = max(H - crop + stride - 1, 0) // stride + 1 per axis; window (i, j):
   y1 = i * stride, y2 = min(y1 + crop, H), y1 = max(y2 - crop, 0) (x likewise).
   All windows of an image run through the model as one batch.
3. Each window's logits are upsampled bilinearly (align_corners=False) to the crop size and summed
   into a [C, H, W] canvas, a count canvas += 1 there; canvas / count is upsampled bilinearly
   (align_corners=False) to the photo's size; argmax = the class map. Near-ties (255): the best
   two final logits within 1e-4 relative, as in export_model.py.

Writes <photo>.slide.classes.png, <photo>.slide.ties.png and slide.json (per photo: size, resized
size, window count and boxes [y1, x1, y2, x2] in the resized image, classes, share of pixels
that differ from the plain (stretch) class map).
"""

import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "samples", "beit-tiny-ade")
RESAMPLE_IDS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def resized_size(h, w, model_h, model_w):
    """(new_h, new_w): the short side to the model size, as mmcv rescales (round half up)."""
    scale = max(model_h / h, model_w / w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def windows(h, w, crop_h, crop_w):
    """mmseg slide_inference's window boxes [y1, x1, y2, x2] over an h x w image."""
    stride_h, stride_w = 2 * crop_h // 3, 2 * crop_w // 3
    h_grids = max(h - crop_h + stride_h - 1, 0) // stride_h + 1
    w_grids = max(w - crop_w + stride_w - 1, 0) // stride_w + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride_h, w_idx * stride_w
            y2, x2 = min(y1 + crop_h, h), min(x1 + crop_w, w)
            y1, x1 = max(y2 - crop_h, 0), max(x2 - crop_w, 0)
            boxes.append([y1, x1, y2, x2])
    return boxes


def normalise(arr, meta):
    x = arr.astype(np.float32) * np.float32(float(meta.get("rescale_factor", 1 / 255)))
    x = (x - np.array(json.loads(meta["image_mean"]), np.float32)) / np.array(json.loads(meta["image_std"]), np.float32)
    if meta.get("channel_order", "rgb") == "bgr":
        x = x[..., ::-1]
    return x.transpose(2, 0, 1)


def slide(session, meta, rgb):
    """(final upsampled logits [C, h, w] as a torch tensor, resized size, boxes)."""
    import torch
    from PIL import Image

    model_h, model_w = json.loads(meta["input_size"])
    h, w = rgb.shape[:2]
    nh, nw = resized_size(h, w, model_h, model_w)
    img = np.asarray(Image.fromarray(rgb).resize((nw, nh), RESAMPLE_IDS[meta["resample"]]))
    x = normalise(img, meta)
    boxes = windows(nh, nw, model_h, model_w)
    batch = np.stack([x[:, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes]).astype(np.float32)
    (logits,) = session.run(None, {session.get_inputs()[0].name: batch})
    crops = torch.nn.functional.interpolate(torch.from_numpy(logits), size=(model_h, model_w), mode="bilinear",
                                            align_corners=False)
    canvas = torch.zeros(logits.shape[1], nh, nw)
    count = torch.zeros(1, nh, nw)
    for crop, (y1, x1, y2, x2) in zip(crops, boxes):
        canvas[:, y1:y2, x1:x2] += crop
        count[:, y1:y2, x1:x2] += 1
    merged = canvas / count
    up = torch.nn.functional.interpolate(merged[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return up, (nh, nw), boxes


def plain(session, meta, rgb):
    """The plain class map: stretch to the model size, one run, bilinear upsample, argmax."""
    import torch
    from PIL import Image

    model_h, model_w = json.loads(meta["input_size"])
    img = np.asarray(Image.fromarray(rgb).resize((model_w, model_h), RESAMPLE_IDS[meta["resample"]]))
    (logits,) = session.run(None, {session.get_inputs()[0].name: normalise(img, meta)[None].astype(np.float32)})
    up = torch.nn.functional.interpolate(torch.from_numpy(logits), size=rgb.shape[:2], mode="bilinear",
                                         align_corners=False)
    return up[0].argmax(0).numpy()


def main():
    import onnxruntime as ort
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(SAMPLES, "model.onnx"))
    ap.add_argument("--dir", default=SAMPLES, help="where the photos are and the maps go")
    ap.add_argument("--photos", nargs="+", default=["astronaut", "coffee", "chelsea", "wide720"])
    args = ap.parse_args()

    wide = os.path.join(args.dir, "wide720.png")
    if "wide720" in args.photos and not os.path.exists(wide):
        from skimage import data

        # scikit-image's coffee photo (400x600) stretched to a 1280x720 frame.
        Image.fromarray(data.coffee()).resize((1280, 720), Image.Resampling.LANCZOS).save(wide)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    model_h, model_w = json.loads(meta["input_size"])
    for fw, fh in [(1280, 720), (1920, 1080), (3840, 2160)]:
        nh, nw = resized_size(fh, fw, model_h, model_w)
        print(f"{fw}x{fh} frame: resized {nw}x{nh}, {len(windows(nh, nw, model_h, model_w))} windows")
    summary = {}
    for name in args.photos:
        rgb = np.asarray(Image.open(os.path.join(args.dir, f"{name}.png")).convert("RGB"))
        up, resized, boxes = slide(session, meta, rgb)
        seg = up.argmax(0).numpy().astype(np.uint8)
        top = up.topk(2, dim=0).values
        ties = ((top[0] - top[1]) <= 1e-4 * top[0].abs().clamp(min=1.0)).numpy()
        Image.fromarray(seg, mode="L").save(os.path.join(args.dir, f"{name}.slide.classes.png"))
        Image.fromarray(ties.astype(np.uint8) * 255, mode="L").save(os.path.join(args.dir, f"{name}.slide.ties.png"))
        committed = os.path.join(args.dir, f"{name}.classes.png")
        if os.path.exists(committed):
            reference, against = np.asarray(Image.open(committed)), f"{name}.classes.png"
        else:
            reference, against = plain(session, meta, rgb), "plain stretch run (ONNX Runtime)"
        classes, counts = np.unique(seg, return_counts=True)
        summary[name] = {
            "size": list(rgb.shape[:2]),
            "resized": list(resized),
            "windows": len(boxes),
            "boxes": boxes,
            "classes": int(len(classes)),
            "largest_class_share": float(counts.max() / seg.size),
            "near_ties": int(ties.sum()),
            "differs_from_plain": float((seg != reference).mean()),
            "plain": against,
        }
        print(f"{name}: {rgb.shape[1]}x{rgb.shape[0]} -> {resized[1]}x{resized[0]}, {len(boxes)} windows, "
              f"{len(classes)} classes, {100 * summary[name]['differs_from_plain']:.1f}% differ from {against}")
    with open(os.path.join(args.dir, "slide.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
