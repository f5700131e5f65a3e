#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Export a Hugging Face semantic-segmentation checkpoint (logits output) to a self-describing ONNX
model: labels, palette, input size, resize mode, mean/std, rescale factor, resample filter and
channel order travel inside its metadata_props, so the element needs nothing else.

Families: beit, data2vec-vision, segformer, upernet-convnext, upernet-swin, dpt, mobilevit,
mobilevitv2. Real checkpoints (needs the Hugging Face hub):

    python3 -m venv .venv-export && .venv-export/bin/pip install torch 'transformers>=5' onnx onnxscript pillow
    .venv-export/bin/python scripts/export_model.py --checkpoint nvidia/segformer-b0-finetuned-ade-512-512 --out models/segformer-b0.onnx
    .venv-export/bin/python scripts/export_model.py --checkpoint microsoft/beit-large-finetuned-ade-640-640 --out models/beit-large-ade-fp16.onnx --fp16

Offline (no hub): `--family F --tiny` builds a tiny random-weight model laid out like F's canonical
checkpoint (its input size, head, classes, preprocessing), `--family F --random-real` the canonical
architecture at its real size with random weights (for speed measurements). Test fixtures, with
the class maps transformers itself produces (PIL image processor + PyTorch forward +
post_process_semantic_segmentation) and their check against ONNX Runtime fed by a NumPy
reimplementation of the preprocessing written from the metadata alone:

    .venv-export/bin/python scripts/export_model.py --fixtures tests/fixtures/families
    .venv-export/bin/python scripts/export_model.py --family segformer --tiny --out /tmp/s.onnx --references /tmp/s
    .venv-export/bin/python scripts/export_model.py --verify tests/fixtures/families/segformer

Metadata keys (all strings): id2label, palette, input_size [h, w], image_mean, image_std,
rescale_factor, resample, resize_mode (stretch | shortest_edge_crop), shortest_edge (with
shortest_edge_crop: the short side after the aspect-keeping resize; the long side is
int(shortest_edge * long / short), truncated; then a center crop to input_size at
top = (h - crop_h) // 2, left = (w - crop_w) // 2), channel_order (rgb | bgr), family,
reduce_labels (informational), output = logits, source.

transformers' post_process_semantic_segmentation upsamples the logits straight to the photo's
size, so with shortest_edge_crop the class map is the crop's logits stretched over the whole
photo (not put back where the crop came from); the references here, and the check, do the same.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
SAMPLES = os.path.join(ROOT, "samples", "beit-tiny-ade")
FAMILIES = ["beit", "data2vec-vision", "segformer", "upernet-convnext", "upernet-swin", "dpt", "mobilevit",
            "mobilevitv2"]
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
RESAMPLE_IDS = {v: k for k, v in RESAMPLE_NAMES.items()}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
BILINEAR = 2
VOC_LABELS = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
              "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
              "tvmonitor"]


def ade20k_tables():
    """The 150 ADE20k labels (HF ade20k-id2label, mmseg order) and the mmsegmentation palette."""
    with open(os.path.join(ROOT, "src", "palette", "ade20k.json")) as f:
        data = json.load(f)
    return data["labels"], data["palette"]


def voc_palette(n=21):
    """The PASCAL VOC colour map (bit-interleaved class id)."""
    palette = []
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for k in range(3):
                rgb[k] |= ((c >> k) & 1) << (7 - j)
            c >>= 3
        palette.append(rgb)
    return palette


def label_kwargs(labels):
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={name: i for i, name in enumerate(labels)})


# --- Preprocessing of each family's canonical checkpoint -------------------------------------------------------
#
# The hub is unreachable here, so each canonical checkpoint's preprocessor_config.json is written
# out as a plain dict ("prep") from what its conversion script saved (transformers' convert_*.py):
#   processor: which transformers image processor class runs it (PIL backend for references)
#   resize_mode: stretch | shortest_edge_crop;  input_size: [h, w] (model input)
#   shortest_edge: with shortest_edge_crop;  resample: PIL filter id
#   rescale_factor: None when the processor does not rescale;  image_mean/std: None when it does
#   not normalize;  channel_order: rgb | bgr;  reduce_labels: informational (label maps only)


def stretch(size, mean, std, resample=BILINEAR, reduce_labels=False, processor="segformer"):
    return dict(processor=processor, resize_mode="stretch", input_size=list(size), shortest_edge=None,
                resample=resample, rescale_factor=1 / 255, image_mean=mean, image_std=std, channel_order="rgb",
                reduce_labels=reduce_labels)


def canonical(family, variant=None):
    """(checkpoint it mimics, prep) of a family's canonical checkpoint."""
    if family == "beit":
        # microsoft/beit-large-finetuned-ade-640-640: BeitImageProcessor 640x640, bilinear,
        # mean/std 0.5, do_center_crop false, do_reduce_labels true.
        return ("microsoft/beit-large-finetuned-ade-640-640",
                stretch((640, 640), [0.5] * 3, [0.5] * 3, reduce_labels=True, processor="beit"))
    if family == "data2vec-vision":
        # No ADE checkpoint of data2vec-vision on the hub: facebook/data2vec-vision-large-ft1k's
        # backbone in Data2VecVisionForSemanticSegmentation, with BEiT-large ADE's processor.
        return ("facebook/data2vec-vision-large-ft1k (ADE segmentation layout)",
                stretch((640, 640), [0.5] * 3, [0.5] * 3, reduce_labels=True, processor="beit"))
    if family == "segformer":
        # nvidia/segformer-bN-finetuned-ade-512-512 (b5: -640-640): SegformerFeatureExtractor
        # size 512, bilinear, ImageNet mean/std, reduce_labels true.
        variant = variant or "b0"
        side = 640 if variant == "b5" else 512
        return (f"nvidia/segformer-{variant}-finetuned-ade-{side}-{side}",
                stretch((side, side), IMAGENET_MEAN, IMAGENET_STD, reduce_labels=True))
    if family in ("upernet-convnext", "upernet-swin"):
        # openmmlab/upernet-*: SegformerImageProcessor() defaults: 512x512, bilinear, ImageNet
        # mean/std, do_reduce_labels false.
        name = "convnext-small" if family == "upernet-convnext" else "swin-tiny"
        return f"openmmlab/upernet-{name}", stretch((512, 512), IMAGENET_MEAN, IMAGENET_STD)
    if family == "dpt":
        # Intel/dpt-large-ade: DPTFeatureExtractor(size=480) (convert_dpt_to_pytorch.py), whose
        # defaults then were resample BILINEAR, keep_aspect_ratio false, ensure_multiple_of 1,
        # mean/std 0.5, no padding: a plain 480x480 stretch.
        return "Intel/dpt-large-ade", stretch((480, 480), [0.5] * 3, [0.5] * 3, processor="dpt")
    if family in ("mobilevit", "mobilevitv2"):
        # MobileViTFeatureExtractor(crop_size=512, size=544) (convert_mlcvnets_to_pytorch.py):
        # shortest edge 544, bilinear (the extractor's default then), center crop 512x512, rescale
        # 1/255, no normalisation, RGB -> BGR.
        checkpoint = ("apple/deeplabv3-mobilevit-small" if family == "mobilevit"
                      else "apple/mobilevitv2-1.0-voc-deeplabv3")
        return checkpoint, dict(processor="mobilevit", resize_mode="shortest_edge_crop", input_size=[512, 512],
                                shortest_edge=544, resample=BILINEAR, rescale_factor=1 / 255, image_mean=None,
                                image_std=None, channel_order="bgr", reduce_labels=False)
    raise SystemExit(f"unknown family {family!r} (one of {', '.join(FAMILIES)})")


def make_processor(prep):
    """The transformers PIL-backend image processor that does what `prep` says."""
    h, w = prep["input_size"]
    common = dict(resample=prep["resample"], do_rescale=prep["rescale_factor"] is not None,
                  rescale_factor=prep["rescale_factor"] or 1 / 255)
    norm = dict(do_normalize=prep["image_mean"] is not None)
    if prep["image_mean"] is not None:
        norm.update(image_mean=prep["image_mean"], image_std=prep["image_std"])
    kind = prep["processor"]
    if kind == "beit":
        from transformers.models.beit.image_processing_pil_beit import BeitImageProcessorPil

        return BeitImageProcessorPil(size={"height": h, "width": w}, do_center_crop=False,
                                     do_reduce_labels=prep["reduce_labels"], **common, **norm)
    if kind == "segformer":
        from transformers.models.segformer.image_processing_pil_segformer import SegformerImageProcessorPil

        return SegformerImageProcessorPil(size={"height": h, "width": w}, do_reduce_labels=prep["reduce_labels"],
                                          **common, **norm)
    if kind == "dpt":
        from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

        return DPTImageProcessorPil(size={"height": h, "width": w}, keep_aspect_ratio=False, ensure_multiple_of=1,
                                    do_pad=False, do_reduce_labels=prep["reduce_labels"], **common, **norm)
    if kind == "mobilevit":
        from transformers.models.mobilevit.image_processing_pil_mobilevit import MobileViTImageProcessorPil

        return MobileViTImageProcessorPil(size={"shortest_edge": prep["shortest_edge"]},
                                          crop_size={"height": h, "width": w}, do_center_crop=True,
                                          do_flip_channel_order=prep["channel_order"] == "bgr",
                                          do_reduce_labels=prep["reduce_labels"], **common, **norm)
    raise ValueError(kind)


def _get(d, key):
    if d is None:
        return None
    if isinstance(d, dict):
        return d.get(key)
    return getattr(d, key, None)


def prep_from_processor(processor):
    """What a transformers image processor does, as a prep dict, plus the steps that the metadata
    keys cannot describe (an export goes ahead, and says so)."""
    unsupported = []
    name = type(processor).__name__
    kind = ("mobilevit" if "MobileViT" in name else "dpt" if "DPT" in name else "beit" if "Beit" in name
            else "segformer")
    size, crop = processor.size, getattr(processor, "crop_size", None)
    crop_on = bool(getattr(processor, "do_center_crop", False))
    if _get(size, "height") and _get(size, "width"):
        mode, shortest, input_size = "stretch", None, [_get(size, "height"), _get(size, "width")]
        if crop_on and [_get(crop, "height"), _get(crop, "width")] != input_size:
            unsupported.append(f"center crop {crop} after the {input_size} stretch")
            input_size = [_get(crop, "height"), _get(crop, "width")]
    elif _get(size, "shortest_edge") and crop_on and not _get(size, "longest_edge"):
        mode, shortest = "shortest_edge_crop", int(_get(size, "shortest_edge"))
        input_size = [_get(crop, "height"), _get(crop, "width")]
        if min(input_size) > shortest:
            unsupported.append("center crop larger than the short side (zero padding)")
    else:
        raise SystemExit(f"{name}: size {size} (crop {crop_on}) gives a per-image input size: not exportable")
    if kind == "dpt":
        if getattr(processor, "keep_aspect_ratio", False):
            unsupported.append("DPT keep_aspect_ratio (per-image size, fit the dimension closest to scale 1)")
        if (getattr(processor, "ensure_multiple_of", 1) or 1) != 1:
            m = processor.ensure_multiple_of
            if any(round(s / m) * m != s for s in input_size) or getattr(processor, "keep_aspect_ratio", False):
                unsupported.append(f"DPT ensure_multiple_of={m} rounding of the output size")
        if getattr(processor, "do_pad", False) and getattr(processor, "size_divisor", None):
            unsupported.append(f"DPT center zero padding to a multiple of {processor.size_divisor}")
    rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else None
    normalize = bool(getattr(processor, "do_normalize", False))
    mean = [float(x) for x in np.broadcast_to(processor.image_mean, 3)] if normalize else None
    std = [float(x) for x in np.broadcast_to(processor.image_std, 3)] if normalize else None
    prep = dict(processor=kind, resize_mode=mode, input_size=[int(x) for x in input_size], shortest_edge=shortest,
                resample=int(processor.resample if processor.resample is not None else BILINEAR),
                rescale_factor=rescale, image_mean=mean, image_std=std,
                channel_order="bgr" if getattr(processor, "do_flip_channel_order", False) else "rgb",
                reduce_labels=bool(getattr(processor, "do_reduce_labels", False)))
    return prep, unsupported


def metadata(model, prep, family, source):
    n = model.config.num_labels
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    ade_labels, ade_palette = ade20k_tables()
    if n == 150:
        palette = ade_palette
    elif n == 21:
        palette = voc_palette(21)
    else:
        palette = np.random.default_rng(0).integers(0, 256, size=(n, 3)).tolist()
    meta = {
        "id2label": json.dumps({str(k): id2label[k] for k in sorted(id2label)}),
        "palette": json.dumps(palette),
        "input_size": json.dumps(list(prep["input_size"])),
        "image_mean": json.dumps(prep["image_mean"] if prep["image_mean"] is not None else [0.0] * 3),
        "image_std": json.dumps(prep["image_std"] if prep["image_std"] is not None else [1.0] * 3),
        "rescale_factor": repr(float(prep["rescale_factor"] if prep["rescale_factor"] is not None else 1.0)),
        "resample": RESAMPLE_NAMES[prep["resample"]],
        "resize_mode": prep["resize_mode"],
        "channel_order": prep["channel_order"],
        "family": family,
        "reduce_labels": "true" if prep["reduce_labels"] else "false",
        "output": "logits",
        "source": source,
    }
    if prep["resize_mode"] == "shortest_edge_crop":
        meta["shortest_edge"] = str(int(prep["shortest_edge"]))
    return meta


# --- Models ------------------------------------------------------------------------------------------------------


def widen(model):
    """Random weights at the default 0.02 scale give nearly flat logits and one class everywhere.
    Wider weights (std 1/sqrt(fan-in)) make the class map follow the image, so the parity tests
    see many classes."""
    import torch

    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 1.0 / np.sqrt(p[0].numel()))
        # Unit gain in every norm layer (some families' init scales them down 50x, which leaves
        # flat logits after a few blocks).
        for module in model.modules():
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if "Norm" in type(module).__name__ and isinstance(weight, torch.nn.Parameter) and weight.dim() == 1:
                weight.fill_(1.0)
                if isinstance(bias, torch.nn.Parameter):
                    bias.zero_()
    return model


def beit_like(family, seed, **architecture):
    """A random-weight BEiT / Data2VecVision ForSemanticSegmentation laid out like the ADE20k
    checkpoints (640x640, patch 16, relative position bias per layer, UperNet decode head +
    auxiliary FCN head, 150 classes), with the given width and depth."""
    import torch

    if family == "beit":
        from transformers import BeitConfig as Config, BeitForSemanticSegmentation as Model
    else:
        from transformers import Data2VecVisionConfig as Config, Data2VecVisionForSemanticSegmentation as Model
    labels, _ = ade20k_tables()
    config = Config(image_size=640, patch_size=16, use_relative_position_bias=True,
                    use_absolute_position_embeddings=False, pool_scales=[1, 2, 3, 6], use_auxiliary_head=True,
                    attn_implementation="eager", **label_kwargs(labels), **architecture)
    torch.manual_seed(seed)
    return Model(config).eval()


BEIT_TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                 use_mean_pooling=True, layer_scale_init_value=0.1, out_indices=[1, 2, 3, 4], auxiliary_channels=32)
BEIT_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  out_indices=[7, 11, 15, 23], auxiliary_channels=256)
SEGFORMER = {  # hidden sizes, depths, decoder hidden size
    "b0": ([32, 64, 160, 256], [2, 2, 2, 2], 256), "b1": ([64, 128, 320, 512], [2, 2, 2, 2], 256),
    "b2": ([64, 128, 320, 512], [3, 4, 6, 3], 768), "b3": ([64, 128, 320, 512], [3, 4, 18, 3], 768),
    "b4": ([64, 128, 320, 512], [3, 8, 27, 3], 768), "b5": ([64, 128, 320, 512], [3, 6, 40, 3], 768),
}


def build_model(family, size, seed, variant=None):
    """A random-weight model of `family`: size "tiny" (test fixtures, widened weights) or "real"
    (the canonical checkpoint's architecture, transformers' own init)."""
    import torch

    tiny = size == "tiny"
    ade, _ = ade20k_tables()
    if family in ("beit", "data2vec-vision"):
        if tiny:
            return widen(beit_like(family, seed, **BEIT_TINY))
        scale = 1e-6 if family == "beit" else 0.1
        return beit_like(family, seed, layer_scale_init_value=scale, **BEIT_LARGE)
    torch.manual_seed(seed)
    if family == "segformer":
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        if tiny:
            arch = dict(hidden_sizes=[16, 32, 48, 96], depths=[1, 1, 2, 1], num_attention_heads=[1, 2, 2, 4],
                        decoder_hidden_size=32)
        else:
            hidden, depths, decoder = SEGFORMER[variant or "b0"]
            arch = dict(hidden_sizes=hidden, depths=depths, num_attention_heads=[1, 2, 5, 8],
                        decoder_hidden_size=decoder)
        model = SegformerForSemanticSegmentation(SegformerConfig(**arch, **label_kwargs(ade))).eval()
    elif family in ("upernet-convnext", "upernet-swin"):
        from transformers import ConvNextConfig, SwinConfig, UperNetConfig, UperNetForSemanticSegmentation

        stages = ["stage1", "stage2", "stage3", "stage4"]
        if family == "upernet-convnext":
            backbone = (ConvNextConfig(depths=[1, 1, 2, 1], hidden_sizes=[16, 32, 48, 96], layer_scale_init_value=0.1,
                                       out_features=stages) if tiny else
                        ConvNextConfig(depths=[3, 3, 27, 3], hidden_sizes=[96, 192, 384, 768], out_features=stages))
        else:
            # Tiny: the shifted windows (and their attention mask, a folded constant of windows x
            # 49 x 49 floats) in the last stage only, where there are 9 windows.
            backbone = (SwinConfig(embed_dim=12, depths=[1, 1, 1, 2], num_heads=[1, 2, 2, 4], window_size=7,
                                   out_features=stages) if tiny else
                        SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                                   out_features=stages))
        third = getattr(backbone, "embed_dim", 0) * 4 or backbone.hidden_sizes[2]
        head = dict(hidden_size=16, auxiliary_channels=16) if tiny else dict(hidden_size=512, auxiliary_channels=256)
        config = UperNetConfig(backbone_config=backbone, auxiliary_in_channels=third, pool_scales=[1, 2, 3, 6],
                               use_auxiliary_head=True, **head, **label_kwargs(ade))
        model = UperNetForSemanticSegmentation(config).eval()
    elif family == "dpt":
        from transformers import DPTConfig, DPTForSemanticSegmentation

        # image_size stays 384 as in Intel/dpt-large-ade's config: the 24x24 position embeddings
        # are resized to the 480x480 input's 30x30 patches in the graph (constant-folded).
        arch = (dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                     backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16)
                if tiny else
                dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                     backbone_out_indices=[5, 11, 17, 23], neck_hidden_sizes=[256, 512, 1024, 1024],
                     fusion_hidden_size=256))
        config = DPTConfig(image_size=384, patch_size=16, readout_type="project", use_batch_norm_in_fusion_residual=True,
                           use_auxiliary_head=True, attn_implementation="eager", **arch, **label_kwargs(ade))
        model = DPTForSemanticSegmentation(config).eval()
    elif family == "mobilevit":
        from transformers import MobileViTConfig, MobileViTForSemanticSegmentation

        arch = (dict(hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 64], num_attention_heads=2,
                     expand_ratio=2.0, aspp_out_channels=16) if tiny else
                dict(hidden_sizes=[144, 192, 240], neck_hidden_sizes=[16, 32, 64, 96, 128, 160, 640]))
        config = MobileViTConfig(image_size=512, output_stride=16, **arch, **label_kwargs(VOC_LABELS))
        model = MobileViTForSemanticSegmentation(config).eval()
    elif family == "mobilevitv2":
        from transformers import MobileViTV2Config, MobileViTV2ForSemanticSegmentation

        # apple/mobilevitv2-1.0-voc-deeplabv3: width 1.0, DeepLabv3 ASPP 512 channels at rates
        # 12/24/36, output stride 8 (our reading of ml-cvnets' VOC config; random weights anyway).
        arch = (dict(width_multiplier=0.25, n_attn_blocks=[1, 1, 1], aspp_out_channels=16) if tiny else
                dict(width_multiplier=1.0, aspp_out_channels=512))
        config = MobileViTV2Config(image_size=512, output_stride=8, atrous_rates=[12, 24, 36],
                                   **arch, **label_kwargs(VOC_LABELS))
        model = MobileViTV2ForSemanticSegmentation(config).eval()
    else:
        raise SystemExit(f"unknown family {family!r}")
    return eager(widen(model) if tiny else model)


def eager(model):
    """Eager attention throughout, sub-models included (UperNet's backbone keeps SDPA otherwise,
    whose output layout the exporter cannot reshape with a dynamic batch)."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return model


def family_of(model):
    t = model.config.model_type
    return "upernet-" + model.config.backbone_config.model_type if t == "upernet" else t


# --- Export ------------------------------------------------------------------------------------------------------

# The graph input (with a default value) that every layer's relative position index is built from.
POSITION_BASE = "relative_position_base"
# Fold the biases into constants at load time when they cost at most this many bytes in all.
FOLD_BUDGET = 256 << 20


def position_bias_classes():
    from transformers.models.beit.modeling_beit import BeitRelativePositionBias
    from transformers.models.data2vec.modeling_data2vec_vision import Data2VecVisionRelativePositionBias

    return (BeitRelativePositionBias, Data2VecVisionRelativePositionBias)


def compact_position_bias(model):
    """Builds BEiT's (and Data2VecVision's: the same class, copied) relative position index once
    per run from one small vector, instead of transformers' ~40 scatter/gather ops per layer, and
    gathers each layer's bias from its table with it. Returns (base, shared, folded_bytes, undo):
    the int32 vector `y * (2 * Ww - 1) + x` of each patch, the dict the wrapper fills with the
    index, what the folded biases would take, and a function that restores transformers' forward.

    Why: transformers' index computation depends only on constants, so ONNX Runtime's constant
    folding evaluates it at load time, keeping every [1600, 1600, 2] int64 intermediate (~1 GB
    per layer): BEiT-large (24 layers) does not load in 24 GB. Built here, the index is
    `base[i] - base[j] + c` (with the class token's row and column), a few 10 MB int32 passes.
    The values are the ones transformers gathers (its table interpolation to the same window
    size is the identity), so the logits do not change."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, position_bias_classes())]
    if not layers:
        return None, None, 0, lambda: None
    cls = type(layers[0])
    shared = {}
    original = cls.forward

    def forward(self, window_size, interpolate_pos_encoding=False, dim_size=None):
        index = shared.get("index")
        if index is None or interpolate_pos_encoding or tuple(window_size) != tuple(self.window_size):
            return original(self, window_size, interpolate_pos_encoding, dim_size)
        n = index.shape[0]
        # [n * n, heads] rows (one block copy each), then heads first: [1, heads, n, n].
        bias = torch.index_select(self.relative_position_bias_table, 0, index.reshape(-1))
        return bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)

    cls.forward = forward

    def undo():
        cls.forward = original

    wh, ww = layers[0].window_size
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    base = (ys * (2 * ww - 1) + xs).reshape(-1).to(torch.int32)
    n = wh * ww + 1
    table = layers[0].relative_position_bias_table
    folded = len(layers) * table.shape[1] * n * n * table.element_size()
    return base, shared, folded, undo


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


def export(model, meta, out, fp16, position_bias="auto", external_data="auto"):
    import torch

    base, shared, folded, undo = ((None, None, 0, lambda: None) if position_bias == "transformers"
                                  else compact_position_bias(model))
    try:
        if base is not None:
            layer = next(m for m in model.modules() if isinstance(m, position_bias_classes()))
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

        h, w = json.loads(meta["input_size"])
        dtype = torch.float16 if fp16 else torch.float32
        wrapper = Wrapper(model.to(dtype)).eval()
        # A dynamic batch axis needs an example batch of at least 2; H and W stay static.
        example = torch.zeros(2, 3, h, w, dtype=dtype)
        batch = torch.export.Dim("batch", min=1, max=64)
        inputs, names, dynamic = (example,), ["pixel_values"], {"pixel_values": {0: batch}}
        if base is not None:
            inputs, names = (example, base), names + [POSITION_BASE]
            dynamic[POSITION_BASE] = None
        program = torch.onnx.export(wrapper, inputs, dynamo=True, input_names=names, output_names=["logits"],
                                    dynamic_shapes=dynamic, optimize=True)
    finally:
        shared is not None and shared.clear()
        undo()
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
    # The exporter's per-node notes (stack traces, FX nodes, scopes: most of a small model's bytes,
    # and local paths) are of no use to a runtime.
    for node in program.model.graph.all_nodes():
        node.metadata_props.clear()
        for value in node.outputs:
            value.metadata_props.clear()
    for key, value in meta.items():
        program.model.metadata_props[key] = value
    # onnxruntime 1.31 refuses IR version 14.
    program.model.ir_version = min(program.model.ir_version, 10)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    data = out + ".data"
    if os.path.exists(data):
        os.remove(data)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    external = external_data == "yes" or (external_data == "auto" and weights > 64 << 20)
    program.save(out, external_data=external)
    print(f"wrote {out}" + (f" (+ {os.path.basename(data)})" if external else ""), file=sys.stderr)


# --- References: transformers' own class maps -------------------------------------------------------------------


def legacy_beit_photos():
    """samples/beit-tiny-ade's photo set: real photos shipped inside scikit-image (public domain /
    CC0), plus two at the model size."""
    from PIL import Image
    from skimage import data

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    rocket = Image.fromarray(data.rocket())
    photos["rocket640"] = np.asarray(rocket.crop((0, 0, 427, 427)).resize((640, 640), Image.Resampling.LANCZOS))
    photos["astronaut640"] = np.asarray(Image.fromarray(data.astronaut()).resize((640, 640), Image.Resampling.LANCZOS))
    return photos


def family_photos(input_size):
    """samples/beit-tiny-ade's three photos at their own sizes, and astronaut LANCZOS-resized to the
    model's input size (model_size)."""
    from PIL import Image

    photos = {n: np.asarray(Image.open(os.path.join(SAMPLES, f"{n}.png")).convert("RGB"))
              for n in ("astronaut", "coffee", "chelsea")}
    h, w = input_size
    photos["model_size"] = np.asarray(Image.fromarray(photos["astronaut"]).resize((w, h), Image.Resampling.LANCZOS))
    return photos


def near_ties(logits, size):
    """Pixels whose best two upsampled logits are closer than float noise between two runtimes
    (ONNX Runtime and PyTorch order their sums differently)."""
    import torch

    up = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    top = up[0].topk(2, dim=0).values
    return ((top[0] - top[1]) <= 1e-4 * top[0].abs().clamp(min=1.0)).numpy()


def write_references(model, processor, ref_dir, photos, write_photos):
    """Class maps as transformers itself computes them: the PIL image processor + PyTorch forward +
    post_process_semantic_segmentation(target_sizes=[(H, W)]); near-ties marked 255."""
    import torch
    from PIL import Image

    os.makedirs(ref_dir, exist_ok=True)
    model = model.float().eval()
    summary = {}
    for name, rgb in photos.items():
        if write_photos is True or name in (write_photos or ()):
            Image.fromarray(rgb).save(os.path.join(ref_dir, f"{name}.png"))
        inputs = processor(images=rgb, return_tensors="pt")
        with torch.no_grad():
            outputs = model(pixel_values=inputs["pixel_values"])
        seg = processor.post_process_semantic_segmentation(outputs, target_sizes=[rgb.shape[:2]])[0]
        seg = seg.numpy().astype(np.uint8)
        Image.fromarray(seg, mode="L").save(os.path.join(ref_dir, f"{name}.classes.png"))
        ties = near_ties(outputs.logits, rgb.shape[:2])
        Image.fromarray(ties.astype(np.uint8) * 255, mode="L").save(os.path.join(ref_dir, f"{name}.ties.png"))
        classes, counts = np.unique(seg, return_counts=True)
        summary[name] = {
            "size": list(rgb.shape[:2]),
            "classes": int(len(classes)),
            "largest_class_share": float(counts.max() / seg.size),
            "near_ties": int(ties.sum()),
        }
        if write_photos is not True:
            summary[name]["class_ids"] = [int(c) for c in classes]
    return summary


# --- Verification: ONNX Runtime fed by the metadata alone --------------------------------------------------------


def preprocess_from_metadata(rgb, meta):
    """The model input for one RGB photo, from the ONNX metadata_props alone (NumPy + PIL resize)."""
    from PIL import Image

    h, w = json.loads(meta["input_size"])
    filt = RESAMPLE_IDS[meta["resample"]]
    img = Image.fromarray(rgb)
    if meta["resize_mode"] == "stretch":
        arr = np.asarray(img.resize((w, h), filt))
    elif meta["resize_mode"] == "shortest_edge_crop":
        se = int(meta["shortest_edge"])
        ih, iw = rgb.shape[:2]
        short, long = (iw, ih) if iw <= ih else (ih, iw)
        new_long = int(se * long / short)
        nh, nw = (new_long, se) if iw <= ih else (se, new_long)
        arr = np.asarray(img.resize((nw, nh), filt))
        top, left = (nh - h) // 2, (nw - w) // 2
        if top < 0 or left < 0:  # smaller than the crop: centred on zeros, as transformers pads
            canvas = np.zeros((max(nh, h), max(nw, w), 3), arr.dtype)
            pt, pl = -(-(max(nh, h) - nh) // 2), -(-(max(nw, w) - nw) // 2)
            canvas[pt:pt + nh, pl:pl + nw] = arr
            arr, top, left = canvas, top + pt, left + pl
        arr = arr[top:top + h, left:left + w]
    else:
        raise ValueError(meta["resize_mode"])
    x = arr.astype(np.float32) * np.float32(float(meta["rescale_factor"]))
    x = (x - np.array(json.loads(meta["image_mean"]), np.float32)) / np.array(json.loads(meta["image_std"]), np.float32)
    if meta.get("channel_order", "rgb") == "bgr":
        x = x[..., ::-1]
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def bilinear_resize(logits, size):
    """[C, h, w] -> [C, H, W], bilinear with align_corners=False (half-pixel centres, edge clamp)."""
    c, h, w = logits.shape
    H, W = size

    def axis(n_out, n_in):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = (src - i0).astype(np.float32)
        return i0, i1, f

    y0, y1, fy = axis(H, h)
    x0, x1, fx = axis(W, w)
    rows = logits[:, y0, :] * (1 - fy)[None, :, None] + logits[:, y1, :] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :] + rows[:, :, x1] * fx[None, None, :]


def verify(ref_dir, model_path=None):
    """ONNX Runtime class maps from metadata-only preprocessing vs the committed transformers maps:
    {photo: (agreement, agreement outside near-ties)}."""
    import onnxruntime as ort
    from PIL import Image

    model_path = model_path or os.path.join(ref_dir, "model.onnx")
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    with open(os.path.join(ref_dir, "references.json")) as f:
        names = list(json.load(f))
    result = {}
    for name in names:
        path = os.path.join(ref_dir, f"{name}.png")
        if not os.path.exists(path):
            path = os.path.join(SAMPLES, f"{name}.png")
        rgb = np.asarray(Image.open(path).convert("RGB"))
        (logits,) = session.run(None, {session.get_inputs()[0].name: preprocess_from_metadata(rgb, meta)})
        seg = bilinear_resize(logits[0], rgb.shape[:2]).argmax(0)
        ref = np.asarray(Image.open(os.path.join(ref_dir, f"{name}.classes.png")))
        ties = np.asarray(Image.open(os.path.join(ref_dir, f"{name}.ties.png"))) > 0
        same = seg == ref
        result[name] = (float(same.mean()), float(same[~ties].mean()))
    return result


# --- Main --------------------------------------------------------------------------------------------------------


def fixtures(root, seed):
    """Every family's tiny model, references and verification under ROOT/<family>/."""
    table = {}
    for family in FAMILIES:
        d = os.path.join(root, family)
        checkpoint, prep = canonical(family)
        model = build_model(family, "tiny", seed)
        processor = make_processor(prep)
        assert prep_from_processor(processor) == (prep, []), (family, prep_from_processor(processor))
        photos = family_photos(prep["input_size"])
        summary = write_references(model, processor, d, photos, write_photos=("model_size",))
        with open(os.path.join(d, "references.json"), "w") as f:
            json.dump(summary, f, indent=1)
        meta = metadata(model, prep, family, f"tiny random {family} laid out like {checkpoint} (seed {seed})")
        export(model, meta, os.path.join(d, "model.onnx"), False, external_data="no")
        table[family] = (summary, verify(d))
    print_table(table)


def print_table(table):
    print(f"{'family':18} {'photo':11} {'classes':>7} {'largest':>7} {'ties':>5} {'agree':>8} {'w/o ties':>8}")
    for family, (summary, agreement) in table.items():
        for name, s in summary.items():
            a, b = agreement[name]
            print(f"{family:18} {name:11} {s['classes']:7d} {s['largest_class_share']:7.3f} {s['near_ties']:5d} "
                  f"{100 * a:7.3f}% {100 * b:7.3f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="HF semantic-segmentation checkpoint (AutoModelForSemanticSegmentation)")
    ap.add_argument("--family", choices=FAMILIES, help="with --tiny / --random-real: which architecture")
    ap.add_argument("--variant", help="with --random-real --family segformer: b0 (default) .. b5")
    ap.add_argument("--out", help="output .onnx path")
    ap.add_argument("--fp16", action="store_true", help="export with float16 weights and input")
    ap.add_argument("--tiny", action="store_true", help="offline tiny random-weight model (test fixture)")
    ap.add_argument("--random-real", "--random-large", dest="random_real", action="store_true",
                    help="offline: the canonical checkpoint's architecture and size with random weights (speed)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --tiny / --random-real")
    ap.add_argument("--position-bias", choices=["auto", "fold", "gather", "transformers"], default="auto",
                    help="BEiT / data2vec-vision relative position biases: folded into constants by ONNX Runtime "
                    "at load (fast runs, heads x N^2 floats a layer in memory) or gathered at every run "
                    f"(no memory); auto folds when all layers' biases fit in {FOLD_BUDGET >> 20} MiB; "
                    "transformers: its own index computation, as exports before beitseg 0.2 had it "
                    "(ONNX Runtime's constant folding needs ~1 GB a layer to load it)")
    ap.add_argument("--external-data", choices=["auto", "yes", "no"], default="auto",
                    help="weights in OUT.data beside the model: auto = when they exceed 64 MiB")
    ap.add_argument("--references", metavar="DIR", help="write transformers class maps for the sample photos")
    ap.add_argument("--photo-set", choices=["family", "beit-samples"], default="family",
                    help="--references photos: the family fixtures' set (astronaut, coffee, chelsea at their "
                    "sizes + model_size) or samples/beit-tiny-ade's (written into DIR too)")
    ap.add_argument("--fixtures", metavar="ROOT", help="all families' tiny fixtures under ROOT/<family>/")
    ap.add_argument("--verify", metavar="DIR", help="check DIR/model.onnx against DIR's references")
    args = ap.parse_args()

    if args.fixtures:
        return fixtures(args.fixtures, args.seed)
    if args.verify:
        with open(os.path.join(args.verify, "references.json")) as f:
            summary = json.load(f)
        return print_table({os.path.basename(os.path.normpath(args.verify)): (summary, verify(args.verify))})
    if not args.out:
        ap.error("--out is required")
    unsupported = []
    if args.tiny or args.random_real:
        family = args.family or "beit"
        checkpoint, prep = canonical(family, args.variant)
        model = build_model(family, "tiny" if args.tiny else "real", args.seed, args.variant)
        what = "tiny random" if args.tiny else "random-weight"
        source = f"{what} {family} laid out like {checkpoint} (seed {args.seed})"
        processor = make_processor(prep) if args.references else None
    else:
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        checkpoint = args.checkpoint or canonical(args.family or "beit")[0]
        model = eager(AutoModelForSemanticSegmentation.from_pretrained(checkpoint, attn_implementation="eager").eval())
        processor = AutoImageProcessor.from_pretrained(checkpoint, backend="pil")
        prep, unsupported = prep_from_processor(processor)
        family, source = family_of(model), checkpoint
        if family not in FAMILIES:
            print(f"warning: model type {family} is not one of the known families", file=sys.stderr)
    for step in unsupported:
        print(f"warning: the metadata cannot describe this preprocessing step: {step}", file=sys.stderr)
    if args.references:
        if args.photo_set == "beit-samples":
            photos, write = legacy_beit_photos(), True
        else:
            photos, write = family_photos(prep["input_size"]), ("model_size",)
        summary = write_references(model, processor, args.references, photos, write)
        if args.photo_set == "beit-samples":
            # The PIL-resized model-size input, to test preprocessing on its own.
            from PIL import Image

            h, w = prep["input_size"]
            Image.fromarray(photos["astronaut"]).resize((w, h), Image.Resampling.BILINEAR).save(
                os.path.join(args.references, "astronaut.resized.png"))
        with open(os.path.join(args.references, "references.json"), "w") as f:
            json.dump(summary, f, indent=1)
        print(json.dumps(summary), file=sys.stderr)
    export(model, metadata(model, prep, family, source), args.out, args.fp16, args.position_bias, args.external_data)


if __name__ == "__main__":
    main()
