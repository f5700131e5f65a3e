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
struct Axis {
    i0: Vec<u32>,
    i1: Vec<u32>,
    l0: Vec<f32>,
    l1: Vec<f32>,
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
    fn torch(input: usize, output: usize) -> Self {
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

/// Reusable decoding state (per-cell argmax, candidate lists, cached axes).
#[derive(Default)]
pub struct Decoder {
    best: Vec<f32>,
    second: Vec<f32>,
    arg: Vec<u16>,
    finite: Vec<bool>,
    robust: Vec<bool>,
    quad: Vec<(u32, u32)>,
    candidates: Vec<u16>,
    axes: Option<(AxesKey, Axis, Axis)>,
}

const NO_QUAD: (u32, u32) = (u32::MAX, 0);

/// One bilinear sample from corners `[x00, x01, x10, x11]` with weights `(l0, l1)` per axis.
#[inline]
fn blend([x00, x01, x10, x11]: [f32; 4], (lx0, lx1): (f32, f32), (ly0, ly1): (f32, f32)) -> f32 {
    let a = x00.mul_add(lx0, x01 * lx1);
    let b = x10.mul_add(lx0, x11 * lx1);
    a.mul_add(ly0, b * ly1)
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

    /// Per low-resolution cell: argmax, runner-up, finiteness; returns the largest finite
    /// magnitude.
    fn cells(&mut self, logits: &Logits) -> f32 {
        let n = logits.width * logits.height;
        let planes = || logits.data.chunks_exact(n);
        self.best.clear();
        self.best.extend_from_slice(&logits.data[..n]);
        self.second.clear();
        self.second.resize(n, f32::NEG_INFINITY);
        self.arg.clear();
        self.arg.resize(n, 0);
        self.finite.clear();
        self.finite.extend(self.best.iter().map(|v| v.is_finite()));
        for (c, plane) in planes().enumerate().skip(1) {
            let cells = self
                .best
                .iter_mut()
                .zip(&mut self.second)
                .zip(&mut self.arg)
                .zip(&mut self.finite);
            for (&v, (((best, second), arg), finite)) in plane.iter().zip(cells) {
                if v > *best {
                    *second = *best;
                    *best = v;
                    *arg = c as u16;
                } else if v > *second {
                    *second = v;
                }
                *finite &= v.is_finite();
            }
        }
        planes()
            .flatten()
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()))
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
        let (key, ax, ay) = self.take_axes(logits, width, height, window);
        let (lw, lh) = (logits.width, logits.height);
        let n = lw * lh;
        let magnitude = self.cells(logits);
        // Largest rounding error of one interpolated value, with room to spare.
        let tol = 32.0 * f32::EPSILON * magnitude + f32::MIN_POSITIVE;
        self.robust.clear();
        self.robust
            .extend((0..n).map(|i| self.finite[i] && self.best[i] - self.second[i] > tol));

        let mut current_row = u32::MAX;
        self.quad.clear();
        self.quad.resize(lw, NO_QUAD);
        for y in 0..height {
            let (y0, y1) = (ay.i0[y] as usize, ay.i1[y] as usize);
            let ly = (ay.l0[y], ay.l1[y]);
            if ay.i0[y] != current_row {
                current_row = ay.i0[y];
                self.quad.fill(NO_QUAD);
                self.candidates.clear();
            }
            let row = &mut out.data[y * width..(y + 1) * width];
            for (x, dst) in row.iter_mut().enumerate() {
                let (x0, x1) = (ax.i0[x] as usize, ax.i1[x] as usize);
                let corners = [y0 * lw + x0, y0 * lw + x1, y1 * lw + x0, y1 * lw + x1];
                let k = self.arg[corners[0]];
                if corners.iter().all(|&i| self.robust[i] && self.arg[i] == k) {
                    *dst = k as u8;
                    continue;
                }
                if self.quad[x0] == NO_QUAD {
                    let start = self.candidates.len() as u32;
                    quad_candidates(logits, &corners, &self.finite, tol, &mut self.candidates);
                    self.quad[x0] = (start, self.candidates.len() as u32 - start);
                }
                let (start, len) = self.quad[x0];
                let lx = (ax.l0[x], ax.l1[x]);
                let mut best = f32::NEG_INFINITY;
                let mut best_class = 0u16;
                for (i, &c) in self.candidates[start as usize..(start + len) as usize]
                    .iter()
                    .enumerate()
                {
                    let p = &logits.data[c as usize * n..(c as usize + 1) * n];
                    let v = blend(corners.map(|i| p[i]), lx, ly);
                    if i == 0 || v > best || (v.is_nan() && !best.is_nan()) {
                        best = v;
                        best_class = c;
                    }
                }
                *dst = best_class as u8;
            }
        }
        self.axes = Some((key, ax, ay));
    }
}

/// Classes that can win somewhere between four cells, in ascending order: every class whose
/// largest corner value reaches the largest per-class smallest corner value (less the rounding
/// tolerance). With a non-finite value about, every class.
fn quad_candidates(
    logits: &Logits,
    corners: &[usize; 4],
    finite: &[bool],
    tol: f32,
    out: &mut Vec<u16>,
) {
    let n = logits.width * logits.height;
    if !corners.iter().all(|&i| finite[i]) {
        out.extend(0..logits.classes as u16);
        return;
    }
    // Smallest and largest value of each class over the four cells, computed once.
    let bounds: Vec<(f32, f32)> = logits
        .data
        .chunks_exact(n)
        .map(|p| {
            let v = corners.map(|i| p[i]);
            (
                v.into_iter().fold(f32::INFINITY, f32::min),
                v.into_iter().fold(f32::NEG_INFINITY, f32::max),
            )
        })
        .collect();
    let floor = bounds.iter().map(|b| b.0).fold(f32::NEG_INFINITY, f32::max);
    out.extend(
        (0..logits.classes)
            .filter(|&c| bounds[c].1 >= floor - tol)
            .map(|c| c as u16),
    );
}

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
