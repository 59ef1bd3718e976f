//! SSIM as scikit-image computes it with a Gaussian window, restricted to the pixels
//! whose window lies inside the image (the only ones its mean keeps).
//!
//! The separable filter runs along each input row first, into a ring of the last 12
//! filtered rows, then down the columns two output rows at a time (the 12 rows loaded
//! once for both), and the two rows' SSIM terms share one division. Its taps are fused
//! multiply-adds (`f64::mul_add`) in one fixed order, and every other step is one IEEE
//! operation in a fixed order, so every CPU computes the same bits: the portable code
//! one column at a time, the AVX2 code (on CPUs that have it) four columns per vector
//! with the very same operations in each lane.

use clipshift_simd::dispatch;

/// Window side: `2 * int(3.5 * 1.5 + 0.5) + 1`.
pub(crate) const WIN: usize = 11;
const RADIUS: usize = WIN / 2;
/// Filtered input rows the column pass reads for two output rows.
const RING: usize = WIN + 1;
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// Blocks of four columns per strip. The AVX2 code goes down the image in strips of
/// 32 columns, so that a strip's ring of filtered rows (18 KiB) stays in the L1 cache.
const STRIP: usize = 8;

/// The original's side of every SSIM term on the valid region: its filtered mean `ux`
/// and its variance `f(x * x) - ux * ux`, four columns per entry (the valid width
/// padded to whole blocks; the padding is unused). The entries go strip by strip
/// ([`STRIP`] blocks), row by row within a strip, so that the AVX2 score, which goes
/// down one strip at a time, reads them in order (in row-major order it waited on
/// memory: 10% slower).
#[derive(Debug, Clone)]
pub(crate) struct SsimSide {
    valid: usize,
    rows: usize,
    blocks: usize,
    /// `[ux, variance]` of four columns.
    data: Vec<[[f64; 4]; 2]>,
}

impl SsimSide {
    pub(crate) fn new(gray: &[f64], w: usize, h: usize) -> Self {
        side(gray, w, h)
    }

    /// All zeros, sized for a `w x h` image.
    fn empty(w: usize, h: usize) -> Self {
        let (valid, rows) = (w - 2 * RADIUS, h - 2 * RADIUS);
        let blocks = valid.div_ceil(4);
        Self { valid, rows, blocks, data: vec![[[0.0; 4]; 2]; blocks * rows] }
    }

    /// Every strip as `(first block, blocks)`, left to right.
    fn strips(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let blocks = self.blocks;
        (0..blocks).step_by(STRIP).map(move |first| (first, strip_blocks(blocks, first)))
    }

    /// The entry of valid row `r`, block `b`.
    fn at(&self, r: usize, b: usize) -> usize {
        let first = b / STRIP * STRIP;
        first * self.rows + r * strip_blocks(self.blocks, first) + b - first
    }

    /// The entries of valid row `r` in the strip from block `first` on.
    fn strip_row(&self, r: usize, first: usize) -> &[[[f64; 4]; 2]] {
        let at = self.at(r, first);
        &self.data[at..at + strip_blocks(self.blocks, first)]
    }

    /// `(ux, variance)` at valid pixel `(r, c)`.
    #[inline(always)]
    fn get(&self, r: usize, c: usize) -> (f64, f64) {
        let e = &self.data[self.at(r, c / 4)];
        (e[0][c % 4], e[1][c % 4])
    }

    /// Stores valid pixel `(r, c)` from its filtered `f(x)` and `f(x * x)`.
    #[inline(always)]
    fn set(&mut self, r: usize, c: usize, ux: f64, uxx: f64) {
        let at = self.at(r, c / 4);
        let e = &mut self.data[at];
        (e[0][c % 4], e[1][c % 4]) = (ux, uxx - ux * ux);
    }
}

/// The blocks of the strip from block `first` on, of `blocks` in all: [`STRIP`], or
/// fewer in the last strip.
fn strip_blocks(blocks: usize, first: usize) -> usize {
    (blocks - first).min(STRIP)
}

// Both filter the third plane `f(a * b)` too, as `score` does (one code path for both),
// and ignore it. `score(x, x)` is exactly 1 because the side's `f(x * x)` and the
// score's `f(x * y)` at `y = x` are the same operations on the same values.
dispatch!(fn side(gray: &[f64], w: usize, h: usize) -> SsimSide {
    avx2_fma() => avx2::side,
    _ => portable::side,
});

dispatch!(
    /// Mean SSIM of `gy` against the original `gx` whose side is `x`.
    pub(crate) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
        avx2_fma() => avx2::score,
        _ => portable::score,
    }
);

/// Output rows `r..r + n` for every step down the `vh` valid rows: two at a time, the
/// last one alone when their number is odd.
fn row_pairs(vh: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..vh).step_by(2).map(move |r| (r, (vh - r).min(2)))
}

/// The input rows that output rows `r..r + n` need beyond those of the steps before.
fn new_rows(r: usize, n: usize) -> std::ops::Range<usize> {
    let first = if r == 0 { 0 } else { r + WIN - 1 };
    first..r + WIN - 1 + n
}

/// The mean of the per-column sums of the valid columns, summed in column order.
fn mean(sums: &[f64], x: &SsimSide) -> f64 {
    sums[..x.valid].iter().sum::<f64>() / (x.valid * x.rows) as f64
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

/// `t[5][c] * k[0] + sum_j (t[5 - j][c] + t[5 + j][c]) * k[j]`, outermost pair first.
#[inline(always)]
fn down_at(k: &[f64; RADIUS + 1], t: &[&[f64]], c: usize) -> f64 {
    let mut acc = t[RADIUS][c] * k[0];
    for j in (1..=RADIUS).rev() {
        acc = (t[RADIUS - j][c] + t[RADIUS + j][c]).mul_add(k[j], acc);
    }
    acc
}

/// One pixel's SSIM term as `(numerator, denominator)` from the original's
/// `(ux, variance)` and the variant's `[uy, f(y * y), f(x * y)]`, grouped as
/// scikit-image groups it (so identical images give exactly 1).
#[inline(always)]
fn term((ux, vx): (f64, f64), [uy, uyy, uxy]: [f64; 3]) -> (f64, f64) {
    let (xx, xy, yy) = (ux * ux, ux * uy, uy * uy);
    let num = (2.0 * xy + C1) * (2.0 * (uxy - xy) + C2);
    let den = ((xx + yy) + C1) * ((vx + (uyy - yy)) + C2);
    (num, den)
}

/// One column at a time: the reference for the bits.
mod portable {
    use super::{RADIUS, RING, SsimSide, Taps, WIN, along_at, down_at, new_rows, term};

    pub(super) fn side(gray: &[f64], w: usize, h: usize) -> SsimSide {
        let mut side = SsimSide::empty(w, h);
        stream(gray, gray, w, h, |r, rows| {
            for (o, row) in rows.chunks_exact(3 * side.valid).enumerate() {
                let (ux, uxx) = row.split_at(side.valid);
                for c in 0..side.valid {
                    side.set(r + o, c, ux[c], uxx[c]);
                }
            }
        });
        side
    }

    pub(super) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
        let mut sums = vec![0.0; x.valid];
        stream(gy, gx, w, h, |r, rows| {
            let side = |o: usize, c: usize| x.get(r + o, c);
            let y = |o: usize, c: usize| std::array::from_fn(|p| rows[(3 * o + p) * x.valid + c]);
            for (c, s) in sums.iter_mut().enumerate() {
                let (n0, d0) = term(side(0, c), y(0, c));
                *s += if rows.len() == 3 * x.valid {
                    n0 / d0
                } else {
                    let (n1, d1) = term(side(1, c), y(1, c));
                    (n0 * d1 + n1 * d0) / (d0 * d1)
                };
            }
        });
        super::mean(&sums, x)
    }

    /// `gaussian_filter(., 1.5, truncate=3.5)` of the planes `a`, `a * a` and `a * b`
    /// on the valid region, handed to `rows(r, filtered)` for the valid rows `r..r + n`
    /// of each of [`super::row_pairs`], laid out `[row][plane][column]`.
    fn stream(a: &[f64], b: &[f64], w: usize, h: usize, mut rows: impl FnMut(usize, &[f64])) {
        let taps = Taps::new();
        let (vw, vh) = (w - 2 * RADIUS, h - 2 * RADIUS);
        let (mut sq, mut prod) = (vec![0.0; w], vec![0.0; w]);
        // Slot `i % RING` holds input row i filtered along, planes `[a | a * a | a * b]`.
        let mut ring = vec![0.0; RING * 3 * vw];
        let mut out = vec![0.0; 2 * 3 * vw];
        for (r, n) in super::row_pairs(vh) {
            for i in new_rows(r, n) {
                let (a, b) = (&a[i * w..(i + 1) * w], &b[i * w..(i + 1) * w]);
                for c in 0..w {
                    (sq[c], prod[c]) = (a[c] * a[c], a[c] * b[c]);
                }
                let slot = &mut ring[i % RING * 3 * vw..][..3 * vw];
                for (plane, src) in slot.chunks_exact_mut(vw).zip([a, &sq, &prod]) {
                    for (c, o) in plane.iter_mut().enumerate() {
                        *o = along_at(&taps.along, src, c);
                    }
                }
            }
            let window: Vec<&[f64]> = (r..r + WIN - 1 + n).map(|i| &ring[i % RING * 3 * vw..][..3 * vw]).collect();
            for (o, row) in out.chunks_exact_mut(3 * vw).take(n).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = down_at(&taps.down, &window[o..o + WIN], c);
                }
            }
            rows(r, &out[..n * 3 * vw]);
        }
    }
}

/// Four columns per AVX2 vector, each lane doing exactly the portable operations.
///
/// Filtered rows live in a ring of blocks of four columns. Each row is stored twice,
/// in slots `i % 12` and `i % 12 + 12` of its block's 24, so that any 12 consecutive
/// rows are 12 consecutive slots: the column pass reads them at fixed offsets from one
/// address. The valid width is padded to whole blocks (the inputs with zeros); the
/// padded columns are computed and then ignored. The image goes in strips of columns
/// from top to bottom, each strip's ring small enough for the L1 cache.
///
/// Vectors never pass through `array::map` or other generic code compiled without
/// AVX2: such calls are not inlined and move every vector through memory (measured:
/// one `map` over three planes made the whole score 20% slower).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_div_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_permute2f128_pd, _mm256_set1_pd,
        _mm256_setzero_pd, _mm256_shuffle_pd, _mm256_sub_pd,
    };

    use super::{C1, C2, RADIUS, RING, STRIP, SsimSide, Taps, WIN, new_rows};

    type Block = [f64; 4];
    /// A ring entry: a vector, so 32-byte aligned and never split across cache lines.
    type Slot = __m256d;
    const SLOTS: usize = 2 * RING;

    #[inline(always)]
    fn v(b: &Block) -> __m256d {
        bytemuck::cast(*b)
    }

    #[inline(always)]
    fn put(x: __m256d) -> Block {
        bytemuck::cast(x)
    }

    struct Rings {
        w: usize,
        /// The strip's first block and its number of blocks.
        first: usize,
        blocks: usize,
        along: [__m256d; RADIUS + 1],
        down: [__m256d; RADIUS + 1],
        /// The strip's part of one input row of `a` and `b` padded with zeros, for strips
        /// whose source runs past the image: `blocks + 3` blocks, as the row filter of
        /// block `i` reads blocks `i..i + 4`.
        src: [Vec<Block>; 2],
        /// `[plane][block]`: planes `f(a)`, `f(a * a)`, `f(a * b)`.
        ring: Vec<[Slot; SLOTS]>,
    }

    impl Rings {
        #[target_feature(enable = "avx2,fma")]
        fn new(w: usize) -> Self {
            let taps = Taps::new();
            Self {
                w,
                first: 0,
                blocks: 0,
                along: splat(&taps.along),
                down: splat(&taps.down),
                src: std::array::from_fn(|_| vec![[0.0; 4]; STRIP + 3]),
                ring: vec![[_mm256_setzero_pd(); SLOTS]; 3 * STRIP],
            }
        }

        /// Filters along the strip's part of the input rows that output rows `r..r + n`
        /// need and that are not in the ring yet.
        #[target_feature(enable = "avx2,fma")]
        fn advance(&mut self, a: &[f64], b: &[f64], r: usize, n: usize) {
            let (w, blocks) = (self.w, self.blocks);
            let (from, need) = (4 * self.first, 4 * (blocks + 3));
            for i in new_rows(r, n) {
                let rows = [&a[i * w..(i + 1) * w], &b[i * w..(i + 1) * w]];
                let [pa, pb] = &mut self.src;
                // The strip's source blocks straight from the rows, or padded copies at the right edge.
                let [a, b]: [&[Block]; 2] = if from + need <= w {
                    [rows[0][from..from + need].as_chunks().0, rows[1][from..from + need].as_chunks().0]
                } else {
                    for (pad, row) in [(&mut *pa, rows[0]), (&mut *pb, rows[1])] {
                        let pad = &mut pad.as_flattened_mut()[..need];
                        pad[..w - from].copy_from_slice(&row[from..]);
                        pad[w - from..].fill(0.0);
                    }
                    [&pa[..blocks + 3], &pb[..blocks + 3]]
                };
                let slot = i % RING;
                let ring = &mut self.ring;
                along_blocks::<0>(&self.along, a, b, &mut ring[..blocks], slot);
                along_blocks::<1>(&self.along, a, b, &mut ring[STRIP..STRIP + blocks], slot);
                along_blocks::<2>(&self.along, a, b, &mut ring[2 * STRIP..2 * STRIP + blocks], slot);
            }
        }

        /// Plane `p` in block `b` of the strip down the columns: output rows `r..r + n`
        /// (`n` is 1 or 2) from the 10 + `n` filtered rows from input row `r` on.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn filtered(&self, p: usize, b: usize, r: usize, n: usize) -> [__m256d; 2] {
            let slots = &self.ring[p * STRIP + b][r % RING..];
            if n == 2 {
                down::<RING>(&self.down, slots[..RING].try_into().expect("12 slots"))
            } else {
                down::<WIN>(&self.down, slots[..WIN].try_into().expect("11 slots"))
            }
        }
    }

    /// Every block of one row of plane `P` (`a`, `a * a`, `a * b`) filtered along, into
    /// `slot` and `slot + 12` of `ring`: a sliding window of source blocks, so each block
    /// costs one new source block and three shuffles to make the shifted neighbours,
    /// instead of eleven unaligned loads.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn along_blocks<const P: usize>(
        k: &[__m256d; RADIUS + 1],
        a: &[Block],
        b: &[Block],
        ring: &mut [[Slot; SLOTS]],
        slot: usize,
    ) {
        let n = ring.len();
        let (a, b) = (&a[..n + 3], &b[..n + 3]);
        let (mut x, mut y, mut z) = (source::<P>(a, b, 0), source::<P>(a, b, 1), source::<P>(a, b, 2));
        let (mut xy, mut yz) = (shifts(x, y), shifts(y, z));
        for (i, out) in ring.iter_mut().enumerate() {
            let next = source::<P>(a, b, i + 3);
            let zn = shifts(z, next);
            // Source values 4i + j for j = 0..11.
            let s = [x, xy[0], xy[1], xy[2], y, yz[0], yz[1], yz[2], z, zn[0], zn[1]];
            let mut acc = s[RADIUS];
            for j in (1..=RADIUS).rev() {
                acc = _mm256_fmadd_pd(_mm256_add_pd(s[RADIUS - j], s[RADIUS + j]), k[j], acc);
            }
            (out[slot], out[slot + RING]) = (acc, acc);
            (x, y, z, xy, yz) = (y, z, next, yz, zn);
        }
    }

    /// Block `i` of plane `P`: `a`, `a * a` or `a * b`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn source<const P: usize>(a: &[Block], b: &[Block], i: usize) -> __m256d {
        let x = v(&a[i]);
        match P {
            0 => x,
            1 => _mm256_mul_pd(x, x),
            _ => _mm256_mul_pd(x, v(&b[i])),
        }
    }

    /// `[x1 x2 x3 y0]`, `[x2 x3 y0 y1]`, `[x3 y0 y1 y2]`: the values between blocks `x` and `y`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn shifts(x: __m256d, y: __m256d) -> [__m256d; 3] {
        let mid = _mm256_permute2f128_pd::<0x21>(x, y);
        [_mm256_shuffle_pd::<0b0101>(x, mid), mid, _mm256_shuffle_pd::<0b0101>(mid, y)]
    }

    /// The `R - 10` output rows down a block's `R` filtered rows (each loaded once).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn down<const R: usize>(k: &[__m256d; RADIUS + 1], rows: &[Slot; R]) -> [__m256d; 2] {
        let mut out = [_mm256_setzero_pd(); 2];
        for (o, r) in out.iter_mut().zip(rows.windows(WIN)) {
            let mut acc = _mm256_mul_pd(r[RADIUS], k[0]);
            for j in (1..=RADIUS).rev() {
                acc = _mm256_fmadd_pd(_mm256_add_pd(r[RADIUS - j], r[RADIUS + j]), k[j], acc);
            }
            *o = acc;
        }
        out
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
    pub(super) fn side(gray: &[f64], w: usize, h: usize) -> SsimSide {
        let mut rings = Rings::new(w);
        let mut side = SsimSide::empty(w, h);
        for (first, blocks) in side.strips() {
            (rings.first, rings.blocks) = (first, blocks);
            for (r, n) in super::row_pairs(h - 2 * RADIUS) {
                rings.advance(gray, gray, r, n);
                for b in 0..blocks {
                    let [ux, uxx] = [rings.filtered(0, b, r, n), rings.filtered(1, b, r, n)];
                    for o in 0..n {
                        // SsimSide::set's operations.
                        let at = side.at(r + o, first + b);
                        let var = _mm256_sub_pd(uxx[o], _mm256_mul_pd(ux[o], ux[o]));
                        side.data[at] = [put(ux[o]), put(var)];
                    }
                }
            }
        }
        side
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
        let mut rings = Rings::new(w);
        let mut sums = vec![[0.0; 4]; x.blocks];
        for (first, blocks) in x.strips() {
            (rings.first, rings.blocks) = (first, blocks);
            for (r, n) in super::row_pairs(h - 2 * RADIUS) {
                rings.advance(gy, gx, r, n);
                let side = [x.strip_row(r, first), x.strip_row(r + n - 1, first)];
                for (b, sum) in sums[first..first + blocks].iter_mut().enumerate() {
                    let y = [rings.filtered(0, b, r, n), rings.filtered(1, b, r, n), rings.filtered(2, b, r, n)];
                    let mut nd = [(_mm256_setzero_pd(), _mm256_setzero_pd()); 2];
                    for (o, nd) in nd.iter_mut().enumerate().take(n) {
                        let x = &side[o][b];
                        *nd = term([v(&x[0]), v(&x[1])], [y[0][o], y[1][o], y[2][o]]);
                    }
                    let [(n0, d0), (n1, d1)] = nd;
                    let q = if n == 2 {
                        let num = _mm256_add_pd(_mm256_mul_pd(n0, d1), _mm256_mul_pd(n1, d0));
                        _mm256_div_pd(num, _mm256_mul_pd(d0, d1))
                    } else {
                        _mm256_div_pd(n0, d0)
                    };
                    *sum = put(_mm256_add_pd(v(sum), q));
                }
            }
        }
        super::mean(sums.as_flattened(), x)
    }

    /// [`super::term`] four columns wide.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn term([ux, vx]: [__m256d; 2], [uy, uyy, uxy]: [__m256d; 3]) -> (__m256d, __m256d) {
        let (two, c1, c2) = (_mm256_set1_pd(2.0), _mm256_set1_pd(C1), _mm256_set1_pd(C2));
        let (xx, xy, yy) = (_mm256_mul_pd(ux, ux), _mm256_mul_pd(ux, uy), _mm256_mul_pd(uy, uy));
        let a1 = _mm256_add_pd(_mm256_mul_pd(two, xy), c1);
        let a2 = _mm256_add_pd(_mm256_mul_pd(two, _mm256_sub_pd(uxy, xy)), c2);
        let b1 = _mm256_add_pd(_mm256_add_pd(xx, yy), c1);
        let b2 = _mm256_add_pd(_mm256_add_pd(vx, _mm256_sub_pd(uyy, yy)), c2);
        (_mm256_mul_pd(a1, a2), _mm256_mul_pd(b1, b2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seed: usize, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|i| ((i * 37 + seed * 101) % 251) as f64 * scale).collect()
    }

    /// The dispatched side and score give the portable bits, at sizes with and without
    /// padded columns, and an odd or even number of valid rows.
    #[test]
    fn dispatched_ssim_equals_the_portable_code_exactly() {
        for (w, h) in [(11, 11), (12, 16), (14, 13), (37, 23), (40, 12), (224, 224)] {
            let (gx, gy) = (values(1, w * h, 0.91), values(2, w * h, 1.03));
            let (fast, slow) = (SsimSide::new(&gx, w, h), portable::side(&gx, w, h));
            let valid = |s: &SsimSide| -> Vec<[u64; 2]> {
                let pixels = (0..s.rows).flat_map(|r| (0..s.valid).map(move |c| (r, c)));
                pixels.map(|(r, c)| s.get(r, c)).map(|(ux, var)| [ux.to_bits(), var.to_bits()]).collect()
            };
            assert_eq!(valid(&fast), valid(&slow), "side {w}x{h}");
            let got = score(&fast, &gx, &gy, w, h);
            assert_eq!(got.to_bits(), portable::score(&slow, &gx, &gy, w, h).to_bits(), "score {w}x{h}");
            assert!(got > -1.0 && got < 1.0, "{got}");
        }
    }

    /// Every valid block of every row has its own entry, and a strip's row is one run
    /// of entries in block order (what the AVX2 score reads), for widths with one
    /// strip, whole strips, and a last strip cut short.
    #[test]
    fn side_layout_gives_each_block_one_entry_strip_by_strip() {
        for (w, h) in [(11, 11), (42, 13), (74, 12), (224, 224)] {
            let side = SsimSide::empty(w, h);
            let mut seen = vec![false; side.data.len()];
            for r in 0..side.rows {
                for b in 0..side.blocks {
                    let at = side.at(r, b);
                    assert!(!std::mem::replace(&mut seen[at], true), "{w}x{h}: row {r} block {b} shares entry {at}");
                }
            }
            assert!(seen.iter().all(|&s| s), "{w}x{h}: entries left unused");
            let strips: Vec<_> = side.strips().collect();
            assert_eq!(strips.iter().map(|&(_, n)| n).sum::<usize>(), side.blocks, "{w}x{h}");
            for (first, n) in strips {
                for r in 0..side.rows {
                    let run = side.strip_row(r, first);
                    assert_eq!(run.len(), n);
                    assert_eq!(side.at(r, first) + n - 1, side.at(r, first + n - 1), "{w}x{h}: row {r}");
                }
                // Rows of a strip follow each other: the score reads the strip in order.
                if side.rows > 1 {
                    assert_eq!(side.at(1, first), side.at(0, first) + n, "{w}x{h}: strip {first}");
                }
            }
        }
    }

    #[test]
    fn identical_images_score_exactly_one_at_odd_sizes() {
        for (w, h) in [(11, 11), (37, 23), (12, 16), (40, 13)] {
            let g = values(7, w * h, 1.01);
            let side = SsimSide::new(&g, w, h);
            assert_eq!(score(&side, &g, &g, w, h), 1.0, "{w}x{h}");
            assert_eq!(portable::score(&side, &g, &g, w, h), 1.0, "{w}x{h}");
        }
    }
}
