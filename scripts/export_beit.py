#!/usr/bin/env python3
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""BEiT export (scripts/gpu_bench.sh calls it): scripts/export_model.py --family beit, with the same
flags as before (--tiny, --random-large, --checkpoint, --references, --position-bias, --fp16, --seed),
samples/beit-tiny-ade's photo set for --references and the weights in OUT.data."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_model  # noqa: E402

sys.argv[1:1] = ["--family", "beit", "--photo-set", "beit-samples", "--external-data", "yes"]
export_model.main()
