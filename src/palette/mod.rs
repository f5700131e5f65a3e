// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Class names and colours: the ADE20k defaults, and the parsers for user label / palette files
//! and for the JSON carried in a model's metadata.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub type Rgb = [u8; 3];

struct Ade20k {
    labels: Vec<String>,
    palette: Vec<Rgb>,
}

static ADE20K: LazyLock<Ade20k> = LazyLock::new(|| {
    // The file is part of the crate and checked by a unit test, so a parse failure is a build bug.
    let v: Value = serde_json::from_str(include_str!("ade20k.json")).expect("bundled ade20k.json");
    Ade20k {
        labels: parse_labels_json(&v["labels"]).expect("bundled ADE20k labels"),
        palette: parse_palette_json(&v["palette"]).expect("bundled ADE20k palette"),
    }
});

/// The 150 ADE20k class names (Hugging Face `ade20k-id2label`, mmsegmentation order).
pub fn ade20k_labels() -> Vec<String> {
    ADE20K.labels.clone()
}

/// The standard ADE20k palette of mmsegmentation's `ADE20KDataset`.
pub fn ade20k_palette() -> Vec<Rgb> {
    ADE20K.palette.clone()
}

/// Labels for an `n`-class model that says nothing about its classes.
pub fn generic_labels(n: usize) -> Vec<String> {
    match n {
        2 => vec!["background".into(), "foreground".into()],
        _ => (0..n).map(|i| format!("class{i}")).collect(),
    }
}

/// A palette for an `n`-class model that carries none: ADE20k's colours first, then a
/// deterministic spread of hues. Background-like class 0 of a two-class model stays black.
pub fn generic_palette(n: usize) -> Vec<Rgb> {
    if n == 2 {
        return vec![[0, 0, 0], [255, 0, 96]];
    }
    let ade = &ADE20K.palette;
    (0..n)
        .map(|i| {
            ade.get(i).copied().unwrap_or_else(|| {
                // Golden-ratio hue steps keep neighbouring ids apart.
                let h = (i as f32 * 0.618_034).fract() * 6.0;
                let x = (1.0 - ((h % 2.0) - 1.0).abs()) * 255.0;
                let (r, g, b) = match h as u32 {
                    0 => (255.0, x, 0.0),
                    1 => (x, 255.0, 0.0),
                    2 => (0.0, 255.0, x),
                    3 => (0.0, x, 255.0),
                    4 => (x, 0.0, 255.0),
                    _ => (255.0, 0.0, x),
                };
                [r as u8, g as u8, b as u8]
            })
        })
        .collect()
}

/// Labels from JSON: a list of names, or an id2label object `{"0": "wall", ...}` whose ids must
/// cover 0..n without gaps.
pub fn parse_labels_json(v: &Value) -> Result<Vec<String>> {
    let labels = match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => bail!("entry {i} is {other}, not a string"),
            })
            .collect::<Result<Vec<_>>>()?,
        Value::Object(map) => {
            let mut pairs = map
                .iter()
                .map(|(k, v)| {
                    let id: usize = k
                        .trim()
                        .parse()
                        .with_context(|| format!("key {k:?} is not a class id"))?;
                    let name = v
                        .as_str()
                        .with_context(|| format!("label of class {id} is {v}, not a string"))?;
                    Ok((id, name.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            pairs.sort_by_key(|(id, _)| *id);
            for (expected, (id, _)) in pairs.iter().enumerate() {
                if *id != expected {
                    bail!(
                        "class ids must run 0..{} without gaps, but id {expected} is missing",
                        pairs.len()
                    );
                }
            }
            pairs.into_iter().map(|(_, name)| name).collect()
        }
        other => bail!("expected a list of names or an id2label object, found {other}"),
    };
    if labels.is_empty() {
        bail!("no labels");
    }
    Ok(labels)
}

/// Palette from JSON: a list of `[r, g, b]` triples or `"#rrggbb"` strings.
pub fn parse_palette_json(v: &Value) -> Result<Vec<Rgb>> {
    let items = v
        .as_array()
        .with_context(|| format!("expected a list of colours, found {v}"))?;
    if items.is_empty() {
        bail!("no colours");
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let colour = match item {
                Value::String(s) => parse_colour(s),
                Value::Array(c) if c.len() == 3 => {
                    let mut rgb = [0u8; 3];
                    for (dst, src) in rgb.iter_mut().zip(c) {
                        *dst =
                            src.as_u64().filter(|x| *x <= 255).with_context(|| {
                                format!("component {src} is not an integer 0-255")
                            })? as u8;
                    }
                    Ok(rgb)
                }
                other => Err(anyhow::anyhow!(
                    "{other} is neither [r, g, b] nor \"#rrggbb\""
                )),
            };
            colour.with_context(|| format!("colour {i}"))
        })
        .collect()
}

/// One colour: `R,G,B` (0-255 each) or `#rrggbb`.
pub fn parse_colour(s: &str) -> Result<Rgb> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("{s:?} is not #rrggbb");
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex digits");
        return Ok([byte(0), byte(2), byte(4)]);
    }
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        bail!("{s:?} is neither R,G,B nor #rrggbb");
    }
    let mut rgb = [0u8; 3];
    for (dst, p) in rgb.iter_mut().zip(&parts) {
        *dst = p
            .parse()
            .with_context(|| format!("{p:?} in {s:?} is not an integer 0-255"))?;
    }
    Ok(rgb)
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

fn is_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('[') | Some('{'))
}

/// The text of a labels file: one name per line (blank lines at the end ignored), or id2label
/// JSON.
pub fn parse_labels_text(text: &str) -> Result<Vec<String>> {
    if is_json(text) {
        let v: Value = serde_json::from_str(text).context("not valid JSON")?;
        return parse_labels_json(&v);
    }
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    if lines.iter().all(|l| l.is_empty()) {
        bail!("no labels");
    }
    if let Some(i) = lines.iter().position(|l| l.is_empty()) {
        bail!("line {} is empty", i + 1);
    }
    Ok(lines)
}

/// The text of a palette file: one `R,G,B` or `#rrggbb` per line, or JSON.
pub fn parse_palette_text(text: &str) -> Result<Vec<Rgb>> {
    if is_json(text) {
        let v: Value = serde_json::from_str(text).context("not valid JSON")?;
        return parse_palette_json(&v);
    }
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        bail!("no colours");
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| parse_colour(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// A labels file (see [`parse_labels_text`]).
pub fn load_labels(path: &Path) -> Result<Vec<String>> {
    parse_labels_text(&read_text(path)?)
        .with_context(|| format!("bad labels file {}", path.display()))
}

/// A palette file (see [`parse_palette_text`]).
pub fn load_palette(path: &Path) -> Result<Vec<Rgb>> {
    parse_palette_text(&read_text(path)?)
        .with_context(|| format!("bad palette file {}", path.display()))
}

/// Resolves a `classes` selection (ids or names, separated by commas) to a per-class "draw" flag.
/// `None` or an empty string draws every class.
pub fn select_classes(spec: Option<&str>, labels: &[String]) -> Result<Vec<bool>> {
    let spec = spec.map(str::trim).unwrap_or("");
    if spec.is_empty() {
        return Ok(vec![true; labels.len()]);
    }
    let mut draw = vec![false; labels.len()];
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = match item.parse::<usize>() {
            Ok(id) if id < labels.len() => id,
            Ok(id) => bail!(
                "class id {id} is out of range: the model has {} classes",
                labels.len()
            ),
            Err(_) => labels
                .iter()
                .position(|l| l.trim().eq_ignore_ascii_case(item))
                .with_context(|| format!("no class is named {item:?}{}", closest(item, labels)))?,
        };
        draw[id] = true;
    }
    Ok(draw)
}

/// "; closest: a, b, c" for the class names nearest to `item` (by edit distance), or nothing.
fn closest(item: &str, labels: &[String]) -> String {
    let item = &item.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = labels
        .iter()
        .flat_map(|l| {
            // ADE20k names hold synonyms ("person;individual;someone"): each counts.
            let whole = l.trim();
            whole.split([';', ',']).map(move |part| {
                (
                    strsim::jaro_winkler(item, &part.trim().to_ascii_lowercase()),
                    whole,
                )
            })
        })
        .filter(|(score, _)| *score >= 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut names: Vec<&str> = Vec::new();
    for (_, name) in scored {
        if !names.contains(&name) && names.len() < 3 {
            names.push(name);
        }
    }
    if names.is_empty() {
        String::new()
    } else {
        format!("; closest: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_class_name_gets_the_closest_ones() {
        let labels = vec![
            "wall".to_string(),
            "person;individual".to_string(),
            "car".to_string(),
        ];
        let err = select_classes(Some("persn"), &labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("closest: person;individual"), "{err}");
        assert!(!err.contains("wall"), "{err}");
    }

    #[test]
    fn ade20k_tables_have_150_entries() {
        assert_eq!(ade20k_labels().len(), 150);
        assert_eq!(ade20k_palette().len(), 150);
        assert_eq!(ade20k_labels()[12], "person");
        assert_eq!(ade20k_palette()[0], [120, 120, 120]);
        assert_eq!(ade20k_palette()[149], [92, 0, 255]);
    }

    #[test]
    fn colours_parse_in_both_notations() {
        assert_eq!(parse_colour("#ff8000").unwrap(), [255, 128, 0]);
        assert_eq!(parse_colour(" 1, 2 ,3 ").unwrap(), [1, 2, 3]);
        assert!(parse_colour("256,0,0").is_err());
        assert!(parse_colour("#ff80").is_err());
        assert!(parse_colour("1,2").is_err());
    }

    #[test]
    fn id2label_must_not_have_gaps() {
        let v: Value = serde_json::from_str(r#"{"0":"a","2":"c"}"#).unwrap();
        let err = parse_labels_json(&v).unwrap_err().to_string();
        assert!(err.contains("id 1 is missing"), "{err}");
        let v: Value = serde_json::from_str(r#"{"1":"b","0":"a"}"#).unwrap();
        assert_eq!(parse_labels_json(&v).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn class_selection_accepts_ids_and_names() {
        let labels = ade20k_labels();
        let draw = select_classes(Some("person, 2,Sky"), &labels).unwrap();
        assert_eq!(draw.iter().filter(|d| **d).count(), 2);
        assert!(draw[12] && draw[2]);
        assert!(select_classes(Some("unicorn"), &labels).is_err());
        assert!(select_classes(Some("150"), &labels).is_err());
        assert!(select_classes(None, &labels).unwrap().iter().all(|d| *d));
    }

    #[test]
    fn generic_palette_extends_past_ade20k() {
        let p = generic_palette(300);
        assert_eq!(p.len(), 300);
        assert_eq!(p[5], ade20k_palette()[5]);
    }
}
