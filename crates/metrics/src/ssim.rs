//! SSIM as scikit-image computes it with a Gaussian window, restricted to the pixels
//! whose window lies inside the image (the only ones its mean keeps).

use clipshift_simd::dispatch;

/// Window side: `2 * int(3.5 * 1.5 + 0.5) + 1`.
pub(crate) const WIN: usize = 11;
const RADIUS: usize = WIN / 2;
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// The original's side of every SSIM term on the valid region: its filtered mean
/// `ux`, `ux^2 + C1` and `(filtered square - ux^2) + C2`.
#[derive(Debug, Clone)]
pub(crate) struct SsimSide {
    mu: Vec<f64>,
    b1: Vec<f64>,
    b2: Vec<f64>,
}

impl SsimSide {
    pub(crate) fn new(gray: &[f64], w: usize, h: usize) -> Self {
        side(gray, w, h)
    }
}

dispatch!(fn side(gray: &[f64], w: usize, h: usize) -> SsimSide {
    avx2_fma() => recompiled(side_body),
    _ => side_body,
});

#[inline(always)]
fn side_body(gray: &[f64], w: usize, h: usize) -> SsimSide {
    let n = (w - 2 * RADIUS) * (h - 2 * RADIUS);
    let mut side = SsimSide { mu: Vec::with_capacity(n), b1: Vec::with_capacity(n), b2: Vec::with_capacity(n) };
    stream(gray, None, w, h, &mut side);
    side
}

/// What [`stream`] hands each valid row to. (A trait rather than a closure: its
/// `#[inline(always)]` method is compiled into the dispatched AVX2 copy too.)
trait ValidRows {
    /// Row `r` of `f(a)`, `f(a * a)` and `f(a * b)` (empty without `b`).
    fn row(&mut self, r: usize, ua: &[f64], uaa: &[f64], uab: &[f64]);
}

impl ValidRows for SsimSide {
    #[inline(always)]
    fn row(&mut self, _: usize, ux: &[f64], uxx: &[f64], _: &[f64]) {
        self.mu.extend_from_slice(ux);
        self.b1.extend(ux.iter().map(|&m| m * m + C1));
        self.b2.extend(ux.iter().zip(uxx).map(|(&m, &mm)| (mm - m * m) + C2));
    }
}

/// The running sum of SSIM terms against the original's side.
struct TermSum<'a> {
    x: &'a SsimSide,
    valid_width: usize,
    sum: f64,
}

impl ValidRows for TermSum<'_> {
    #[inline(always)]
    fn row(&mut self, r: usize, uy: &[f64], uyy: &[f64], uxy: &[f64]) {
        let at = r * self.valid_width..(r + 1) * self.valid_width;
        let x = self.x;
        self.sum += row_sum(&x.mu[at.clone()], &x.b1[at.clone()], &x.b2[at], uy, uyy, uxy);
    }
}

dispatch!(
    /// Mean SSIM of `gy` against the original `gx` whose side is `x`. With AVX2 the same
    /// operations run four doubles wide (no FMA contraction: the same result).
    pub(crate) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
        avx2_fma() => recompiled(score_body),
        _ => score_body,
    }
);

#[inline(always)]
fn score_body(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
    let mut terms = TermSum { x, valid_width: w - 2 * RADIUS, sum: 0.0 };
    stream(gy, Some(gx), w, h, &mut terms);
    terms.sum / x.mu.len() as f64
}

/// Sum of the SSIM terms `n / d` of one valid row. Two terms share one division,
/// `n0 / d0 + n1 / d1 = (n0 d1 + n1 d0) / (d0 d1)` (division is the slowest step; every
/// `d` lies between `C1 * C2` and about `2^32`, so nothing overflows), and the pairs go
/// to two partial sums so the loop vectorises.
#[inline(always)]
fn row_sum(ux: &[f64], b1x: &[f64], b2x: &[f64], uy: &[f64], uyy: &[f64], uxy: &[f64]) -> f64 {
    let n = ux.len();
    let (b1x, b2x, uy, uyy, uxy) = (&b1x[..n], &b2x[..n], &uy[..n], &uyy[..n], &uxy[..n]);
    let term = |c: usize| {
        let (x, y) = (ux[c], uy[c]);
        let (xy, yy) = (x * y, y * y);
        let a1 = 2.0 * xy + C1;
        let a2 = 2.0 * (uxy[c] - xy) + C2;
        let b1 = b1x[c] + yy;
        let b2 = b2x[c] + (uyy[c] - yy);
        (a1 * a2, b1 * b2)
    };
    let mut acc = [0.0; 2];
    let body = n / 4 * 4;
    for c in (0..body).step_by(4) {
        for (l, a) in acc.iter_mut().enumerate() {
            let ((n0, d0), (n1, d1)) = (term(c + l), term(c + l + 2));
            *a += (n0 * d1 + n1 * d0) / (d0 * d1);
        }
    }
    let tail: f64 = (body..n)
        .map(|c| {
            let (n, d) = term(c);
            n / d
        })
        .sum();
    (acc[0] + acc[1]) + tail
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

/// `gaussian_filter(., 1.5, truncate=3.5)` of the planes `a`, `a * a` and `a * b`
/// (only when `b` is given) on the `(w - 10) x (h - 10)` valid region, handed to
/// `rows.row(r, f(a), f(a * a), f(a * b))` one valid row at a time (`f(a * b)` is
/// empty without `b`). Axis 0 first, as scipy; the products live in an 11-row ring.
#[inline(always)]
fn stream(a: &[f64], b: Option<&[f64]>, w: usize, h: usize, rows: &mut impl ValidRows) {
    let k = kernel();
    let (vw, vh) = (w - 2 * RADIUS, h - 2 * RADIUS);
    let planes = if b.is_some() { 3 } else { 2 };
    let mut sq = vec![0.0; WIN * w];
    let mut prod = vec![0.0; if b.is_some() { WIN * w } else { 0 }];
    let mut cols = vec![0.0; planes * w];
    let mut out = vec![0.0; 3 * vw];
    for r in 0..vh {
        let fresh = if r == 0 { 0 } else { r + WIN - 1 };
        for i in fresh..r + WIN {
            let src = &a[i * w..(i + 1) * w];
            let slot = (i % WIN) * w..(i % WIN + 1) * w;
            for (d, &v) in sq[slot.clone()].iter_mut().zip(src) {
                *d = v * v;
            }
            if let Some(b) = b {
                for ((d, &v), &u) in prod[slot].iter_mut().zip(src).zip(&b[i * w..(i + 1) * w]) {
                    *d = v * u;
                }
            }
        }
        let (ca, rest) = cols.split_at_mut(w);
        let (csq, cprod) = rest.split_at_mut(w);
        vertical(&k, |j| &a[(r + j) * w..(r + j + 1) * w], ca);
        vertical(&k, |j| &sq[(r + j) % WIN * w..((r + j) % WIN + 1) * w], csq);
        if b.is_some() {
            vertical(&k, |j| &prod[(r + j) % WIN * w..((r + j) % WIN + 1) * w], cprod);
        }
        let (oa, rest) = out.split_at_mut(vw);
        let (osq, oprod) = rest.split_at_mut(vw);
        horizontal(&k, ca, oa);
        horizontal(&k, csq, osq);
        if b.is_some() {
            horizontal(&k, cprod, oprod);
        }
        rows.row(r, oa, osq, if b.is_some() { oprod } else { &[] });
    }
}

/// One output row of the axis-0 pass from the 11 input rows `row(0..11)`.
#[inline(always)]
fn vertical<'a>(k: &[f64; RADIUS + 1], row: impl Fn(usize) -> &'a [f64], out: &mut [f64]) {
    let n = out.len();
    symmetric_taps(k, std::array::from_fn(|j| &row(j)[..n]), out);
}

/// The axis-1 pass of one row: `out[c]` is centred on `line[c + 5]`.
#[inline(always)]
fn horizontal(k: &[f64; RADIUS + 1], line: &[f64], out: &mut [f64]) {
    let n = out.len();
    symmetric_taps(k, std::array::from_fn(|j| &line[j..j + n]), out);
}

/// `out[c]` = the 11 taps `s[0..11][c]` weighted by the symmetric kernel, summed as
/// scipy's `correlate1d`: centre first, then the outermost pair inwards.
#[inline(always)]
fn symmetric_taps(k: &[f64; RADIUS + 1], s: [&[f64]; WIN], out: &mut [f64]) {
    let [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10] = s;
    for c in 0..out.len() {
        let mut acc = s5[c] * k[0];
        acc += (s0[c] + s10[c]) * k[5];
        acc += (s1[c] + s9[c]) * k[4];
        acc += (s2[c] + s8[c]) * k[3];
        acc += (s3[c] + s7[c]) * k[2];
        acc += (s4[c] + s6[c]) * k[1];
        out[c] = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_ssim_equals_the_portable_build_exactly() {
        let (w, h) = (37, 23);
        let gx: Vec<f64> = (0..w * h).map(|i| ((i * 37 % 251) as f64) * 0.91).collect();
        let gy: Vec<f64> = (0..w * h).map(|i| ((i * 53 % 241) as f64) * 1.03).collect();
        let (fast, portable) = (SsimSide::new(&gx, w, h), side_body(&gx, w, h));
        assert_eq!((&fast.mu, &fast.b1, &fast.b2), (&portable.mu, &portable.b1, &portable.b2));
        let score_fast = score(&fast, &gx, &gy, w, h);
        assert_eq!(score_fast.to_bits(), score_body(&portable, &gx, &gy, w, h).to_bits());
        assert!(score_fast > -1.0 && score_fast < 1.0);
    }
}
