// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Labels and palette files, and the `classes` selection against the labels: any text gives Ok
//! or Err, never a panic; parsed results keep their promises.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(labels) = gstbeitseg::palette::parse_labels_text(text) {
        assert!(!labels.is_empty());
        // The same text as a `classes` selection.
        if let Ok(draw) = gstbeitseg::palette::select_classes(Some(text), &labels) {
            assert_eq!(draw.len(), labels.len());
        }
    }
    if let Ok(colours) = gstbeitseg::palette::parse_palette_text(text) {
        assert!(!colours.is_empty());
    }
});
