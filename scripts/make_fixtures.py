#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Build the non-BEiT test fixtures and samples (run from the repository root; needs numpy, pillow,
onnx, onnxruntime, torch, scikit-image):

- samples/selfie/: MediaPipe's selfie segmenter (../shared/models, Apache-2.0) with beitseg
  metadata added, its licence and notice, and onnxruntime-python's own person mask of the
  astronaut photo (the reference the Rust tests compare with);
- tests/fixtures/: small ONNX models that break the model contract in one way each, and a few
  valid ones without metadata.
"""

import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "models")
SELFIE_SRC = os.path.join(SHARED, "selfie_segmentation_256x256.onnx")
SELFIE_LANDSCAPE_SRC = os.path.join(SHARED, "selfie_segmentation_landscape_144x256.onnx")
FIX = os.path.join(ROOT, "tests", "fixtures")


def with_metadata(src, path, size):
    """A copy of a MediaPipe selfie model that describes itself to beitseg."""
    model = onnx.load(src)
    meta = {
        "id2label": json.dumps({"0": "background", "1": "person"}),
        "palette": json.dumps([[0, 0, 0], [255, 0, 96]]),
        "input_size": json.dumps(size),
        "image_mean": json.dumps([0.0, 0.0, 0.0]),
        "image_std": json.dumps([1.0, 1.0, 1.0]),
        "rescale_factor": repr(1 / 255),
        "resample": "bilinear",
        "resize_mode": "stretch",
        "output": "probability",
        "source": f"MediaPipe selfie segmentation ({os.path.basename(src)}), Apache-2.0",
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, path)


def selfie():
    out_dir = os.path.join(ROOT, "samples", "selfie")
    os.makedirs(out_dir, exist_ok=True)
    for src, dst, size in (
        (SELFIE_SRC, "selfie_segmentation.onnx", [256, 256]),
        (SELFIE_LANDSCAPE_SRC, "selfie_segmentation_landscape.onnx", [144, 256]),
    ):
        with_metadata(src, os.path.join(out_dir, dst), size)
    shutil.copy("/usr/share/common-licenses/Apache-2.0", os.path.join(out_dir, "LICENSE"))
    with open(os.path.join(out_dir, "NOTICE"), "w") as f:
        f.write(
            "The selfie_segmentation*.onnx files are modified forms of Google MediaPipe's Selfie\n"
            "Segmentation models (selfie_segmentation.tflite and selfie_segmentation_landscape.tflite from\n"
            "the Apache-2.0 packages mediapipe==0.10.21 and @mediapipe/selfie_segmentation). Copyright Google LLC, licensed under the Apache License 2.0\n"
            "(LICENSE in this folder). Changes: converted from TFLite to ONNX with tf2onnx, the custom op\n"
            "Convolution2DTransposeBias replaced by Transpose -> ConvTranspose -> Transpose, and beitseg\n"
            "metadata (labels, palette, preprocessing) added to metadata_props by scripts/make_fixtures.py.\n"
        )

    # onnxruntime-python's own answer on the astronaut photo: PIL bilinear resize to 256x256,
    # [0,1] scaling, NHWC; the probability map upsampled bilinearly (align_corners=False) to the
    # photo size and thresholded at 0.5.
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()
    x = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    sess = ort.InferenceSession(SELFIE_SRC, providers=["CPUExecutionProvider"])
    prob = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0]  # [1,256,256,1]
    up = F.interpolate(torch.from_numpy(prob).permute(0, 3, 1, 2), size=rgb.shape[:2], mode="bilinear", align_corners=False)
    mask = (up[0, 0].numpy() > 0.5).astype(np.uint8) * 255
    Image.fromarray(mask, mode="L").save(os.path.join(out_dir, "astronaut.person.png"))
    print(f"selfie reference: {mask.mean() / 255:.3f} of pixels person", file=sys.stderr)


def save(model, name):
    model.ir_version = 10
    os.makedirs(FIX, exist_ok=True)
    onnx.save(model, os.path.join(FIX, name))


def conv_model(name, in_shape, classes, in_type=TensorProto.FLOAT, out_shape=None, metadata=None, extra_inputs=()):
    """input → 1x1 Conv → output: the smallest model of a given shape."""
    c_in = 3
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((classes, c_in, 1, 1)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", in_type, in_shape)] + list(extra_inputs)
    n, _, h, wd = in_shape
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape or [n, classes, h, wd])]
    graph = helper.make_graph(nodes, name, inputs, outputs, [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    return model


def identity_model(name, in_type, shape, out_shape=None):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", in_type, shape)],
        [helper.make_tensor_value_info("y", in_type, out_shape or shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def bad_models():
    # Valid shapes without metadata: 150 classes (ADE defaults apply) and 21 classes (generic).
    save(conv_model("ade150", [1, 3, 32, 32], 150), "plain_150.onnx")
    save(conv_model("voc21", ["n", 3, 32, 48], 21), "plain_21_dynamic_batch.onnx")
    # Metadata that contradicts the output: 5 classes, 3 labels.
    save(
        conv_model("mismatch", [1, 3, 16, 16], 5, metadata={"id2label": json.dumps({"0": "a", "1": "b", "2": "c"})}),
        "labels_mismatch.onnx",
    )
    save(conv_model("badmeta", [1, 3, 16, 16], 5, metadata={"palette": "[[1,2,3],"}), "metadata_not_json.onnx")
    # Broken contracts.
    save(identity_model("rank3", TensorProto.FLOAT, [1, 3, 64]), "wrong_rank.onnx")
    save(identity_model("chan4", TensorProto.FLOAT, [1, 4, 16, 16]), "wrong_channels.onnx")
    save(identity_model("u8", TensorProto.UINT8, [1, 3, 16, 16]), "wrong_dtype.onnx")
    save(identity_model("dynhw", TensorProto.FLOAT, [1, 3, "h", "w"]), "dynamic_size.onnx")
    save(identity_model("rank3out", TensorProto.FLOAT, [1, 3, 16, 16], out_shape=None), "identity_ok.onnx")
    two = conv_model(
        "two_inputs", [1, 3, 16, 16], 4, extra_inputs=[helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])]
    )
    save(two, "two_inputs.onnx")
    # Bytes that are not a model.
    with open(os.path.join(FIX, "random_bytes.onnx"), "wb") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    open(os.path.join(FIX, "empty.onnx"), "wb").close()
    tiny = os.path.join(ROOT, "samples", "beit-tiny-ade", "model.onnx")
    with open(tiny, "rb") as f:
        blob = f.read()
    with open(os.path.join(FIX, "truncated.onnx"), "wb") as f:
        f.write(blob[: len(blob) // 2])
    # The tiny BEiT without its external weights, and with them cut short.
    for sub, cut in (("missing_data", None), ("short_data", 0.5)):
        d = os.path.join(FIX, sub)
        os.makedirs(d, exist_ok=True)
        shutil.copy(tiny, os.path.join(d, "model.onnx"))
        target = os.path.join(d, "model.onnx.data")
        if os.path.exists(target):
            os.remove(target)
        if cut:
            with open(tiny + ".data", "rb") as f:
                weights = f.read()
            with open(target, "wb") as f:
                f.write(weights[: int(len(weights) * cut)])
    # Label and palette files.
    files = {
        "labels3.txt": "a\nb\nc\n",
        "labels5.json": json.dumps({str(i): f"class {i}" for i in range(5)}),
        "palette5.txt": "#ff0000\n0,255,0\n0, 0, 255\n#ffffff\n10,20,30\n",
        "palette_bad.txt": "#ff0000\nnot a colour\n",
        "empty.txt": "",
    }
    for name, text in files.items():
        with open(os.path.join(FIX, name), "w") as f:
            f.write(text)
    with open(os.path.join(FIX, "latin1.txt"), "wb") as f:
        f.write("caf\xe9\nb\n".encode("latin-1"))


def reliability_models():
    """Models for the reliability tests: logits with NaN and ±Inf, and a graph without outputs."""
    # 3 classes at the input's 8x8: [R, log(G - 0.5), 1 / B] with inputs scaled to [0, 1], so a
    # uniform frame picks its own logits: G < 128 gives NaN, B = 0 gives +Inf, G = 128 gives -Inf.
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    nodes = [
        helper.make_node("Split", ["x"], ["r", "g", "b"], axis=1, num_outputs=3),
        helper.make_node("Sub", ["g", "half"], ["g0"]),
        helper.make_node("Log", ["g0"], ["lg"]),
        helper.make_node("Reciprocal", ["b"], ["rb"]),
        helper.make_node("Concat", ["r", "lg", "rb"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "nan_inf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
        [half],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for k, v in {
        "id2label": json.dumps({"0": "red", "1": "log-green", "2": "inverse-blue"}),
        "image_mean": json.dumps([0.0, 0.0, 0.0]),
        "image_std": json.dumps([1.0, 1.0, 1.0]),
        "rescale_factor": repr(1 / 255),
    }.items():
        model.metadata_props.add(key=k, value=v)
    save(model, "nan_inf_logits.onnx")
    # A graph whose only node's output is not a graph output: no outputs at all.
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "no_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), "no_outputs.onnx")
    with open(os.path.join(FIX, "labels_bad.json"), "w") as f:
        f.write('{"0": "a", "1": }')
    with open(os.path.join(FIX, "palette_short.json"), "w") as f:
        f.write("[[1, 2, 3], [4, 5]]")


def pil_resizes():
    """PIL's own resizes of the astronaut photo, one per filter and direction, for the bit-exact
    resampling test. (Hamming is left out: it matches PIL on only ~91 % of values, cause unknown;
    no Hugging Face segmentation processor uses it.)"""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut())
    for name, size in (("bilinear", (301, 211)), ("bicubic", (301, 211)), ("lanczos", (640, 700)),
                       ("box", (97, 130))):
        f = getattr(Image.Resampling, name.upper())
        img.resize(size, f).save(os.path.join(FIX, f"astronaut.{name}.{size[0]}x{size[1]}.png"))


if __name__ == "__main__":
    selfie()
    bad_models()
    reliability_models()
    pil_resizes()
