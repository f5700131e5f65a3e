// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Every Hugging Face semantic-segmentation family `scripts/export_model.py` exports, against
//! that family's own transformers processor and post-processing (tiny random-weight models built
//! from each family's config, fixtures in tests/fixtures/families/), and `resize=slide` against a
//! Python reimplementation of mmsegmentation's slide_inference (`scripts/slide_reference.py`).

mod common;

use std::path::Path;

use common::*;
use gstbeitseg::engine::Segmenter;
use gstbeitseg::frame::{ClassMap, Frame, PixelFormat};
use gstbeitseg::model::{Model, Overrides, ResizeMode};
use gstbeitseg::preprocess::Preprocessor;

const FAMILIES: [&str; 8] = [
    "beit",
    "data2vec-vision",
    "segformer",
    "upernet-convnext",
    "upernet-swin",
    "dpt",
    "mobilevit",
    "mobilevitv2",
];

fn segment(photo: &Path, out: &mut ClassMap, seg: &mut Segmenter) {
    let (w, h, c, px) = read_png(photo);
    assert_eq!(c, 3, "{}", photo.display());
    seg.segment(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, px.as_slice()).unwrap(),
        out,
    )
    .unwrap();
}

/// Pixels that differ from `reference` away from its near-ties (`ties` != 0), and in all.
fn compare(ours: &[u8], reference: &[u8], ties: &[u8]) -> (usize, usize) {
    let off_tie = (0..reference.len())
        .filter(|&i| ties[i] == 0 && ours[i] != reference[i])
        .count();
    let all = (0..reference.len())
        .filter(|&i| ours[i] != reference[i])
        .count();
    (off_tie, all)
}

/// `family`'s tiny model on the photos at their own sizes and at the model's input size.
fn matches_transformers(family: &str) {
    let dir = fixture(&format!("families/{family}"));
    let path = dir.join("model.onnx");
    let model = std::sync::Arc::new(Model::load(&path, &Overrides::default()).unwrap());
    let info = model.info().clone();
    assert_eq!(info.family.as_deref(), Some(family), "{}", path.display());
    let mut seg = Segmenter::new(model.clone());
    let pre = Preprocessor::new(&info);
    for (photo, file) in [
        ("astronaut", sample("beit-tiny-ade/astronaut.png")),
        ("coffee", sample("beit-tiny-ade/coffee.png")),
        ("chelsea", sample("beit-tiny-ade/chelsea.png")),
        ("model_size", dir.join("model_size.png")),
    ] {
        let mut out = ClassMap::default();
        segment(&file, &mut out, &mut seg);
        let (w, h, _, reference) = read_png(&dir.join(format!("{photo}.classes.png")));
        let (_, _, _, ties) = read_png(&dir.join(format!("{photo}.ties.png")));
        assert_eq!((out.width, out.height), (w, h), "{family} {photo}");
        let agree = agreement(&out.data, &reference);
        let (off_tie, all) = compare(&out.data, &reference, &ties);
        let classes = reference
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<u8>>()
            .len();
        println!(
            "{family:16} {photo:10} {w}x{h}: {:.3} % agree ({all} differ, {off_tie} off near-ties; {classes} classes)",
            agree * 100.0
        );
        assert!(agree >= 0.995, "{family} {photo}: only {agree}");
        assert!(
            classes >= 3,
            "{family} {photo}: the reference shows {classes} classes"
        );
        // Nothing resized: only float noise between ONNX Runtime and PyTorch may move a pixel,
        // and only where transformers' own best two logits nearly tie.
        if pre.resized_size(w, h) == (w, h)
            && matches!(info.preprocessing.resize, ResizeMode::Stretch)
        {
            assert_eq!(off_tie, 0, "{family} {photo} is at the model's input size");
        }
    }
}

/// One test per family, named after it.
macro_rules! families {
    ($($test:ident => $family:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                matches_transformers($family);
            }
        )*
    };
}

families! {
    beit_matches_transformers => "beit",
    data2vec_vision_matches_transformers => "data2vec-vision",
    segformer_matches_transformers => "segformer",
    upernet_convnext_matches_transformers => "upernet-convnext",
    upernet_swin_matches_transformers => "upernet-swin",
    dpt_matches_transformers => "dpt",
    mobilevit_matches_transformers => "mobilevit",
    mobilevitv2_matches_transformers => "mobilevitv2",
}

#[test]
fn inspect_names_the_family() {
    for family in FAMILIES {
        let path = fixture(&format!("families/{family}/model.onnx"));
        let (ok, out, err) = beitseg(&["inspect", path.to_str().unwrap()]);
        assert!(ok, "{err}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("family") && l.trim_end().ends_with(family)),
            "{out}"
        );
    }
}

#[test]
fn slide_matches_mmsegmentations_slide_inference() {
    let overrides = Overrides {
        resize: Some(ResizeMode::Slide),
        ..Default::default()
    };
    let model = std::sync::Arc::new(Model::load(&tiny_beit(), &overrides).unwrap());
    let mut seg = Segmenter::new(model.clone());
    let pre = Preprocessor::new(model.info());
    let plans: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("beit-tiny-ade/slide.json")).unwrap())
            .unwrap();
    for photo in ["astronaut", "coffee", "chelsea", "wide720"] {
        let mut out = ClassMap::default();
        segment(
            &sample(&format!("beit-tiny-ade/{photo}.png")),
            &mut out,
            &mut seg,
        );
        let (w, h, _, reference) =
            read_png(&sample(&format!("beit-tiny-ade/{photo}.slide.classes.png")));
        let (_, _, _, ties) = read_png(&sample(&format!("beit-tiny-ade/{photo}.slide.ties.png")));
        assert_eq!((out.width, out.height), (w, h));
        // The same windows as the reference.
        let plan = pre.slide_plan(w, h);
        let expected = &plans[photo];
        let windows = expected["windows"]
            .as_u64()
            .or_else(|| expected["windows"].as_array().map(|a| a.len() as u64));
        assert_eq!(
            Some(plan.windows.len() as u64),
            windows,
            "{photo}: {expected}"
        );
        let agree = agreement(&out.data, &reference);
        let (off_tie, all) = compare(&out.data, &reference, &ties);
        // And not what plain (stretched) inference gives, for a frame that is not square.
        let plain = sample(&format!("beit-tiny-ade/{photo}.classes.png"));
        let unlike_plain = if plain.is_file() {
            let share = 1.0 - agreement(&out.data, &read_png(&plain).3);
            format!("; {:.1} % unlike plain inference", share * 100.0)
        } else {
            String::new()
        };
        println!(
            "slide {photo} {w}x{h} ({} windows): {:.3} % agree with the mmseg reference ({all} differ, {off_tie} off near-ties){unlike_plain}",
            plan.windows.len(),
            agree * 100.0,
        );
        assert!(agree >= 0.995, "{photo}: only {agree}");
    }
}
