//! OpenCV's geometric resampling for RGB8: `warpAffine`, `warpPerspective` and `remap`
//! with `INTER_LINEAR`, as OpenCV 5 computes them (the version albumentations 2.0.8
//! installs): float source coordinates, float bilinear weights, rounded result.
//! Pixel centres sit at integer coordinates. Borders follow OpenCV's `remapBilinear`:
//! with a constant border a sample whose 2x2 support lies wholly outside is the fill
//! value, a partly outside one mixes the fill value in per corner.

use serde::{Deserialize, Serialize};

use super::blur::round_u8;
use clipshift_simd::dispatch;

/// How pixels outside the source are filled (OpenCV border modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BorderMode {
    /// `BORDER_CONSTANT`: the fill value.
    #[default]
    Constant,
    /// `BORDER_REPLICATE`: `aaaa|abcd|dddd`.
    Replicate,
    /// `BORDER_REFLECT`: `dcba|abcd|dcba`.
    Reflect,
    /// `BORDER_REFLECT_101`: `dcb|abcd|cba` (OpenCV's default).
    Reflect101,
    /// `BORDER_WRAP`: `abcd|abcd|abcd`.
    Wrap,
}

/// OpenCV `borderInterpolate` for the non-constant modes; `None` for a constant border.
pub(crate) fn border_index(p: i64, len: i64, mode: BorderMode) -> Option<usize> {
    if (0..len).contains(&p) {
        return Some(p as usize);
    }
    let q = match mode {
        BorderMode::Constant => return None,
        BorderMode::Replicate => p.clamp(0, len - 1),
        BorderMode::Wrap => p.rem_euclid(len),
        BorderMode::Reflect | BorderMode::Reflect101 => {
            if len == 1 {
                return Some(0);
            }
            let delta = i64::from(mode == BorderMode::Reflect101);
            let mut p = p;
            loop {
                if p < 0 {
                    p = -p - 1 + delta;
                } else {
                    p = len - 1 - (p - len) - delta;
                }
                if (0..len).contains(&p) {
                    break p;
                }
            }
        }
    };
    Some(q as usize)
}

/// A bilinear sampler over an RGB8 buffer with OpenCV's border rules.
pub(crate) struct Sampler<'a> {
    src: &'a [u8],
    width: i32,
    height: i32,
    border: BorderMode,
    fill: [u8; 3],
}

impl<'a> Sampler<'a> {
    pub(crate) fn new(src: &'a [u8], width: u32, height: u32, border: BorderMode, fill: [u8; 3]) -> Self {
        Self { src, width: width as i32, height: height as i32, border, fill }
    }

    /// Sample at source position (`x`, `y`) (pixel centres at integers) into `out`.
    ///
    /// OpenCV 5 interpolates with unquantised float coordinates and float weights and
    /// rounds the result (the 4.x 1/32-pixel fixed point differs by up to 4 levels).
    #[inline(always)]
    pub(crate) fn sample(&self, x: f32, y: f32, out: &mut [u8]) {
        // Also false for NaN and infinities.
        if !(x.abs() <= 1e8 && y.abs() <= 1e8) {
            out[..3].copy_from_slice(&self.fill);
            return;
        }
        let (sx, sy) = (floor_i32(x), floor_i32(y));
        let ax = x - sx as f32;
        let ay = y - sy as f32;
        let w00 = (1.0 - ax) * (1.0 - ay);
        let w01 = ax * (1.0 - ay);
        let w10 = (1.0 - ax) * ay;
        let w11 = ax * ay;
        let (w, h) = (self.width as u32, self.height as u32);
        // Unsigned compares also reject negative positions.
        if (sx as u32) < w.saturating_sub(1) && (sy as u32) < h.saturating_sub(1) {
            let stride = w as usize * 3;
            let i0 = (sy as usize).wrapping_mul(stride).wrapping_add((sx as usize).wrapping_mul(3));
            let i1 = i0.wrapping_add(stride);
            let p0: &[u8; 6] = self.src[i0..i0 + 6].try_into().expect("interior pixel");
            let p1: &[u8; 6] = self.src[i1..i1 + 6].try_into().expect("interior pixel");
            // Four lanes (the fourth unused) so the channels share SSE instructions.
            let lanes = |p: &[u8; 6], o: usize| [f32::from(p[o]), f32::from(p[o + 1]), f32::from(p[o + 2]), 0.0];
            let (a, b, c, d) = (lanes(p0, 0), lanes(p0, 3), lanes(p1, 0), lanes(p1, 3));
            let mut v = [0f32; 4];
            for i in 0..4 {
                v[i] = a[i] * w00 + b[i] * w01 + c[i] * w10 + d[i] * w11;
            }
            out[..3].copy_from_slice(&[round_u8(v[0]), round_u8(v[1]), round_u8(v[2])]);
            return;
        }
        self.sample_border(sx, sy, [w00, w01, w10, w11], out);
    }

    /// [`Sampler::sample`] at (`xs[i]`, `ys[i]`) into pixel `i` of `out`.
    pub(crate) fn sample_row(&self, xs: &[f32], ys: &[f32], out: &mut [u8]) {
        sample_row(self, xs, ys, out);
    }

    /// The part of [`Sampler::sample`] whose 2x2 support is not wholly inside.
    #[inline(never)]
    fn sample_border(&self, sx: i32, sy: i32, weights: [f32; 4], out: &mut [u8]) {
        let (w, h) = (self.width, self.height);
        if self.border == BorderMode::Constant && (sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0) {
            out[..3].copy_from_slice(&self.fill);
            return;
        }
        let [w00, w01, w10, w11] = weights;
        let (w64, h64) = (i64::from(w), i64::from(h));
        let x0 = border_index(i64::from(sx), w64, self.border);
        let x1 = border_index(i64::from(sx) + 1, w64, self.border);
        let y0 = border_index(i64::from(sy), h64, self.border);
        let y1 = border_index(i64::from(sy) + 1, h64, self.border);
        let px = |xi: Option<usize>, yi: Option<usize>, c: usize| -> f32 {
            match (xi, yi) {
                (Some(xi), Some(yi)) => f32::from(self.src[(yi * w as usize + xi) * 3 + c]),
                _ => f32::from(self.fill[c]),
            }
        };
        for (c, o) in out.iter_mut().enumerate().take(3) {
            let v = px(x0, y0, c) * w00 + px(x1, y0, c) * w01 + px(x0, y1, c) * w10 + px(x1, y1, c) * w11;
            *o = round_u8(v);
        }
    }
}

dispatch!(fn sample_row(sampler: &Sampler<'_>, xs: &[f32], ys: &[f32], out: &mut [u8]) {
    avx2_fma() => avx2::sample_row,
    _ => sample_row_portable,
});

#[inline(always)]
fn sample_row_portable(sampler: &Sampler<'_>, xs: &[f32], ys: &[f32], out: &mut [u8]) {
    for ((px, &sx), &sy) in out.chunks_exact_mut(3).zip(xs).zip(ys) {
        sampler.sample(sx, sy, px);
    }
}

/// [`Sampler::sample`] eight pixels at a time: coordinates, weights, interpolation and
/// rounding in AVX2 lanes, in the same f32 operations and order (no FMA), so the same
/// bytes. A block with any pixel whose support is not wholly inside goes through the
/// scalar code.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_ps, _mm256_and_si256, _mm256_castsi256_ps, _mm256_cmpgt_epi32, _mm256_cvtepi32_ps,
        _mm256_cvtps_epi32, _mm256_cvttps_epi32, _mm256_floor_ps, _mm256_max_epi32, _mm256_min_epi32,
        _mm256_movemask_ps, _mm256_mul_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_srlv_epi32, _mm256_sub_ps,
    };

    use super::{FloatMap, Sampler, sample_f32_row_portable, sample_row_portable};
    use clipshift_simd::rgb8x8;

    const LANES: usize = 8;

    /// Whether every lane of `v` lies in `0..n - 1` (so that it and the next index are
    /// inside). NaN and huge coordinates convert to i32::MIN and fail it.
    #[target_feature(enable = "avx2,fma")]
    fn inside(v: __m256i, n: i32) -> __m256i {
        _mm256_and_si256(_mm256_cmpgt_epi32(v, _mm256_set1_epi32(-1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 1), v))
    }

    /// The four bilinear weights of each lane's 2x2 support, whose top-left pixel is
    /// (`sx`, `sy`), as the scalar sampler computes them.
    #[target_feature(enable = "avx2,fma")]
    fn bilinear_weights(x: __m256, y: __m256, sx: __m256i, sy: __m256i) -> [__m256; 4] {
        let one = _mm256_set1_ps(1.0);
        let ax = _mm256_sub_ps(x, _mm256_cvtepi32_ps(sx));
        let ay = _mm256_sub_ps(y, _mm256_cvtepi32_ps(sy));
        let (bx, by) = (_mm256_sub_ps(one, ax), _mm256_sub_ps(one, ay));
        [_mm256_mul_ps(bx, by), _mm256_mul_ps(ax, by), _mm256_mul_ps(bx, ay), _mm256_mul_ps(ax, ay)]
    }

    /// [`super::sample_f32`] eight pixels at a time: blocks wholly inside in AVX2 lanes,
    /// in the same f32 operations and order (no FMA), so the same values; any other
    /// block through the scalar code.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sample_f32_row(map: &FloatMap<'_>, xs: &[f32], ys: &[f32], values: &mut [f32], weights: &mut [f32]) {
        let FloatMap { src, width, height, .. } = *map;
        let stride = width as usize;
        let blocks = values.len().min(xs.len()).min(ys.len()).min(weights.len()) / LANES;
        for b in 0..blocks {
            let lanes = b * LANES..(b + 1) * LANES;
            let x: __m256 = bytemuck::cast(<[f32; LANES]>::try_from(&xs[lanes.clone()]).expect("8"));
            let y: __m256 = bytemuck::cast(<[f32; LANES]>::try_from(&ys[lanes.clone()]).expect("8"));
            let (sx, sy) = (_mm256_cvttps_epi32(_mm256_floor_ps(x)), _mm256_cvttps_epi32(_mm256_floor_ps(y)));
            let interior = _mm256_and_si256(inside(sx, width as i32), inside(sy, height as i32));
            if _mm256_movemask_ps(_mm256_castsi256_ps(interior)) != 0xff {
                let (values, weights) = (&mut values[lanes.clone()], &mut weights[lanes.clone()]);
                sample_f32_row_portable(map, &xs[lanes.clone()], &ys[lanes], values, weights);
                continue;
            }
            let w = bilinear_weights(x, y, sx, sy);
            let (sxa, sya): ([i32; LANES], [i32; LANES]) = (bytemuck::cast(sx), bytemuck::cast(sy));
            let mut taps = [[0f32; LANES]; 4];
            for l in 0..LANES {
                let i = sya[l] as usize * stride + sxa[l] as usize;
                let (top, bottom) = (&src[i..i + 2], &src[i + stride..i + stride + 2]);
                (taps[0][l], taps[1][l], taps[2][l], taps[3][l]) = (top[0], top[1], bottom[0], bottom[1]);
            }
            let taps = taps.map(bytemuck::cast::<[f32; LANES], __m256>);
            let (mut value, mut weight) = (_mm256_mul_ps(taps[0], w[0]), w[0]);
            for k in 1..4 {
                value = _mm256_add_ps(value, _mm256_mul_ps(taps[k], w[k]));
                // The scalar code's `1.0 * w`, which is `w`.
                weight = _mm256_add_ps(weight, w[k]);
            }
            values[lanes.clone()].copy_from_slice(&bytemuck::cast::<__m256, [f32; LANES]>(value));
            weights[lanes].copy_from_slice(&bytemuck::cast::<__m256, [f32; LANES]>(weight));
        }
        let done = blocks * LANES;
        let (values, weights) = (&mut values[done..], &mut weights[done..]);
        sample_f32_row_portable(map, &xs[done..], &ys[done..], values, weights);
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sample_row(sampler: &Sampler<'_>, xs: &[f32], ys: &[f32], out: &mut [u8]) {
        let (w, h) = (sampler.width, sampler.height);
        let stride = w as usize * 3;
        let src = sampler.src;
        let done = out.len() / 3 / LANES * LANES;
        let mut blocks = out.chunks_exact_mut(3 * LANES);
        for (b, block) in (&mut blocks).enumerate() {
            let x: __m256 = bytemuck::cast(<[f32; LANES]>::try_from(&xs[b * LANES..(b + 1) * LANES]).expect("8"));
            let y: __m256 = bytemuck::cast(<[f32; LANES]>::try_from(&ys[b * LANES..(b + 1) * LANES]).expect("8"));
            let (fx, fy) = (_mm256_floor_ps(x), _mm256_floor_ps(y));
            let (sx, sy) = (_mm256_cvttps_epi32(fx), _mm256_cvttps_epi32(fy));
            // Interior: 0 <= sx < w - 1 and 0 <= sy < h - 1 in every lane (the floor is
            // then exact).
            let interior = _mm256_and_si256(inside(sx, w), inside(sy, h));
            if _mm256_movemask_ps(_mm256_castsi256_ps(interior)) != 0xff {
                let lanes = b * LANES..(b + 1) * LANES;
                sample_row_portable(sampler, &xs[lanes.clone()], &ys[lanes], block);
                continue;
            }
            let weights = bilinear_weights(x, y, sx, sy);
            // The four corners' RGB as little-endian words (the fourth byte cleared).
            let (sxa, sya): ([i32; LANES], [i32; LANES]) = (bytemuck::cast(sx), bytemuck::cast(sy));
            let mut corners = [[0u32; LANES]; 4];
            for l in 0..LANES {
                let i0 = sya[l] as usize * stride + sxa[l] as usize * 3;
                for row in 0..2 {
                    let at = i0 + row * stride;
                    // Two neighbours' RGB in one load (the last pixels of the image copy
                    // their six bytes instead).
                    let pair = match src.get(at..at + 8) {
                        Some(p) => u64::from_le_bytes(p.try_into().expect("8 bytes")),
                        None => {
                            let mut p = [0u8; 8];
                            p[..6].copy_from_slice(&src[at..at + 6]);
                            u64::from_le_bytes(p)
                        }
                    };
                    corners[2 * row][l] = pair as u32 & 0xff_ffff;
                    corners[2 * row + 1][l] = (pair >> 24) as u32 & 0xff_ffff;
                }
            }
            let corners = corners.map(bytemuck::cast::<[u32; LANES], __m256i>);
            let channel = |c: i32| {
                let shift = _mm256_set1_epi32(8 * c);
                let value = |v: __m256i| {
                    _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(v, shift), _mm256_set1_epi32(0xff)))
                };
                let mut v = _mm256_mul_ps(value(corners[0]), weights[0]);
                for k in 1..4 {
                    v = _mm256_add_ps(v, _mm256_mul_ps(value(corners[k]), weights[k]));
                }
                // cvtps2dq rounds half to even, as round_u8 does.
                _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(0)), _mm256_set1_epi32(255))
            };
            rgb8x8::join([channel(0), channel(1), channel(2)], block);
        }
        sample_row_portable(sampler, &xs[done..], &ys[done..], blocks.into_remainder());
    }
}

/// `x.floor() as i32` for `|x| <= 1e8` without a libm call (x86-64's baseline has no
/// rounding instruction): truncate, then step down when that rounded up.
#[inline(always)]
fn floor_i32(x: f32) -> i32 {
    let t = x as i32;
    if t as f32 > x { t - 1 } else { t }
}

/// A geometric augmentation as OpenCV resamples it (`warpAffine`, `warpPerspective`,
/// `remap` with `INTER_LINEAR`): where each output pixel samples the source, and the
/// border rule. The same warp moves the pixels ([`Warp::apply_rgb8`]) and any float map
/// of the image, such as an attention map ([`Warp::apply_f32`]).
#[derive(Clone, Debug)]
pub struct Warp {
    map: SourceMap,
    border: BorderMode,
    fill: u8,
}

/// A float map after a [`Warp`]: the values, and which pixels the source covers.
#[derive(Clone, Debug, PartialEq)]
pub struct WarpedMap {
    pub values: Vec<f32>,
    /// False where at least 0.1% of the bilinear weight falls outside the source under
    /// a constant border (all true for the other border modes, which extend the source).
    pub covered: Vec<bool>,
}

impl Warp {
    /// `cv2.warpAffine(src, m, (w, h), flags=INTER_LINEAR)`; `m` maps source to destination.
    pub(crate) fn affine(m: [f64; 6], border: BorderMode, fill: u8) -> Warp {
        // OpenCV inverts the forward matrix this way (not via a general solver).
        let mut m = m;
        let d = m[0] * m[4] - m[1] * m[3];
        let d = if d != 0.0 { 1.0 / d } else { 0.0 };
        let (a11, a22) = (m[4] * d, m[0] * d);
        m[0] = a11;
        m[1] *= -d;
        m[3] *= -d;
        m[4] = a22;
        let b1 = -m[0] * m[2] - m[1] * m[5];
        let b2 = -m[3] * m[2] - m[4] * m[5];
        m[2] = b1;
        m[5] = b2;
        Warp { map: SourceMap::Affine(m), border, fill }
    }

    /// `cv2.warpPerspective(src, m, (w, h), flags=INTER_LINEAR)`; `m` maps source to destination.
    pub(crate) fn perspective(m: &[f64; 9], border: BorderMode, fill: u8) -> Warp {
        Warp { map: SourceMap::Perspective(invert3(m)), border, fill }
    }

    /// `cv2.remap` with `CV_32FC2` maps and `INTER_LINEAR` where the maps are the pixel
    /// grid plus a displacement (row-major, one value per output pixel): output pixel
    /// `(x, y)` samples the source at `(x + dx, y + dy)`, each sum computed in f64 and
    /// stored as f32 (numpy adds the int64 grid and the float32 field in float64), as
    /// albumentations builds the maps. Constant borders fill with 0.
    pub fn displaced(dx: Vec<f32>, dy: Vec<f32>, border: BorderMode) -> Warp {
        Warp { map: SourceMap::Displaced { dx, dy }, border, fill: 0 }
    }

    /// The same warp with constant borders filled with `fill` (in every channel).
    pub(crate) fn with_fill(self, fill: u8) -> Warp {
        Warp { fill, ..self }
    }

    /// The warped RGB8 image of `width` x `height` into `out`.
    pub(crate) fn apply_rgb8(&self, src: &[u8], width: u32, height: u32, out: &mut [u8]) {
        resample(&Sampler::new(src, width, height, self.border, [self.fill; 3]), &self.map, out);
    }

    /// The warped float map (row-major `width` x `height`, one channel), sampled as OpenCV
    /// samples float32 images (float coordinates and weights, constant borders filled
    /// with 0), with the pixels the source covers. `None` when the map's length is not
    /// `width * height` or a displacement field's is not.
    pub fn apply_f32(&self, src: &[f32], width: u32, height: u32) -> Option<WarpedMap> {
        let (w, h) = (width as usize, height as usize);
        let n = w * h;
        if src.len() != n || matches!(&self.map, SourceMap::Displaced { dx, dy } if dx.len() != n || dy.len() != n) {
            return None;
        }
        let constant = self.border == BorderMode::Constant;
        let map = FloatMap { src, width, height, border: self.border };
        let (mut values, mut covered) = (vec![0f32; n], vec![true; n]);
        let (mut xs, mut ys, mut weights) = (vec![0f32; w], vec![0f32; w], vec![0f32; w]);
        for y in 0..h {
            self.map.row(y, &mut xs, &mut ys);
            let row = y * w..(y + 1) * w;
            sample_f32_row(&map, &xs, &ys, &mut values[row.clone()], &mut weights);
            if constant {
                covered[row].iter_mut().zip(&weights).for_each(|(c, &weight)| *c = weight >= 0.999);
            }
        }
        Some(WarpedMap { values, covered })
    }
}

/// A row-major float map of `width` x `height` and the border rule it is sampled with.
#[derive(Clone, Copy)]
struct FloatMap<'a> {
    src: &'a [f32],
    width: u32,
    height: u32,
    border: BorderMode,
}

dispatch!(fn sample_f32_row(map: &FloatMap<'_>, xs: &[f32], ys: &[f32], values: &mut [f32], weights: &mut [f32]) {
    avx2_fma() => avx2::sample_f32_row,
    _ => sample_f32_row_portable,
});

/// [`sample_f32`] at every (`xs`, `ys`): the values and the weights inside the source.
#[inline(always)]
fn sample_f32_row_portable(map: &FloatMap<'_>, xs: &[f32], ys: &[f32], values: &mut [f32], weights: &mut [f32]) {
    for (((value, weight), &x), &y) in values.iter_mut().zip(weights.iter_mut()).zip(xs).zip(ys) {
        (*value, *weight) = sample_f32(map, x, y);
    }
}

/// One bilinear sample of a float map at (`x`, `y`), as [`Sampler::sample`] computes a
/// channel before rounding (constant borders filled with 0), and the bilinear weight
/// that falls inside the source: the same sample of a map of ones, in the same f32
/// operations (both in one pass over the taps).
#[inline(always)]
fn sample_f32(map: &FloatMap<'_>, x: f32, y: f32) -> (f32, f32) {
    let FloatMap { src, width, height, border } = *map;
    if !(x.abs() <= 1e8 && y.abs() <= 1e8) {
        return (0.0, 0.0);
    }
    let (sx, sy) = (floor_i32(x), floor_i32(y));
    let (ax, ay) = (x - sx as f32, y - sy as f32);
    let weights = [(1.0 - ax) * (1.0 - ay), ax * (1.0 - ay), (1.0 - ax) * ay, ax * ay];
    let stride = width as usize;
    if sx >= 0 && sy >= 0 && (sx as u32) < width.saturating_sub(1) && (sy as u32) < height.saturating_sub(1) {
        // Wholly inside: no border rule applies.
        let i = sy as usize * stride + sx as usize;
        let value = src[i] * weights[0]
            + src[i + 1] * weights[1]
            + src[i + stride] * weights[2]
            + src[i + stride + 1] * weights[3];
        let weight = 1.0 * weights[0] + 1.0 * weights[1] + 1.0 * weights[2] + 1.0 * weights[3];
        return (value, weight);
    }
    let (w, h) = (i64::from(width), i64::from(height));
    let xi = [border_index(i64::from(sx), w, border), border_index(i64::from(sx) + 1, w, border)];
    let yi = [border_index(i64::from(sy), h, border), border_index(i64::from(sy) + 1, h, border)];
    let taps = [(xi[0], yi[0]), (xi[1], yi[0]), (xi[0], yi[1]), (xi[1], yi[1])];
    let (mut value, mut weight) = (0.0f32, 0.0f32);
    for ((xi, yi), w) in taps.into_iter().zip(weights) {
        let (v, inside) = match (xi, yi) {
            (Some(xi), Some(yi)) => (src[yi * stride + xi], 1.0),
            _ => (0.0, 0.0),
        };
        value += v * w;
        weight += inside * w;
    }
    (value, weight)
}

/// Inverse of a 3x3 matrix the way OpenCV's `invert` does it for small doubles.
pub(crate) fn invert3(m: &[f64; 9]) -> [f64; 9] {
    let det =
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if det == 0.0 {
        return [0.0; 9];
    }
    let d = 1.0 / det;
    [
        (m[4] * m[8] - m[5] * m[7]) * d,
        (m[2] * m[7] - m[1] * m[8]) * d,
        (m[1] * m[5] - m[2] * m[4]) * d,
        (m[5] * m[6] - m[3] * m[8]) * d,
        (m[0] * m[8] - m[2] * m[6]) * d,
        (m[2] * m[3] - m[0] * m[5]) * d,
        (m[3] * m[7] - m[4] * m[6]) * d,
        (m[1] * m[6] - m[0] * m[7]) * d,
        (m[0] * m[4] - m[1] * m[3]) * d,
    ]
}

/// Where the pixels of an output row sample the source.
#[derive(Clone, Debug)]
enum SourceMap {
    /// The inverse affine matrix (destination to source).
    Affine([f64; 6]),
    /// The inverse perspective matrix.
    Perspective([f64; 9]),
    /// The pixel grid plus a displacement per output pixel (row-major).
    Displaced { dx: Vec<f32>, dy: Vec<f32> },
}

impl SourceMap {
    /// The source coordinates of output row `y` into `xs` and `ys`.
    #[inline(always)]
    fn row(&self, y: usize, xs: &mut [f32], ys: &mut [f32]) {
        let w = xs.len();
        match self {
            SourceMap::Affine(m) => {
                let (bx, by) = (m[1] * y as f64 + m[2], m[4] * y as f64 + m[5]);
                for (x, (sx, sy)) in xs.iter_mut().zip(ys).enumerate() {
                    *sx = (m[0] * x as f64 + bx) as f32;
                    *sy = (m[3] * x as f64 + by) as f32;
                }
            }
            SourceMap::Perspective(m) => {
                let yf = y as f64;
                let x0 = m[1] * yf + m[2];
                let y0 = m[4] * yf + m[5];
                let w0 = m[7] * yf + m[8];
                for (x, (sx, sy)) in xs.iter_mut().zip(ys).enumerate() {
                    let xf = x as f64;
                    let ww = w0 + m[6] * xf;
                    let ww = if ww != 0.0 { 1.0 / ww } else { 0.0 };
                    *sx = ((x0 + m[0] * xf) * ww) as f32;
                    *sy = ((y0 + m[3] * xf) * ww) as f32;
                }
            }
            SourceMap::Displaced { dx, dy } => {
                let (dx, dy) = (&dx[y * w..(y + 1) * w], &dy[y * w..(y + 1) * w]);
                for (x, ((sx, sy), (&dx, &dy))) in xs.iter_mut().zip(ys).zip(dx.iter().zip(dy)).enumerate() {
                    *sx = (x as f64 + f64::from(dx)) as f32;
                    *sy = (y as f64 + f64::from(dy)) as f32;
                }
            }
        }
    }
}

dispatch!(
    /// Every output row: its source coordinates from `map`, then [`Sampler::sample_row`].
    /// Under AVX2 the coordinates are computed four doubles wide (the same values).
    fn resample(sampler: &Sampler<'_>, map: &SourceMap, out: &mut [u8]) {
        avx2_fma() => recompiled(resample_body),
        _ => resample_body,
    }
);

#[inline(always)]
fn resample_body(sampler: &Sampler<'_>, map: &SourceMap, out: &mut [u8]) {
    let w = sampler.width as usize;
    if w == 0 {
        return;
    }
    let (mut xs, mut ys) = (vec![0f32; w], vec![0f32; w]);
    for (y, row) in out.chunks_exact_mut(w * 3).take(sampler.height as usize).enumerate() {
        map.row(y, &mut xs, &mut ys);
        sampler.sample_row(&xs, &ys, row);
    }
}

/// `cv2.getPerspectiveTransform(src, dst)` (float32 points, LU with partial pivoting).
pub(crate) fn perspective_transform(src: &[[f32; 2]; 4], dst: &[[f32; 2]; 4]) -> [f64; 9] {
    let mut a = [[0f64; 8]; 8];
    let mut b = [0f64; 8];
    for i in 0..4 {
        let (sx, sy) = (src[i][0], src[i][1]);
        let (dx, dy) = (dst[i][0], dst[i][1]);
        a[i][0] = f64::from(sx);
        a[i + 4][3] = f64::from(sx);
        a[i][1] = f64::from(sy);
        a[i + 4][4] = f64::from(sy);
        a[i][2] = 1.0;
        a[i + 4][5] = 1.0;
        // The products are float products in OpenCV (Point2f members).
        a[i][6] = f64::from(-sx * dx);
        a[i][7] = f64::from(-sy * dx);
        a[i + 4][6] = f64::from(-sx * dy);
        a[i + 4][7] = f64::from(-sy * dy);
        b[i] = f64::from(dx);
        b[i + 4] = f64::from(dy);
    }
    let x = solve8(a, b);
    [x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], 1.0]
}

fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> [f64; 8] {
    const N: usize = 8;
    for i in 0..N {
        let mut k = i;
        for j in i + 1..N {
            if a[j][i].abs() > a[k][i].abs() {
                k = j;
            }
        }
        if a[k][i].abs() < f64::EPSILON * 10.0 {
            return [0.0; 8];
        }
        if k != i {
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        for j in i + 1..N {
            let alpha = a[j][i] * d;
            let (upper, lower) = a.split_at_mut(j);
            for (x, y) in lower[0][i + 1..].iter_mut().zip(&upper[i][i + 1..]) {
                *x += alpha * y;
            }
            b[j] += alpha * b[i];
        }
        a[i][i] = -d;
    }
    for i in (0..N).rev() {
        let mut s = b[i];
        for k in i + 1..N {
            s -= a[i][k] * b[k];
        }
        b[i] = s * a[i][i];
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn border_modes_match_opencv() {
        // OpenCV docs: for "abcdefgh" (len 8).
        let r101: Vec<usize> = (-3..11).map(|p| border_index(p, 8, BorderMode::Reflect101).unwrap()).collect();
        assert_eq!(r101, vec![3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4]);
        let r: Vec<usize> = (-3..11).map(|p| border_index(p, 8, BorderMode::Reflect).unwrap()).collect();
        assert_eq!(r, vec![2, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5]);
        assert_eq!(border_index(-1, 8, BorderMode::Constant), None);
        assert_eq!(border_index(-1, 8, BorderMode::Wrap), Some(7));
    }

    /// A uniform draw in [0, 1).
    fn unit(rng: &mut crate::Rng) -> f32 {
        (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32
    }

    /// Sampling coordinates over a 23 x 17 source: inside, on the edges, outside, huge and
    /// NaN, with mostly-interior blocks too, so that a vector path runs.
    fn coordinates(rng: &mut crate::Rng) -> (Vec<f32>, Vec<f32>) {
        let mut xs: Vec<f32> = (0..4099).map(|_| unit(rng) * 30.0 - 3.0).collect();
        let mut ys: Vec<f32> = (0..4099).map(|_| unit(rng) * 22.0 - 2.5).collect();
        for (x, y) in xs.iter_mut().zip(&mut ys).take(2048) {
            (*x, *y) = (*x * 0.6 + 2.0, *y * 0.6 + 2.0);
        }
        xs[3000..3004].copy_from_slice(&[f32::NAN, 1e9, -1e9, f32::INFINITY]);
        ys[3004..3007].copy_from_slice(&[f32::NAN, 3e8, -5e7]);
        (xs, ys)
    }

    const BORDERS: [BorderMode; 4] =
        [BorderMode::Constant, BorderMode::Replicate, BorderMode::Reflect101, BorderMode::Wrap];

    #[test]
    fn dispatched_sampling_equals_the_scalar_sampler() {
        let (w, h) = (23u32, 17u32);
        let mut rng = crate::Rng::from_seed(11);
        let src: Vec<u8> = (0..w * h * 3).map(|_| rng.next_u64() as u8).collect();
        let (xs, ys) = coordinates(&mut rng);
        for border in BORDERS {
            let sampler = Sampler::new(&src, w, h, border, [9, 99, 199]);
            let (mut fast, mut scalar) = (vec![0u8; xs.len() * 3], vec![0u8; xs.len() * 3]);
            sample_row(&sampler, &xs, &ys, &mut fast);
            sample_row_portable(&sampler, &xs, &ys, &mut scalar);
            assert_eq!(fast, scalar, "{border:?}");
        }
    }

    #[test]
    fn dispatched_float_sampling_equals_the_scalar_sampler() {
        // Values and inside weights, bit for bit.
        let (w, h) = (23u32, 17u32);
        let mut rng = crate::Rng::from_seed(12);
        let src: Vec<f32> = (0..w * h).map(|_| unit(&mut rng) * 2.0 - 0.5).collect();
        let (xs, ys) = coordinates(&mut rng);
        for border in BORDERS {
            let n = xs.len();
            let (mut fast, mut scalar) = ((vec![0f32; n], vec![0f32; n]), (vec![0f32; n], vec![0f32; n]));
            let map = FloatMap { src: &src, width: w, height: h, border };
            sample_f32_row(&map, &xs, &ys, &mut fast.0, &mut fast.1);
            sample_f32_row_portable(&map, &xs, &ys, &mut scalar.0, &mut scalar.1);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast.0), bits(&scalar.0), "{border:?}: values");
            assert_eq!(bits(&fast.1), bits(&scalar.1), "{border:?}: weights");
        }
    }

    #[test]
    fn perspective_identity() {
        let p = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]];
        let m = perspective_transform(&p, &p);
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        for (a, b) in m.iter().zip(id) {
            assert!((a - b).abs() < 1e-12, "{m:?}");
        }
    }
}
