// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `beitseg bench kernels`: the CPU stages around the model (preprocessing, decoding, rendering)
//! timed at 1080p on the calling thread only, each beside a plain reference implementation of the
//! same stage measured in the same run.
//!
//! Inputs are synthetic and deterministic: a 1080p picture of gradients, edges and noise, and
//! 150×160×160 logits shaped like a segmentation model's (smooth per-class fields whose argmax
//! forms regions, one class tying another exactly over a whole region, the remaining classes far
//! below). Random logits would make every low-resolution cell a boundary, which no real model
//! produces.

use std::time::Instant;

use anyhow::{bail, Result};

use crate::decode::{decode_reference, Decoder};
use crate::frame::{ClassMap, FrameMut, FrameRef, PixelFormat};
use crate::model::{Layout, Logits, Preprocessing, Resample, ResizeMode};
use crate::palette::ade20k_palette;
use crate::preprocess::Preprocessor;
use crate::render::{self, Paint};
use crate::yuv::{Colorimetry, Matrix, YuvFormat, YuvFrame};

/// One stage's timing: medians over several runs, in milliseconds.
#[derive(Clone, Debug)]
pub struct KernelResult {
    pub stage: &'static str,
    /// The production code path.
    pub ms: f64,
    /// The plain reference implementation of the same stage.
    pub reference_ms: f64,
    /// `reference_ms / ms`: how many times faster the production path is.
    pub ratio: f64,
    /// The target for `ms` on one core.
    pub goal_ms: f64,
}

impl KernelResult {
    pub fn met(&self) -> bool {
        self.ms <= self.goal_ms
    }

    fn json(&self) -> String {
        serde_json::json!({
            "stage": self.stage,
            "ms": round3(self.ms),
            "reference_ms": round3(self.reference_ms),
            "ratio": round3(self.ratio),
            "goal_ms": self.goal_ms,
            "met": self.met(),
        })
        .to_string()
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
const CLASSES: usize = 150;
const LOGITS: usize = 160;
const MODEL: usize = 640;

/// Median wall time of `f` in milliseconds over `runs` runs, after one warm-up run.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A small deterministic generator (no extra crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1u32 << 23) as f32
    }
}

/// A test picture in `format`: gradients, hard edges and noise.
pub fn test_picture(format: PixelFormat, width: usize, height: usize) -> Vec<u8> {
    let bpp = format.bytes_per_pixel();
    let [r, g, b] = format.rgb_offsets();
    let mut rng = Lcg(7);
    let mut data = vec![255u8; width * height * bpp];
    for (y, row) in data.chunks_exact_mut(width * bpp).enumerate() {
        for (x, px) in row.chunks_exact_mut(bpp).enumerate() {
            let noise = (rng.next() % 24) as usize;
            let block = if (x / 97 + y / 61) % 2 == 0 { 60 } else { 0 };
            px[r] = ((x * 255 / width + noise) % 256) as u8;
            px[g] = ((y * 255 / height + block) % 256) as u8;
            px[b] = (((x + y) / 8 + noise * 2) % 256) as u8;
        }
    }
    data
}

/// Packed RGB converted to 4:2:0 planes (chroma averaged over each 2x2 block), rows packed.
pub fn yuv_planes(
    format: YuvFormat,
    cm: Colorimetry,
    width: usize,
    height: usize,
    rgb: &[u8],
) -> [Vec<u8>; 3] {
    let yuv: Vec<[u8; 3]> = rgb
        .chunks_exact(3)
        .map(|p| cm.from_rgb([p[0], p[1], p[2]]))
        .collect();
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let luma = yuv.iter().map(|p| p[0]).collect();
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut su, mut sv, mut n) = (0u32, 0u32, 0u32);
            for y in 2 * cy..(2 * cy + 2).min(height) {
                for x in 2 * cx..(2 * cx + 2).min(width) {
                    su += yuv[y * width + x][1] as u32;
                    sv += yuv[y * width + x][2] as u32;
                    n += 1;
                }
            }
            u[cy * cw + cx] = ((su + n / 2) / n) as u8;
            v[cy * cw + cx] = ((sv + n / 2) / n) as u8;
        }
    }
    match format {
        YuvFormat::I420 => [luma, u, v],
        YuvFormat::Nv12 => [
            luma,
            u.iter().zip(&v).flat_map(|(&u, &v)| [u, v]).collect(),
            Vec::new(),
        ],
    }
}

/// Row strides of the planes [`yuv_planes`] makes.
pub fn yuv_strides(format: YuvFormat, width: usize) -> [usize; 3] {
    let cw = width.div_ceil(2);
    match format {
        YuvFormat::I420 => [width, cw, cw],
        YuvFormat::Nv12 => [width, 2 * cw, 0],
    }
}

/// Segmentation-like logits: `active` classes own Voronoi-ish regions around random seeds with
/// smoothly falling scores; class 1 equals class 0 exactly (ties); the rest sit far below.
pub fn test_logits(classes: usize, width: usize, height: usize, active: usize) -> Logits {
    let mut rng = Lcg(11);
    let seeds: Vec<(f32, f32, usize)> = (0..active * 2)
        .map(|i| {
            (
                rng.unit() * width as f32,
                rng.unit() * height as f32,
                i % active,
            )
        })
        .collect();
    let n = width * height;
    let mut data = vec![0f32; classes * n];
    for (c, plane) in data.chunks_exact_mut(n).enumerate() {
        for (i, v) in plane.iter_mut().enumerate() {
            let (x, y) = ((i % width) as f32, (i / width) as f32);
            let jitter = rng.unit() * 0.5;
            *v = if c < active {
                let d = seeds
                    .iter()
                    .filter(|s| s.2 == c)
                    .map(|s| (s.0 - x).hypot(s.1 - y))
                    .fold(f32::INFINITY, f32::min);
                8.0 - d * 0.25 + jitter
            } else {
                -12.0 + jitter
            };
        }
    }
    // Exact ties: class 1 copies class 0.
    if classes > 1 && active > 1 {
        let (a, b) = data.split_at_mut(n);
        b[..n].copy_from_slice(a);
    }
    Logits {
        classes,
        width,
        height,
        data,
    }
}

/// A class map as the decoder produces it for the test logits.
fn test_classes() -> ClassMap {
    let mut classes = ClassMap::default();
    Decoder::new().decode(
        &test_logits(CLASSES, LOGITS, LOGITS, 24),
        WIDTH,
        HEIGHT,
        None,
        &mut classes,
    );
    classes
}

/// Draws every class but the first (as with `draw-background=false`-like settings, some pixels
/// stay untouched).
fn test_paint() -> Paint {
    let palette = ade20k_palette();
    let draw: Vec<bool> = (0..palette.len()).map(|c| c != 0).collect();
    Paint::new(&palette, &draw)
}

struct Stage {
    name: &'static str,
    goal_ms: f64,
    runs: usize,
    reference_runs: usize,
    fast: Box<dyn FnMut()>,
    reference: Box<dyn FnMut()>,
}

/// Builds a stage's inputs and closures.
type MakeStage = fn() -> Stage;

fn stages() -> Vec<(&'static str, MakeStage)> {
    vec![
        ("decode_1080p", decode_stage),
        ("preprocess_1080p", preprocess_stage),
        ("overlay_1080p", overlay_stage),
        ("mask_1080p", mask_stage),
        ("preprocess_f16_1080p", preprocess_f16_stage),
        ("preprocess_i420_1080p", || {
            yuv_preprocess_stage(YuvFormat::I420)
        }),
        ("preprocess_nv12_1080p", || {
            yuv_preprocess_stage(YuvFormat::Nv12)
        }),
        ("overlay_i420_1080p", || yuv_overlay_stage(YuvFormat::I420)),
        ("overlay_nv12_1080p", || yuv_overlay_stage(YuvFormat::Nv12)),
    ]
}

/// The colorimetry GStreamer assumes for 1080p.
const HD: Colorimetry = Colorimetry {
    matrix: Matrix::Bt709,
    full_range: false,
};

fn view(p: &[Vec<u8>; 3]) -> [&[u8]; 3] {
    [&p[0], &p[1], &p[2]]
}

/// The 1080p test picture as YUV planes.
fn test_yuv(format: YuvFormat) -> [Vec<u8>; 3] {
    let rgb = test_picture(PixelFormat::Rgb, WIDTH, HEIGHT);
    yuv_planes(format, HD, WIDTH, HEIGHT, &rgb)
}

fn yuv_preprocess_stage(format: YuvFormat) -> Stage {
    let planes = std::rc::Rc::new(test_yuv(format));
    let p2 = planes.clone();
    let strides = yuv_strides(format, WIDTH);
    let prep = beit_preprocessing(Resample::Bilinear);
    let mut fast = Preprocessor::with(MODEL, MODEL, Layout::Nchw, &prep);
    let mut reference = Preprocessor::with(MODEL, MODEL, Layout::Nchw, &prep);
    let mut out = vec![0f32; fast.image_len()];
    let mut out2 = out.clone();
    Stage {
        name: match format {
            YuvFormat::I420 => "preprocess_i420_1080p",
            YuvFormat::Nv12 => "preprocess_nv12_1080p",
        },
        goal_ms: 4.0,
        runs: 21,
        reference_runs: 3,
        fast: Box::new(move || {
            let frame = YuvFrame::new(format, HD, (WIDTH, HEIGHT), view(&planes), strides)
                .expect("valid test frame");
            let _ = fast.run_yuv(&frame, &mut out);
        }),
        reference: Box::new(move || {
            let frame = YuvFrame::new(format, HD, (WIDTH, HEIGHT), view(&p2), strides)
                .expect("valid test frame");
            let _ = reference.run_yuv_reference(&frame, &mut out2);
        }),
    }
}

fn yuv_overlay_stage(format: YuvFormat) -> Stage {
    let classes = std::rc::Rc::new(test_classes());
    let c2 = classes.clone();
    let paint = std::rc::Rc::new(test_paint());
    let p2 = paint.clone();
    let mut planes = test_yuv(format);
    let mut planes2 = planes.clone();
    let strides = yuv_strides(format, WIDTH);
    Stage {
        name: match format {
            YuvFormat::I420 => "overlay_i420_1080p",
            YuvFormat::Nv12 => "overlay_nv12_1080p",
        },
        goal_ms: 3.0,
        runs: 21,
        reference_runs: 5,
        fast: Box::new(move || {
            let [a, b, c] = &mut planes;
            let mut frame = YuvFrame::new(format, HD, (WIDTH, HEIGHT), [&mut a[..], b, c], strides)
                .expect("valid test frame");
            render::overlay_yuv(&mut frame, &classes, &paint, 0.5);
        }),
        reference: Box::new(move || {
            let [a, b, c] = &mut planes2;
            let mut frame = YuvFrame::new(format, HD, (WIDTH, HEIGHT), [&mut a[..], b, c], strides)
                .expect("valid test frame");
            render::overlay_yuv_reference(&mut frame, &c2, &p2, 0.5);
        }),
    }
}

fn decode_stage() -> Stage {
    let logits = std::rc::Rc::new(test_logits(CLASSES, LOGITS, LOGITS, 24));
    let l2 = logits.clone();
    let mut dec = Decoder::new();
    let mut out = ClassMap::default();
    let mut out2 = ClassMap::default();
    Stage {
        name: "decode_1080p",
        goal_ms: 10.0,
        runs: 21,
        reference_runs: 3,
        fast: Box::new(move || dec.decode(&logits, WIDTH, HEIGHT, None, &mut out)),
        reference: Box::new(move || decode_reference(&l2, WIDTH, HEIGHT, &mut out2)),
    }
}

fn beit_preprocessing(resample: Resample) -> Preprocessing {
    Preprocessing {
        mean: [0.5; 3],
        std: [0.5; 3],
        rescale: 1.0 / 255.0,
        resample,
        resize: ResizeMode::Stretch,
        channel_order: Default::default(),
    }
}

fn preprocess_stage() -> Stage {
    preprocess_rgbx_stage(false)
}

/// Preprocessing for an fp16 model (`export_beit.py --fp16`): the f32 planes, then converted to
/// f16 as Model::run does (vectorised); the reference converts one value at a time.
fn preprocess_f16_stage() -> Stage {
    preprocess_rgbx_stage(true)
}

/// 1080p RGBx → 640x640 NCHW, f32 or (`f16`) then converted to f16.
fn preprocess_rgbx_stage(f16: bool) -> Stage {
    let format = PixelFormat::Rgbx;
    let pixels = std::rc::Rc::new(test_picture(format, WIDTH, HEIGHT));
    let p2 = pixels.clone();
    let prep = beit_preprocessing(Resample::Bilinear);
    let mut fast = Preprocessor::with(MODEL, MODEL, Layout::Nchw, &prep);
    let mut reference = Preprocessor::with(MODEL, MODEL, Layout::Nchw, &prep);
    let mut out = vec![0f32; fast.image_len()];
    let mut out2 = out.clone();
    let mut halves = vec![half::f16::ZERO; if f16 { out.len() } else { 0 }];
    let mut halves2 = halves.clone();
    Stage {
        name: if f16 {
            "preprocess_f16_1080p"
        } else {
            "preprocess_1080p"
        },
        goal_ms: 4.0,
        runs: 21,
        reference_runs: 5,
        fast: Box::new(move || {
            let frame = FrameRef::new(format, WIDTH, HEIGHT, WIDTH * 4, &pixels[..])
                .expect("valid test frame");
            // The frame is valid, so preprocessing cannot fail.
            let _ = fast.run(&frame, &mut out);
            if f16 {
                half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut halves[..], &out);
            }
        }),
        reference: Box::new(move || {
            let frame =
                FrameRef::new(format, WIDTH, HEIGHT, WIDTH * 4, &p2[..]).expect("valid test frame");
            let _ = reference.run_reference(&frame, &mut out2);
            for (h, v) in halves2.iter_mut().zip(&out2) {
                *h = half::f16::from_f32(*v);
            }
        }),
    }
}

fn overlay_stage() -> Stage {
    let format = PixelFormat::Rgbx;
    let classes = std::rc::Rc::new(test_classes());
    let c2 = classes.clone();
    let paint = std::rc::Rc::new(test_paint());
    let p2 = paint.clone();
    let mut pixels = test_picture(format, WIDTH, HEIGHT);
    let mut p2x = pixels.clone();
    Stage {
        name: "overlay_1080p",
        goal_ms: 3.0,
        runs: 21,
        reference_runs: 5,
        fast: Box::new(move || {
            let mut frame = FrameMut::new(format, WIDTH, HEIGHT, WIDTH * 4, &mut pixels[..])
                .expect("valid test frame");
            render::overlay(&mut frame, &classes, &paint, 0.5);
        }),
        reference: Box::new(move || {
            let mut frame = FrameMut::new(format, WIDTH, HEIGHT, WIDTH * 4, &mut p2x[..])
                .expect("valid test frame");
            render::overlay_reference(&mut frame, &c2, &p2, 0.5);
        }),
    }
}

fn mask_stage() -> Stage {
    let classes = std::rc::Rc::new(test_classes());
    let c2 = classes.clone();
    // A GStreamer GRAY8 plane at 1920 wide has no padding; the mask keeps the frame's stride.
    let mut plane = vec![0u8; WIDTH * HEIGHT];
    let mut plane2 = plane.clone();
    Stage {
        name: "mask_1080p",
        goal_ms: 1.5,
        runs: 51,
        reference_runs: 11,
        fast: Box::new(move || render::mask(&mut plane, WIDTH, &classes)),
        reference: Box::new(move || render::mask_reference(&mut plane2, WIDTH, &c2)),
    }
}

/// Runs the kernel benchmarks whose name contains `filter` (all without one) on the calling
/// thread, printing one line per stage as it goes: JSON objects with `json`, a table otherwise.
pub fn kernels(json: bool, filter: Option<&str>) -> Result<Vec<KernelResult>> {
    let selected: Vec<_> = stages()
        .into_iter()
        .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
        .collect();
    if selected.is_empty() {
        let names: Vec<_> = stages().iter().map(|s| s.0).collect();
        bail!("no kernel stage matches; stages: {}", names.join(", "));
    }
    if !json {
        println!(
            "{:<24} {:>10} {:>14} {:>9} {:>9}  met",
            "stage", "ms", "reference ms", "ratio", "goal ms"
        );
    }
    let mut results = Vec::new();
    for (_, make) in selected {
        let mut stage = make();
        let ms = median_ms(stage.runs, &mut stage.fast);
        let reference_ms = median_ms(stage.reference_runs, &mut stage.reference);
        let r = KernelResult {
            stage: stage.name,
            ms,
            reference_ms,
            ratio: reference_ms / ms,
            goal_ms: stage.goal_ms,
        };
        if json {
            println!("{}", r.json());
        } else {
            println!(
                "{:<24} {:>10.3} {:>14.3} {:>9.1} {:>9.1}  {}",
                r.stage,
                r.ms,
                r.reference_ms,
                r.ratio,
                r.goal_ms,
                if r.met() { "yes" } else { "no" }
            );
        }
        results.push(r);
    }
    Ok(results)
}
