//! Pixel metrics between an original and one augmented variant of the same size.
//!
//! Luminance everywhere (edges, detail, SSIM) is the unrounded f64
//! `0.299 R + 0.587 G + 0.114 B` of the 0..255 values, evaluated in that order.

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
    Ok(edge_score(&edge_map(&luminance(x), w, h), &edge_map(&luminance(y), w, h)))
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
        Ok(edge_score(edges, &edge_map(&luminance(y), w, h)))
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
            edge_preservation: self.edges.as_ref().map(|e| edge_score(e, &edge_map(&gy, w, h))),
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

pub(crate) fn luminance(x: &RgbImage) -> Vec<f64> {
    x.pixels()
        .map(|p| {
            let [r, g, b] = p.0.map(f64::from);
            0.299 * r + 0.587 * g + 0.114 * b
        })
        .collect()
}

fn patch_score(x: &RgbImage, y: &RgbImage) -> f64 {
    let (w, h) = dims(x);
    let (ph, pw) = (h / PATCH_GRID, w / PATCH_GRID);
    let (xr, yr) = (x.as_raw(), y.as_raw());
    let n = (ph * pw * 3) as f64;
    let mut total = 0.0;
    for gi in 0..PATCH_GRID {
        for gj in 0..PATCH_GRID {
            // Squared byte differences are integers: the sum is exact.
            let mut sse: u64 = 0;
            for r in gi * ph..(gi + 1) * ph {
                let start = (r * w + gj * pw) * 3;
                let end = start + pw * 3;
                for (&a, &b) in xr[start..end].iter().zip(&yr[start..end]) {
                    let d = u64::from(a.abs_diff(b));
                    sse += d * d;
                }
            }
            let mse = sse as f64 / n;
            total += 1.0 / (1.0 + mse / (255.0 * 255.0));
        }
    }
    total / (PATCH_GRID * PATCH_GRID) as f64
}

/// Normalised `|d/dy| + |d/dx|` map; needs `w >= 2 && h >= 2`.
fn edge_map(gray: &[f64], w: usize, h: usize) -> Vec<f64> {
    let diff = |lo: f64, hi: f64, central: bool| if central { (hi - lo) / 2.0 } else { hi - lo };
    let mut e = vec![0.0; w * h];
    for r in 0..h {
        let (up, down) = (r.saturating_sub(1), (r + 1).min(h - 1));
        let central_y = r > 0 && r + 1 < h;
        for c in 0..w {
            let (left, right) = (c.saturating_sub(1), (c + 1).min(w - 1));
            let central_x = c > 0 && c + 1 < w;
            let gy = diff(gray[up * w + c], gray[down * w + c], central_y);
            let gx = diff(gray[r * w + left], gray[r * w + right], central_x);
            e[r * w + c] = gy.abs() + gx.abs();
        }
    }
    let max = e.iter().copied().fold(0.0, f64::max);
    if max > 0.0 {
        e.iter_mut().for_each(|v| *v /= max);
    }
    e
}

fn edge_score(ex: &[f64], ey: &[f64]) -> f64 {
    let sum: f64 = ex.iter().zip(ey).map(|(a, b)| (a - b).abs()).sum();
    1.0 - sum / ex.len() as f64
}

/// Population std of each of the 8x8 patches, row-major; needs `w, h >= 8`.
fn patch_stds(gray: &[f64], w: usize, h: usize) -> Vec<f64> {
    let (ph, pw) = (h / DETAIL_GRID, w / DETAIL_GRID);
    let n = (ph * pw) as f64;
    let mut out = Vec::with_capacity(DETAIL_GRID * DETAIL_GRID);
    for gi in 0..DETAIL_GRID {
        for gj in 0..DETAIL_GRID {
            let rows = || (gi * ph..(gi + 1) * ph).map(|r| &gray[r * w + gj * pw..r * w + (gj + 1) * pw]);
            let mean = rows().flatten().sum::<f64>() / n;
            let var = rows().flatten().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            out.push(var.sqrt());
        }
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
