// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Live behaviour: drop-policy=oldest with a slow sink, stats, interval.

mod common;

use common::*;
use gst::prelude::*;

/// Starts a live test camera feeding `beitseg name=seg {props}` and what follows it; returns the
/// pipeline and the element.
fn play_live(caps_and_count: &str, props: &str, tail: &str) -> (gst::Pipeline, gst::Element) {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc is-live=true {caps_and_count} ! beitseg name=seg model={} {props} ! {tail}",
        tiny_beit().display()
    ));
    let seg: gst::Element = element(&pipeline, "seg");
    pipeline.set_state(gst::State::Playing).unwrap();
    (pipeline, seg)
}

fn stats(el: &gst::Element) -> gst::Structure {
    el.property::<gst::Structure>("stats")
}

/// A source that floods (1000 frames/s, far more than one worker segments) under
/// drop-policy=none: the element holds the source back instead of queueing without bound, and
/// every frame comes out.
#[test]
fn a_flood_under_drop_policy_none_is_held_back_not_queued() {
    let (pipeline, seg) = play_live(
        "num-buffers=60 pattern=ball ! video/x-raw,format=RGB,width=160,height=120,framerate=1000/1",
        "workers=1 max-in-flight=3 drop-policy=none",
        "fakesink sync=false",
    );
    let bus = pipeline.bus().unwrap();
    let mut max_depth = 0;
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(5));
        max_depth = max_depth.max(stats(&seg).get::<u32>("queue-depth").unwrap());
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => break,
            Some(gst::MessageView::Error(e)) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    let s = stats(&seg);
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(s.get::<u64>("frames-in").unwrap(), 60, "{s}");
    assert_eq!(s.get::<u64>("frames-out").unwrap(), 60, "{s}");
    assert_eq!(s.get::<u64>("dropped").unwrap(), 0, "{s}");
    assert!(max_depth >= 1, "the queue was seen in use: {s}");
    assert!(
        max_depth <= 3,
        "max-in-flight bounds the queue: {max_depth}"
    );
}

#[test]
fn slow_sink_with_drop_oldest_drops_counts_and_stays_bounded() {
    // 30 fps live camera, ~100 ms a frame in the tiny BEiT on one worker, and a sink that takes
    // 150 ms a frame: most frames must be dropped, none may pile up.
    let (pipeline, seg) = play_live(
        "num-buffers=75 pattern=ball ! video/x-raw,format=RGB,width=160,height=120,framerate=30/1",
        "workers=1 max-in-flight=3 drop-policy=oldest post-stats=true",
        "identity sleep-time=150000 ! fakesink sync=false",
    );
    let bus = pipeline.bus().unwrap();
    let mut posted = 0;
    let mut max_depth = 0;
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(50));
        let s = stats(&seg);
        max_depth = max_depth.max(s.get::<u32>("queue-depth").unwrap());
        let Some(msg) = msg else { continue };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == "beitseg-stats") =>
            {
                posted += 1
            }
            _ => {}
        }
    }
    let s = stats(&seg);
    pipeline.set_state(gst::State::Null).unwrap();
    let (inn, out, dropped) = (
        s.get::<u64>("frames-in").unwrap(),
        s.get::<u64>("frames-out").unwrap(),
        s.get::<u64>("dropped").unwrap(),
    );
    println!("{s}; max queue depth {max_depth}; {posted} stats messages");
    assert_eq!(inn, 75);
    assert!(
        dropped > 20,
        "a sink at ~7 fps behind a 30 fps camera must cause drops: {s}"
    );
    assert_eq!(
        inn,
        out + dropped,
        "every frame is either shown or counted as dropped"
    );
    assert!(
        max_depth <= 3,
        "max-in-flight bounds the queue: {max_depth}"
    );
    assert!(posted >= 1, "post-stats=true posts beitseg-stats messages");
    assert!(s.get::<f64>("inference-mean-ms").unwrap() > 0.0);
}

#[test]
fn interval_reuses_the_anchor_frames_class_map() {
    init_gst();
    let (w, h) = (96usize, 64usize);
    let pipeline = launch_pipeline(&format!(
        "appsrc name=in format=time ! beitseg model={} mode=mask interval=3 workers=2 ! appsink name=out sync=false",
        selfie().display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    src.set_caps(Some(
        &format!("video/x-raw,format=RGB,width={w},height={h},framerate=25/1")
            .parse::<gst::Caps>()
            .unwrap(),
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    // Alternate a photo with a person and a flat grey frame: the model sees them differently.
    let person = photo_rgb(w, h);
    let grey = vec![128u8; w * h * 3];
    let n = 9;
    for i in 0..n {
        let data = if i % 2 == 0 {
            person.clone()
        } else {
            grey.clone()
        };
        let mut buf = gst::Buffer::from_mut_slice(data);
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        src.push_buffer(buf).unwrap();
    }
    src.end_of_stream().unwrap();
    let masks: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let s = sink.pull_sample().unwrap();
            let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
            frame_rows(s.buffer().unwrap(), &info)
        })
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    // Anchors are frames 0, 3, 6 (person, grey, person); the others repeat their anchor's map.
    for i in 0..n {
        let anchor = i / 3 * 3;
        assert_eq!(masks[i], masks[anchor], "frame {i} reuses frame {anchor}");
    }
    assert_ne!(
        masks[0], masks[3],
        "a grey anchor and a person anchor differ"
    );
}

#[test]
fn latency_query_adds_the_inference_time() {
    let (pipeline, seg) = play_live(
        "num-buffers=40 ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1",
        "workers=1",
        "fakesink sync=false",
    );
    // Wait (bounded) for a few frames to be measured.
    wait_until(std::time::Duration::from_secs(60), || {
        stats(&seg).get::<u64>("frames-out").unwrap() >= 5
    })
    .expect("5 frames within 60 s");
    let mut q = gst::query::Latency::new();
    assert!(seg.static_pad("src").unwrap().query(&mut q));
    let (live, min, _) = q.result();
    let p95 = stats(&seg).get::<f64>("inference-p95-ms").unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(live);
    // videotestsrc itself reports no latency, so ours is all of it.
    assert!(
        min.mseconds() as f64 >= p95.floor() - 1.0 && p95 > 0.0,
        "min {min} p95 {p95}"
    );
}
