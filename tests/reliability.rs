// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What users and cameras throw at the element: NaN/Inf logits, odd and huge frames, padded
//! strides, buffers without timestamps, gaps, renegotiation, property changes while playing, two
//! pipelines at once. (A thousand state changes: tests/state_cycles.rs, a process of its own.) (Bad models and files: tests/errors.rs; worker
//! failures: tests/worker_faults.rs; cameras: tests/rtsp.rs.)

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;

fn mask_harness(model: &std::path::Path, caps: &gst::Caps) -> Harness {
    init_gst();
    let el = gst::ElementFactory::make("beitseg")
        .property("model", model.to_str().unwrap())
        .property_from_str("mode", "mask")
        .build()
        .unwrap();
    let mut h = Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps(caps.clone());
    h.play();
    h
}

/// Packed RGB → a buffer in `info`'s layout (its strides).
fn rgb_buffer(info: &gst_video::VideoInfo, rgb: &[u8]) -> gst::Buffer {
    let (w, h) = (info.width() as usize, info.height() as usize);
    let mut buf = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buf.get_mut().unwrap();
        let stride = info.stride()[0] as usize;
        let mut map = b.map_writable().unwrap();
        for y in 0..h {
            map[y * stride..y * stride + w * 3].copy_from_slice(&rgb[y * w * 3..(y + 1) * w * 3]);
        }
    }
    buf
}

/// The class-id rows of a GRAY8 output buffer (its strides honoured).
fn mask_rows(buf: &gst::Buffer, w: usize, h: usize) -> Vec<u8> {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray8, w as u32, h as u32)
        .build()
        .unwrap();
    frame_rows(buf, &info)
}

/// Deterministic noise-and-gradient RGB.
fn pattern(w: usize, h: usize) -> Vec<u8> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..w * h * 3)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((i / 3 % w * 255 / w.max(1)) as u64 / 2 + (s & 0x7f)) as u8
        })
        .collect()
}

#[test]
fn nan_and_inf_logits_still_give_a_mask_by_the_documented_rule() {
    // Logits per class: [R, log(G - 0.5), 1 / B] (inputs scaled to [0, 1]). The rule: NaN counts
    // as the largest value (the first NaN wins), ±Inf compare as numbers, ties go to the lowest
    // class id — torch.argmax's rule, so the mask is what transformers would give.
    let model = fixture("nan_inf_logits.onnx");
    let (w, h) = (16, 12);
    for (rgb, expected, why) in [
        ([255, 0, 255], 1, "NaN beats finite values"),
        ([255, 255, 255], 0, "a tie goes to the lowest id"),
        ([0, 255, 0], 2, "+Inf beats finite values"),
        ([0, 0, 0], 1, "the first NaN beats +Inf (or a later NaN)"),
    ] {
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
            .fps(gst::Fraction::new(25, 1))
            .build()
            .unwrap();
        let mut hn = mask_harness(&model, &info.to_caps().unwrap());
        let pixels: Vec<u8> = rgb
            .iter()
            .copied()
            .cycle()
            .take((w * h * 3) as usize)
            .collect();
        hn.push(rgb_buffer(&info, &pixels)).unwrap();
        let out = hn.pull().unwrap();
        let mask = mask_rows(&out, w as usize, h as usize);
        assert!(
            mask.iter().all(|&c| c == expected),
            "{rgb:?}: {why}: {mask:?}"
        );
    }
}

#[test]
fn tiny_odd_huge_and_padded_frames() {
    let model = selfie();
    for (w, h) in [(1, 1), (1, 2), (2, 1), (7, 3), (33, 17), (7680, 4320)] {
        let rgb = pattern(w, h);
        let expected = engine_classes(&model, w, h, &rgb).data;
        // RGB rows of odd widths are padded to 4 bytes by GStreamer's default layout.
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w as u32, h as u32)
            .fps(gst::Fraction::new(25, 1))
            .build()
            .unwrap();
        let mut hn = mask_harness(&model, &info.to_caps().unwrap());
        hn.push(rgb_buffer(&info, &rgb)).unwrap();
        let out = hn.pull().unwrap();
        assert_eq!(mask_rows(&out, w, h), expected, "{w}x{h}");
    }
}

#[test]
fn strides_from_video_meta_are_honoured() {
    // A buffer whose rows are 100 bytes apart, described only by its VideoMeta (as a decoder
    // with padded surfaces does).
    let model = selfie();
    let (w, h, stride) = (29usize, 11usize, 100usize);
    let rgb = pattern(w, h);
    let expected = engine_classes(&model, w, h, &rgb).data;
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w as u32, h as u32)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    let mut buf = gst::Buffer::with_size(stride * h).unwrap();
    {
        let b = buf.get_mut().unwrap();
        {
            let mut map = b.map_writable().unwrap();
            map.fill(0xee);
            for y in 0..h {
                map[y * stride..y * stride + w * 3]
                    .copy_from_slice(&rgb[y * w * 3..(y + 1) * w * 3]);
            }
        }
        gst_video::VideoMeta::add_full(
            b,
            gst_video::VideoFrameFlags::empty(),
            gst_video::VideoFormat::Rgb,
            w as u32,
            h as u32,
            &[0],
            &[stride as i32],
        )
        .unwrap();
    }
    let mut hn = mask_harness(&model, &info.to_caps().unwrap());
    hn.push(buf).unwrap();
    let out = hn.pull().unwrap();
    assert_eq!(mask_rows(&out, w, h), expected);
}

#[test]
fn buffers_without_timestamps_and_gap_events_pass_through() {
    init_gst();
    let model = selfie();
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 32, 24)
        .build()
        .unwrap();
    let mut hn = mask_harness(&model, &info.to_caps().unwrap());
    let rgb = pattern(32, 24);
    for i in 0..6 {
        if i == 3 {
            assert!(hn.push_event(
                gst::event::Gap::builder(gst::ClockTime::from_seconds(1))
                    .duration(gst::ClockTime::from_mseconds(40))
                    .build()
            ));
        }
        // No PTS, DTS or duration.
        assert_eq!(hn.push(rgb_buffer(&info, &rgb)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(hn.push_event(gst::event::Eos::new()));
    let mut frames = 0;
    let mut gaps = 0;
    let mut eos = false;
    while !eos {
        match hn.pull_until_eos() {
            Ok(Some(b)) => {
                assert_eq!(b.pts(), None);
                frames += 1;
            }
            Ok(None) => eos = true,
            Err(_) => panic!("no EOS"),
        }
    }
    while let Some(ev) = hn.try_pull_event() {
        if ev.type_() == gst::EventType::Gap {
            gaps += 1;
        }
    }
    assert_eq!((frames, gaps), (6, 1));
}

#[test]
fn resolution_and_format_change_mid_stream() {
    init_gst();
    let model = selfie();
    let pipeline = launch_pipeline(&format!(
        "appsrc name=in format=time ! beitseg model=\"{}\" mode=mask workers=2 ! \
         appsink name=out sync=false",
        model.display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "in");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut expected = Vec::new();
    let mut t = 0;
    for (format, w, h) in [
        (gst_video::VideoFormat::Rgb, 40, 30),
        (gst_video::VideoFormat::Bgrx, 64, 20),
        (gst_video::VideoFormat::Rgba, 9, 41),
    ] {
        let info = gst_video::VideoInfo::builder(format, w, h)
            .fps(gst::Fraction::new(25, 1))
            .build()
            .unwrap();
        src.set_caps(Some(&info.to_caps().unwrap()));
        for _ in 0..3 {
            let mut buf = gst::Buffer::with_size(info.size()).unwrap();
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(40 * t));
                let mut map = b.map_writable().unwrap();
                for (i, v) in map.iter_mut().enumerate() {
                    *v = (i * 7 + t as usize) as u8;
                }
            }
            t += 1;
            src.push_buffer(buf).unwrap();
            expected.push((w, h));
        }
    }
    src.end_of_stream().unwrap();
    let mut got = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let caps = s.caps().unwrap();
        let i = gst_video::VideoInfo::from_caps(caps).unwrap();
        assert_eq!(i.format(), gst_video::VideoFormat::Gray8);
        got.push((i.width(), i.height()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn a_live_property_shows_at_once_and_the_others_say_they_wait_for_the_next_start() {
    init_gst();
    // A flat grey frame: the person model finds background (painted black) everywhere.
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=200 pattern=solid-color foreground-color=0xff808080 ! \
         video/x-raw,format=RGB,width=64,height=48,framerate=25/1 ! \
         beitseg name=seg model=\"{}\" alpha=0.0 workers=1 max-in-flight=2 ! \
         appsink name=out sync=false max-buffers=2",
        selfie().display()
    ));
    let seg: gst::Element = element(&pipeline, "seg");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let next = || {
        let s = sink
            .try_pull_sample(gst::ClockTime::from_seconds(30))
            .expect("a frame within 30 s");
        let data = s.buffer().unwrap().map_readable().unwrap().to_vec();
        data
    };
    let first = next();
    assert_eq!(first.len(), 64 * 48 * 3);
    assert!(
        first.iter().all(|&v| v == 0x80),
        "alpha 0 leaves the frame as it is"
    );
    // alpha applies while playing: within the frames already in flight, the frame turns black.
    seg.set_property("alpha", 1.0f64);
    let mut turned = false;
    for _ in 0..10 {
        if next().iter().all(|&v| v == 0) {
            turned = true;
            break;
        }
    }
    assert!(turned, "alpha=1 did not paint the background black");
    // mode applies at the next start: the element says so, and keeps sending RGB frames.
    seg.set_property_from_str("mode", "mask");
    // (Other warnings, such as provider=auto settling for the CPU, may come first.)
    let mut text = String::new();
    while let Some(warning) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Warning],
    ) {
        if let gst::MessageView::Warning(w) = warning.view() {
            text = format!("{} {:?}", w.error(), w.debug());
        }
        if text.contains("mode changed") {
            break;
        }
    }
    assert!(
        text.contains("mode changed while running: it applies at the next start"),
        "{text}"
    );
    for _ in 0..5 {
        assert_eq!(
            next().len(),
            64 * 48 * 3,
            "still RGB after mode=mask while playing"
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    // At the next start, mask mode it is: GRAY8 class ids.
    pipeline.set_state(gst::State::Playing).unwrap();
    assert_eq!(next().len(), 64 * 48, "GRAY8 after a restart");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn every_writable_property_can_change_while_playing() {
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=120 is-live=true ! \
         video/x-raw,format=RGB,width=64,height=48,framerate=200/1 ! \
         beitseg name=seg model=\"{}\" ! appsink name=out sync=false",
        selfie().display()
    ));
    let seg: gst::Element = element(&pipeline, "seg");
    let sink: gst_app::AppSink = element(&pipeline, "out");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    type Change = Box<dyn Fn(&gst::Element)>;
    let changes: Vec<Change> = vec![
        Box::new(|e| e.set_property("alpha", 0.9f64)),
        Box::new(|e| e.set_property_from_str("mode", "color")),
        Box::new(|e| e.set_property("classes", Some("person"))),
        Box::new(|e| e.set_property("interval", 3u32)),
        Box::new(|e| e.set_property_from_str("drop-policy", "oldest")),
        Box::new(|e| e.set_property("post-stats", true)),
        Box::new(|e| e.set_property("smoothing", 0.6f64)),
        Box::new(|e| e.set_property("workers", 3u32)),
        Box::new(|e| e.set_property("batch-size", 2u32)),
        Box::new(|e| e.set_property("max-in-flight", 4u32)),
        Box::new(|e| e.set_property_from_str("mode", "mask")),
        Box::new(|e| e.set_property_from_str("resize", "letterbox")),
        Box::new(|e| e.set_property_from_str("resize", "slide")),
        Box::new(|e| e.set_property("model", tiny_beit().to_str())),
        Box::new(|e| e.set_property_from_str("provider", "cpu")),
        Box::new(|e| e.set_property_from_str("mode", "overlay")),
    ];
    let mut changes = changes.into_iter();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        assert!(s.buffer().is_some());
        frames += 1;
        if frames % 7 == 0 {
            if let Some(change) = changes.next() {
                change(&seg);
            }
        }
    }
    assert!(sink.is_eos(), "stopped after {frames} frames");
    bus_warnings(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(changes.next().is_none(), "only {frames} frames");
    assert!(frames > 100, "{frames} frames");
}

#[test]
fn two_pipelines_in_one_process_at_once() {
    init_gst();
    let run = |model: std::path::PathBuf, n: u32| {
        std::thread::spawn(move || {
            let pipeline = launch_pipeline(&format!(
                "videotestsrc num-buffers={n} ! video/x-raw,format=BGRx,width=80,height=60 ! \
                 beitseg model=\"{}\" workers=1 ! appsink name=out sync=false",
                model.display()
            ));
            let sink: gst_app::AppSink = element(&pipeline, "out");
            pipeline.set_state(gst::State::Playing).unwrap();
            let mut frames = 0;
            while sink
                .try_pull_sample(gst::ClockTime::from_seconds(60))
                .is_some()
            {
                frames += 1;
            }
            let eos = sink.is_eos();
            pipeline.set_state(gst::State::Null).unwrap();
            (frames, eos)
        })
    };
    let a = run(selfie(), 40);
    let b = run(tiny_beit(), 12);
    assert_eq!(a.join().unwrap(), (40, true));
    assert_eq!(b.join().unwrap(), (12, true));
}
