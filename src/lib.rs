// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! beitseg: semantic segmentation of video frames with ONNX models (BEiT/ADE20k first) as a
//! GStreamer element. The engine modules know nothing of GStreamer; `beitseg` is the element.

use gst::glib;

#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod decode;
pub mod engine;
pub mod frame;
pub mod location;
pub mod metadata;
pub mod model;
pub mod onnx_graph;
pub mod palette;
pub mod pool;
pub mod preprocess;
pub mod provider;
pub mod remote;
pub mod render;
pub mod resample;
pub mod runtime;
pub mod secrets;
pub mod session;
pub mod slide;
pub mod smooth;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod yuv;

mod beitseg;

pub use beitseg::{BeitSeg, DropPolicy, Mode, ProviderSetting, ResizeSetting};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    beitseg::register(plugin)
}

gst::plugin_define!(
    beitseg,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // Cargo.toml's "MIT OR Apache-2.0" in GStreamer's licence vocabulary, which names each
    // licence it knows by one word and has no SPDX expressions: "MIT/X11" is the MIT choice
    // (as in gst-plugins-rs's dual-licensed plugins).
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
