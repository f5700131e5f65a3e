// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The `beitseg` element in real GStreamer pipelines: formats, sizes, modes, the mask pad,
//! timestamps and flags.

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::prelude::*;
use gstbeitseg::engine::Segmenter;
use gstbeitseg::frame::{ClassMap, Frame, PixelFormat};
use gstbeitseg::model::{Model, Overrides};

const FORMATS: [(&str, PixelFormat); 6] = [
    ("RGB", PixelFormat::Rgb),
    ("RGBA", PixelFormat::Rgba),
    ("BGR", PixelFormat::Bgr),
    ("BGRA", PixelFormat::Bgra),
    ("RGBx", PixelFormat::Rgbx),
    ("BGRx", PixelFormat::Bgrx),
];

/// A GStreamer buffer in `format` (default strides) holding the RGB pixels, plus its info.
fn video_buffer(
    format: &str,
    w: usize,
    h: usize,
    rgb: &[u8],
) -> (gst::Buffer, gst_video::VideoInfo) {
    init_gst();
    let vf = gst_video::VideoFormat::from_string(format);
    let info = gst_video::VideoInfo::builder(vf, w as u32, h as u32)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    let pf = FORMATS.iter().find(|(n, _)| *n == format).unwrap().1;
    let mut buf = gst::Buffer::with_size(info.size()).unwrap();
    {
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buf.get_mut().unwrap(), &info)
                .unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).unwrap();
        let bpp = pf.bytes_per_pixel();
        let [r, g, b] = pf.rgb_offsets();
        for y in 0..h {
            for x in 0..w {
                let px = &mut data[y * stride + x * bpp..y * stride + (x + 1) * bpp];
                let src = &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
                px[r] = src[0];
                px[g] = src[1];
                px[b] = src[2];
                if bpp == 4 {
                    px[3] = 0x5a;
                }
            }
        }
    }
    (buf, info)
}

fn harness(model: &std::path::Path, mode: &str, alpha: f64, caps: &gst::Caps) -> Harness {
    init_gst();
    let el = gst::ElementFactory::make("beitseg")
        .property("model", model.to_str().unwrap())
        .property_from_str("mode", mode)
        .property("alpha", alpha)
        .build()
        .unwrap();
    let mut h = Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps(caps.clone());
    h.play();
    h
}

#[test]
fn every_format_size_and_mode() {
    let model = selfie();
    let palette = Model::load(&model, &Overrides::default())
        .unwrap()
        .info()
        .palette
        .clone();
    for (w, h) in [(1, 1), (3, 5), (1920, 1080), (3840, 2160)] {
        let rgb = photo_rgb(w, h);
        let expected = engine_classes(&model, w, h, &rgb);
        for (name, pf) in FORMATS {
            let (input, info) = video_buffer(name, w, h, &rgb);
            let input_rows = frame_rows(&input, &info);
            let bpp = pf.bytes_per_pixel();
            let [r, g, b] = pf.rgb_offsets();
            for mode in ["overlay", "color", "mask"] {
                let mut hn = harness(&model, mode, 0.5, &info.to_caps().unwrap());
                hn.push(input.clone()).unwrap();
                let out = hn.pull().unwrap();
                let caps = hn.sinkpad().unwrap().current_caps().unwrap();
                let out_info = gst_video::VideoInfo::from_caps(&caps).unwrap();
                assert_eq!(
                    (out_info.width() as usize, out_info.height() as usize),
                    (w, h)
                );
                let rows = frame_rows(&out, &out_info);
                let what = format!("{name} {w}x{h} {mode}");
                match mode {
                    "mask" => {
                        assert_eq!(out_info.format(), gst_video::VideoFormat::Gray8, "{what}");
                        assert_eq!(rows, expected.data, "{what}");
                    }
                    _ => {
                        assert_eq!(out_info.format(), info.format(), "{what}");
                        for (i, (px, inp)) in rows
                            .chunks_exact(bpp)
                            .zip(input_rows.chunks_exact(bpp))
                            .enumerate()
                        {
                            let colour = palette[expected.data[i] as usize];
                            for (c, off) in [r, g, b].into_iter().enumerate() {
                                let want = if mode == "color" {
                                    colour[c] as i32
                                } else {
                                    (inp[off] as i32 + colour[c] as i32) / 2
                                };
                                assert!(
                                    (px[off] as i32 - want).abs() <= 1,
                                    "{what} pixel {i}: {} vs {want}",
                                    px[off]
                                );
                            }
                            if bpp == 4 {
                                let want = if mode == "color" { 255 } else { 0x5a };
                                assert_eq!(px[3], want, "{what}: fourth byte");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn tiny_beit_mask_through_the_element_matches_the_engine() {
    let model = tiny_beit();
    let (w, h) = (451, 300);
    let rgb = photo_rgb(w, h);
    let expected = engine_classes(&model, w, h, &rgb);
    let (input, info) = video_buffer("BGRx", w, h, &rgb);
    let mut hn = harness(&model, "mask", 0.5, &info.to_caps().unwrap());
    hn.push(input).unwrap();
    let out = hn.pull().unwrap();
    let out_info =
        gst_video::VideoInfo::from_caps(&hn.sinkpad().unwrap().current_caps().unwrap()).unwrap();
    assert_eq!(frame_rows(&out, &out_info), expected.data);
    let el = hn.element().unwrap();
    assert_eq!(el.property::<u32>("input-width"), 640);
    assert_eq!(el.property::<u32>("input-height"), 640);
    assert_eq!(el.property::<u32>("num-classes"), 150);
    assert!(
        el.property::<String>("ort-version").starts_with("1.31"),
        "{}",
        el.property::<String>("ort-version")
    );
}

#[test]
fn timestamps_durations_and_flags_are_kept() {
    let (w, h) = (64, 48);
    let rgb = photo_rgb(w, h);
    for mode in ["overlay", "color", "mask"] {
        let (input, info) = video_buffer("RGB", w, h, &rgb);
        let mut hn = harness(&selfie(), mode, 0.5, &info.to_caps().unwrap());
        for i in 0..5u64 {
            let mut buf = input.copy();
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(40 * i + 7));
                b.set_dts(if i % 2 == 0 {
                    Some(gst::ClockTime::from_mseconds(40 * i))
                } else {
                    None
                });
                b.set_duration(gst::ClockTime::from_mseconds(40));
                b.set_offset(i);
                let flags = if i == 0 {
                    gst::BufferFlags::DISCONT
                } else {
                    gst::BufferFlags::DELTA_UNIT
                };
                b.set_flags(flags);
            }
            hn.push(buf.clone()).unwrap();
            let out = hn.pull().unwrap();
            assert_eq!(out.pts(), buf.pts(), "{mode} pts");
            assert_eq!(out.dts(), buf.dts(), "{mode} dts");
            assert_eq!(out.duration(), buf.duration(), "{mode} duration");
            assert_eq!(out.offset(), buf.offset(), "{mode} offset");
            assert!(
                out.flags().contains(buf.flags()),
                "{mode}: {:?} lacks {:?}",
                out.flags(),
                buf.flags()
            );
        }
    }
}

#[test]
fn mask_pad_carries_class_ids_from_the_same_inference() {
    init_gst();
    let (w, h) = (160, 120);
    let rgb = photo_rgb(w, h);
    let expected = engine_classes(&selfie(), w, h, &rgb);
    let pipeline = launch_pipeline(&format!(
        "appsrc name=in format=time ! beitseg name=seg model={} mode=overlay alpha=1.0 ! queue ! appsink name=main sync=false \
         seg.mask ! queue ! appsink name=mask sync=false",
        selfie().display()
    ));
    let appsrc: gst_app::AppSrc = element(&pipeline, "in");
    let main: gst_app::AppSink = element(&pipeline, "main");
    let mask: gst_app::AppSink = element(&pipeline, "mask");
    let (input, info) = video_buffer("RGBA", w, h, &rgb);
    appsrc.set_caps(Some(&info.to_caps().unwrap()));
    pipeline.set_state(gst::State::Playing).unwrap();
    let frames = 4u64;
    for i in 0..frames {
        let mut buf = input.copy();
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i));
        appsrc.push_buffer(buf).unwrap();
    }
    appsrc.end_of_stream().unwrap();
    let palette = Model::load(&selfie(), &Overrides::default())
        .unwrap()
        .info()
        .palette
        .clone();
    for i in 0..frames {
        let m = main.pull_sample().unwrap();
        let k = mask.pull_sample().unwrap();
        let (mb, kb) = (m.buffer_owned().unwrap(), k.buffer_owned().unwrap());
        assert_eq!(mb.pts(), Some(gst::ClockTime::from_mseconds(40 * i)));
        assert_eq!(kb.pts(), mb.pts());
        let kinfo = gst_video::VideoInfo::from_caps(k.caps().unwrap()).unwrap();
        assert_eq!(kinfo.format(), gst_video::VideoFormat::Gray8);
        let ids = frame_rows(&kb, &kinfo);
        assert_eq!(ids, expected.data);
        let minfo = gst_video::VideoInfo::from_caps(m.caps().unwrap()).unwrap();
        let px = frame_rows(&mb, &minfo);
        for (p, id) in px.chunks_exact(4).zip(&ids) {
            assert_eq!(
                &p[..3],
                &palette[*id as usize][..],
                "alpha=1 overlay is the class colour"
            );
        }
    }
    assert!(
        main.pull_sample().is_err() && mask.pull_sample().is_err(),
        "exactly one output per input on each pad"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn letterbox_crops_the_padding_away() {
    // A wide frame letterboxed into the square model input still gives a full-size class map
    // that covers the person, not the padding.
    let (w, h) = (640, 240);
    let rgb = photo_rgb(w, h);
    let mut seg = Segmenter::new(
        Model::load(
            &selfie(),
            &Overrides {
                resize: Some(gstbeitseg::model::ResizeMode::Letterbox),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let mut out = ClassMap::default();
    seg.segment(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, rgb.as_slice()).unwrap(),
        &mut out,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (w, h));
    let share = out.data.iter().filter(|k| **k == 1).count() as f64 / out.data.len() as f64;
    let stretched = engine_classes(&selfie(), w, h, &rgb);
    let stretched_share =
        stretched.data.iter().filter(|k| **k == 1).count() as f64 / out.data.len() as f64;
    println!("letterbox person share {share:.3}, stretch {stretched_share:.3}");
    assert!(share > 0.2 && (share - stretched_share).abs() < 0.15);
}
