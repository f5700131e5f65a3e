// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Logits → class map, exactly as transformers' `post_process_semantic_segmentation` computes it:
//! `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)` to the frame size, then
//! `argmax` over classes (first index wins ties; NaN counts as the maximum, as in torch).
//!
//! Interpolating all C channels at every output pixel is what makes the reference slow. Bilinear
//! interpolation is a convex combination, and float rounding is monotone, so where the four
//! surrounding low-resolution cells share their argmax k with a margin larger than the rounding
//! error, k wins at every pixel between them. Only the remaining pixels are interpolated, and only
//! for the classes that can still win there (the upper bound of a class over the four cells reaches
//! the best lower bound). Arithmetic follows PyTorch's CPU kernel bit for bit: weights in float32,
//! rows blended with fused multiply-adds as its AVX2/AVX-512 build does.
//!
//! At 1080p with 150 classes the work is one streaming pass over the logits (per-cell argmax and
//! runner-up, vectorised with AVX2 where the CPU has it), then per output row one decision per
//! pair of logit columns: a run of pixels filled with one class, or blended over the few
//! candidate classes of that quad (hardware FMA where available; the result is the same
//! correctly rounded value either way).

use crate::frame::ClassMap;
use crate::model::Logits;

/// The part of the logits that maps onto the frame, in logit cells (letterbox crops the padding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
}

/// Source indices and weights along one axis.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Axis {
    pub(crate) i0: Vec<u32>,
    pub(crate) i1: Vec<u32>,
    pub(crate) l0: Vec<f32>,
    pub(crate) l1: Vec<f32>,
}

impl Axis {
    fn push(&mut self, src: f32, input: usize) {
        let src = if src < 0.0 { 0.0 } else { src };
        let i0 = (src.floor() as usize).min(input - 1);
        let l1 = (src - i0 as f32).clamp(0.0, 1.0);
        self.i0.push(i0 as u32);
        self.i1
            .push(if i0 < input - 1 { i0 + 1 } else { i0 } as u32);
        self.l0.push(1.0 - l1);
        self.l1.push(l1);
    }

    /// PyTorch's `area_pixel_compute_source_index` + `guard_index_and_lambda`, in float32.
    pub(crate) fn torch(input: usize, output: usize) -> Self {
        let mut a = Self::default();
        if input == output {
            // PyTorch copies straight through when the size does not change.
            a.i0 = (0..output as u32).collect();
            a.i1 = a.i0.clone();
            a.l0 = vec![1.0; output];
            a.l1 = vec![0.0; output];
            return a;
        }
        let scale = input as f32 / output as f32;
        for d in 0..output {
            a.push(scale * (d as f32 + 0.5) - 0.5, input);
        }
        a
    }

    /// The same sampling over a sub-range `[start, end)` of the input.
    fn window(input: usize, output: usize, start: f64, end: f64) -> Self {
        let mut a = Self::default();
        let scale = (end - start) / output as f64;
        for d in 0..output {
            a.push((start + scale * (d as f64 + 0.5) - 0.5) as f32, input);
        }
        a
    }
}

/// Logit size, frame size and window that cached axes were computed for.
type AxesKey = (usize, usize, usize, usize, Option<[u64; 4]>);

/// A low-resolution cell whose argmax is not certain to survive interpolation.
const UNSURE: u16 = u16::MAX;

/// What is known of the pixels between four neighbouring cells, for the current pair of logit
/// rows.
#[derive(Clone, Copy, Debug)]
enum Quad {
    /// Every pixel takes this class.
    Sure(u8),
    /// Not looked at yet.
    Unknown,
    /// The classes that can win are `classes[start..start + len]`, their corner values beside.
    Mixed { start: usize, len: usize },
}

/// Output columns `start..end` that share their pair of logit columns.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: usize,
    end: usize,
}

/// Reusable decoding state (per-cell argmax, candidate lists, cached axes).
#[derive(Default)]
pub struct Decoder {
    best: Vec<f32>,
    second: Vec<f32>,
    arg: Vec<u32>,
    finite: Vec<bool>,
    nan: Vec<u32>,
    magnitude: Vec<f32>,
    /// Per cell: its argmax when that wins with a margin beyond rounding, else [`UNSURE`].
    sure: Vec<u16>,
    runs: Vec<Run>,
    quads: Vec<Quad>,
    classes: Vec<u16>,
    corners: Vec<[f32; 4]>,
    axes: Option<(AxesKey, Axis, Axis)>,
}

/// One bilinear sample from corners `[x00, x01, x10, x11]` with weights `(l0, l1)` per axis.
#[inline(always)]
pub(crate) fn blend(
    [x00, x01, x10, x11]: [f32; 4],
    (lx0, lx1): (f32, f32),
    (ly0, ly1): (f32, f32),
) -> f32 {
    let a = x00.mul_add(lx0, x01 * lx1);
    let b = x10.mul_add(lx0, x11 * lx1);
    a.mul_add(ly0, b * ly1)
}

/// Argmax over candidate `classes` (ascending, with their corner values) of the bilinear sample
/// at each pixel of a run: the first class wins ties, NaN beats everything, as in torch.
#[inline(always)]
fn blend_run(
    classes: &[u16],
    corners: &[[f32; 4]],
    (l0, l1): (&[f32], &[f32]),
    ly: (f32, f32),
    dst: &mut [u8],
) {
    for ((d, &lx0), &lx1) in dst.iter_mut().zip(l0).zip(l1) {
        let mut best = f32::NEG_INFINITY;
        let mut best_class = 0u16;
        for (i, (&c, &v4)) in classes.iter().zip(corners).enumerate() {
            let v = blend(v4, (lx0, lx1), ly);
            if i == 0 || v > best || (v.is_nan() && !best.is_nan()) {
                best = v;
                best_class = c;
            }
        }
        *d = best_class as u8;
    }
}

/// [`blend_run`] compiled with hardware fused multiply-add (the same correctly rounded result
/// as the software fallback, many times faster).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
fn blend_run_fma(
    classes: &[u16],
    corners: &[[f32; 4]],
    lx: (&[f32], &[f32]),
    ly: (f32, f32),
    dst: &mut [u8],
) {
    blend_run(classes, corners, lx, ly, dst)
}

/// Folds class `c`'s plane into the per-cell argmax, runner-up, largest magnitude and NaN flag.
/// Compare-and-select only, so that it vectorises; NaN never becomes best or runner-up (it is
/// flagged, and such cells are decoded over every class).
#[inline(always)]
fn absorb(
    c: u32,
    plane: &[f32],
    best: &mut [f32],
    second: &mut [f32],
    arg: &mut [u32],
    magnitude: &mut [f32],
    nan: &mut [u32],
) {
    let n = plane.len();
    let (best, second, arg) = (&mut best[..n], &mut second[..n], &mut arg[..n]);
    let (magnitude, nan) = (&mut magnitude[..n], &mut nan[..n]);
    for i in 0..n {
        let (v, b, s, m) = (plane[i], best[i], second[i], magnitude[i]);
        let above = v > b;
        let runner = if v > s { v } else { s };
        second[i] = if above { b } else { runner };
        best[i] = if above { v } else { b };
        arg[i] = if above { c } else { arg[i] };
        let abs = v.abs();
        magnitude[i] = if abs > m { abs } else { m };
        nan[i] |= v.is_nan() as u32;
    }
}

/// The signature of [`absorb`] and its builds.
type Absorb = fn(u32, &[f32], &mut [f32], &mut [f32], &mut [u32], &mut [f32], &mut [u32]);

/// [`absorb`] compiled for AVX2, which vectorises its selects eight lanes wide (SSE2 has no
/// blend instruction, and LLVM leaves the loop scalar there).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn absorb_avx2(
    c: u32,
    plane: &[f32],
    best: &mut [f32],
    second: &mut [f32],
    arg: &mut [u32],
    magnitude: &mut [f32],
    nan: &mut [u32],
) {
    absorb(c, plane, best, second, arg, magnitude, nan)
}

/// Picks the hardware FMA build of [`blend_run`] where the CPU has it.
fn blend_run_best(
    classes: &[u16],
    corners: &[[f32; 4]],
    lx: (&[f32], &[f32]),
    ly: (f32, f32),
    dst: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports FMA, checked just above.
        return unsafe { blend_run_fma(classes, corners, lx, ly, dst) };
    }
    blend_run(classes, corners, lx, ly, dst)
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the axes for this geometry out of the cache, computing them when the geometry
    /// changed; `decode` puts them back.
    fn take_axes(
        &mut self,
        logits: &Logits,
        width: usize,
        height: usize,
        window: Option<Window>,
    ) -> (AxesKey, Axis, Axis) {
        let bits = window.map(|w| [w.x0, w.x1, w.y0, w.y1].map(f64::to_bits));
        let key = (logits.width, logits.height, width, height, bits);
        match (self.axes.take(), window) {
            (Some(cached), _) if cached.0 == key => cached,
            (_, None) => (
                key,
                Axis::torch(logits.width, width),
                Axis::torch(logits.height, height),
            ),
            (_, Some(w)) => (
                key,
                Axis::window(logits.width, width, w.x0, w.x1),
                Axis::window(logits.height, height, w.y0, w.y1),
            ),
        }
    }

    /// Per low-resolution cell: argmax, runner-up, finiteness, largest finite magnitude, in one
    /// streaming pass over the class planes. Fills `sure` and returns the rounding tolerance.
    fn cells(&mut self, logits: &Logits) -> f32 {
        let n = logits.width * logits.height;
        let mut planes = logits.data.chunks_exact(n).take(logits.classes);
        let first = planes.next().unwrap_or_default();
        self.best.clear();
        self.best.extend_from_slice(first);
        self.second.clear();
        self.second.resize(n, f32::NEG_INFINITY);
        self.arg.clear();
        self.arg.resize(n, 0);
        self.nan.clear();
        self.nan.extend(first.iter().map(|v| v.is_nan() as u32));
        self.magnitude.clear();
        self.magnitude.extend(first.iter().map(|v| v.abs()));
        #[cfg(target_arch = "x86_64")]
        let fold: Absorb = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            |c, p, b, s, a, m, f| unsafe { absorb_avx2(c, p, b, s, a, m, f) }
        } else {
            absorb
        };
        #[cfg(not(target_arch = "x86_64"))]
        let fold: Absorb = absorb;
        for (c, plane) in planes.enumerate() {
            fold(
                c as u32 + 1,
                plane,
                &mut self.best,
                &mut self.second,
                &mut self.arg,
                &mut self.magnitude,
                &mut self.nan,
            );
        }
        // A cell is finite when no value in it is NaN and its largest magnitude is finite.
        let finite = |i: usize| self.nan[i] == 0 && self.magnitude[i] < f32::INFINITY;
        let largest = (0..n)
            .filter(|&i| finite(i))
            .fold(0f32, |m, i| m.max(self.magnitude[i]));
        // Largest rounding error of one interpolated value, with room to spare.
        let tol = 32.0 * f32::EPSILON * largest + f32::MIN_POSITIVE;
        self.finite.clear();
        self.finite.extend((0..n).map(finite));
        self.sure.clear();
        self.sure.extend((0..n).map(|i| {
            if self.finite[i] && self.best[i] - self.second[i] > tol {
                self.arg[i] as u16
            } else {
                UNSURE
            }
        }));
        tol
    }

    /// Decodes `logits` into `out` (resized to `width` x `height`). `window` selects the part of
    /// the logits the frame covers; `None` is the whole of it, computed exactly as PyTorch does.
    pub fn decode(
        &mut self,
        logits: &Logits,
        width: usize,
        height: usize,
        window: Option<Window>,
        out: &mut ClassMap,
    ) {
        out.resize(width, height);
        let (lw, lh) = (logits.width, logits.height);
        if width == 0 || height == 0 || lw * lh == 0 || logits.data.len() < lw * lh {
            out.data.fill(0);
            return;
        }
        let (key, ax, ay) = self.take_axes(logits, width, height, window);
        let tol = self.cells(logits);

        // Output columns grouped by their pair of logit columns (the axis is monotone).
        self.runs.clear();
        for x in 0..width {
            match self.runs.last_mut() {
                Some(run) if ax.i0[run.start] == ax.i0[x] => run.end = x + 1,
                _ => self.runs.push(Run {
                    start: x,
                    end: x + 1,
                }),
            }
        }

        let mut current_row = u32::MAX;
        for (y, row) in out.data.chunks_exact_mut(width).enumerate() {
            let (y0, y1) = (ay.i0[y] as usize, ay.i1[y] as usize);
            if ay.i0[y] != current_row {
                current_row = ay.i0[y];
                self.classes.clear();
                self.corners.clear();
                let sure = &self.sure;
                self.quads.clear();
                self.quads.extend(self.runs.iter().map(|run| {
                    let (x0, x1) = (ax.i0[run.start] as usize, ax.i1[run.start] as usize);
                    let k = sure[y0 * lw + x0];
                    let same = [y0 * lw + x1, y1 * lw + x0, y1 * lw + x1]
                        .iter()
                        .all(|&i| sure[i] == k);
                    if k != UNSURE && same {
                        Quad::Sure(k as u8)
                    } else {
                        Quad::Unknown
                    }
                }));
            }
            let ly = (ay.l0[y], ay.l1[y]);
            for (run, quad) in self.runs.iter().zip(&mut self.quads) {
                let dst = &mut row[run.start..run.end];
                let (start, len) = match *quad {
                    Quad::Sure(k) => {
                        dst.fill(k);
                        continue;
                    }
                    Quad::Mixed { start, len } => (start, len),
                    Quad::Unknown => {
                        let (x0, x1) = (ax.i0[run.start] as usize, ax.i1[run.start] as usize);
                        let corners = [y0 * lw + x0, y0 * lw + x1, y1 * lw + x0, y1 * lw + x1];
                        let start = self.classes.len();
                        let finite = corners.iter().all(|&i| self.finite[i]);
                        quad_candidates(
                            logits,
                            corners,
                            finite,
                            tol,
                            &mut self.classes,
                            &mut self.corners,
                        );
                        let len = self.classes.len() - start;
                        *quad = Quad::Mixed { start, len };
                        (start, len)
                    }
                };
                blend_run_best(
                    &self.classes[start..start + len],
                    &self.corners[start..start + len],
                    (&ax.l0[run.start..run.end], &ax.l1[run.start..run.end]),
                    ly,
                    dst,
                );
            }
        }
        self.axes = Some((key, ax, ay));
    }
}

/// Classes that can win somewhere between four cells, in ascending order, with their corner
/// values: every class whose largest corner value reaches the largest per-class smallest corner
/// value (less the rounding tolerance). With a non-finite value about, every class.
fn quad_candidates(
    logits: &Logits,
    corners: [usize; 4],
    finite: bool,
    tol: f32,
    classes: &mut Vec<u16>,
    values: &mut Vec<[f32; 4]>,
) {
    let n = logits.width * logits.height;
    let planes = logits.data.chunks_exact(n).take(logits.classes);
    let at = |p: &[f32]| corners.map(|i| p[i]);
    let floor = if finite {
        planes
            .clone()
            .map(|p| at(p).into_iter().fold(f32::INFINITY, f32::min))
            .fold(f32::NEG_INFINITY, f32::max)
            - tol
    } else {
        f32::NEG_INFINITY
    };
    for (c, p) in planes.enumerate() {
        let v = at(p);
        if !finite || v.into_iter().fold(f32::NEG_INFINITY, f32::max) >= floor {
            classes.push(c as u16);
            values.push(v);
        }
    }
}

#[cfg(any(test, feature = "bench"))]
/// The plain reference: interpolate every class at every pixel, then argmax. Used by tests and
/// benchmarks to check the fast path.
pub fn decode_reference(logits: &Logits, width: usize, height: usize, out: &mut ClassMap) {
    out.resize(width, height);
    let (ax, ay) = (
        Axis::torch(logits.width, width),
        Axis::torch(logits.height, height),
    );
    let lw = logits.width;
    let n = lw * logits.height;
    for y in 0..height {
        for x in 0..width {
            let (y0, y1, x0, x1) = (
                ay.i0[y] as usize,
                ay.i1[y] as usize,
                ax.i0[x] as usize,
                ax.i1[x] as usize,
            );
            let mut best = f32::NEG_INFINITY;
            let mut arg = 0;
            for c in 0..logits.classes {
                let p = &logits.data[c * n..(c + 1) * n];
                let corners = [
                    p[y0 * lw + x0],
                    p[y0 * lw + x1],
                    p[y1 * lw + x0],
                    p[y1 * lw + x1],
                ];
                let v = blend(corners, (ax.l0[x], ax.l1[x]), (ay.l0[y], ay.l1[y]));
                if c == 0 || v > best || (v.is_nan() && !best.is_nan()) {
                    best = v;
                    arg = c;
                }
            }
            out.data[y * width + x] = arg as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so tests need no extra crate.
    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
            })
            .collect()
    }

    fn logits(classes: usize, w: usize, h: usize, data: Vec<f32>) -> Logits {
        Logits {
            classes,
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn torch_axis_matches_hand_computed_weights() {
        // 4 → 8: src = 0.5 * (d + 0.5) - 0.5 → -0.25 (clamped to 0), 0.25, 0.75, 1.25 …
        let a = Axis::torch(4, 8);
        assert_eq!(a.i0, vec![0, 0, 0, 1, 1, 2, 2, 3]);
        assert_eq!(a.i1, vec![1, 1, 1, 2, 2, 3, 3, 3]);
        assert_eq!(a.l1, vec![0.0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25]);
        let same = Axis::torch(5, 5);
        assert_eq!(same.i0, same.i1);
        assert!(same.l1.iter().all(|l| *l == 0.0));
    }

    #[test]
    fn fast_path_equals_reference_on_random_logits() {
        let mut dec = Decoder::new();
        for (seed, (c, w, h, ow, oh)) in [
            (5, 7, 6, 31, 17),
            (40, 16, 16, 64, 64),
            (3, 9, 4, 9, 4),
            (150, 20, 12, 97, 33),
        ]
        .into_iter()
        .enumerate()
        {
            let l = logits(c, w, h, noise(seed as u64, c * w * h));
            let (mut fast, mut slow) = (ClassMap::default(), ClassMap::default());
            dec.decode(&l, ow, oh, None, &mut fast);
            decode_reference(&l, ow, oh, &mut slow);
            assert_eq!(fast, slow, "case {seed}");
        }
    }

    #[test]
    fn ties_and_near_ties_follow_torch() {
        // Two classes equal everywhere: the first index wins.
        let mut data = vec![1.0f32; 2 * 4 * 4];
        // Class 2 ties class 0 only after rounding: one ulp apart at alternating cells.
        data.extend((0..16).map(|i| {
            if i % 2 == 0 {
                1.0
            } else {
                f32::from_bits(1.0f32.to_bits() + 1)
            }
        }));
        let l = logits(3, 4, 4, data);
        let (mut fast, mut slow) = (ClassMap::default(), ClassMap::default());
        Decoder::new().decode(&l, 13, 11, None, &mut fast);
        decode_reference(&l, 13, 11, &mut slow);
        assert_eq!(fast, slow);
        assert!(fast.data.contains(&0) && fast.data.contains(&2));
    }

    #[test]
    fn nan_counts_as_maximum() {
        let mut data = noise(9, 4 * 5 * 5);
        data[2 * 25 + 12] = f32::NAN; // class 2, centre cell
        let l = logits(4, 5, 5, data);
        let (mut fast, mut slow) = (ClassMap::default(), ClassMap::default());
        Decoder::new().decode(&l, 20, 20, None, &mut fast);
        decode_reference(&l, 20, 20, &mut slow);
        assert_eq!(fast, slow);
        assert!(fast.data.iter().filter(|&&k| k == 2).count() >= 4);
    }

    #[test]
    fn infinities_and_scattered_nans_follow_torch() {
        let (c, w, h) = (6, 9, 7);
        let mut data = noise(21, c * w * h);
        for (i, v) in [
            (3, f32::INFINITY),
            (70, f32::NEG_INFINITY),
            (130, f32::NAN),
            (131, f32::INFINITY),
            (200, f32::NAN),
            (250, f32::NEG_INFINITY),
        ] {
            data[i] = v;
        }
        let l = logits(c, w, h, data);
        let (mut fast, mut slow) = (ClassMap::default(), ClassMap::default());
        Decoder::new().decode(&l, 40, 23, None, &mut fast);
        decode_reference(&l, 40, 23, &mut slow);
        assert_eq!(fast, slow);
    }

    #[test]
    fn fast_path_equals_reference_on_segmentation_like_logits() {
        // Regions with smooth boundaries, exact ties (class 1 copies class 0), 150 classes.
        let l = crate::bench::test_logits(150, 40, 30, 12);
        let mut dec = Decoder::new();
        for (ow, oh) in [(480, 270), (333, 199), (40, 30)] {
            let (mut fast, mut slow) = (ClassMap::default(), ClassMap::default());
            dec.decode(&l, ow, oh, None, &mut fast);
            decode_reference(&l, ow, oh, &mut slow);
            assert_eq!(fast, slow, "{ow}x{oh}");
        }
    }

    #[test]
    fn empty_logits_decode_to_class_zero() {
        let mut out = ClassMap::default();
        Decoder::new().decode(&logits(0, 0, 0, Vec::new()), 4, 3, None, &mut out);
        assert_eq!(out.data, vec![0; 12]);
    }

    #[test]
    fn window_selects_part_of_the_logits() {
        // Left half class 0, right half class 1; a window over the right half is all class 1.
        let (w, h) = (8, 4);
        let mut data = vec![0f32; 2 * w * h];
        for y in 0..h {
            for x in 0..w {
                data[y * w + x] = if x < 4 { 1.0 } else { 0.0 };
                data[w * h + y * w + x] = if x < 4 { 0.0 } else { 1.0 };
            }
        }
        let l = logits(2, w, h, data);
        let mut out = ClassMap::default();
        let win = Window {
            x0: 5.0,
            x1: 8.0,
            y0: 0.0,
            y1: 4.0,
        };
        Decoder::new().decode(&l, 12, 8, Some(win), &mut out);
        assert!(out.data.iter().all(|&k| k == 1));
    }
}
