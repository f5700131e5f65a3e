// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The worker pool inside the element: order, counts, EOS with frames in flight, flushing seeks,
//! caps changes.

mod common;

use common::*;
use gst::prelude::*;

/// Plays to EOS, collecting every sample; returns them with the warnings posted (an error
/// message fails the test).
fn run_to_eos(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
) -> (Vec<gst::Sample>, Vec<String>) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut samples = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        samples.push(s);
    }
    assert!(sink.is_eos(), "stopped before EOS");
    let warnings = bus_warnings(pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    (samples, warnings)
}

/// The pipeline `desc` and its appsink `out`.
fn launch(desc: &str) -> (gst::Pipeline, gst_app::AppSink) {
    let pipeline = launch_pipeline(desc);
    let sink = element(&pipeline, "out");
    (pipeline, sink)
}

fn pts(samples: &[gst::Sample]) -> Vec<u64> {
    samples
        .iter()
        .map(|s| s.buffer().unwrap().pts().unwrap().nseconds())
        .collect()
}

#[test]
fn every_frame_comes_out_once_in_order_for_1_to_4_workers() {
    // Random per-frame worker delays (test hook) make workers finish out of order.
    gstbeitseg::test_hooks::set_worker_jitter_ms(15);
    let n = 40;
    for workers in 1..=4 {
        let (pipeline, sink) = launch(&format!(
            "videotestsrc num-buffers={n} pattern=ball ! video/x-raw,format=RGBx,width=96,height=64,framerate=30/1 ! \
             beitseg model={} workers={workers} max-in-flight=6 ! appsink name=out sync=false",
            selfie().display()
        ));
        let got = pts(&run_to_eos(&pipeline, &sink).0);
        let expected: Vec<u64> = (0..n)
            .map(|i| {
                gst::ClockTime::SECOND
                    .mul_div_floor(i, 30)
                    .unwrap()
                    .nseconds()
            })
            .collect();
        assert_eq!(got, expected, "workers={workers}");
    }
}

#[test]
fn eos_waits_for_frames_in_flight() {
    let (pipeline, sink) = launch(&format!(
        "appsrc name=in format=time ! beitseg model={} workers=2 max-in-flight=16 ! appsink name=out sync=false",
        tiny_beit().display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    src.set_caps(Some(
        &"video/x-raw,format=RGB,width=64,height=48,framerate=25/1"
            .parse::<gst::Caps>()
            .unwrap(),
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let n = 10u64;
    for i in 0..n {
        let mut buf = gst::Buffer::from_mut_slice(vec![(i * 20) as u8; 64 * 48 * 3]);
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i));
        src.push_buffer(buf).unwrap();
    }
    // EOS right behind the frames: the tiny BEiT takes ~100 ms a frame, so most are in flight.
    src.end_of_stream().unwrap();
    let mut got = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        got.push(s);
    }
    assert_eq!(
        pts(&got),
        (0..n).map(|i| 40_000_000 * i).collect::<Vec<_>>()
    );
    bus_warnings(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Plays the sample clip through `element`, seeks (flushing) to 3 s after 10 frames, and
/// returns the timestamps before and after the seek.
fn seek_run(element: &str) -> (Vec<u64>, Vec<u64>) {
    let (pipeline, sink) = launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! {element} ! \
         appsink name=out sync=false",
        sample("sample.mp4").display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let before: Vec<u64> = (0..10)
        .map(|_| {
            sink.pull_sample()
                .unwrap()
                .buffer()
                .unwrap()
                .pts()
                .unwrap()
                .nseconds()
        })
        .collect();
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(3),
        )
        .unwrap();
    let mut after = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        after.push(s.buffer().unwrap().pts().unwrap().nseconds());
    }
    bus_warnings(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    (before, after)
}

#[test]
fn flushing_seek_in_the_middle_of_a_file() {
    // In-flight frames from before the seek are discarded; afterwards exactly the frames the
    // decoder gives without beitseg come out, in order.
    let model = sample("selfie/selfie_segmentation_landscape.onnx");
    let (before, after) = seek_run(&format!(
        "beitseg model={} workers=2 max-in-flight=8",
        model.display()
    ));
    let (plain_before, plain_after) = seek_run("identity");
    assert_eq!(before, plain_before);
    assert_eq!(after, plain_after);
    assert!(after.len() >= 20 && after[0] >= 2_900_000_000, "{after:?}");
}

#[test]
fn caps_change_mid_stream() {
    let (pipeline, sink) = launch(&format!(
        "appsrc name=in format=time ! beitseg model={} workers=3 mode=mask ! appsink name=out sync=false",
        selfie().display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    pipeline.set_state(gst::State::Playing).unwrap();
    let sizes = [(64usize, 48usize), (80, 60), (33, 17)];
    let mut i = 0u64;
    for (w, h) in sizes {
        src.set_caps(Some(
            &format!("video/x-raw,format=BGR,width={w},height={h},framerate=25/1")
                .parse::<gst::Caps>()
                .unwrap(),
        ));
        for _ in 0..4 {
            let stride = (w * 3).div_ceil(4) * 4;
            let mut buf = gst::Buffer::from_mut_slice(vec![128u8; stride * h]);
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * i));
            src.push_buffer(buf).unwrap();
            i += 1;
        }
    }
    src.end_of_stream().unwrap();
    let mut got = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
        got.push((
            info.width() as usize,
            info.height() as usize,
            s.buffer().unwrap().pts().unwrap().mseconds(),
        ));
    }
    bus_warnings(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    let expected: Vec<_> = (0..12u64)
        .map(|i| (sizes[i as usize / 4].0, sizes[i as usize / 4].1, 40 * i))
        .collect();
    assert_eq!(got, expected);
}

/// Class-id masks of `n` test frames (a moving ball) through `beitseg mode=mask {props}`, plus
/// the warnings the element posted.
fn sample_masks(model: &std::path::Path, props: &str, n: usize) -> (Vec<Vec<u8>>, Vec<String>) {
    let (pipeline, sink) = launch(&format!(
        "videotestsrc num-buffers={n} pattern=ball ! video/x-raw,format=RGB,width=160,height=120 ! \
         beitseg model={} mode=mask {props} ! appsink name=out sync=false",
        model.display()
    ));
    let samples = run_to_eos(&pipeline, &sink);
    let masks = samples
        .0
        .iter()
        .map(|s| {
            let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
            frame_rows(s.buffer().unwrap(), &info)
        })
        .collect();
    (masks, samples.1)
}

#[test]
fn batches_give_the_same_class_maps_as_single_frames() {
    let n = 9;
    let (single, _) = sample_masks(&tiny_beit(), "workers=1", n);
    let (batched, warnings) =
        sample_masks(&tiny_beit(), "workers=1 batch-size=4 batch-timeout=50", n);
    assert_eq!(single.len(), n);
    assert_eq!(batched.len(), n);
    assert!(
        !warnings.iter().any(|w| w.contains("batch")),
        "{warnings:?}"
    );
    for (i, (a, b)) in single.iter().zip(&batched).enumerate() {
        // ONNX Runtime may round a batched run differently in the last bit: near-ties can move.
        let agree = agreement(a, b);
        assert!(agree > 0.999, "frame {i}: {agree}");
    }
}

#[test]
fn a_fixed_batch_of_one_degrades_with_a_warning() {
    let model = sample("selfie/selfie_segmentation_landscape.onnx");
    let n = 6;
    let (single, _) = sample_masks(&model, "workers=2", n);
    let (batched, warnings) = sample_masks(&model, "workers=2 batch-size=4", n);
    assert_eq!(single, batched);
    assert!(
        warnings.iter().any(|w| w.contains("fixed batch of 1")),
        "{warnings:?}"
    );
}
