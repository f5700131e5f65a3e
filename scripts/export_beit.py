#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Export a Hugging Face BEiT semantic-segmentation checkpoint to a self-describing ONNX model.

Real model (needs internet access to the Hugging Face hub, ~1.8 GB download, ~4 minutes on 2 cores):

    python3 -m venv .venv-export && .venv-export/bin/pip install torch 'transformers>=5' onnx onnxscript pillow
    .venv-export/bin/python scripts/export_beit.py --out models/beit-large-ade.onnx          # fp32, weights in .onnx.data
    .venv-export/bin/python scripts/export_beit.py --out models/beit-large-ade-fp16.onnx --fp16

The element then needs nothing else: labels, palette, input size, mean/std, resample filter and
resize mode travel inside the model's metadata_props.

Test fixtures (offline, no hub access): a tiny random-weight BEiT with the same architecture as
microsoft/beit-large-finetuned-ade-640-640 (relative position bias, UperNet head, 150 classes,
640x640 input, logits at 1/4 resolution), plus the class maps transformers itself produces for
real photos from scikit-image:

    python3 scripts/export_beit.py --tiny --out samples/beit-tiny-ade/model.onnx --references samples/beit-tiny-ade
"""

import argparse
import json
import os
import sys

import numpy as np

ADE_CHECKPOINT = "microsoft/beit-large-finetuned-ade-640-640"
HERE = os.path.dirname(os.path.abspath(__file__))


def ade20k_tables():
    """The 150 ADE20k labels (HF ade20k-id2label, mmseg order) and the mmsegmentation palette."""
    with open(os.path.join(HERE, "..", "src", "palette", "ade20k.json")) as f:
        data = json.load(f)
    return data["labels"], data["palette"]


def ade_beit(seed, **architecture):
    """A random-weight BeitForSemanticSegmentation laid out like the ADE20k checkpoints (640x640,
    patch 16, relative position bias per layer, UperNet decode head + auxiliary FCN head, 150
    classes), with the given width and depth."""
    import torch
    from transformers import BeitConfig, BeitForSemanticSegmentation

    labels, _ = ade20k_tables()
    config = BeitConfig(
        image_size=640,
        patch_size=16,
        use_relative_position_bias=True,
        use_absolute_position_embeddings=False,
        pool_scales=[1, 2, 3, 6],
        use_auxiliary_head=True,
        num_labels=150,
        id2label={i: name for i, name in enumerate(labels)},
        label2id={name: i for i, name in enumerate(labels)},
        attn_implementation="eager",
        **architecture,
    )
    torch.manual_seed(seed)
    return BeitForSemanticSegmentation(config).eval()


def tiny_model(seed):
    import torch

    model = ade_beit(
        seed,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        use_mean_pooling=True,
        layer_scale_init_value=0.1,
        out_indices=[1, 2, 3, 4],
        auxiliary_channels=32,
    )
    # Random weights at the default 0.02 scale give nearly flat logits and one class everywhere.
    # Wider weights make the class map follow the image, so the parity tests see many classes.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 1.0 / np.sqrt(p[0].numel()))
    return model


def random_large_model(seed):
    """BEiT-large ADE (microsoft/beit-large-finetuned-ade-640-640's architecture: 24 layers of
    1024) with random weights: the same cost as the real model, for speed measurements where the
    hub cannot be reached."""
    return ade_beit(
        seed,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        layer_scale_init_value=1e-6,
        out_indices=[7, 11, 15, 23],
        auxiliary_channels=256,
    )


def ade_processor_settings():
    """The preprocessing settings of microsoft/beit-large-finetuned-ade-640-640, without PIL (the
    GPU machine's python has none); only the export metadata reads them."""
    from types import SimpleNamespace

    return SimpleNamespace(
        size={"height": 640, "width": 640}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
        rescale_factor=1 / 255, resample=2,
    )


def tiny_processor():
    from PIL import Image
    from transformers.models.beit.image_processing_pil_beit import BeitImageProcessorPil

    # The preprocessor_config.json of microsoft/beit-large-finetuned-ade-640-640.
    return BeitImageProcessorPil(
        size={"height": 640, "width": 640},
        resample=Image.Resampling.BILINEAR,
        do_center_crop=False,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_reduce_labels=True,
    )


def pil_processor(checkpoint):
    from transformers.models.beit.image_processing_pil_beit import BeitImageProcessorPil

    return BeitImageProcessorPil.from_pretrained(checkpoint)


RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def metadata(model, processor, source):
    labels, palette = ade20k_tables()
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    n = model.config.num_labels
    if n != len(palette):
        # Not ADE20k: a stable palette derived from the class id.
        rng = np.random.default_rng(0)
        palette = rng.integers(0, 256, size=(n, 3)).tolist()
    size = processor.size
    resample = int(processor.resample)
    return {
        "id2label": json.dumps({str(k): id2label[k] for k in sorted(id2label)}),
        "palette": json.dumps(palette),
        "input_size": json.dumps([size["height"], size["width"]]),
        "image_mean": json.dumps(list(processor.image_mean)),
        "image_std": json.dumps(list(processor.image_std)),
        "rescale_factor": repr(float(processor.rescale_factor)),
        "resample": RESAMPLE_NAMES.get(resample, "bilinear"),
        "resize_mode": "stretch",
        "output": "logits",
        "source": source,
    }


# The graph input (with a default value) that every layer's relative position index is built from.
POSITION_BASE = "relative_position_base"
# Fold the biases into constants at load time when they cost at most this many bytes in all.
FOLD_BUDGET = 256 << 20


def compact_position_bias(model):
    """Builds BEiT's relative position index once per run from one small vector, instead of
    transformers' ~40 scatter/gather ops per layer, and gathers each layer's bias from its table
    with it. Returns (base, shared, folded_bytes): the int32 vector `y * (2 * Ww - 1) + x` of
    each patch, the dict the wrapper fills with the index, and what the folded biases would take.

    Why: transformers' index computation depends only on constants, so ONNX Runtime's constant
    folding evaluates it at load time, keeping every [1600, 1600, 2] int64 intermediate (~1 GB
    per layer): BEiT-large (24 layers) does not load in 24 GB. Built here, the index is
    `base[i] - base[j] + c` (with the class token's row and column), a few 10 MB int32 passes.
    The values are the ones transformers gathers (its table interpolation to the same window
    size is the identity), so the logits do not change."""
    import torch
    from transformers.models.beit.modeling_beit import BeitRelativePositionBias

    layers = [m for m in model.modules() if isinstance(m, BeitRelativePositionBias)]
    if not layers:
        return None, None, 0
    shared = {}
    original = BeitRelativePositionBias.forward

    def forward(self, window_size, interpolate_pos_encoding=False, dim_size=None):
        index = shared.get("index")
        if index is None or interpolate_pos_encoding or tuple(window_size) != tuple(self.window_size):
            return original(self, window_size, interpolate_pos_encoding, dim_size)
        n = index.shape[0]
        # [n * n, heads] rows (one block copy each), then heads first: [1, heads, n, n].
        bias = torch.index_select(self.relative_position_bias_table, 0, index.reshape(-1))
        return bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)

    BeitRelativePositionBias.forward = forward
    wh, ww = layers[0].window_size
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    base = (ys * (2 * ww - 1) + xs).reshape(-1).to(torch.int32)
    n = wh * ww + 1
    table = layers[0].relative_position_bias_table
    folded = len(layers) * table.shape[1] * n * n * table.element_size()
    return base, shared, folded


def position_index(base, window_size, distances):
    """transformers' relative position index ([n, n] int32, n = patches + 1) from the patches'
    `y * (2 * Ww - 1) + x`: pairs of patches, then the class token's row and column."""
    import torch

    wh, ww = window_size
    pairs = base[:, None] - base[None, :] + ((wh - 1) * (2 * ww - 1) + ww - 1)
    p = base.shape[0]
    top = torch.cat([torch.full((1, 1), distances - 1, dtype=torch.int32),
                     torch.full((1, p), distances - 3, dtype=torch.int32)], dim=1)
    rest = torch.cat([torch.full((p, 1), distances - 2, dtype=torch.int32), pairs], dim=1)
    return torch.cat([top, rest], dim=0)


def export(model, processor, out, fp16, source, position_bias="auto"):
    import torch

    base, shared, folded = (None, None, 0) if position_bias == "transformers" else compact_position_bias(model)
    if base is not None:
        from transformers.models.beit.modeling_beit import BeitRelativePositionBias

        layer = next(m for m in model.modules() if isinstance(m, BeitRelativePositionBias))
        window, distances = tuple(layer.window_size), layer.num_relative_distance
        fold = position_bias == "fold" or (position_bias == "auto" and folded <= FOLD_BUDGET)
        how = "folded into constants at load" if fold else "gathered at run time"
        print(f"relative position biases: {folded / 2**20:.0f} MiB if folded: {how}", file=sys.stderr)

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values, relative_position_base=None):
            if shared is not None:
                shared["index"] = position_index(relative_position_base, window, distances)
            return self.m(pixel_values=pixel_values).logits

    size = processor.size
    dtype = torch.float16 if fp16 else torch.float32
    wrapper = Wrapper(model.to(dtype)).eval()
    # A dynamic batch axis needs an example batch of at least 2; H and W stay static.
    example = torch.zeros(2, 3, size["height"], size["width"], dtype=dtype)
    batch = torch.export.Dim("batch", min=1, max=64)
    inputs, names, dynamic = (example,), ["pixel_values"], {"pixel_values": {0: batch}}
    if base is not None:
        inputs, names = (example, base), names + [POSITION_BASE]
        dynamic[POSITION_BASE] = None
    program = torch.onnx.export(
        wrapper,
        inputs,
        dynamo=True,
        input_names=names,
        output_names=["logits"],
        dynamic_shapes=dynamic,
        optimize=True,
    )
    if base is not None:
        import onnx_ir

        # The vector's value as an initializer. Folded: a plain constant, so ONNX Runtime turns
        # the index and the biases into constants once, at load. Gathered: also left as a graph
        # input (IR >= 4: a default value the caller may override), which ONNX Runtime does not
        # fold, so each run builds the index and gathers the biases (as transformers does).
        graph = program.model.graph
        (value,) = [v for v in graph.inputs if v.name == POSITION_BASE]
        value.const_value = onnx_ir.tensor(base.numpy(), name=POSITION_BASE)
        graph.register_initializer(value)
        if fold:
            graph.inputs.remove(value)
        # The exporter widens the int32 index to int64 before Gather, which takes int32 as it
        # is: a pass over 2.5 M values a run saved.
        for node in list(graph):
            if node.op_type != "Cast" or node.attributes["to"].as_int() != onnx_ir.DataType.INT64:
                continue
            wide = node.outputs[0]
            if wide.uses() and all(use.node.op_type == "Gather" and use.idx == 1 for use in wide.uses()):
                wide.replace_all_uses_with(node.inputs[0])
                graph.remove(node, safe=True)
        program.model.metadata_props["relative_position_bias"] = "folded" if fold else "gathered"
    for key, value in metadata(model, processor, source).items():
        program.model.metadata_props[key] = value
    # onnxruntime 1.31 refuses IR version 14.
    program.model.ir_version = min(program.model.ir_version, 10)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    data = out + ".data"
    if os.path.exists(data):
        os.remove(data)
    program.save(out, external_data=True)
    print(f"wrote {out} (+ {os.path.basename(data)})", file=sys.stderr)


def sample_photos():
    """Real photos shipped inside scikit-image (public domain / CC0), plus one at the model size."""
    from PIL import Image
    from skimage import data

    photos = {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
    }
    rocket = Image.fromarray(data.rocket())
    photos["rocket640"] = np.asarray(rocket.crop((0, 0, 427, 427)).resize((640, 640), Image.Resampling.LANCZOS))
    photos["astronaut640"] = np.asarray(Image.fromarray(data.astronaut()).resize((640, 640), Image.Resampling.LANCZOS))
    return photos


def write_references(model, processor, ref_dir):
    """Class maps as transformers itself computes them: BeitImageProcessorPil + PyTorch forward +
    post_process_semantic_segmentation(target_sizes=[(H, W)])."""
    import torch
    from PIL import Image

    os.makedirs(ref_dir, exist_ok=True)
    model = model.float().eval()
    summary = {}
    for name, rgb in sample_photos().items():
        Image.fromarray(rgb).save(os.path.join(ref_dir, f"{name}.png"))
        inputs = processor(images=rgb, return_tensors="pt")
        with torch.no_grad():
            outputs = model(**inputs)
        seg = processor.post_process_semantic_segmentation(outputs, target_sizes=[rgb.shape[:2]])[0]
        seg = seg.numpy().astype(np.uint8)
        Image.fromarray(seg, mode="L").save(os.path.join(ref_dir, f"{name}.classes.png"))
        # Near-ties: pixels whose best two upsampled logits are closer than float noise between
        # two runtimes (ONNX Runtime and PyTorch order their sums differently). Marked 255.
        up = torch.nn.functional.interpolate(outputs.logits, size=rgb.shape[:2], mode="bilinear", align_corners=False)
        top = up[0].topk(2, dim=0).values
        ties = ((top[0] - top[1]) <= 1e-4 * top[0].abs().clamp(min=1.0)).numpy()
        Image.fromarray(ties.astype(np.uint8) * 255, mode="L").save(os.path.join(ref_dir, f"{name}.ties.png"))
        classes, counts = np.unique(seg, return_counts=True)
        summary[name] = {
            "size": list(rgb.shape[:2]),
            "classes": int(len(classes)),
            "largest_class_share": float(counts.max() / seg.size),
            "near_ties": int(ties.sum()),
        }
        # The PIL-resized 640x640 input, to test preprocessing on its own.
        if name == "astronaut":
            size = processor.size
            resized = Image.fromarray(rgb).resize((size["width"], size["height"]), Image.Resampling.BILINEAR)
            resized.save(os.path.join(ref_dir, f"{name}.resized.png"))
    with open(os.path.join(ref_dir, "references.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=ADE_CHECKPOINT, help="HF BEiT semantic-segmentation checkpoint")
    ap.add_argument("--out", required=True, help="output .onnx path (weights go to OUT.data beside it)")
    ap.add_argument("--fp16", action="store_true", help="export with float16 weights and input")
    ap.add_argument("--tiny", action="store_true", help="offline tiny random-weight BEiT (test fixture)")
    ap.add_argument("--random-large", action="store_true",
                    help="offline BEiT-large ADE architecture with random weights (speed measurements)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --tiny / --random-large")
    ap.add_argument("--position-bias", choices=["auto", "fold", "gather", "transformers"], default="auto",
                    help="relative position biases: folded into constants by ONNX Runtime at load "
                    "(fast runs, heads x N^2 floats a layer in memory) or gathered at every run "
                    f"(no memory); auto folds when all layers' biases fit in {FOLD_BUDGET >> 20} MiB; "
                    "transformers: its own index computation, as exports before beitseg 0.2 had it "
                    "(ONNX Runtime's constant folding needs ~1 GB a layer to load it)")
    ap.add_argument("--references", metavar="DIR", help="with --tiny: write photos and transformers class maps")
    args = ap.parse_args()

    from transformers import BeitForSemanticSegmentation

    if args.tiny:
        model, processor, source = tiny_model(args.seed), tiny_processor(), f"tiny random BEiT (seed {args.seed})"
    elif args.random_large:
        model, processor = random_large_model(args.seed), ade_processor_settings()
        source = f"random-weight BEiT-large ADE architecture (seed {args.seed})"
    else:
        model = BeitForSemanticSegmentation.from_pretrained(args.checkpoint, attn_implementation="eager").eval()
        processor, source = pil_processor(args.checkpoint), args.checkpoint
    if args.references:
        write_references(model, processor, args.references)
    export(model, processor, args.out, args.fp16, source, args.position_bias)


if __name__ == "__main__":
    main()
