// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample(rel: &str) -> PathBuf {
    root().join("samples").join(rel)
}

pub fn tiny_beit() -> PathBuf {
    sample("beit-tiny-ade/model.onnx")
}

pub fn selfie() -> PathBuf {
    sample("selfie/selfie_segmentation.onnx")
}

/// An 8-bit PNG as (width, height, channels, pixels).
pub fn read_png(path: &Path) -> (usize, usize, usize, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    (info.width as usize, info.height as usize, channels, buf)
}

pub fn agreement(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

static GST: Once = Once::new();

pub fn init_gst() {
    GST.call_once(|| {
        gst::init().unwrap();
        gstbeitseg::plugin_register_static().unwrap();
    });
}
