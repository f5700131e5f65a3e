// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The engine alone (no GStreamer) against what transformers and onnxruntime-python produce.

mod common;

use common::*;
use gstbeitseg::engine::Segmenter;
use gstbeitseg::frame::{ClassMap, Frame, PixelFormat};
use gstbeitseg::model::{Model, Overrides};
use gstbeitseg::preprocess::Preprocessor;

fn segment(model: &std::path::Path, photo: &std::path::Path) -> ClassMap {
    let (w, h, c, px) = read_png(photo);
    assert_eq!(c, 3);
    let mut seg = Segmenter::new(Model::load(model, &Overrides::default()).unwrap());
    let mut out = ClassMap::default();
    seg.segment(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, px.as_slice()).unwrap(),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn tiny_beit_matches_transformers_on_real_photos() {
    for name in [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket640",
        "astronaut640",
    ] {
        let out = segment(&tiny_beit(), &sample(&format!("beit-tiny-ade/{name}.png")));
        let (w, h, _, reference) = read_png(&sample(&format!("beit-tiny-ade/{name}.classes.png")));
        assert_eq!((out.width, out.height), (w, h));
        let agree = agreement(&out.data, &reference);
        println!(
            "{name} {w}x{h}: {:.4} % of pixels agree with transformers",
            agree * 100.0
        );
        assert!(agree >= 0.995, "{name}: only {agree}");
        if (w, h) == (640, 640) {
            // No resize at the model's size, so only float noise between ONNX Runtime and PyTorch
            // may move a pixel, and only where transformers' own best two logits nearly tie.
            let (_, _, _, ties) = read_png(&sample(&format!("beit-tiny-ade/{name}.ties.png")));
            let off_tie: Vec<usize> = (0..reference.len()).filter(|&i| ties[i] == 0).collect();
            let differ = off_tie
                .iter()
                .filter(|&&i| out.data[i] != reference[i])
                .count();
            let tie_differ = (0..reference.len())
                .filter(|&i| ties[i] != 0 && out.data[i] != reference[i])
                .count();
            println!(
                "{name}: 100 % required off near-ties: {differ} of {} differ; {tie_differ} near-tie pixels differ",
                off_tie.len()
            );
            assert_eq!(
                differ, 0,
                "{name} is at the model's input size: every clear pixel must agree"
            );
        }
    }
}

#[test]
fn preprocessing_is_bit_exact_with_pil_bilinear() {
    let model = Model::load(&tiny_beit(), &Overrides::default()).unwrap();
    let info = model.info();
    let (w, h, _, px) = read_png(&astronaut());
    let (rw, rh, _, pil) = read_png(&sample("beit-tiny-ade/astronaut.resized.png"));
    assert_eq!((rw, rh), (info.width, info.height));
    let mut pre = Preprocessor::new(info);
    let mut input = vec![0f32; pre.image_len()];
    pre.run(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, px.as_slice()).unwrap(),
        &mut input,
    )
    .unwrap();
    let plane = rw * rh;
    let mut worst = 0f32;
    let mut exact = 0usize;
    for p in 0..plane {
        for c in 0..3 {
            let ours = input[c * plane + p] * 0.5 + 0.5; // undo mean/std 0.5
            let theirs = pil[p * 3 + c] as f32 / 255.0;
            let d = (ours - theirs).abs();
            worst = worst.max(d);
            exact += (d < 1e-6) as usize;
        }
    }
    println!(
        "PIL parity: {:.3} % identical, worst {:.2}/255",
        exact as f64 * 100.0 / (3 * plane) as f64,
        worst * 255.0
    );
    assert_eq!(
        exact,
        3 * plane,
        "every value identical to PIL's (worst {worst})"
    );
}

#[test]
fn selfie_model_finds_the_astronaut() {
    let out = segment(&selfie(), &astronaut());
    let (_, _, _, reference) = read_png(&sample("selfie/astronaut.person.png"));
    let (mut inter, mut union) = (0usize, 0usize);
    for (a, b) in out.data.iter().zip(&reference) {
        let (a, b) = (*a == 1, *b != 0);
        inter += (a && b) as usize;
        union += (a || b) as usize;
    }
    let iou = inter as f64 / union as f64;
    let share = out.data.iter().filter(|k| **k == 1).count() as f64 / out.data.len() as f64;
    println!(
        "selfie person IoU against onnxruntime-python: {iou:.4} ({:.1} % person)",
        share * 100.0
    );
    assert!(iou >= 0.97, "IoU {iou}");
}

#[test]
fn resampling_is_bit_exact_with_pil_for_every_filter() {
    use gstbeitseg::model::Resample;
    use gstbeitseg::resample::Resizer;
    let (w, h, _, px) = read_png(&astronaut());
    let mut resizer = Resizer::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(rest) = name.strip_prefix("astronaut.") else {
            continue;
        };
        let filter = rest.split('.').next().unwrap();
        let (dw, dh, _, pil) = read_png(&path);
        let mut ours = vec![0u8; dw * dh * 3];
        resizer.resize(
            &px,
            (w, h),
            &mut ours,
            (dw, dh),
            Resample::parse(filter).unwrap(),
        );
        let same = agreement(&ours, &pil);
        println!(
            "{filter} {w}x{h} → {dw}x{dh}: {:.4} % of values identical to PIL",
            same * 100.0
        );
        assert_eq!(same, 1.0, "{name}");
    }
}

#[test]
fn fp16_export_runs_with_fp16_input() {
    let path = sample("beit-tiny-ade/model-fp16.onnx");
    let model = Model::load(&path, &Overrides::default()).unwrap();
    assert_eq!(
        model.info().input_precision,
        gstbeitseg::model::Precision::F16
    );
    for name in ["astronaut", "chelsea"] {
        let out = segment(&path, &sample(&format!("beit-tiny-ade/{name}.png")));
        let (_, _, _, reference) = read_png(&sample(&format!("beit-tiny-ade/{name}.classes.png")));
        let agree = agreement(&out.data, &reference);
        println!(
            "fp16 {name}: {:.3} % of pixels agree with transformers fp32",
            agree * 100.0
        );
        assert!(agree >= 0.995, "{name}: {agree}");
    }
}
