// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Many streams, one pool (`pool` property): batches across streams, exact per-stream results,
//! fairness under overload, and elements that leave the pool.

mod common;

use common::*;
use gst::prelude::*;

/// One stream: `videotestsrc {src} ! beitseg name=seg model=tiny {props} ! appsink name=out`.
fn stream(src: &str, props: &str) -> gst::Pipeline {
    launch_pipeline(&format!(
        "videotestsrc {src} ! beitseg name=seg model={} {props} ! \
         appsink name=out sync=false wait-on-eos=false",
        tiny_beit().display()
    ))
}

fn stats(pipeline: &gst::Pipeline) -> gst::Structure {
    element::<gst::Element>(pipeline, "seg").property::<gst::Structure>("stats")
}

/// Every buffer of a started pipeline's appsink until EOS (60 s at most), then NULL.
fn pull_all(pipeline: &gst::Pipeline) -> Vec<gst::Buffer> {
    let sink: gst_app::AppSink = element(pipeline, "out");
    let mut buffers = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        buffers.push(sample.buffer_owned().unwrap());
    }
    assert!(sink.is_eos(), "no EOS within 60 s of the last frame");
    buffers
}

fn run_to_eos(pipelines: &[gst::Pipeline]) -> Vec<Vec<gst::Buffer>> {
    for p in pipelines {
        p.set_state(gst::State::Playing).unwrap();
    }
    let pulled = std::thread::scope(|s| {
        let handles: Vec<_> = pipelines
            .iter()
            .map(|p| s.spawn(move || pull_all(p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for p in pipelines {
        // An error of any stream fails the test.
        bus_warnings(p);
    }
    pulled
}

fn bytes(b: &gst::Buffer) -> Vec<u8> {
    b.map_readable().unwrap().to_vec()
}

const PATTERNS: [&str; 3] = ["ball", "smpte", "snow"];

/// Three streams (each at its own frame size) whose elements each hold at most one frame in
/// flight share one worker with batches of 3: batches take frames of several streams (a fill no
/// single stream can reach), and each stream gets exactly its own class maps, all of its frames, in order, with its own
/// timestamps — the same as an element with workers of its own.
#[test]
fn streams_in_one_pool_share_batches_and_keep_their_own_frames() {
    // Each stream at its own size: one batch holds frames of different sizes.
    let src = |p: &str| {
        let (w, h) = match p {
            "ball" => (96, 64),
            "smpte" => (80, 60),
            _ => (64, 96),
        };
        format!(
            "num-buffers=12 pattern={p} ! video/x-raw,format=RGB,width={w},height={h},framerate=30/1"
        )
    };
    let pooled: Vec<gst::Pipeline> = PATTERNS
        .iter()
        .map(|p| {
            stream(
                &src(p),
                "mode=mask pool=shared workers=1 batch-size=3 batch-timeout=2000 max-in-flight=1",
            )
        })
        .collect();
    let outputs = run_to_eos(&pooled);
    let s = stats(&pooled[0]);
    for p in &pooled {
        p.set_state(gst::State::Null).unwrap();
    }
    println!("{s}");
    assert_eq!(s.get::<&str>("pool").unwrap(), "shared");
    assert_eq!(s.get::<u64>("pool-frames").unwrap(), 36, "{s}");
    let fill = s.get::<f64>("pool-batch-fill").unwrap();
    // One stream alone fills 1/3 of each batch at most (one frame in flight).
    assert!(fill > 0.5, "batches did not mix streams: fill {fill}");
    for (pattern, out) in PATTERNS.iter().zip(&outputs) {
        let alone = stream(&src(pattern), "mode=mask workers=1");
        let reference = run_to_eos(std::slice::from_ref(&alone)).remove(0);
        alone.set_state(gst::State::Null).unwrap();
        assert_eq!(out.len(), 12, "{pattern}");
        for (i, (a, b)) in out.iter().zip(&reference).enumerate() {
            assert_eq!(a.pts(), b.pts(), "{pattern} frame {i}");
            assert!(bytes(a) == bytes(b), "{pattern} frame {i}: other class ids");
        }
    }
}

/// Overload with drop-policy=oldest: three cameras at the same rate, one worker far too slow
/// for all of them. Each stream gets within 15 % of the others' output.
#[test]
fn no_stream_starves_under_overload() {
    let pipelines: Vec<gst::Pipeline> = PATTERNS
        .iter()
        .map(|p| {
            stream(
                &format!(
                    "is-live=true num-buffers=300 pattern={p} ! \
                     video/x-raw,format=RGB,width=160,height=120,framerate=30/1"
                ),
                "pool=fair workers=1 drop-policy=oldest max-in-flight=2",
            )
        })
        .collect();
    let outputs = run_to_eos(&pipelines);
    let counts: Vec<usize> = outputs.iter().map(Vec::len).collect();
    let dropped: Vec<u64> = pipelines
        .iter()
        .map(|p| stats(p).get::<u64>("dropped").unwrap())
        .collect();
    for p in &pipelines {
        p.set_state(gst::State::Null).unwrap();
    }
    println!("frames out {counts:?}, dropped {dropped:?}");
    for (n, d) in counts.iter().zip(&dropped) {
        assert_eq!(
            *n as u64 + d,
            300,
            "every frame is shown or counted as dropped"
        );
        assert!(*d > 0, "one worker for three cameras must drop: {counts:?}");
    }
    let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    for n in &counts {
        assert!(
            (*n as f64 - mean).abs() <= 0.15 * mean,
            "unfair shares: {counts:?}"
        );
    }
}

/// An element that leaves the pool (set to NULL with frames still queued) leaves no work
/// behind and does not stall the other stream, which gets every frame.
#[test]
fn an_element_leaving_the_pool_leaves_no_work_behind() {
    let src = "num-buffers=40 pattern=ball ! video/x-raw,format=RGB,width=96,height=64";
    let leaving = stream(src, "pool=leave workers=1 max-in-flight=8");
    let staying = stream(src, "pool=leave workers=1 max-in-flight=8");
    leaving.set_state(gst::State::Playing).unwrap();
    staying.set_state(gst::State::Playing).unwrap();
    // The leaving stream has had some frames through and holds more in the pool's queue.
    let sink: gst_app::AppSink = element(&leaving, "out");
    for _ in 0..3 {
        sink.try_pull_sample(gst::ClockTime::from_seconds(60))
            .expect("frames from the leaving stream");
    }
    leaving.set_state(gst::State::Null).unwrap();
    let left = stats(&leaving);
    let out = pull_all(&staying);
    let s = stats(&staying);
    staying.set_state(gst::State::Null).unwrap();
    bus_warnings(&staying);
    println!("left: {left}\nstayed: {s}");
    assert_eq!(out.len(), 40);
    let (left_out, run) = (
        left.get::<u64>("frames-out").unwrap(),
        s.get::<u64>("pool-frames").unwrap(),
    );
    // The queued frames of the element that left were not run: at most the one in the worker's
    // hands and the one waiting to be pushed when it left, beyond what it pushed.
    assert!(
        run <= 40 + left_out + 2,
        "the pool ran {run} frames for {left_out} + 40 pushed"
    );
    assert!(
        left.get::<u64>("frames-in").unwrap() > left_out + 1,
        "{left}"
    );
}

/// A pool runs one model: an element with another model cannot join it.
#[test]
fn a_pool_refuses_another_model() {
    let src = "num-buffers=50 ! video/x-raw,format=RGB,width=96,height=64";
    let first = stream(src, "pool=one-model");
    first.set_state(gst::State::Paused).unwrap();
    let other = launch_pipeline(&format!(
        "videotestsrc {src} ! beitseg model={} pool=one-model ! fakesink",
        selfie().display()
    ));
    assert!(other.set_state(gst::State::Paused).is_err());
    let msg = other
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = format!("{} {}", e.error(), e.debug().unwrap_or_default());
    assert!(text.contains("pool one-model runs another model"), "{text}");
    other.set_state(gst::State::Null).unwrap();
    first.set_state(gst::State::Null).unwrap();
}
