// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The input's audio in `beitseg run`'s video output: passed through as it is when the output's
//! container takes its codec, re-encoded otherwise, in sync (the muxer interleaves by time).

use anyhow::{bail, Result};

use crate::input::{quoted, Input};

/// How the input's audio reaches the output.
pub(crate) struct Audio {
    /// The gst-launch branch into the muxer (named `mux` in the description).
    pub(crate) branch: String,
    /// Caps for the branch's capsfilter `audiocaps` (passthrough), set once it exists.
    pub(crate) caps: Option<gst::Caps>,
}

/// How `input`'s first audio stream goes into the muxer `mux` (a factory name), or None when
/// it has no audio.
pub(crate) fn branch(input: &Input, mux: &str, output: &str) -> Result<Option<Audio>> {
    let Input::File(path) = input else {
        return Ok(None);
    };
    let audio = crate::input::streams(path).into_iter().find(|c| {
        c.structure(0)
            .is_some_and(|s| s.name().starts_with("audio/"))
    });
    let Some(caps) = audio else {
        return Ok(None);
    };
    if accepts(mux, &caps) {
        // The same file read a second time for its audio, untouched.
        return Ok(Some(Audio {
            branch: format!(
                "filesrc location={} ! parsebin name=audio  audio. ! capsfilter name=audiocaps ! \
                 queue name=audioq ! mux.audio_0",
                quoted(&path.display().to_string()),
            ),
            caps: Some(codec_caps(&caps)),
        }));
    }
    let encoder = match mux {
        "webmmux" => ["opusenc", "vorbisenc"].as_slice(),
        _ => ["avenc_aac", "fdkaacenc", "voaacenc", "lamemp3enc"].as_slice(),
    }
    .iter()
    .find(|e| gst::ElementFactory::find(e).is_some());
    let Some(encoder) = encoder else {
        bail!(
            "output {output}: the input's audio ({}) needs re-encoding for this container and no \
             encoder is installed (gstreamer1.0-libav); --no-audio leaves it out",
            caps.structure(0)
                .map_or("?".into(), |s| s.name().to_string())
        );
    };
    Ok(Some(Audio {
        branch: format!(
            "dec. ! audio/x-raw ! queue ! audioconvert ! audioresample ! {encoder} ! \
             queue name=audioq ! mux.audio_0"
        ),
        caps: None,
    }))
}

/// Whether the muxer `mux` takes `caps` on an audio pad.
fn accepts(mux: &str, caps: &gst::Caps) -> bool {
    let Some(factory) = gst::ElementFactory::find(mux) else {
        return false;
    };
    factory
        .static_pad_templates()
        .iter()
        .filter(|t| {
            t.direction() == gst::PadDirection::Sink && t.name_template().starts_with("audio")
        })
        .any(|t| t.caps().can_intersect(caps))
}

/// The fields of `caps` that pick the codec (stream headers come with the stream itself).
fn codec_caps(caps: &gst::Caps) -> gst::Caps {
    let mut caps = caps.copy();
    for s in caps.make_mut().iter_mut() {
        for field in ["codec_data", "streamheader"] {
            s.remove_field(field);
        }
    }
    caps
}
