// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Pillow's `Image.resize` for 8-bit RGB, bit for bit: the same filters, the same coefficient
//! computation in double precision, the same 22-bit fixed-point accumulation, a horizontal pass
//! then a vertical pass with rounding to 8 bits in between. Hugging Face's image processors
//! resize through PIL, so this is what makes our model input identical to theirs (a 1/255
//! difference at a few percent of pixels moves up to half a percent of a random model's class map).

use crate::model::Resample;

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// The filter and its support, as in Pillow's `Resample.c`.
fn filter(r: Resample) -> (fn(f64) -> f64, f64) {
    match r {
        Resample::Box => (|x| if x > -0.5 && x <= 0.5 { 1.0 } else { 0.0 }, 0.5),
        Resample::Bilinear => (
            |x| {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            },
            1.0,
        ),
        Resample::Hamming => (
            |x| {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes these two constants as C floats.
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            },
            1.0,
        ),
        Resample::Bicubic => (
            |x| {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            },
            2.0,
        ),
        Resample::Lanczos => (
            |x| {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            },
            3.0,
        ),
        // Pillow's NEAREST does not convolve; a box of width 1 picks the same source pixel
        // except exactly on pixel boundaries.
        Resample::Nearest => (|x| if x > -0.5 && x <= 0.5 { 1.0 } else { 0.0 }, 0.5),
    }
}

/// Fixed-point taps of one axis: for each output index, the first input index and its weights.
#[derive(Clone, Debug, PartialEq)]
struct Taps {
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<i32>,
    /// The weights again, [`WIDE`] a tap and zero-padded, when no tap is longer: a fixed-length
    /// loop over them vectorises, and the zeros add nothing.
    wide: Vec<i32>,
}

/// Taps in [`Taps::wide`].
const WIDE: usize = 8;

impl Taps {
    fn new(input: usize, output: usize, r: Resample) -> Self {
        let (f, support) = filter(r);
        let scale = input as f64 / output as f64;
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut taps = Taps {
            ksize,
            start: Vec::with_capacity(output),
            len: Vec::with_capacity(output),
            weights: vec![0; output * ksize],
            wide: Vec::new(),
        };
        let mut k = vec![0f64; ksize];
        for xx in 0..output {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize - xmin;
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(xmax) {
                let w = f((x as f64 + xmin as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            for (x, kx) in k.iter().enumerate().take(xmax) {
                let v = if ww != 0.0 { kx / ww } else { *kx };
                let fixed = v * (1u32 << PRECISION_BITS) as f64;
                taps.weights[xx * ksize + x] = if v < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            taps.start.push(xmin);
            taps.len.push(xmax);
        }
        if ksize <= WIDE {
            taps.wide = vec![0; output * WIDE];
            for (xx, wide) in taps.wide.chunks_exact_mut(WIDE).enumerate() {
                wide[..ksize].copy_from_slice(&taps.weights[xx * ksize..(xx + 1) * ksize]);
            }
        }
        taps
    }

    fn of(&self, i: usize) -> (usize, &[i32]) {
        (
            self.start[i],
            &self.weights[i * self.ksize..i * self.ksize + self.len[i]],
        )
    }
}

/// Pillow's `clip8`: the fixed-point sum back to 8 bits. Written as a shift and a clamp (the
/// same values: an arithmetic shift of a non-positive sum gives 0 or -1) so that it vectorises.
#[inline(always)]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Rounding offset added to every fixed-point sum.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// One horizontal pass over a row of `B`-byte pixels: every byte lane is filtered (a padding or
/// alpha lane costs nothing extra in a vector), written in the same layout.
#[inline(always)]
fn horizontal<const B: usize>(row: &[u8], taps: &Taps, out: &mut [u8]) {
    horizontal_from::<B>(row, taps, 0, out)
}

/// [`horizontal`] for the output pixels from `first` on.
#[inline(always)]
fn horizontal_from<const B: usize>(row: &[u8], taps: &Taps, first: usize, out: &mut [u8]) {
    let width = row.len() / B;
    for (xx, o) in out.chunks_exact_mut(B).enumerate().skip(first) {
        let (x0, k) = taps.of(xx);
        if !taps.wide.is_empty() && x0 + WIDE <= width {
            let px = &row[x0 * B..(x0 + WIDE) * B];
            let w = &taps.wide[xx * WIDE..(xx + 1) * WIDE];
            let mut s = [HALF; B];
            for i in 0..WIDE {
                for c in 0..B {
                    s[c] += px[i * B + c] as i32 * w[i];
                }
            }
            for c in 0..B {
                o[c] = clip8(s[c]);
            }
            continue;
        }
        let px = &row[x0 * B..(x0 + k.len()) * B];
        let mut s = [HALF; B];
        for (p, &w) in px.chunks_exact(B).zip(k) {
            for c in 0..B {
                s[c] += p[c] as i32 * w;
            }
        }
        for c in 0..B {
            o[c] = clip8(s[c]);
        }
    }
}

/// One output row of the vertical pass: `rows[i]` weighted by `k[i]`, summed in `acc`.
#[inline(always)]
fn vertical(rows: &[u8], row_len: usize, k: &[i32], acc: &mut [i32], out: &mut [u8]) {
    let acc = &mut acc[..row_len];
    acc.fill(HALF);
    for (row, &w) in rows.chunks_exact(row_len).zip(k) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v as i32 * w;
        }
    }
    for (o, &a) in out[..row_len].iter_mut().zip(acc.iter()) {
        *o = clip8(a);
    }
}

/// Both passes over `B`-byte pixels (see [`Resizer::resize_pixels`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn resize_pixels<const B: usize>(
    src: &[u8],
    stride: usize,
    (sw, sh): (usize, usize),
    (tx, ty): (&Taps, &Taps),
    (dw, dh): (usize, usize),
    tmp: &mut Vec<u8>,
    acc: &mut Vec<i32>,
    dst: &mut [u8],
    horizontal: impl Fn(&[u8], &Taps, &mut [u8]),
) {
    let row = |y: usize| &src[y * stride..y * stride + sw * B];
    let out_len = dw * B;
    // Horizontal pass (skipped when the width does not change), on the rows the vertical pass
    // will read.
    let (first, last) = if sh == dh {
        (0, sh)
    } else {
        (ty.start[0], ty.start[dh - 1] + ty.len[dh - 1])
    };
    tmp.resize((last - first) * out_len, 0);
    for (y, out) in (first..last).zip(tmp.chunks_exact_mut(out_len)) {
        if sw == dw {
            out.copy_from_slice(row(y));
        } else {
            horizontal(row(y), tx, out);
        }
    }
    if sh == dh {
        dst[..dh * out_len].copy_from_slice(&tmp[..dh * out_len]);
        return;
    }
    acc.resize(out_len, 0);
    for (yy, out) in dst.chunks_exact_mut(out_len).take(dh).enumerate() {
        let (y0, k) = ty.of(yy);
        let rows = &tmp[(y0 - first) * out_len..(y0 - first + k.len()) * out_len];
        vertical(rows, out_len, k, acc, out);
    }
}

/// [`resize_pixels`] for 1- to 4-byte pixels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn resize_any(
    bpp: usize,
    src: &[u8],
    stride: usize,
    from: (usize, usize),
    taps: (&Taps, &Taps),
    to: (usize, usize),
    tmp: &mut Vec<u8>,
    acc: &mut Vec<i32>,
    dst: &mut [u8],
) {
    match bpp {
        1 => resize_pixels::<1>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            horizontal::<1>(r, t, o)
        }),
        2 => resize_pixels::<2>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            horizontal::<2>(r, t, o)
        }),
        3 => resize_pixels::<3>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            horizontal::<3>(r, t, o)
        }),
        _ => resize_pixels::<4>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            horizontal::<4>(r, t, o)
        }),
    }
}

/// [`resize_any`] compiled for AVX2: 256-bit integer multiplies and adds in both passes, and
/// the explicit horizontal pass of [`avx2`] for 1- and 2-byte pixels (YUV planes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn resize_any_avx2(
    bpp: usize,
    src: &[u8],
    stride: usize,
    from: (usize, usize),
    taps: (&Taps, &Taps),
    to: (usize, usize),
    tmp: &mut Vec<u8>,
    acc: &mut Vec<i32>,
    dst: &mut [u8],
) {
    match bpp {
        1 => resize_pixels::<1>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            avx2::horizontal_narrow::<1>(r, t, o)
        }),
        2 => resize_pixels::<2>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            avx2::horizontal_narrow::<2>(r, t, o)
        }),
        // Closures written here are compiled for AVX2 like this function (one passed in from
        // `resize_any` would not be, and the inlined pass with it).
        3 => resize_pixels::<3>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            horizontal::<3>(r, t, o)
        }),
        _ => resize_pixels::<4>(src, stride, from, taps, to, tmp, acc, dst, |r, t, o| {
            avx2::horizontal_quad(r, t, o)
        }),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{horizontal_from, Taps, HALF, PRECISION_BITS, WIDE};

    /// The horizontal pass for 1- or 2-byte pixels, vectorised across output pixels rather than
    /// across one pixel's taps (a 1-byte pixel's eight taps would leave a whole vector to sum
    /// for one byte). Each output lane's eight zero-padded taps are multiplied in one vector;
    /// eight such vectors (8 outputs of 1 byte, or 4 of 2) are summed together by a tree of
    /// horizontal adds, whose lanes come out in output order. Integer sums in another order:
    /// the same values as [`super::horizontal`].
    #[target_feature(enable = "avx2")]
    pub fn horizontal_narrow<const B: usize>(row: &[u8], taps: &Taps, out: &mut [u8]) {
        const { assert!(B == 1 || B == 2) };
        let per = 8 / B;
        let n = out.len() / B;
        let mut xx = 0;
        if !taps.wide.is_empty() {
            // Starts never decrease: the block's last output reads furthest.
            while xx + per <= n && (taps.start[xx + per - 1] + WIDE) * B <= row.len() {
                let mut v = [_mm256_setzero_si256(); 8];
                for (j, pair) in v.chunks_exact_mut(B).enumerate() {
                    products::<B>(row, taps, xx + j, pair);
                }
                let h01 = _mm256_hadd_epi32(v[0], v[1]);
                let h23 = _mm256_hadd_epi32(v[2], v[3]);
                let h45 = _mm256_hadd_epi32(v[4], v[5]);
                let h67 = _mm256_hadd_epi32(v[6], v[7]);
                // Lane i of each 128-bit half: the low (a) or high (b) four taps of vector i.
                let a = _mm256_hadd_epi32(h01, h23);
                let b = _mm256_hadd_epi32(h45, h67);
                let s = _mm256_add_epi32(
                    _mm256_permute2x128_si256(a, b, 0x20),
                    _mm256_permute2x128_si256(a, b, 0x31),
                );
                let bytes = clip(s);
                let o = &mut out[xx * B..(xx + per) * B];
                // SAFETY: `o` holds the 8 bytes stored.
                unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), bytes) };
                xx += per;
            }
        }
        horizontal_from::<B>(row, taps, xx, out);
    }

    /// The horizontal pass for 4-byte pixels: two taps of all four byte lanes a vector, so
    /// that an output pixel takes four multiplies instead of eight half-empty ones; two output
    /// pixels are finished together. The same sums as [`super::horizontal`].
    #[target_feature(enable = "avx2")]
    pub fn horizontal_quad(row: &[u8], taps: &Taps, out: &mut [u8]) {
        let n = out.len() / 4;
        let mut xx = 0;
        if !taps.wide.is_empty() {
            while xx + 2 <= n && (taps.start[xx + 1] + WIDE) * 4 <= row.len() {
                let (a, b) = (quad(row, taps, xx), quad(row, taps, xx + 1));
                // Even taps plus odd taps, output `xx` in the low half, `xx + 1` in the high.
                let s = _mm256_add_epi32(
                    _mm256_permute2x128_si256(a, b, 0x20),
                    _mm256_permute2x128_si256(a, b, 0x31),
                );
                let bytes = clip(s);
                let o = &mut out[xx * 4..(xx + 2) * 4];
                // SAFETY: `o` holds the 8 bytes stored.
                unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), bytes) };
                xx += 2;
            }
        }
        horizontal_from::<4>(row, taps, xx, out);
    }

    /// Output pixel `xx` of 4-byte pixels: its even taps' weighted sums of the four lanes in the
    /// low half, its odd taps' in the high half.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn quad(row: &[u8], taps: &Taps, xx: usize) -> __m256i {
        let x0 = taps.start[xx] * 4;
        let px = &row[x0..x0 + WIDE * 4];
        let w = &taps.wide[xx * WIDE..(xx + 1) * WIDE];
        // SAFETY: `w` holds the 8 i32 loaded.
        let w = unsafe { _mm256_loadu_si256(w.as_ptr().cast()) };
        let mut s = _mm256_setzero_si256();
        for (k, pair) in px.chunks_exact(8).enumerate() {
            let k = 2 * k as i32;
            let wk = _mm256_permutevar8x32_epi32(
                w,
                _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1),
            );
            // SAFETY: `pair` holds the 8 bytes loaded.
            let p = unsafe { _mm_loadl_epi64(pair.as_ptr().cast()) };
            s = _mm256_add_epi32(s, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(p), wk));
        }
        s
    }

    /// Rounded, shifted and clamped to bytes (Pillow's `clip8`, the saturating packs doing the
    /// clamp): the eight sums in the first eight bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn clip(s: __m256i) -> __m128i {
        let s = _mm256_srai_epi32(
            _mm256_add_epi32(s, _mm256_set1_epi32(HALF)),
            PRECISION_BITS as i32,
        );
        let words = _mm_packs_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        _mm_packus_epi16(words, words)
    }

    /// Output pixel `xx`'s eight taps times their weights, one vector per byte lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn products<const B: usize>(row: &[u8], taps: &Taps, xx: usize, lanes: &mut [__m256i]) {
        let x0 = taps.start[xx] * B;
        let px = &row[x0..x0 + WIDE * B];
        let w = &taps.wide[xx * WIDE..(xx + 1) * WIDE];
        // SAFETY: `w` holds the 8 i32 loaded, `px` the 8 (B = 1) or 16 (B = 2) bytes.
        let w = unsafe { _mm256_loadu_si256(w.as_ptr().cast()) };
        if B == 1 {
            let p = unsafe { _mm_loadl_epi64(px.as_ptr().cast()) };
            lanes[0] = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(p), w);
        } else {
            let p = unsafe { _mm_loadu_si128(px.as_ptr().cast()) };
            // Interleaved pairs to the first lane's eight bytes, then the second's.
            let split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            let p = _mm_shuffle_epi8(p, split);
            lanes[0] = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(p), w);
            lanes[1] = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(p, 8)), w);
        }
    }
}

/// Source size, target size and filter.
type Geometry = ((usize, usize), (usize, usize), Resample);

/// Reusable resizer: the fast path for 1- to 4-byte pixels with a row stride
/// ([`Resizer::resize_pixels`]) and the plain reference for packed RGB ([`Resizer::resize`]),
/// bit-identical to each other and to Pillow.
#[derive(Default)]
pub struct Resizer {
    /// Taps of the last geometry: horizontal and vertical.
    taps: Option<(Geometry, Taps, Taps)>,
    tmp: Vec<u8>,
    acc: Vec<i32>,
}

impl Resizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn taps(&mut self, from: (usize, usize), to: (usize, usize), r: Resample) -> (&Taps, &Taps) {
        let key = (from, to, r);
        if self.taps.as_ref().is_none_or(|(k, _, _)| *k != key) {
            self.taps = Some((key, Taps::new(from.0, to.0, r), Taps::new(from.1, to.1, r)));
        }
        let (_, tx, ty) = self.taps.as_ref().expect("just set");
        (tx, ty)
    }

    /// Resizes `src`, `from` = (width, height) pixels of `bpp` (1 to 4) bytes with rows `stride`
    /// bytes apart, into `dst` (`to` pixels of the same layout, rows packed), as PIL's
    /// `Image.resize` does to each channel. Every byte lane is filtered alike, so the channel
    /// order does not matter. Vectorised (AVX2 where the CPU has it); bit-identical to
    /// [`Self::resize`].
    // Source and target described as `resize` does, plus the source's layout.
    #[allow(clippy::too_many_arguments)]
    pub fn resize_pixels(
        &mut self,
        src: &[u8],
        from: (usize, usize),
        stride: usize,
        bpp: usize,
        dst: &mut [u8],
        to: (usize, usize),
        r: Resample,
    ) {
        self.resize_pixels_on(true, src, from, stride, bpp, dst, to, r)
    }

    /// [`Self::resize_pixels`]; with `simd` false on the portable path whatever the CPU has.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn resize_pixels_on(
        &mut self,
        simd: bool,
        src: &[u8],
        from: (usize, usize),
        stride: usize,
        bpp: usize,
        dst: &mut [u8],
        to: (usize, usize),
        r: Resample,
    ) {
        assert!((1..=4).contains(&bpp), "1 to 4 bytes a pixel");
        let ((sw, sh), (dw, dh)) = (from, to);
        assert!(
            stride >= sw * bpp
                && src.len() >= stride * (sh - 1) + sw * bpp
                && dst.len() >= dw * dh * bpp,
            "buffer sizes"
        );
        self.taps(from, to, r);
        let (_, tx, ty) = self.taps.as_ref().expect("just set");
        let (tmp, acc) = (&mut self.tmp, &mut self.acc);
        #[cfg(target_arch = "x86_64")]
        if simd && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { resize_any_avx2(bpp, src, stride, from, (tx, ty), to, tmp, acc, dst) };
        }
        resize_any(bpp, src, stride, from, (tx, ty), to, tmp, acc, dst)
    }

    /// Resizes `src` (RGB, `from` = (width, height)) into `dst` (RGB of size `to`) as PIL's
    /// `Image.resize` does: the plain reference, one pixel and channel at a time.
    pub fn resize(
        &mut self,
        src: &[u8],
        from: (usize, usize),
        dst: &mut [u8],
        to: (usize, usize),
        r: Resample,
    ) {
        let ((sw, sh), (dw, dh)) = (from, to);
        assert!(
            src.len() >= sw * sh * 3 && dst.len() >= dw * dh * 3,
            "buffer sizes"
        );
        self.taps(from, to, r);
        let (_, tx, ty) = self.taps.as_ref().expect("just set");
        let half = HALF;

        // Horizontal pass (skipped when the width does not change), on the rows the vertical
        // pass will read.
        let (rows_first, rows_last) = if sh == dh {
            (0, sh)
        } else {
            (ty.start[0], ty.start[dh - 1] + ty.len[dh - 1])
        };
        let (mid, mid_w): (&[u8], usize) = if sw == dw {
            (&src[rows_first * sw * 3..rows_last * sw * 3], sw)
        } else {
            self.tmp.resize((rows_last - rows_first) * dw * 3, 0);
            for (y, out_row) in (rows_first..rows_last).zip(self.tmp.chunks_exact_mut(dw * 3)) {
                let in_row = &src[y * sw * 3..(y + 1) * sw * 3];
                for (xx, out) in out_row.chunks_exact_mut(3).enumerate() {
                    let (x0, k) = tx.of(xx);
                    let (mut s0, mut s1, mut s2) = (half, half, half);
                    for (i, &w) in k.iter().enumerate() {
                        let p = &in_row[(x0 + i) * 3..(x0 + i) * 3 + 3];
                        s0 += p[0] as i32 * w;
                        s1 += p[1] as i32 * w;
                        s2 += p[2] as i32 * w;
                    }
                    out.copy_from_slice(&[clip8(s0), clip8(s1), clip8(s2)]);
                }
            }
            (&self.tmp, dw)
        };

        // Vertical pass.
        let row_len = mid_w * 3;
        if sh == dh {
            dst[..dh * row_len].copy_from_slice(&mid[..dh * row_len]);
            return;
        }
        for (yy, out_row) in dst.chunks_exact_mut(row_len).take(dh).enumerate() {
            let (y0, k) = ty.of(yy);
            let base = y0 - rows_first;
            for (x, out) in out_row.iter_mut().enumerate() {
                let mut s = half;
                for (i, &w) in k.iter().enumerate() {
                    s += mid[(base + i) * row_len + x] as i32 * w;
                }
                *out = clip8(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_weights_sum_to_one_in_fixed_point() {
        let t = Taps::new(1920, 640, Resample::Bilinear);
        for i in 0..640 {
            let sum: i64 = t.of(i).1.iter().map(|w| *w as i64).sum();
            assert!((sum - (1 << PRECISION_BITS)).abs() <= 3, "{sum}");
        }
    }

    /// Deterministic noise bytes.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn fast_and_portable_paths_equal_reference_for_every_filter_layout_and_stride() {
        let filters = [
            Resample::Bilinear,
            Resample::Bicubic,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
            Resample::Nearest,
        ];
        let sizes = [
            ((97, 61), (32, 32)),
            ((40, 30), (97, 71)),
            ((64, 48), (64, 20)),
            ((50, 33), (17, 33)),
            ((1920, 9), (640, 4)),
            ((31, 17), (31, 17)),
        ];
        let mut fast = Resizer::new();
        let mut plain = Resizer::new();
        for (i, &r) in filters.iter().enumerate() {
            for (j, &(from, to)) in sizes.iter().enumerate() {
                for (bpp, pad) in [(3, 0), (4, 0), (4, 12), (3, 5), (1, 3), (2, 0)] {
                    let stride = from.0 * bpp + pad;
                    let src = bytes((i * 31 + j * 7 + bpp) as u64, stride * from.1);
                    let mut out = vec![0u8; to.0 * to.1 * bpp];
                    let mut portable = out.clone();
                    fast.resize_pixels(&src, from, stride, bpp, &mut out, to, r);
                    fast.resize_pixels_on(false, &src, from, stride, bpp, &mut portable, to, r);
                    assert_eq!(out, portable, "{r:?} {from:?}→{to:?} bpp {bpp} pad {pad}");
                    // The reference works on packed RGB: compare the first three byte lanes
                    // (narrower pixels fill the rest with zeros).
                    let lanes = |p: &[u8]| [0, 1, 2].map(|c| p.get(c).copied().unwrap_or(0));
                    let rgb: Vec<u8> = (0..from.1)
                        .flat_map(|y| src[y * stride..y * stride + from.0 * bpp].chunks(bpp))
                        .flat_map(lanes)
                        .collect();
                    let mut want = vec![0u8; to.0 * to.1 * 3];
                    plain.resize(&rgb, from, &mut want, to, r);
                    let got: Vec<u8> = out.chunks(bpp).flat_map(lanes).collect();
                    assert_eq!(got, want, "{r:?} {from:?}→{to:?} bpp {bpp} pad {pad}");
                }
            }
        }
    }

    #[test]
    fn constant_image_stays_constant_for_every_filter() {
        for r in [
            Resample::Bilinear,
            Resample::Bicubic,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
        ] {
            let src = vec![77u8; 37 * 23 * 3];
            let mut dst = vec![0u8; 16 * 50 * 3];
            Resizer::new().resize(&src, (37, 23), &mut dst, (16, 50), r);
            assert!(dst.iter().all(|v| *v == 77), "{r:?}");
        }
    }
}
