//! SSIM as scikit-image computes it with a Gaussian window, restricted to the pixels
//! whose window lies inside the image (the only ones its mean keeps).
//!
//! The filter runs along rows first, into a ring of 12 filtered rows, then down the
//! columns two output rows at a time (12 input rows, each loaded once for both), and
//! the two rows' SSIM terms share one division. Its taps use fused multiply-adds
//! (`f64::mul_add`) in one fixed order, so every CPU gets the same bits; with AVX2 the
//! loops run four doubles wide.

use clipshift_simd::dispatch;

/// Window side: `2 * int(3.5 * 1.5 + 0.5) + 1`.
pub(crate) const WIN: usize = 11;
const RADIUS: usize = WIN / 2;
/// Filtered input rows the column pass reads for two output rows.
const RING: usize = WIN + 1;
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// The original's side of every SSIM term on the valid region: its filtered mean
/// `ux`, `ux * ux`, and its variance `f(x * x) - ux * ux`.
#[derive(Debug, Clone)]
pub(crate) struct SsimSide {
    mu: Vec<f64>,
    mu2: Vec<f64>,
    var: Vec<f64>,
}

impl SsimSide {
    pub(crate) fn new(gray: &[f64], w: usize, h: usize) -> Self {
        let n = (w - 2 * RADIUS) * (h - 2 * RADIUS);
        let mut side = Self { mu: Vec::with_capacity(n), mu2: Vec::with_capacity(n), var: Vec::with_capacity(n) };
        // The third plane, f(x * x) once more, is filtered exactly as `score` filters
        // f(x * y): with y = x both give the same bits, and the score is exactly 1.
        stream(gray, gray, w, h, &mut side);
        side
    }
}

/// What [`stream`] hands each valid row to.
trait ValidRows {
    /// Valid rows `r..r + n` (`n` is 1 or 2), laid out `[row][plane][column]` with the
    /// planes `f(a)`, `f(a * a)`, `f(a * b)`.
    fn rows(&mut self, r: usize, n: usize, filtered: &[f64]);
}

impl ValidRows for SsimSide {
    fn rows(&mut self, _: usize, n: usize, filtered: &[f64]) {
        for row in filtered.chunks_exact(filtered.len() / n) {
            let (ux, uxx) = row.split_at(row.len() / 3);
            self.mu.extend_from_slice(ux);
            self.mu2.extend(ux.iter().map(|&m| m * m));
            self.var.extend(ux.iter().zip(uxx).map(|(&m, &mm)| mm - m * m));
        }
    }
}

/// Per valid column, the running sum of SSIM terms against the original's side.
struct TermSums<'a> {
    x: &'a SsimSide,
    sums: Vec<f64>,
}

impl ValidRows for TermSums<'_> {
    fn rows(&mut self, r: usize, n: usize, filtered: &[f64]) {
        let at = r * self.sums.len()..(r + n) * self.sums.len();
        let x = self.x;
        add_terms([&x.mu[at.clone()], &x.mu2[at.clone()], &x.var[at]], filtered, &mut self.sums);
    }
}

/// Mean SSIM of `gy` against the original `gx` whose side is `x`.
pub(crate) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
    let mut terms = TermSums { x, sums: vec![0.0; w - 2 * RADIUS] };
    stream(gy, gx, w, h, &mut terms);
    terms.sums.iter().sum::<f64>() / x.mu.len() as f64
}

/// scipy's `_gaussian_kernel1d(1.5, 0, 5)`, normalised in numpy's summation order;
/// `k[j]` is the weight at distance `j` from the centre.
fn kernel() -> [f64; RADIUS + 1] {
    let sigma2 = 1.5f64 * 1.5;
    let phi: [f64; WIN] = std::array::from_fn(|i| {
        let x = i as f64 - RADIUS as f64;
        (-0.5 / sigma2 * (x * x)).exp()
    });
    // numpy's pairwise sum of 11 values: eight unrolled accumulators, then the rest.
    let r = &phi[..8];
    let mut total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    total += phi[8..].iter().sum::<f64>();
    std::array::from_fn(|j| phi[RADIUS + j] / total)
}

/// The 2-D weight `k[i] * k[j]` split as `k[i] / k[0]` along rows (centre weight 1: no
/// multiplication) and `k[j] * k[0]` down columns: the same window to within rounding,
/// which is all that agreement with scikit-image (1e-9) asks.
#[derive(Clone, Copy)]
struct Taps {
    along: [f64; RADIUS + 1],
    down: [f64; RADIUS + 1],
}

impl Taps {
    fn new() -> Self {
        let k = kernel();
        Self { along: std::array::from_fn(|j| k[j] / k[0]), down: std::array::from_fn(|j| k[j] * k[0]) }
    }
}

/// `gaussian_filter(., 1.5, truncate=3.5)` of the planes `a`, `a * a` and `a * b` on
/// the `(w - 10) x (h - 10)` valid region, handed to `rows` two valid rows at a time
/// (the last one alone when their number is odd).
fn stream(a: &[f64], b: &[f64], w: usize, h: usize, rows: &mut impl ValidRows) {
    let taps = Taps::new();
    let (vw, vh) = (w - 2 * RADIUS, h - 2 * RADIUS);
    let mut scratch = vec![0.0; 2 * w];
    // Slot `i % RING` holds input row i filtered along, planes `[a | a * a | a * b]`.
    let mut ring = vec![0.0; RING * 3 * vw];
    let mut out = vec![0.0; 2 * 3 * vw];
    let mut filtered = 0;
    let mut r = 0;
    while r < vh {
        let n = if r + 1 < vh { 2 } else { 1 };
        for i in filtered..r + WIN - 1 + n {
            let slot = &mut ring[i % RING * 3 * vw..][..3 * vw];
            along(&taps, &a[i * w..(i + 1) * w], &b[i * w..(i + 1) * w], &mut scratch, slot);
        }
        filtered = r + WIN - 1 + n;
        let window: Vec<&[f64]> = (r..filtered).map(|i| &ring[i % RING * 3 * vw..][..3 * vw]).collect();
        down(&taps, &window, &mut out[..n * 3 * vw]);
        rows.rows(r, n, &out[..n * 3 * vw]);
        r += n;
    }
}

dispatch!(
    /// Input row `a` (and `b`) filtered along into `slot`: `[f(a) | f(a * a) | f(a * b)]`
    /// on the valid columns; `scratch` holds the two products (`2 * a.len()`).
    fn along(taps: &Taps, a: &[f64], b: &[f64], scratch: &mut [f64], slot: &mut [f64]) {
        avx2_fma() => avx2::along,
        _ => along_portable,
    }
);

fn along_portable(taps: &Taps, a: &[f64], b: &[f64], scratch: &mut [f64], slot: &mut [f64]) {
    let (sq, prod) = scratch.split_at_mut(a.len());
    for (((s, p), &u), &v) in sq.iter_mut().zip(prod.iter_mut()).zip(a).zip(b) {
        (*s, *p) = (u * u, u * v);
    }
    let vw = slot.len() / 3;
    for (plane, src) in slot.chunks_exact_mut(vw).zip([a, sq, prod]) {
        for (c, o) in plane.iter_mut().enumerate() {
            *o = along_at(&taps.along, src, c);
        }
    }
}

/// `s[c + 5] + sum_j (s[c + 5 - j] + s[c + 5 + j]) * k[j]`, outermost pair first.
#[inline(always)]
fn along_at(k: &[f64; RADIUS + 1], s: &[f64], c: usize) -> f64 {
    let s = &s[c..c + WIN];
    let mut acc = s[RADIUS];
    for j in (1..=RADIUS).rev() {
        acc = (s[RADIUS - j] + s[RADIUS + j]).mul_add(k[j], acc);
    }
    acc
}

dispatch!(
    /// The `window.len() - 10` (1 or 2) output rows down the columns of the filtered
    /// rows `window`, into `out` laid out `[row][plane][column]`.
    fn down(taps: &Taps, window: &[&[f64]], out: &mut [f64]) {
        avx2_fma() => avx2::down,
        _ => down_portable,
    }
);

fn down_portable(taps: &Taps, window: &[&[f64]], out: &mut [f64]) {
    for (o, row) in out.chunks_exact_mut(window[0].len()).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = down_at(&taps.down, &window[o..o + WIN], c);
        }
    }
}

/// `t[5][c] * k[0] + sum_j (t[5 - j][c] + t[5 + j][c]) * k[j]`, outermost pair first.
#[inline(always)]
fn down_at(k: &[f64; RADIUS + 1], t: &[&[f64]], c: usize) -> f64 {
    let mut acc = t[RADIUS][c] * k[0];
    for j in (1..=RADIUS).rev() {
        acc = (t[RADIUS - j][c] + t[RADIUS + j][c]).mul_add(k[j], acc);
    }
    acc
}

dispatch!(
    /// Adds to `sums` the SSIM terms of one or two valid rows, column by column: `x`
    /// holds the original's `[ux, ux * ux, variance]` and `y` the variant's filtered
    /// rows from [`down`]. Two rows' terms share one division, `n0 / d0 + n1 / d1 =
    /// (n0 d1 + n1 d0) / (d0 d1)` (every `d` lies between `C1 * C2` and about 2^34, so
    /// nothing overflows or underflows).
    fn add_terms(x: [&[f64]; 3], y: &[f64], sums: &mut [f64]) {
        avx2_fma() => avx2::add_terms,
        _ => add_terms_portable,
    }
);

fn add_terms_portable(x: [&[f64]; 3], y: &[f64], sums: &mut [f64]) {
    let vw = sums.len();
    for (c, s) in sums.iter_mut().enumerate() {
        *s += term_sum(x, y, vw, c);
    }
}

/// Column `c` of [`add_terms`].
#[inline(always)]
fn term_sum(x: [&[f64]; 3], y: &[f64], vw: usize, c: usize) -> f64 {
    let term = |o: usize| {
        let [ux, xx, vx] = x.map(|p| p[o * vw + c]);
        let [uy, uyy, uxy] = std::array::from_fn(|p| y[(3 * o + p) * vw + c]);
        term(ux, xx, vx, uy, uyy, uxy)
    };
    let (n0, d0) = term(0);
    if y.len() == 3 * vw {
        n0 / d0
    } else {
        let (n1, d1) = term(1);
        (n0 * d1 + n1 * d0) / (d0 * d1)
    }
}

/// One pixel's SSIM term as `(numerator, denominator)`, grouped as scikit-image groups
/// it (so identical images give exactly 1).
#[inline(always)]
fn term(ux: f64, xx: f64, vx: f64, uy: f64, uyy: f64, uxy: f64) -> (f64, f64) {
    let (xy, yy) = (ux * uy, uy * uy);
    let num = (2.0 * xy + C1) * (2.0 * (uxy - xy) + C2);
    let den = ((xx + yy) + C1) * ((vx + (uyy - yy)) + C2);
    (num, den)
}

/// The three kernels four columns at a time, each lane doing exactly the operations of
/// the portable code (so the bits are the same); the last columns go through it.
/// Rows are read as blocks of four (`as_chunks`), all of one length, so the loops
/// index them without bounds checks.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_div_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_permute2f128_pd, _mm256_set1_pd,
        _mm256_setzero_pd, _mm256_shuffle_pd, _mm256_sub_pd,
    };

    use super::{C1, C2, RADIUS, Taps, WIN, along_at, down_at, term_sum};

    type Block = [f64; 4];

    #[inline(always)]
    fn v(b: &Block) -> __m256d {
        bytemuck::cast(*b)
    }

    #[inline(always)]
    fn put(x: __m256d) -> Block {
        bytemuck::cast(x)
    }

    /// The first `n` blocks of four of `s[at..]`.
    #[inline(always)]
    fn blocks(s: &[f64], at: usize, n: usize) -> &[Block] {
        &s[at..].as_chunks().0[..n]
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn splat(k: &[f64; RADIUS + 1]) -> [__m256d; RADIUS + 1] {
        let mut v = [_mm256_setzero_pd(); RADIUS + 1];
        for (v, &k) in v.iter_mut().zip(k) {
            *v = _mm256_set1_pd(k);
        }
        v
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn along(taps: &Taps, a: &[f64], b: &[f64], scratch: &mut [f64], slot: &mut [f64]) {
        let w = a.len();
        let (sq, prod) = scratch.split_at_mut(w);
        let n = w / 4;
        let (ab, bb) = (blocks(a, 0, n), blocks(b, 0, n));
        let (sqb, prodb) = (&mut sq.as_chunks_mut().0[..n], &mut prod.as_chunks_mut().0[..n]);
        for i in 0..n {
            let (u, x) = (v(&ab[i]), v(&bb[i]));
            (sqb[i], prodb[i]) = (put(_mm256_mul_pd(u, u)), put(_mm256_mul_pd(u, x)));
        }
        for c in 4 * n..w {
            (sq[c], prod[c]) = (a[c] * a[c], a[c] * b[c]);
        }
        let vw = slot.len() / 3;
        let k = splat(&taps.along);
        for (plane, src) in slot.chunks_exact_mut(vw).zip([a, &*sq, &*prod]) {
            for c in along_plane(&k, src, plane)..vw {
                plane[c] = along_at(&taps.along, src, c);
            }
        }
    }

    /// [`super::along_at`] of every block of four columns whose 14 source values lie in
    /// whole blocks of `src` (returns how many columns that is): a sliding window of blocks, so each iteration loads one
    /// new block and makes its three shifted neighbours with two shuffles and a lane
    /// swap, instead of eleven unaligned loads.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn along_plane(k: &[__m256d; RADIUS + 1], src: &[f64], out: &mut [f64]) -> usize {
        let (src, _) = src.as_chunks::<4>();
        let n = (out.len() / 4).min(src.len().saturating_sub(3));
        if n == 0 {
            return 0;
        }
        let out = &mut out.as_chunks_mut().0[..n];
        let src = &src[..n + 3];
        let (mut a, mut b, mut c) = (v(&src[0]), v(&src[1]), v(&src[2]));
        let (mut ab, mut bc) = (shifts(a, b), shifts(b, c));
        for i in 0..n {
            let d = v(&src[i + 3]);
            let cd = shifts(c, d);
            // Source values 4i + j for j = 0..11: a, ab, b, bc, c, cd[0..2].
            let s = [a, ab[0], ab[1], ab[2], b, bc[0], bc[1], bc[2], c, cd[0], cd[1]];
            let mut acc = s[RADIUS];
            for j in (1..=RADIUS).rev() {
                acc = _mm256_fmadd_pd(_mm256_add_pd(s[RADIUS - j], s[RADIUS + j]), k[j], acc);
            }
            out[i] = put(acc);
            (a, b, c, ab, bc) = (b, c, d, bc, cd);
        }
        4 * n
    }

    /// `[x1 x2 x3 y0]`, `[x2 x3 y0 y1]`, `[x3 y0 y1 y2]`: the values between blocks `x` and `y`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn shifts(x: __m256d, y: __m256d) -> [__m256d; 3] {
        let mid = _mm256_permute2f128_pd::<0x21>(x, y);
        [_mm256_shuffle_pd::<0b0101>(x, mid), mid, _mm256_shuffle_pd::<0b0101>(mid, y)]
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn down(taps: &Taps, window: &[&[f64]], out: &mut [f64]) {
        if let Ok(window) = window.try_into() {
            down_rows::<{ WIN + 1 }>(taps, window, out);
        } else {
            down_rows::<WIN>(taps, window.try_into().expect("11 or 12 rows"), out);
        }
    }

    /// [`down`] from `R` rows (`R - 10` output rows), each row's block loaded once.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn down_rows<const R: usize>(taps: &Taps, window: &[&[f64]; R], out: &mut [f64]) {
        let len = window[0].len();
        let n = len / 4;
        let t: [&[Block]; R] = std::array::from_fn(|i| blocks(window[i], 0, n));
        let k = splat(&taps.down);
        for i in 0..n {
            let mut rows = [_mm256_setzero_pd(); R];
            for (r, t) in rows.iter_mut().zip(&t) {
                *r = v(&t[i]);
            }
            for (o, r) in rows.windows(WIN).enumerate() {
                let mut acc = _mm256_mul_pd(r[RADIUS], k[0]);
                for j in (1..=RADIUS).rev() {
                    acc = _mm256_fmadd_pd(_mm256_add_pd(r[RADIUS - j], r[RADIUS + j]), k[j], acc);
                }
                out[o * len + 4 * i..][..4].copy_from_slice(&put(acc));
            }
        }
        for c in 4 * n..len {
            for o in 0..R - WIN + 1 {
                out[o * len + c] = down_at(&taps.down, &window[o..o + WIN], c);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_terms(x: [&[f64]; 3], y: &[f64], sums: &mut [f64]) {
        let vw = sums.len();
        let rows = y.len() / (3 * vw);
        let n = vw / 4;
        // Row o's planes: the original's [ux, ux * ux, variance], the variant's [uy, uyy, uxy].
        let xs: [[&[Block]; 3]; 2] = std::array::from_fn(|o| x.map(|p| blocks(p, (o % rows) * vw, n)));
        let ys: [[&[Block]; 3]; 2] = std::array::from_fn(|o| std::array::from_fn(|p| blocks(y, (3 * (o % rows) + p) * vw, n)));
        let (two, c1, c2) = (_mm256_set1_pd(2.0), _mm256_set1_pd(C1), _mm256_set1_pd(C2));
        let sb = &mut sums.as_chunks_mut().0[..n];
        for i in 0..n {
            let mut nd = [(_mm256_setzero_pd(), _mm256_setzero_pd()); 2];
            for (o, nd) in nd.iter_mut().enumerate().take(rows) {
                let [ux, xx, vx] = [0, 1, 2].map(|p| v(&xs[o][p][i]));
                let [uy, uyy, uxy] = [0, 1, 2].map(|p| v(&ys[o][p][i]));
                let (xy, yy) = (_mm256_mul_pd(ux, uy), _mm256_mul_pd(uy, uy));
                let a1 = _mm256_add_pd(_mm256_mul_pd(two, xy), c1);
                let a2 = _mm256_add_pd(_mm256_mul_pd(two, _mm256_sub_pd(uxy, xy)), c2);
                let b1 = _mm256_add_pd(_mm256_add_pd(xx, yy), c1);
                let b2 = _mm256_add_pd(_mm256_add_pd(vx, _mm256_sub_pd(uyy, yy)), c2);
                *nd = (_mm256_mul_pd(a1, a2), _mm256_mul_pd(b1, b2));
            }
            let [(n0, d0), (n1, d1)] = nd;
            let q = if rows == 2 {
                _mm256_div_pd(_mm256_add_pd(_mm256_mul_pd(n0, d1), _mm256_mul_pd(n1, d0)), _mm256_mul_pd(d0, d1))
            } else {
                _mm256_div_pd(n0, d0)
            };
            sb[i] = put(_mm256_add_pd(v(&sb[i]), q));
        }
        for (c, s) in sums.iter_mut().enumerate().skip(4 * n) {
            *s += term_sum(x, y, vw, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seed: usize, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|i| ((i * 37 + seed * 101) % 251) as f64 * scale).collect()
    }

    /// Every dispatched kernel gives the portable bits, at widths with and without a
    /// tail of columns the vector loop leaves.
    #[test]
    fn dispatched_kernels_equal_the_portable_ones_exactly() {
        let taps = Taps::new();
        for vw in [1, 3, 4, 7, 214] {
            let w = vw + 2 * RADIUS;
            let (a, b) = (values(1, w, 0.91), values(2, w, 1.03));
            let (mut fast, mut portable) = (vec![0.0; 3 * vw], vec![0.0; 3 * vw]);
            along(&taps, &a, &b, &mut vec![0.0; 2 * w], &mut fast);
            along_portable(&taps, &a, &b, &mut vec![0.0; 2 * w], &mut portable);
            assert_eq!(fast, portable, "along, width {w}");

            let rows: Vec<Vec<f64>> = (0..RING).map(|i| values(i, 3 * vw, 1.7)).collect();
            let rows: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
            for n in [1, 2] {
                let window = &rows[..WIN - 1 + n];
                let (mut fast, mut portable) = (vec![0.0; 3 * n * vw], vec![0.0; 3 * n * vw]);
                down(&taps, window, &mut fast);
                down_portable(&taps, window, &mut portable);
                assert_eq!(fast, portable, "down, {n} rows, width {vw}");

                let x = [values(3, n * vw, 0.5), values(4, n * vw, 60.0), values(5, n * vw, 9.0)];
                let x = [0, 1, 2].map(|p| x[p].as_slice());
                let (mut fast, mut portable) = (values(6, vw, 0.1), values(6, vw, 0.1));
                add_terms(x, &fast_rows(&taps, window), &mut fast);
                add_terms_portable(x, &fast_rows(&taps, window), &mut portable);
                assert_eq!(fast, portable, "terms, {n} rows, width {vw}");
            }
        }
    }

    fn fast_rows(taps: &Taps, window: &[&[f64]]) -> Vec<f64> {
        let mut out = vec![0.0; (window.len() - WIN + 1) * window[0].len()];
        down_portable(taps, window, &mut out);
        out
    }

    #[test]
    fn identical_images_score_exactly_one_at_odd_sizes() {
        for (w, h) in [(11, 11), (37, 23), (12, 16), (40, 13)] {
            let g = values(7, w * h, 1.01);
            assert_eq!(score(&SsimSide::new(&g, w, h), &g, &g, w, h), 1.0, "{w}x{h}");
            let other = values(8, w * h, 0.99);
            let s = score(&SsimSide::new(&g, w, h), &g, &other, w, h);
            assert!(s > -1.0 && s < 1.0, "{s}");
        }
    }
}
