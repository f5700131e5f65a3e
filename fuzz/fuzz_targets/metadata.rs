// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Model metadata parsing: the input is split at NUL bytes into the values of the keys beitseg
//! reads (a missing piece is an absent key). Any input must give Ok or Err, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 9] = [
    "id2label",
    "palette",
    "input_size",
    "image_mean",
    "image_std",
    "rescale_factor",
    "resample",
    "resize_mode",
    "output",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\0').collect();
    let _ = gstbeitseg::model::Metadata::parse(|key| {
        let i = KEYS.iter().position(|k| *k == key)?;
        values.get(i).filter(|v| !v.is_empty()).map(|v| v.to_string())
    });
});
