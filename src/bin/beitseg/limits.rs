// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `--max-resolution`: the largest frames `beitseg run` takes from a file, a URI, a camera or a
//! device. A camera or server that sends 8K when 1080p was expected, or caps claiming a frame
//! of 65535x65535, is refused before a decoder allocates for it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use gst::prelude::*;

/// A frame size limit, in either orientation (7680x4320 also admits 4320x7680).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxResolution(Option<(u32, u32)>);

impl MaxResolution {
    /// 8K UHD.
    pub const DEFAULT: &'static str = "7680x4320";

    /// Whether a frame of `width` x `height` is within the limit.
    pub fn admits(self, width: u32, height: u32) -> bool {
        let Some((w, h)) = self.0 else {
            return true;
        };
        width.max(height) <= w.max(h) && width.min(height) <= w.min(h)
    }

    /// The one-line reason a frame of this size is refused, if it is.
    pub fn check(self, width: u32, height: u32) -> Result<()> {
        if let Some((w, h)) = self.0.filter(|_| !self.admits(width, height)) {
            bail!(
                "{width}x{height} frames are larger than --max-resolution {w}x{h} (raise it if \
                 this is expected)"
            );
        }
        Ok(())
    }

    /// The same for caps (compressed or raw) that carry a size; caps without one pass.
    pub fn check_caps(self, caps: &gst::CapsRef) -> Result<()> {
        for s in caps.iter() {
            if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
                self.check(w.max(0) as u32, h.max(0) as u32)?;
            }
        }
        Ok(())
    }

    /// Refuses oversized streams in a decodebin or uridecodebin: their caps (as the parser reads
    /// them from the stream, before any decoder) are checked, and an oversized one stops the
    /// bin with an error on the bus whose text is the reason. The reason is also kept in the
    /// returned slot, for a caller that tells this error from a passing network failure.
    pub fn guard(self, bin: &gst::Element) -> Arc<Mutex<Option<String>>> {
        let refused: Arc<Mutex<Option<String>>> = Arc::default();
        if self.0.is_none() {
            return refused;
        }
        let slot = refused.clone();
        let watched: Mutex<Vec<gst::glib::WeakRef<gst::Pad>>> = Mutex::default();
        bin.connect("autoplug-continue", false, move |values| {
            let bin = values[0].get::<gst::Element>().ok()?;
            let pad = values[1].get::<gst::Pad>().ok()?;
            let caps = values[2].get::<gst::Caps>().ok()?;
            // The stream may change size later (a camera switching resolution): its pad is
            // watched from now on.
            let mut watched = watched.lock().unwrap_or_else(|p| p.into_inner());
            if !watched.iter().any(|w| w.upgrade().as_ref() == Some(&pad)) {
                watched.push(pad.downgrade());
                self.watch(&bin, &pad, slot.clone());
            }
            let Err(why) = self.check_caps(&caps) else {
                return Some(true.to_value());
            };
            refuse(&bin, &slot, why.to_string());
            // Not decoded: the bin exposes the stream as it is, and stops at the error.
            Some(false.to_value())
        });
        refused
    }

    /// Checks every later caps event on `pad` (inside `bin`): from the first oversized one on,
    /// nothing more of the stream passes (but its end), so no decoder allocates for it.
    fn watch(self, bin: &gst::Element, pad: &gst::Pad, slot: Arc<Mutex<Option<String>>>) {
        let bin = bin.downgrade();
        let stopped = std::sync::atomic::AtomicBool::new(false);
        pad.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::BUFFER
                | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data {
                    match event.view() {
                        gst::EventView::Eos(_) => return gst::PadProbeReturn::Ok,
                        gst::EventView::Caps(c) if !stopped.load(Ordering::SeqCst) => {
                            if let (Err(why), Some(bin)) =
                                (self.check_caps(c.caps()), bin.upgrade())
                            {
                                stopped.store(true, Ordering::SeqCst);
                                refuse(&bin, &slot, why.to_string());
                            }
                        }
                        _ => {}
                    }
                }
                if !stopped.load(Ordering::SeqCst) {
                    return gst::PadProbeReturn::Ok;
                }
                // Taken and dropped here (Handled), as gstreamer-rs wants it.
                drop(info.take_buffer());
                drop(info.take_buffer_list());
                drop(info.take_event());
                gst::PadProbeReturn::Handled
            },
        );
    }
}

/// Posts `why` as the bin's error, once, and keeps it in `slot`.
fn refuse(bin: &gst::Element, slot: &Mutex<Option<String>>, why: String) {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(why.clone());
        let _ = bin.post_message(
            gst::message::Error::builder(gst::StreamError::Format, &why)
                .src(bin)
                .build(),
        );
    }
}

impl std::str::FromStr for MaxResolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(MaxResolution(None));
        }
        let bad = || {
            format!(
                "{s}: expected WIDTHxHEIGHT (e.g. {}) or none",
                Self::DEFAULT
            )
        };
        let (w, h) = s
            .to_ascii_lowercase()
            .split_once('x')
            .map(|(w, h)| (w.trim().parse::<u32>(), h.trim().parse::<u32>()))
            .ok_or_else(bad)?;
        match (w, h) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok(MaxResolution(Some((w, h)))),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_holds_in_either_orientation() {
        let max: MaxResolution = MaxResolution::DEFAULT.parse().unwrap();
        assert!(max.admits(7680, 4320));
        assert!(max.admits(4320, 7680));
        assert!(max.admits(1920, 1080));
        assert!(!max.admits(7681, 4320));
        assert!(!max.admits(5000, 5000));
        let e = max.check(8000, 4504).unwrap_err().to_string();
        assert!(e.starts_with("8000x4504 frames are larger than --max-resolution 7680x4320"));
        assert!("none"
            .parse::<MaxResolution>()
            .unwrap()
            .admits(u32::MAX, u32::MAX));
        for bad in ["", "8k", "0x10", "10x", "x10", "-1x5", "1920*1080"] {
            assert!(bad.parse::<MaxResolution>().is_err(), "{bad}");
        }
        assert_eq!(
            "1920X1080".parse::<MaxResolution>(),
            Ok(MaxResolution(Some((1920, 1080))))
        );
    }
}
