// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg inspect MODEL`.

use std::path::Path;

use anyhow::Result;
use gstbeitseg::ProviderSetting;

pub fn inspect(model: &Path, provider: ProviderSetting) -> Result<()> {
    use gstbeitseg::provider::ProviderRequest;
    let overrides = gstbeitseg::model::Overrides {
        provider: ProviderRequest {
            provider: provider.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let m = gstbeitseg::model::Model::load(model, &overrides)?;
    let i = m.info();
    println!("model        {}", i.path.display());
    println!(
        "input        {} {:?} {:?} {}x{} batch {}",
        i.input_name,
        i.layout,
        i.input_precision,
        i.width,
        i.height,
        i.batch.map_or("dynamic".to_string(), |b| b.to_string())
    );
    println!(
        "output       {} {:?} {:?}",
        i.output_name, i.output_precision, i.output_kind
    );
    println!(
        "classes      {}: {}",
        i.num_classes,
        i.labels
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
            + if i.num_classes > 12 { ", …" } else { "" }
    );
    let p = &i.preprocessing;
    println!(
        "preprocess   resize {:?} ({:?}), ×{:.6}, mean {:?}, std {:?}",
        p.resize, p.resample, p.rescale, p.mean, p.std
    );
    println!(
        "provider     {}{}",
        i.provider.name(),
        if i.provider_notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.provider_notes.join("; "))
        }
    );
    println!(
        "compiled in  {}",
        gstbeitseg::provider::compiled_in()?.join(", ")
    );
    println!(
        "onnxruntime  {}",
        gstbeitseg::runtime::version().unwrap_or("?")
    );
    Ok(())
}
