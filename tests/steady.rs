// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `smoothing`: flicker between near-tied classes settles, a real change still shows at once.
//!
//! The model is `identity_ok.onnx`: its logits are the frame's own normalised R, G and B, so a
//! frame says exactly which class wins where, by how much. Three workers segment the frames at
//! once: the average must still follow the stream's order.

mod common;

use common::*;
use gst::prelude::*;

const SIZE: usize = 16;
const FRAMES: usize = 40;
/// The object (pure blue: class 2) enters at this frame, in the bottom rows.
const ARRIVES: usize = 20;

/// Frame `t`: left columns clearly class 0 (red), right columns clearly class 1 (green), and
/// between them a boundary band where red and green nearly tie and the lead flips every frame
/// (a bias of 9..18 levels towards one side, plus or minus 20 levels). From frame [`ARRIVES`] a
/// blue object covers the bottom rows, moving right by 4 columns every 4 frames.
fn frame(t: usize) -> Vec<u8> {
    let mut px = vec![0u8; SIZE * SIZE * 3];
    let flicker: i32 = if t.is_multiple_of(2) { 20 } else { -20 };
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (r, g) = match x {
                0..=3 => (200, 50),
                12.. => (50, 200),
                _ => {
                    let bias = [18, 15, 12, 9, -9, -12, -15, -18][x - 4];
                    (128 + bias + flicker, 128 - bias - flicker)
                }
            };
            let mut p = [r as u8, g as u8, 0];
            if y >= 12 && t >= ARRIVES && x < 4 * (1 + (t - ARRIVES) / 4) {
                p = [0, 0, 255];
            }
            px[(y * SIZE + x) * 3..][..3].copy_from_slice(&p);
        }
    }
    px
}

/// The class maps `beitseg smoothing=F` makes of the stream.
fn class_maps(smoothing: f64) -> Vec<Vec<u8>> {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "appsrc name=in format=time ! beitseg model=\"{}\" mode=mask workers=3 \
         max-in-flight=6 smoothing={smoothing} ! appsink name=out sync=false",
        fixture("identity_ok.onnx").display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, SIZE as u32, SIZE as u32)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    src.set_caps(Some(&info.to_caps().unwrap()));
    pipeline.set_state(gst::State::Playing).unwrap();
    let pusher = std::thread::spawn(move || {
        for t in 0..FRAMES {
            let mut buf = gst::Buffer::from_mut_slice(frame(t));
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * t as u64));
            src.push_buffer(buf).unwrap();
        }
        src.end_of_stream().unwrap();
    });
    let mut maps = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        let caps = s.caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(caps).unwrap();
        maps.push(frame_rows(s.buffer().unwrap(), &info));
    }
    pusher.join().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(maps.len(), FRAMES, "every frame comes out");
    maps
}

/// Label changes from one frame to the next, over the rows the object never reaches.
fn flicker(maps: &[Vec<u8>]) -> usize {
    maps.windows(2)
        .map(|w| (0..12 * SIZE).filter(|&i| w[0][i] != w[1][i]).count())
        .sum()
}

/// For each bottom-row pixel the object covers: frames from its arrival there until the map
/// shows it (0: at once).
fn delays(maps: &[Vec<u8>]) -> Vec<usize> {
    let mut out = Vec::new();
    for y in 12..SIZE {
        for x in 0..SIZE {
            let Some(arrival) =
                (ARRIVES..FRAMES).find(|&t| frame(t)[(y * SIZE + x) * 3 + 2] == 255)
            else {
                continue;
            };
            let shown = (arrival..FRAMES)
                .find(|&t| maps[t][y * SIZE + x] == 2)
                .unwrap_or(FRAMES);
            out.push(shown - arrival);
        }
    }
    out
}

#[test]
fn smoothing_settles_flicker_and_still_follows_a_moving_object() {
    let raw = class_maps(0.0);
    let smooth = class_maps(0.5);
    let (before, after) = (flicker(&raw), flicker(&smooth));
    println!("label changes over {FRAMES} frames: {before} without smoothing, {after} with 0.5");
    // Unsmoothed, every pixel of the band flips every frame.
    assert_eq!(before, 12 * 8 * (FRAMES - 1));
    assert!(
        after * 5 <= before,
        "{after} changes with smoothing, {before} without"
    );
    // The object shows within 3 frames of arriving (here: on its second frame at the latest).
    let d = delays(&smooth);
    assert!(!d.is_empty());
    println!("frames until the object shows: {:?}", d);
    assert!(d.iter().all(|&k| k < 3), "{d:?}");
    assert!(delays(&raw).iter().all(|&k| k == 0));
}

#[test]
fn smoothing_changes_while_playing_and_restarts_after_a_discontinuity() {
    // The property is live; a DISCONT buffer starts the average afresh, so the first frame after
    // it is the frame's own class map even with heavy smoothing.
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "appsrc name=in format=time ! beitseg name=seg model=\"{}\" mode=mask workers=2 \
         smoothing=0.9 ! appsink name=out sync=false",
        fixture("identity_ok.onnx").display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    let seg: gst::Element = element(&pipeline, "seg");
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, SIZE as u32, SIZE as u32)
        .build()
        .unwrap();
    src.set_caps(Some(&info.to_caps().unwrap()));
    pipeline.set_state(gst::State::Playing).unwrap();
    let solid = |rgb: [u8; 3]| rgb.repeat(SIZE * SIZE);
    let pull = |pixels: Vec<u8>, t: u64, discont: bool| {
        let mut buf = gst::Buffer::from_mut_slice(pixels);
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(40 * t));
            if discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        src.push_buffer(buf).unwrap();
        let s = sink
            .try_pull_sample(gst::ClockTime::from_seconds(60))
            .expect("a frame");
        let first = s.buffer().unwrap().map_readable().unwrap()[0];
        first
    };
    // Red for a while: the average is firmly red.
    for t in 0..5 {
        assert_eq!(pull(solid([220, 40, 0]), t, false), 0);
    }
    // Green now, weakly: 0.9 of the past keeps it red.
    assert_eq!(pull(solid([100, 140, 0]), 5, false), 0);
    // Green after a discontinuity: green at once.
    assert_eq!(pull(solid([100, 140, 0]), 6, true), 1);
    // Red with smoothing turned off while playing: red at once.
    seg.set_property("smoothing", 0.0);
    assert_eq!(pull(solid([140, 100, 0]), 7, false), 0);
    src.end_of_stream().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
}
