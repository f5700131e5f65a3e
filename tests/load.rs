// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What loading a model costs and reuses: exports made before the compact relative position
//! index still load (constant folding off), the optimised graph is built once and reused, and
//! one session serves several threads at once. Outputs are compared, never timings.

mod common;

use std::sync::Arc;

use common::*;
use gstbeitseg::frame::{ClassMap, Frame, PixelFormat};
use gstbeitseg::model::{Model, Overrides};
use gstbeitseg::session::GraphCache;

fn classes(model: Model, name: &str) -> ClassMap {
    let (w, h, _, rgb) = read_png(&sample(&format!("beit-tiny-ade/{name}.png")));
    let mut seg = gstbeitseg::engine::Segmenter::new(model);
    let mut out = ClassMap::default();
    seg.segment(
        &Frame::new(PixelFormat::Rgb, w, h, w * 3, &rgb[..]).unwrap(),
        &mut out,
    )
    .unwrap();
    out
}

fn cached(dir: &TempDir) -> Overrides {
    Overrides {
        graph_cache: GraphCache::Dir(dir.0.clone()),
        ..Default::default()
    }
}

#[test]
fn an_export_from_before_the_fix_loads_without_constant_folding_and_still_agrees() {
    let legacy = fixture("beit-tiny-legacy/model.onnx");
    let overrides = Overrides {
        graph_cache: GraphCache::Off,
        ..Default::default()
    };
    let model = Model::load(&legacy, &overrides).unwrap();
    let notes = model.info().load.notes.join("\n");
    assert!(
        notes.contains("constant folding off") && notes.contains("ScatterElements"),
        "{notes}"
    );
    assert_eq!(model.info().load.graph_cache, "off");
    // Same weights as the bundled export: the same classes as transformers, pixel for pixel.
    let out = classes(model, "astronaut");
    let (_, _, _, reference) = read_png(&sample("beit-tiny-ade/astronaut.classes.png"));
    assert_eq!(agreement(&out.data, &reference), 1.0);
    // The bundled export needs no such measure.
    let current = Model::load(&tiny_beit(), &overrides).unwrap();
    assert!(
        current.info().load.notes.is_empty(),
        "{:?}",
        current.info().load.notes
    );
}

#[test]
fn the_optimised_graph_is_built_once_reused_and_rebuilt_when_damaged() {
    let dir = TempDir::new("graph-cache");
    let first = Model::load(&tiny_beit(), &cached(&dir)).unwrap();
    assert_eq!(
        first.info().load.graph_cache,
        "built",
        "{:?}",
        first.info().load
    );
    let saved: Vec<_> = std::fs::read_dir(&dir.0).unwrap().flatten().collect();
    assert_eq!(saved.len(), 1, "one folder, no staging left: {saved:?}");
    let folder = saved[0].path();
    assert!(folder.join("model.onnx").is_file());
    let reference = classes(first, "chelsea");

    let second = Model::load(&tiny_beit(), &cached(&dir)).unwrap();
    assert_eq!(
        second.info().load.graph_cache,
        "reused",
        "{:?}",
        second.info().load
    );
    // The label tables travel with the optimised graph's metadata.
    assert_eq!(second.info().labels.len(), 150);
    assert_eq!(second.info().labels[12], "person");
    assert_eq!(classes(second, "chelsea").data, reference.data);

    // A damaged cache entry is noticed, dropped and built again.
    std::fs::write(folder.join("model.onnx"), b"not a model").unwrap();
    let third = Model::load(&tiny_beit(), &cached(&dir)).unwrap();
    let notes = third.info().load.notes.join("\n");
    assert_eq!(third.info().load.graph_cache, "built", "{notes}");
    assert!(notes.contains("does not load"), "{notes}");
    assert_eq!(classes(third, "chelsea").data, reference.data);

    // Another model, another folder.
    let selfie = Model::load(&selfie(), &cached(&dir)).unwrap();
    assert_eq!(selfie.info().load.graph_cache, "built");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 2);
}

#[test]
fn an_unwritable_cache_folder_is_a_note_not_an_error() {
    let dir = TempDir::new("graph-cache-file");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let overrides = Overrides {
        graph_cache: GraphCache::Dir(file.join("below")),
        ..Default::default()
    };
    let model = Model::load(&selfie(), &overrides).unwrap();
    assert_eq!(model.info().load.graph_cache, "off");
    let notes = model.info().load.notes.join("\n");
    assert!(notes.contains("cannot create"), "{notes}");
}

#[test]
fn one_session_runs_on_several_threads_at_once_with_the_serial_results() {
    let model = Arc::new(Model::load(&tiny_beit(), &Overrides::default()).unwrap());
    let info = model.info().clone();
    let len = 3 * info.width * info.height;
    let inputs: Vec<Vec<f32>> = (0..4)
        .map(|k| {
            (0..len)
                .map(|i| (((i + k * 7919) * 2654435761) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        })
        .collect();
    let serial: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| model.run(x.clone(), 1).unwrap().remove(0).data)
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (model, inputs) = (model.clone(), inputs.clone());
            std::thread::spawn(move || {
                (0..6)
                    .map(|r| {
                        let k = (t + r) % inputs.len();
                        (k, model.run(inputs[k].clone(), 1).unwrap().remove(0).data)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (k, out) in t.join().unwrap() {
            assert!(
                out == serial[k],
                "input {k}: a concurrent run differs from the serial one"
            );
        }
    }
}
