//! Pixel metrics between an original and one augmented variant of the same size.
//!
//! Luminance everywhere (edges, detail, SSIM) is the unrounded f64
//! `0.299 R + 0.587 G + 0.114 B` of the 0..255 values, evaluated in that order.

use clipshift_simd::dispatch;
use std::sync::LazyLock;

use image::RgbImage;

use crate::error::MetricsError;
use crate::ssim::{self, SsimSide};

/// Grid side of [`patch_similarity`].
pub const PATCH_GRID: usize = 4;
/// Grid side of [`detail_preservation`].
pub const DETAIL_GRID: usize = 8;
/// Patches of the original with a population std below this are skipped by
/// [`detail_preservation`].
pub const DETAIL_MIN_STD: f64 = 1e-6;

/// Patch similarity: the RGB image is cut into a 4x4 grid (integer division, the
/// remainder rows and columns ignored); per patch the MSE over pixels and channels of
/// the 0..255 values; score = mean over the 16 patches of `1 / (1 + MSE / 255^2)`.
///
/// The differences are true differences. The paper's public code subtracts `uint8`
/// arrays, so `x - x'` wraps modulo 256 (and so does its square); that is not the
/// stated formula and is not reproduced (the integration tests show both numbers).
///
/// Errors: [`MetricsError::SizeMismatch`]; [`MetricsError::TooSmall`] below 4x4.
pub fn patch_similarity(x: &RgbImage, y: &RgbImage) -> Result<f64, MetricsError> {
    same_size(x, y)?;
    min_size("patch_similarity", x, PATCH_GRID as u32, PATCH_GRID as u32)?;
    Ok(patch_score(x, y))
}

/// Edge preservation: `E = |d gray/dy| + |d gray/dx|` with `numpy.gradient` semantics
/// (central differences `(f[i+1] - f[i-1]) / 2` inside, one-sided differences at the
/// borders), `E /= max(E)` when `max(E) > 0`; score `1 - mean(|E - E'|)`.
///
/// Errors: [`MetricsError::SizeMismatch`]; [`MetricsError::TooSmall`] below 2x2
/// (`numpy.gradient` needs two samples per axis).
pub fn edge_preservation(x: &RgbImage, y: &RgbImage) -> Result<f64, MetricsError> {
    same_size(x, y)?;
    min_size("edge_preservation", x, 2, 2)?;
    let (w, h) = dims(x);
    Ok(edge_score(&edge_map(&luminance(x), w, h), &luminance(y), w, h))
}

/// Detail preservation: luminance on an 8x8 grid (integer division); for every patch
/// whose population std in the original is at least [`DETAIL_MIN_STD`],
/// `r = std(x'_patch) / std(x_patch)` and `s = exp(-|ln r|)` (= `min(r, 1/r)`, 0 when
/// the variant's patch is flat); score = mean of `s` over those patches, 0 if none.
///
/// Errors: [`MetricsError::SizeMismatch`]; [`MetricsError::TooSmall`] below 8x8
/// (the grid would have empty patches).
pub fn detail_preservation(x: &RgbImage, y: &RgbImage) -> Result<f64, MetricsError> {
    same_size(x, y)?;
    min_size("detail_preservation", x, DETAIL_GRID as u32, DETAIL_GRID as u32)?;
    let (w, h) = dims(x);
    Ok(detail_score(&patch_stds(&luminance(x), w, h), &patch_stds(&luminance(y), w, h)))
}

/// Mean structural similarity of the luminance images, as scikit-image's
/// `structural_similarity(gray_x, gray_y, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False, data_range=255)` on f64 input: 11-tap Gaussian window
/// (truncate 3.5), K1 = 0.01, K2 = 0.03, mean over the map with a 5-pixel border
/// cropped (so scipy's border mode never matters).
///
/// Errors: [`MetricsError::SizeMismatch`]; [`MetricsError::TooSmall`] below 11x11
/// (scikit-image rejects a window larger than the image).
pub fn ssim(x: &RgbImage, y: &RgbImage) -> Result<f64, MetricsError> {
    same_size(x, y)?;
    min_size("ssim", x, ssim::WIN as u32, ssim::WIN as u32)?;
    let (w, h) = dims(x);
    let gx = luminance(x);
    let side = SsimSide::new(&gx, w, h);
    Ok(ssim::score(&side, &gx, &luminance(y), w, h))
}

/// Everything about one original image that its comparisons share: computed once,
/// then each of the variants costs only its own half of the work.
///
/// Each method returns exactly what the free function of the same name returns.
#[derive(Debug, Clone)]
pub struct OriginalFeatures {
    image: RgbImage,
    gray: Vec<f64>,
    edges: Option<Vec<f64>>,
    stds: Option<Vec<f64>>,
    ssim: Option<SsimSide>,
}

/// All pixel metrics of one variant; `None` where the metric is undefined for an
/// image of this size ([`MetricsError::TooSmall`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelScores {
    pub patch_similarity: Option<f64>,
    pub edge_preservation: Option<f64>,
    pub detail_preservation: Option<f64>,
    pub ssim: Option<f64>,
}

impl OriginalFeatures {
    pub fn new(x: &RgbImage) -> Self {
        let (w, h) = dims(x);
        let gray = luminance(x);
        let fits = |m: usize| w >= m && h >= m;
        Self {
            edges: fits(2).then(|| edge_map(&gray, w, h)),
            stds: fits(DETAIL_GRID).then(|| patch_stds(&gray, w, h)),
            ssim: fits(ssim::WIN).then(|| SsimSide::new(&gray, w, h)),
            image: x.clone(),
            gray,
        }
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }

    pub fn patch_similarity(&self, y: &RgbImage) -> Result<f64, MetricsError> {
        patch_similarity(&self.image, y)
    }

    pub fn edge_preservation(&self, y: &RgbImage) -> Result<f64, MetricsError> {
        same_size(&self.image, y)?;
        let edges = self.edges.as_ref().ok_or_else(|| too_small("edge_preservation", y, 2))?;
        let (w, h) = dims(y);
        Ok(edge_score(edges, &luminance(y), w, h))
    }

    pub fn detail_preservation(&self, y: &RgbImage) -> Result<f64, MetricsError> {
        same_size(&self.image, y)?;
        let stds = self.stds.as_ref().ok_or_else(|| too_small("detail_preservation", y, DETAIL_GRID))?;
        let (w, h) = dims(y);
        Ok(detail_score(stds, &patch_stds(&luminance(y), w, h)))
    }

    pub fn ssim(&self, y: &RgbImage) -> Result<f64, MetricsError> {
        same_size(&self.image, y)?;
        let side = self.ssim.as_ref().ok_or_else(|| too_small("ssim", y, ssim::WIN))?;
        let (w, h) = dims(y);
        Ok(ssim::score(side, &self.gray, &luminance(y), w, h))
    }

    /// Every pixel metric of `y` at once (its luminance is computed once).
    /// Errors only with [`MetricsError::SizeMismatch`].
    pub fn compare(&self, y: &RgbImage) -> Result<PixelScores, MetricsError> {
        same_size(&self.image, y)?;
        let (w, h) = dims(y);
        let gy = luminance(y);
        Ok(PixelScores {
            patch_similarity: (w >= PATCH_GRID && h >= PATCH_GRID).then(|| patch_score(&self.image, y)),
            edge_preservation: self.edges.as_ref().map(|e| edge_score(e, &gy, w, h)),
            detail_preservation: self.stds.as_ref().map(|s| detail_score(s, &patch_stds(&gy, w, h))),
            ssim: self.ssim.as_ref().map(|s| ssim::score(s, &self.gray, &gy, w, h)),
        })
    }
}

fn dims(x: &RgbImage) -> (usize, usize) {
    (x.width() as usize, x.height() as usize)
}

fn same_size(x: &RgbImage, y: &RgbImage) -> Result<(), MetricsError> {
    if x.dimensions() == y.dimensions() {
        Ok(())
    } else {
        Err(MetricsError::SizeMismatch { original: x.dimensions(), variant: y.dimensions() })
    }
}

fn min_size(metric: &'static str, x: &RgbImage, mw: u32, mh: u32) -> Result<(), MetricsError> {
    if x.width() >= mw && x.height() >= mh {
        Ok(())
    } else {
        Err(MetricsError::TooSmall { metric, width: x.width(), height: x.height(), min_width: mw, min_height: mh })
    }
}

fn too_small(metric: &'static str, x: &RgbImage, min: usize) -> MetricsError {
    MetricsError::TooSmall {
        metric,
        width: x.width(),
        height: x.height(),
        min_width: min as u32,
        min_height: min as u32,
    }
}

/// `0.299 * v`, `0.587 * v` and `0.114 * v` for every byte `v`: the very products of
/// the formula, looked up rather than converted and multiplied per pixel.
static LUMA: LazyLock<[[f64; 256]; 3]> = LazyLock::new(|| {
    let table = |k: f64| std::array::from_fn(|v| k * v as f64);
    [table(0.299), table(0.587), table(0.114)]
});

dispatch!(pub(crate) fn luminance(x: &RgbImage) -> Vec<f64> {
    avx2_fma() => luminance_avx2,
    _ => luminance_portable,
});

fn luminance_portable(x: &RgbImage) -> Vec<f64> {
    x.as_raw().chunks_exact(3).map(luma).collect()
}

/// One pixel's luminance from the table.
fn luma(p: &[u8]) -> f64 {
    let [r, g, b] = &*LUMA;
    r[usize::from(p[0])] + g[usize::from(p[1])] + b[usize::from(p[2])]
}

/// [`luminance_portable`] eight pixels at a time: the bytes converted to doubles and
/// multiplied, which are the very products the table holds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn luminance_avx2(x: &RgbImage) -> Vec<f64> {
    use std::arch::x86_64::{
        __m256i, _mm256_add_pd, _mm256_castsi256_si128, _mm256_cvtepi32_pd, _mm256_extracti128_si256, _mm256_mul_pd,
        _mm256_set1_pd,
    };
    let raw = x.as_raw();
    let mut out = vec![0.0; raw.len() / 3];
    let k = [_mm256_set1_pd(0.299), _mm256_set1_pd(0.587), _mm256_set1_pd(0.114)];
    let (blocks, _) = out.as_chunks_mut::<8>();
    for (i, o) in blocks.iter_mut().enumerate() {
        let [r, g, b]: [__m256i; 3] = clipshift_simd::rgb8x8::split(&raw[24 * i..]);
        let lo = [_mm256_castsi256_si128(r), _mm256_castsi256_si128(g), _mm256_castsi256_si128(b)];
        let hi = [_mm256_extracti128_si256::<1>(r), _mm256_extracti128_si256::<1>(g), _mm256_extracti128_si256::<1>(b)];
        for (half, o) in [lo, hi].into_iter().zip(o.as_chunks_mut::<4>().0) {
            let [r, g, b] = [_mm256_cvtepi32_pd(half[0]), _mm256_cvtepi32_pd(half[1]), _mm256_cvtepi32_pd(half[2])];
            let rg = _mm256_add_pd(_mm256_mul_pd(k[0], r), _mm256_mul_pd(k[1], g));
            *o = bytemuck::cast(_mm256_add_pd(rg, _mm256_mul_pd(k[2], b)));
        }
    }
    let done = out.len() / 8 * 8;
    for (o, p) in out[done..].iter_mut().zip(raw[3 * done..].chunks_exact(3)) {
        *o = luma(p);
    }
    out
}

fn patch_score(x: &RgbImage, y: &RgbImage) -> f64 {
    let (w, h) = dims(x);
    let (ph, pw) = (h / PATCH_GRID, w / PATCH_GRID);
    let (xr, yr) = (x.as_raw(), y.as_raw());
    let n = (ph * pw * 3) as f64;
    let mut total = 0.0;
    for gi in 0..PATCH_GRID {
        for gj in 0..PATCH_GRID {
            let mut sse: u64 = 0;
            for r in gi * ph..(gi + 1) * ph {
                let start = (r * w + gj * pw) * 3;
                let end = start + pw * 3;
                sse += squared_error(&xr[start..end], &yr[start..end]);
            }
            let mse = sse as f64 / n;
            total += 1.0 / (1.0 + mse / (255.0 * 255.0));
        }
    }
    total / (PATCH_GRID * PATCH_GRID) as f64
}

/// Sum of squared byte differences, exact. Sixteen bytes at a time into eight i32
/// lanes of pairs (the shape of SSE2's `pmaddwd`, which the loop compiles to); a
/// block of 2^16 squares, each below 2^16, sums below 2^32, so wrapping i32
/// arithmetic read back as u32 is exact and the loop has no overflow checks.
fn squared_error(a: &[u8], b: &[u8]) -> u64 {
    const BLOCK: usize = 1 << 16;
    let square = |x: u8, y: u8| {
        let d = i32::from(i16::from(x) - i16::from(y));
        d * d
    };
    let mut total = 0u64;
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail = ca.remainder().iter().zip(cb.remainder()).fold(0i32, |s, (&x, &y)| s.wrapping_add(square(x, y)));
        let mut acc = [0i32; 8];
        for (x, y) in ca.zip(cb) {
            for (l, lane) in acc.iter_mut().enumerate() {
                *lane = lane.wrapping_add(square(x[2 * l], y[2 * l]) + square(x[2 * l + 1], y[2 * l + 1]));
            }
        }
        total += u64::from(acc.iter().fold(tail, |s, &v| s.wrapping_add(v)) as u32);
    }
    total
}

/// `|d gray/dy| + |d gray/dx|` with numpy.gradient semantics into `out` (`w * h`
/// long), returning its maximum; needs `w >= 2 && h >= 2`.
#[inline(always)]
fn raw_edges(gray: &[f64], w: usize, h: usize, out: &mut [f64]) -> f64 {
    let mut max = 0.0f64;
    for r in 0..h {
        let (up, down) = (r.saturating_sub(1), (r + 1).min(h - 1));
        // numpy halves central differences (exactly: a power of two) and not the
        // one-sided ones at the borders.
        let fy = if r > 0 && r + 1 < h { 0.5 } else { 1.0 };
        let (u, m, d) = (&gray[up * w..(up + 1) * w], &gray[r * w..(r + 1) * w], &gray[down * w..(down + 1) * w]);
        let o = &mut out[r * w..(r + 1) * w];
        o[0] = ((d[0] - u[0]) * fy).abs() + (m[1] - m[0]).abs();
        o[w - 1] = ((d[w - 1] - u[w - 1]) * fy).abs() + (m[w - 1] - m[w - 2]).abs();
        let n = w - 2;
        let (dc, uc, ml, mr, oc) = (&d[1..1 + n], &u[1..1 + n], &m[..n], &m[2..2 + n], &mut o[1..1 + n]);
        for c in 0..n {
            oc[c] = ((dc[c] - uc[c]) * fy).abs() + ((mr[c] - ml[c]) * 0.5).abs();
        }
        max = max.max(max_of(o));
    }
    max
}

/// Maximum of non-negative values (0 for none), four lanes so it vectorises.
#[inline(always)]
fn max_of(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = v.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    tail.iter().fold(acc[0].max(acc[1]).max(acc[2].max(acc[3])), |m, &x| m.max(x))
}

/// The edge map `E / max(E)` (left as it is when `max(E) == 0`); needs `w, h >= 2`.
fn edge_map(gray: &[f64], w: usize, h: usize) -> Vec<f64> {
    let mut e = vec![0.0; w * h];
    let max = raw_edges(gray, w, h, &mut e);
    if max > 0.0 {
        e.iter_mut().for_each(|v| *v /= max);
    }
    e
}

dispatch!(
    /// `1 - mean(|ex - ey|)` for the original's edge map `ex` and the variant's luminance
    /// `gy`. The variant's map is normalised by a multiplication with `1 / max`, which
    /// is within an ulp of numpy's division.
    fn edge_score(ex: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
    avx2_fma() => recompiled(edge_score_body),
    _ => edge_score_body,
});

#[inline(always)]
fn edge_score_body(ex: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
    let mut ey = vec![0.0; w * h];
    let max = raw_edges(gy, w, h, &mut ey);
    let inv = if max > 0.0 { 1.0 / max } else { 1.0 };
    let n = ex.len();
    let ey = &ey[..n];
    let mut acc = [0.0; 4];
    let body = n / 4 * 4;
    for i in (0..body).step_by(4) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += (ex[i + l] - ey[i + l] * inv).abs();
        }
    }
    let tail: f64 = (body..n).map(|i| (ex[i] - ey[i] * inv).abs()).sum();
    let sum = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
    1.0 - sum / n as f64
}

dispatch!(
    /// Population std of each of the 8x8 patches, row-major; needs `w, h >= 8`. Two
    /// passes as numpy's `std` (mean, then squared deviations), each summed down the
    /// columns of a band of patches first so the inner loops run over whole rows.
    fn patch_stds(gray: &[f64], w: usize, h: usize) -> Vec<f64> {
    avx2_fma() => recompiled(patch_stds_body),
    _ => patch_stds_body,
});

#[inline(always)]
fn patch_stds_body(gray: &[f64], w: usize, h: usize) -> Vec<f64> {
    let (ph, pw) = (h / DETAIL_GRID, w / DETAIL_GRID);
    let used = pw * DETAIL_GRID;
    let n = (ph * pw) as f64;
    let mut out = Vec::with_capacity(DETAIL_GRID * DETAIL_GRID);
    let mut cols = vec![0.0; used];
    let mut means = vec![0.0; used];
    for gi in 0..DETAIL_GRID {
        let rows = || (gi * ph..(gi + 1) * ph).map(|r| &gray[r * w..r * w + used]);
        cols.fill(0.0);
        for row in rows() {
            for (c, &v) in cols.iter_mut().zip(row) {
                *c += v;
            }
        }
        for (m, band) in means.chunks_exact_mut(pw).zip(cols.chunks_exact(pw)) {
            m.fill(band.iter().sum::<f64>() / n);
        }
        cols.fill(0.0);
        for row in rows() {
            for ((c, &v), &m) in cols.iter_mut().zip(row).zip(&means) {
                *c += (v - m) * (v - m);
            }
        }
        out.extend(cols.chunks_exact(pw).map(|band| (band.iter().sum::<f64>() / n).sqrt()));
    }
    out
}
fn detail_score(sx: &[f64], sy: &[f64]) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for (&a, &b) in sx.iter().zip(sy) {
        if a >= DETAIL_MIN_STD {
            let r = b / a;
            sum += if r > 0.0 { (-r.ln().abs()).exp() } else { 0.0 };
            count += 1;
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_pixel_kernels_equal_the_portable_build_exactly() {
        let (w, h) = (45u32, 29u32);
        let image =
            RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 37 + y) as u8, ((y * 53) ^ x) as u8, (x * y) as u8]));
        let gray = luminance(&image);
        assert_eq!(gray, luminance_portable(&image));
        // Every byte in every channel, and a tail of pixels after the last block of eight.
        let bytes = RgbImage::from_fn(259, 1, |x, _| image::Rgb([x as u8, (x * 7 + 3) as u8, (255 - x) as u8]));
        assert_eq!(luminance(&bytes), luminance_portable(&bytes));
        let (w, h) = (w as usize, h as usize);
        let edges = edge_map(&gray, w, h);
        let shifted: Vec<f64> = gray.iter().map(|v| v * 0.9 + 7.0).collect();
        assert_eq!(edge_score(&edges, &shifted, w, h).to_bits(), edge_score_body(&edges, &shifted, w, h).to_bits());
        assert_eq!(patch_stds(&shifted, w, h), patch_stds_body(&shifted, w, h));
    }
}
