// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The ONNX graph reader that runs on every model before ONNX Runtime loads it: any bytes must
//! give Ok or Err, never a panic, and a graph read must give a fold-risk answer.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = gstbeitseg::onnx_graph::parse_bytes(data) {
        let _ = graph.fold_risk();
    }
});
