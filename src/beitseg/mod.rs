// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

use gst::glib;
use gst::prelude::*;

mod caps;
mod imp;
mod pools;
mod queue;
mod settings;
mod stats;
mod worker;

/// Locks a mutex; a panic elsewhere (caught at the pad boundary) must not make every later
/// lock panic too, so a poisoned lock is taken as it is.
trait Guard<T> {
    fn guard(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> Guard<T> for std::sync::Mutex<T> {
    fn guard(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the `src` pad carries.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[repr(u32)]
#[enum_type(name = "GstBeitSegMode")]
pub enum Mode {
    #[enum_value(
        name = "Overlay: the frame blended with each pixel's class colour",
        nick = "overlay"
    )]
    Overlay = 0,
    #[enum_value(
        name = "Color: the palette colour of each pixel's class",
        nick = "color"
    )]
    Color = 1,
    #[enum_value(name = "Mask: GRAY8 class ids", nick = "mask")]
    Mask = 2,
}

/// How a frame is fitted to the model's input size.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[repr(u32)]
#[enum_type(name = "GstBeitSegResize")]
pub enum ResizeSetting {
    #[enum_value(
        name = "Auto: what the model's metadata says (stretch when it says nothing)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "Stretch: resize to the model size, ignoring the aspect ratio",
        nick = "stretch"
    )]
    Stretch = 1,
    #[enum_value(
        name = "Letterbox: keep the aspect ratio, pad, crop the padding from the result",
        nick = "letterbox"
    )]
    Letterbox = 2,
    #[enum_value(
        name = "Slide: windows of the model size over the frame at a stride of 2/3, logits averaged (mmsegmentation's slide inference; several model runs a frame)",
        nick = "slide"
    )]
    Slide = 3,
}

/// What happens when `max-in-flight` frames are waiting.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[repr(u32)]
#[enum_type(name = "GstBeitSegDropPolicy")]
pub enum DropPolicy {
    #[enum_value(
        name = "None: block upstream; every frame comes out (files)",
        nick = "none"
    )]
    None = 0,
    #[enum_value(
        name = "Oldest: drop the oldest waiting frame and frames QoS says are late (live cameras)",
        nick = "oldest"
    )]
    Oldest = 1,
}

/// The ONNX Runtime execution provider to run the model on.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[repr(u32)]
#[enum_type(name = "GstBeitSegProvider")]
pub enum ProviderSetting {
    #[enum_value(
        name = "Auto: TensorRT, else CUDA, else CPU (a warning says which and why)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "TensorRT (fp16, cached engines); an error if it cannot load",
        nick = "tensorrt"
    )]
    Tensorrt = 1,
    #[enum_value(name = "CUDA; an error if it cannot load", nick = "cuda")]
    Cuda = 2,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 3,
}

impl From<ProviderSetting> for crate::provider::Provider {
    fn from(p: ProviderSetting) -> Self {
        match p {
            ProviderSetting::Auto => Self::Auto,
            ProviderSetting::Tensorrt => Self::TensorRt,
            ProviderSetting::Cuda => Self::Cuda,
            ProviderSetting::Cpu => Self::Cpu,
        }
    }
}

impl From<ResizeSetting> for Option<crate::model::ResizeMode> {
    fn from(r: ResizeSetting) -> Self {
        match r {
            ResizeSetting::Auto => None,
            ResizeSetting::Stretch => Some(crate::model::ResizeMode::Stretch),
            ResizeSetting::Letterbox => Some(crate::model::ResizeMode::Letterbox),
            ResizeSetting::Slide => Some(crate::model::ResizeMode::Slide),
        }
    }
}

/// The enums are the element's (GObject, for properties) and the command line's (clap, with the
/// `cli` feature) alike: one definition, the same names (`nick`s) in both.
#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "cli")]
    #[test]
    fn command_line_names_are_the_property_nicks() {
        use clap::ValueEnum;
        fn check<E: ValueEnum + glib::value::ToValue + StaticType>() {
            for v in E::value_variants() {
                let name = v.to_possible_value().unwrap().get_name().to_string();
                let value = v.to_value();
                let (_, ev) = glib::EnumValue::from_value(&value).unwrap();
                assert_eq!(name, ev.nick());
            }
        }
        check::<Mode>();
        check::<ResizeSetting>();
        check::<DropPolicy>();
        check::<ProviderSetting>();
    }
}

glib::wrapper! {
    pub struct BeitSeg(ObjectSubclass<imp::BeitSeg>) @extends gst::Element, gst::Object;
}

/// ONNX Runtime's own log, in a debug category of its own (`GST_DEBUG=beitseg-ort:5`).
static ORT_CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "beitseg-ort",
        gst::DebugColorFlags::empty(),
        Some("ONNX Runtime's log, as beitseg runs it"),
    )
});

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Whoever loads ONNX Runtime first (this element, or the engine directly), its log comes
    // here.
    crate::runtime::set_log_sink(std::sync::Arc::new(|level, message: &str| {
        use ort::logging::LogLevel;
        let level = match level {
            LogLevel::Verbose => gst::DebugLevel::Log,
            LogLevel::Info => gst::DebugLevel::Debug,
            LogLevel::Warning => gst::DebugLevel::Warning,
            LogLevel::Error | LogLevel::Fatal => gst::DebugLevel::Error,
        };
        gst::log_with_level!(ORT_CAT, level, "{message}");
    }));
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    ResizeSetting::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    DropPolicy::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    ProviderSetting::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "beitseg",
        gst::Rank::NONE,
        BeitSeg::static_type(),
    )
}
