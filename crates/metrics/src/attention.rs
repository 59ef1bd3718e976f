//! Attention similarity: the class-token-to-patch attention grid, upsampled to the
//! image size exactly as `cv2.resize(grid, (width, height), interpolation=INTER_LINEAR)`
//! does on float32; for geometric augmentations also in the variant's frame.

use clipshift_augment::Warp;

/// Upsample a row-major `g x g` float32 grid (`g * g == grid.len()`) to
/// `width x height`, bit for bit as `cv2.resize(..., INTER_LINEAR)` on float32 does in
/// opencv-python-headless 5.0 (the reference script checks this on every fixture).
///
/// That implementation maps destination pixel `d` to the source coordinate
/// `(d + 0.5) * src/dst - 0.5` in f64, clamps at the borders, keeps the fraction `t`
/// as f32, and interpolates each axis as `fma(s1 - s0, t, s0)` in f32, horizontally
/// first. OpenCV 4.x used `s0*(1-t) + s1*t` with an f32 coordinate instead, which
/// differs from this by at most one f32 ulp per pixel.
///
/// `None` when the length is not a non-zero square or a target side is 0.
pub fn upsample_attention(grid: &[f32], width: u32, height: u32) -> Option<Vec<f32>> {
    let g = grid_side(grid.len())?;
    if width == 0 || height == 0 {
        return None;
    }
    let taps = Taps::new(g, width as usize, height as usize);
    let map = Upsampled::new(grid, &taps);
    let w = taps.xs.len();
    let mut out = vec![0.0f32; w * taps.ys.len()];
    for (dst, &(s, t)) in out.chunks_exact_mut(w).zip(&taps.ys) {
        map.row(s, t, dst);
    }
    Some(out)
}

/// Attention similarity `1 / (1 + mean((A - A')^2))` of two class-token attention
/// vectors (row-major `g x g` grids), each upsampled to `width x height` by
/// [`upsample_attention`] and min-max normalised to [0, 1] when its max exceeds its
/// min (a constant map is left as it is). Everything after the upsampling is f64.
///
/// `None` when the lengths differ, are not a non-zero square, a target side is 0, or
/// an input is not finite (for a model without attention output the stage never
/// calls this and writes `null`). To compare one grid with many, build its
/// [`AttentionMap`] once.
pub fn attention_similarity(a: &[f32], b: &[f32], width: u32, height: u32) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    AttentionMap::new(a, width, height)?.similarity(b)
}

/// One attention grid (the original's) upsampled and normalised once, for
/// [`attention_similarity`] against any number of other grids of the same length:
/// `AttentionMap::new(a, w, h)?.similarity(b)` is `attention_similarity(a, b, w, h)`
/// bit for bit, and each further comparison only upsamples the other grid.
#[derive(Debug, Clone)]
pub struct AttentionMap {
    len: usize,
    taps: Taps,
    /// Runs of identical destination rows: source row, fraction, row count.
    runs: Vec<(usize, f32, usize)>,
    /// The normalised map, one row per run.
    normalised: Vec<f64>,
}

impl AttentionMap {
    /// `None` when the length is not a non-zero square, a target side is 0, or a
    /// value is not finite.
    pub fn new(grid: &[f32], width: u32, height: u32) -> Option<Self> {
        let g = grid_side(grid.len())?;
        if width == 0 || height == 0 || !grid.iter().all(|x| x.is_finite()) {
            return None;
        }
        let taps = Taps::new(g, width as usize, height as usize);
        // Consecutive destination rows with the same taps are the same row.
        let mut runs: Vec<(usize, f32, usize)> = Vec::with_capacity(taps.ys.len());
        for &(s, t) in &taps.ys {
            match runs.last_mut() {
                Some(last) if last.0 == s && last.1 == t => last.2 += 1,
                _ => runs.push((s, t, 1)),
            }
        }
        let map = Upsampled::new(grid, &taps);
        let (lo, inv) = map.normaliser(&runs);
        let w = taps.xs.len();
        let mut row = vec![0.0f32; w];
        let mut normalised = Vec::with_capacity(runs.len() * w);
        for &(s, t, _) in &runs {
            map.row(s, t, &mut row);
            normalised.extend(row.iter().map(|&v| (f64::from(v) - lo) * inv));
        }
        Some(Self { len: grid.len(), taps, runs, normalised })
    }

    /// The attention similarity of this map and the grid `other`; `None` when the
    /// lengths differ or a value of `other` is not finite.
    pub fn similarity(&self, other: &[f32]) -> Option<f64> {
        if other.len() != self.len || !other.iter().all(|x| x.is_finite()) {
            return None;
        }
        let map = Upsampled::new(other, &self.taps);
        let norm = map.normaliser(&self.runs);
        let w = self.taps.xs.len();
        let mut row = vec![0.0f32; w];
        let mut sum = 0.0;
        for (&(s, t, count), mine) in self.runs.iter().zip(self.normalised.chunks_exact(w)) {
            map.row(s, t, &mut row);
            sum += count as f64 * squared_difference(mine, &row, norm);
        }
        let score = 1.0 / (1.0 + sum / (w * self.taps.ys.len()) as f64);
        score.is_finite().then_some(score)
    }
}

/// Attention similarity in the variant's frame, for a geometric augmentation: the
/// original's grid upsampled by [`upsample_attention`] and moved by the same `warp` as
/// the pixels ([`Warp::apply_f32`]), then compared with the variant's upsampled grid as
/// [`attention_similarity`] compares, over the pixels the warped original covers only
/// (under a constant border the rest has no counterpart in the original): both maps
/// min-max normalised over those pixels, `1 / (1 + mean((A - A')^2))` in f64. A
/// flipped image whose attention flips with it scores 1.
///
/// `None` as for [`attention_similarity`], and when no pixel is covered.
pub fn aligned_attention_similarity(
    original: &[f32],
    variant: &[f32],
    warp: &Warp,
    width: u32,
    height: u32,
) -> Option<f64> {
    if original.len() != variant.len() || !original.iter().chain(variant).all(|x| x.is_finite()) {
        return None;
    }
    let moved = warp.apply_f32(&upsample_attention(original, width, height)?, width, height)?;
    let mine = upsample_attention(variant, width, height)?;
    // Two passes over the covered pixels, without collecting them: their ranges, then the
    // mean squared difference of the normalised values (the same f64 operations, in the
    // same order, as normalising collected copies).
    let covered =
        || moved.values.iter().zip(&mine).zip(&moved.covered).filter(|(_, c)| **c).map(|((&a, &b), _)| (a, b));
    let (mut a_range, mut b_range, mut n) = (Range::EMPTY, Range::EMPTY, 0usize);
    for (a, b) in covered() {
        a_range.include(f64::from(a));
        b_range.include(f64::from(b));
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let squares = covered().map(|(a, b)| {
        let d = a_range.normalise(f64::from(a)) - b_range.normalise(f64::from(b));
        d * d
    });
    let mse = squares.sum::<f64>() / n as f64;
    let score = 1.0 / (1.0 + mse);
    score.is_finite().then_some(score)
}

/// The smallest and largest of some values, for min-max normalisation.
#[derive(Clone, Copy)]
struct Range {
    lo: f64,
    hi: f64,
}

impl Range {
    const EMPTY: Self = Self { lo: f64::INFINITY, hi: f64::NEG_INFINITY };

    fn include(&mut self, v: f64) {
        self.lo = f64::min(self.lo, v);
        self.hi = f64::max(self.hi, v);
    }

    /// Into [0, 1] when the maximum exceeds the minimum (else as it is).
    fn normalise(&self, v: f64) -> f64 {
        if self.hi > self.lo { (v - self.lo) / (self.hi - self.lo) } else { v }
    }
}

fn grid_side(len: usize) -> Option<usize> {
    let g = (len as f64).sqrt().round() as usize;
    (g > 0 && g * g == len).then_some(g)
}

/// The source taps of every destination column and row of a `g x g` grid, and the
/// exponent of the lowest set bit over their non-zero fractions (`i32::MAX` when all
/// are 0).
#[derive(Debug, Clone)]
struct Taps {
    g: usize,
    xs: Vec<(usize, f32)>,
    ys: Vec<(usize, f32)>,
    x_low: i32,
    y_low: i32,
}

impl Taps {
    fn new(g: usize, w: usize, h: usize) -> Self {
        let (xs, ys) = (linear_taps(g, w), linear_taps(g, h));
        let low = |taps: &[(usize, f32)]| taps.iter().map(|&(_, t)| lowest_bit(t)).min().unwrap_or(i32::MAX);
        Self { g, x_low: low(&xs), y_low: low(&ys), xs, ys }
    }
}

/// For each destination index: the left source index and the f32 fraction towards the
/// next one (0 at the clamped borders, where only the left sample is used).
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let s = f.floor();
            if s < 0.0 {
                (0, 0.0)
            } else if s as usize >= src - 1 {
                (src - 1, 0.0)
            } else {
                (s as usize, (f - s) as f32)
            }
        })
        .collect()
}

/// A grid after the horizontal pass, ready to produce any destination row.
struct Upsampled {
    w: usize,
    /// `g` rows of `w` values.
    rows: Vec<f32>,
    /// Per source row pair `s`: `rows[s + 1] - rows[s]` and `rows[s]` widened to f64,
    /// present when every vertical `fma` is exact in f64 (see [`fma_is_exact_in_f64`]).
    wide: Option<(Vec<f64>, Vec<f64>)>,
}

impl Upsampled {
    fn new(grid: &[f32], taps: &Taps) -> Self {
        let (g, w) = (taps.g, taps.xs.len());
        let exact = fma_is_exact_in_f64(grid, taps.x_low);
        let mut rows = vec![0.0f32; g * w];
        for (src, dst) in grid.chunks_exact(g).zip(rows.chunks_exact_mut(w)) {
            for (out, &(s, t)) in dst.iter_mut().zip(&taps.xs) {
                *out = if t == 0.0 { src[s] } else { lerp(src[s], src[s + 1], t, exact) };
            }
        }
        let wide = fma_is_exact_in_f64(&rows, taps.y_low).then(|| {
            let pairs = g - 1;
            let mut diff = Vec::with_capacity(pairs * w);
            let mut base = Vec::with_capacity(pairs * w);
            for s in 0..pairs {
                let (r0, r1) = (&rows[s * w..(s + 1) * w], &rows[(s + 1) * w..(s + 2) * w]);
                diff.extend(r0.iter().zip(r1).map(|(&s0, &s1)| f64::from(s1 - s0)));
                base.extend(r0.iter().map(|&s0| f64::from(s0)));
            }
            (diff, base)
        });
        Self { w, rows, wide }
    }

    /// Destination row with source row `s` and fraction `t`, into `dst` (`w` long).
    fn row(&self, s: usize, t: f32, dst: &mut [f32]) {
        let w = self.w;
        let r0 = &self.rows[s * w..(s + 1) * w];
        if t == 0.0 {
            dst.copy_from_slice(r0);
        } else if let Some((diff, base)) = &self.wide {
            let t = f64::from(t);
            let (d, b, dst) = (&diff[s * w..(s + 1) * w], &base[s * w..(s + 1) * w], &mut dst[..w]);
            for i in 0..w {
                dst[i] = (d[i] * t + b[i]) as f32;
            }
        } else {
            let r1 = &self.rows[(s + 1) * w..(s + 2) * w];
            for ((o, &s0), &s1) in dst.iter_mut().zip(r0).zip(r1) {
                *o = (s1 - s0).mul_add(t, s0);
            }
        }
    }

    /// `(lo, 1 / (hi - lo))` of the whole map when `hi > lo`, else `(0, 1)` (a constant
    /// map is left as it is). Along a column every destination row is
    /// `round(s0 + t * (s1 - s0))`, monotone in `t`, so the extremes lie on the first
    /// and last row of each source row pair.
    fn normaliser(&self, runs: &[(usize, f32, usize)]) -> (f64, f64) {
        let mut row = vec![0.0f32; self.w];
        let (mut lo, mut hi) = ([f32::INFINITY; 4], [f32::NEG_INFINITY; 4]);
        for (i, &(s, t, _)) in runs.iter().enumerate() {
            let first = i == 0 || runs[i - 1].0 != s;
            let last = i + 1 == runs.len() || runs[i + 1].0 != s;
            if first || last {
                self.row(s, t, &mut row);
                let chunks = row.chunks_exact(4);
                for &v in chunks.remainder() {
                    lo[0] = lo[0].min(v);
                    hi[0] = hi[0].max(v);
                }
                for c in chunks {
                    for l in 0..4 {
                        lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
                        hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
                    }
                }
            }
        }
        let lo = f64::from(lo.into_iter().fold(f32::INFINITY, f32::min));
        let hi = f64::from(hi.into_iter().fold(f32::NEG_INFINITY, f32::max));
        if hi > lo { (lo, 1.0 / (hi - lo)) } else { (0.0, 1.0) }
    }
}

/// `sum((a - (b - lo) * inv)^2)` in f64 for a normalised row `a`, eight partial sums
/// so the loop vectorises. `inv` multiplies where numpy divides by `hi - lo`: within
/// an ulp per pixel.
fn squared_difference(a: &[f64], b: &[f32], (lo, inv): (f64, f64)) -> f64 {
    let term = |x: f64, y: f32| {
        let d = x - (f64::from(y) - lo) * inv;
        d * d
    };
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| term(x, y)).sum();
    let mut acc = [0.0; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += term(x[l], y[l]);
        }
    }
    acc.chunks_exact(2).map(|p| p[0] + p[1]).sum::<f64>() + tail
}

/// `fma(s1 - s0, t, s0)` in f32; through f64 when `exact` says that is the same.
fn lerp(s0: f32, s1: f32, t: f32, exact: bool) -> f32 {
    if exact { (f64::from(s1 - s0) * f64::from(t) + f64::from(s0)) as f32 } else { (s1 - s0).mul_add(t, s0) }
}

/// Whether `(s1 - s0) * t + s0`, for any `s0`, `s1` among `values` and any fraction
/// `t` whose lowest set bit is at least `2^t_low`, is exactly representable in f64:
/// then evaluating it in f64 (the product of two f32 is exact) and rounding to f32
/// rounds once, as the f32 `fma` does, without the libm call that `mul_add` is on
/// hardware without FMA. Every value is a multiple of the ulp `2^v_low` of the
/// smallest non-zero `|v|` (and so is the rounded `s1 - s0`), so the exact result is a
/// multiple of `2^(v_low + t_low)` below `3 max|v| < 2^(top + 3)`, which f64 holds
/// exactly when `top + 3 - (v_low + t_low) <= 53`. For 7 x 7 grids of attention
/// weights upsampled to 224 x 224 (`t` a multiple of 1/64) it holds unless the
/// weights span more than about six decades.
fn fma_is_exact_in_f64(values: &[f32], t_low: i32) -> bool {
    let (mut small, mut large) = ([f32::INFINITY; 4], [0.0f32; 4]);
    let chunks = values.chunks_exact(4);
    let mut finite = chunks.remainder().iter().all(|v| v.is_finite());
    for &v in chunks.remainder() {
        let a = v.abs();
        small[0] = if a > 0.0 && a < small[0] { a } else { small[0] };
        large[0] = large[0].max(a);
    }
    for c in chunks {
        for l in 0..4 {
            let a = c[l].abs();
            small[l] = if a > 0.0 && a < small[l] { a } else { small[l] };
            large[l] = if a > large[l] { a } else { large[l] };
        }
    }
    let small = small.into_iter().fold(f32::INFINITY, f32::min);
    let large = large.into_iter().fold(0.0f32, f32::max);
    finite &= large.is_finite();
    if !finite {
        return false;
    }
    // No non-zero value (every result is 0) or no non-zero fraction (never used).
    if small == f32::INFINITY || t_low == i32::MAX {
        return true;
    }
    let (v_low, top) = (ulp_exponent(small), top_bit(large));
    i64::from(top) + 3 - (i64::from(v_low) + i64::from(t_low)) <= 53
}

/// `|v| = sig * 2^e` exactly, for finite non-zero `v`.
fn significand(v: f32) -> (u32, i32) {
    let bits = v.to_bits() & 0x7fff_ffff;
    let (field, mantissa) = ((bits >> 23) as i32, bits & 0x7f_ffff);
    if field == 0 { (mantissa, -149) } else { (mantissa | 0x80_0000, field - 150) }
}

/// Exponent of the lowest set bit of `v` (`i32::MAX` for 0).
fn lowest_bit(v: f32) -> i32 {
    if v == 0.0 {
        return i32::MAX;
    }
    let (sig, e) = significand(v);
    e + sig.trailing_zeros() as i32
}

/// Exponent of the ulp of `v` (non-zero): every f32 of at least its magnitude is a
/// multiple of it.
fn ulp_exponent(v: f32) -> i32 {
    significand(v).1
}

/// Exponent of the highest set bit of `v` (non-zero): `|v| < 2^(top + 1)`.
fn top_bit(v: f32) -> i32 {
    let (sig, e) = significand(v);
    e + 31 - sig.leading_zeros() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(attention_similarity(&[0.5; 49], &[0.5; 50], 224, 224), None);
        assert_eq!(attention_similarity(&[0.5; 48], &[0.5; 48], 224, 224), None);
        assert_eq!(attention_similarity(&[], &[], 224, 224), None);
        assert_eq!(attention_similarity(&[0.5; 49], &[0.5; 49], 0, 224), None);
        let mut nan = [0.5f32; 49];
        nan[3] = f32::NAN;
        assert_eq!(attention_similarity(&nan, &[0.5; 49], 224, 224), None);
        assert_eq!(attention_similarity(&[0.5; 49], &nan, 224, 224), None);
        assert!(AttentionMap::new(&nan, 224, 224).is_none());
        let map = AttentionMap::new(&[0.5; 49], 224, 224).unwrap();
        assert_eq!(map.similarity(&[0.5; 50]), None);
        assert_eq!(map.similarity(&nan), None);
        assert_eq!(map.similarity(&[0.5; 49]), Some(1.0));
    }

    #[test]
    fn identical_and_constant_maps() {
        let a: Vec<f32> = (0..49).map(|i| i as f32 / 49.0).collect();
        assert_eq!(attention_similarity(&a, &a, 224, 224), Some(1.0));
        assert_eq!(attention_similarity(&[0.02; 49], &[0.02; 49], 61, 45), Some(1.0));
        let s = attention_similarity(&a, &[0.02; 49], 224, 224).unwrap();
        assert!(s > 0.0 && s < 1.0);
    }

    /// The f64 shortcut and the extreme-row normaliser give what the plain
    /// `mul_add` and a full min/max scan give, bit for bit.
    #[test]
    fn shortcut_matches_plain_fma() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut shortcuts = 0;
        for case in 0..60 {
            let g = [7, 7, 14, 3, 1][case % 5];
            let mut grid: Vec<f32> = (0..g * g).map(|_| next()).collect();
            if case % 3 == 2 {
                // Values far apart in magnitude, where f64 cannot hold every exact result.
                grid.iter_mut().step_by(2).for_each(|v| *v *= 1e-30);
                grid.iter_mut().step_by(5).for_each(|v| *v *= -1e20);
            }
            for (w, h) in [(224, 224), (61, 45), (448, 96)] {
                let taps = Taps::new(g, w, h);
                let (xs, ys) = (&taps.xs, &taps.ys);
                let map = Upsampled::new(&grid, &taps);
                shortcuts += usize::from(map.wide.is_some());
                let mut plain = vec![0.0f32; w * h];
                for (y, &(sy, ty)) in ys.iter().enumerate() {
                    for (x, &(sx, tx)) in xs.iter().enumerate() {
                        let at = |r: usize| {
                            let row = &grid[r * g..(r + 1) * g];
                            if tx == 0.0 { row[sx] } else { (row[sx + 1] - row[sx]).mul_add(tx, row[sx]) }
                        };
                        let (s0, s1) = (at(sy), at((sy + 1).min(g - 1)));
                        plain[y * w + x] = if ty == 0.0 { s0 } else { (s1 - s0).mul_add(ty, s0) };
                    }
                }
                let fast = upsample_attention(&grid, w as u32, h as u32).unwrap();
                assert!(fast.iter().zip(&plain).all(|(a, b)| a.to_bits() == b.to_bits()), "case {case} {w}x{h}");
                let lo = plain.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = plain.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let runs: Vec<(usize, f32, usize)> = ys.iter().map(|&(s, t)| (s, t, 1)).collect();
                let (lo, hi) = (f64::from(lo), f64::from(hi));
                let want = if hi > lo { (lo, 1.0 / (hi - lo)) } else { (0.0, 1.0) };
                assert_eq!(map.normaliser(&runs), want, "case {case} {w}x{h}");
            }
        }
        assert!(shortcuts > 60, "the f64 shortcut was taken {shortcuts} times");
        // The pipeline's case: 7 x 7 weights spanning five decades, to 224 x 224.
        let grid: Vec<f32> = (0..49).map(|i| 0.5 * 10f32.powf(-5.0 * i as f32 / 48.0)).collect();
        assert!(Upsampled::new(&grid, &Taps::new(7, 224, 224)).wide.is_some());
    }

    #[test]
    fn one_by_one_grid_is_constant() {
        assert_eq!(upsample_attention(&[0.25], 3, 2), Some(vec![0.25; 6]));
    }
}
