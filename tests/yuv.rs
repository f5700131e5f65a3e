// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! I420 and NV12 straight into `beitseg`, no videoconvert in front: the class maps agree with
//! those of the same frames converted to RGB first, and the painted frame stays in YUV.

mod common;

use common::*;
use gst::prelude::*;

/// Runs `appsrc ! {middle} ! appsink` on one RGB frame; returns the output buffer and caps.
fn run(middle: &str, w: usize, h: usize, rgb: &[u8]) -> (Vec<u8>, gst::Caps) {
    init_gst();
    let desc = format!(
        "appsrc name=src caps=video/x-raw,format=RGB,width={w},height={h},framerate=25/1 \
         format=time ! {middle} ! appsink name=sink sync=false"
    );
    let pipeline = launch_pipeline(&desc);
    let src: gst_app::AppSrc = element(&pipeline, "src");
    let sink: gst_app::AppSink = element(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut buf = gst::Buffer::from_slice(rgb.to_vec());
    buf.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buf).unwrap();
    src.end_of_stream().unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(60))
        .expect("a frame out");
    pipeline.set_state(gst::State::Null).unwrap();
    let caps = sample.caps().unwrap().to_owned();
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    (data, caps)
}

fn beitseg(model: &std::path::Path, mode: &str) -> String {
    format!("beitseg model={} mode={mode}", model.to_str().unwrap())
}

/// Class maps of one photo: given as RGB, as `format` straight in, and as `format` converted
/// back to RGB by videoconvert.
fn class_maps(model: &std::path::Path, format: &str) -> [Vec<u8>; 3] {
    let (w, h) = (320, 240);
    let rgb = photo_rgb(w, h);
    let yuv = format!("videoconvert ! video/x-raw,format={format}");
    let (original, _) = run(&beitseg(model, "mask"), w, h, &rgb);
    let (direct, caps) = run(&format!("{yuv} ! {}", beitseg(model, "mask")), w, h, &rgb);
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<&str>("format").unwrap(), "GRAY8");
    let via = format!("{yuv} ! videoconvert ! video/x-raw,format=RGB");
    let (via_rgb, _) = run(&format!("{via} ! {}", beitseg(model, "mask")), w, h, &rgb);
    [original, direct, via_rgb]
}

#[test]
fn i420_and_nv12_give_the_class_maps_of_rgb() {
    for format in ["I420", "NV12"] {
        let [original, direct, via_rgb] = class_maps(&selfie(), format);
        for (what, other) in [
            ("videoconvert to RGB", &via_rgb),
            ("the RGB original", &original),
        ] {
            let agree = agreement(&direct, other);
            assert!(
                agree >= 0.99,
                "{format} vs {what}: {:.2} % equal",
                agree * 100.0
            );
        }
    }
}

#[test]
fn yuv_input_is_as_close_to_the_rgb_original_as_videoconvert_is() {
    // The tiny random-weight BEiT moves with any change of input (4:2:0 chroma alone moves
    // a few percent of its pixels): the direct path must not be further from the RGB original
    // than videoconvert's RGB, whose conversion is biased by a few levels.
    for format in ["I420", "NV12"] {
        let [original, direct, via_rgb] = class_maps(&tiny_beit(), format);
        let (ours, theirs) = (
            agreement(&direct, &original),
            agreement(&via_rgb, &original),
        );
        assert!(ours >= theirs, "{format}: {ours} vs videoconvert {theirs}");
    }
}

#[test]
fn overlay_and_color_stay_in_yuv_and_paint_only_the_selected_class() {
    let (w, h) = (64, 48);
    let rgb = photo_rgb(w, h);
    for format in ["I420", "NV12"] {
        let yuv = format!("videoconvert ! video/x-raw,format={format}");
        // The frame as it enters beitseg, and its class map.
        let (input, _) = run(&yuv, w, h, &rgb);
        let (mask, _) = run(
            &format!("{yuv} ! {}", beitseg(&selfie(), "mask")),
            w,
            h,
            &rgb,
        );
        let person = mask.iter().filter(|&&c| c == 1).count();
        assert!(
            person > w * h / 10,
            "{format}: the astronaut is a person ({person} px)"
        );
        for mode in ["overlay", "color"] {
            let (data, caps) = run(
                &format!("{yuv} ! {} classes=person", beitseg(&selfie(), mode)),
                w,
                h,
                &rgb,
            );
            let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
            assert_eq!(info.format().to_str(), format, "{mode}");
            assert_eq!(data.len(), info.size(), "{format} {mode}");
            // Luma (plane 0, stride = width here): person pixels are painted, the others are
            // left as they came (overlay) or black (color).
            let (mut changed, mut kept) = (0, 0);
            for i in 0..w * h {
                let painted = mask[i] == 1;
                match (painted, mode) {
                    (true, _) => changed += usize::from(data[i] != input[i]),
                    (false, "overlay") => {
                        assert_eq!(data[i], input[i], "{format} overlay: unpainted pixel {i}");
                        kept += 1;
                    }
                    (false, _) => {
                        assert!(
                            data[i] <= 16,
                            "{format} color: unpainted pixel {i} is {}",
                            data[i]
                        );
                        kept += 1;
                    }
                }
            }
            assert!(
                changed * 10 >= person * 9,
                "{format} {mode}: {changed} of {person} person pixels painted"
            );
            assert_eq!(kept, w * h - person);
        }
    }
}
