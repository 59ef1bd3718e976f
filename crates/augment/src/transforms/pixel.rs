//! Pixel-level operations on RGB8 buffers, following albumentations 2.0 / albucore /
//! OpenCV arithmetic: float32 lookup tables truncated to uint8, OpenCV's fixed-point
//! grey conversion, and the blend with grey that saturation is. Hue is in `hue`, the
//! flip in `flip`.

use clipshift_simd::dispatch;

/// albucore `clip(x, uint8)`: clip to [0, 255] then `astype(uint8)` (truncation).
#[inline]
fn clip_trunc(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// albucore `multiply_add(img, factor, value)` for uint8: a float32 LUT, clipped and truncated.
pub(crate) fn multiply_add(buf: &mut [u8], factor: f64, value: f64) {
    affine_u8(buf, factor as f32, value as f32);
}

/// albucore `multiply(img, factor)` for uint8 (float32 LUT, truncated): `multiply_add`
/// with `value = 0` (adding zero changes no value's truncation).
fn multiply(buf: &mut [u8], factor: f64) {
    affine_u8(buf, factor as f32, 0.0);
}

dispatch!(
    /// `clip(x * f + v, 0, 255).astype(uint8)` for every byte, the float32 operations of
    /// albucore's lookup table: with VBMI through that table 64 bytes per permute, with
    /// AVX2 computed eight lanes at a time, otherwise one table load per byte.
    fn affine_u8(buf: &mut [u8], f: f32, v: f32) {
        avx512_vbmi() => affine_u8_vbmi,
        avx2_fma() => affine_u8_avx2,
        _ => affine_u8_portable,
    }
);

fn affine_table(f: f32, v: f32) -> [u8; 256] {
    std::array::from_fn(|i| clip_trunc(i as f32 * f + v))
}

fn affine_u8_portable(buf: &mut [u8], f: f32, v: f32) {
    apply_lut_portable(buf, &affine_table(f, v));
}

#[inline(always)]
fn apply_lut_portable(buf: &mut [u8], lut: &[u8; 256]) {
    for v in buf {
        *v = lut[usize::from(*v)];
    }
}

/// 64 lookups at a time: two two-register byte permutes (`vpermi2b`, 7 index bits each)
/// cover the table's halves, and the index's top bit picks between them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn affine_u8_vbmi(buf: &mut [u8], f: f32, v: f32) {
    use std::arch::x86_64::{__m512i, _mm512_mask_blend_epi8, _mm512_movepi8_mask, _mm512_permutex2var_epi8};
    let lut = affine_table(f, v);
    let quarter =
        |q: usize| -> __m512i { bytemuck::cast(<[u8; 64]>::try_from(&lut[64 * q..64 * (q + 1)]).expect("64")) };
    let (t0, t1, t2, t3) = (quarter(0), quarter(1), quarter(2), quarter(3));
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        let x: __m512i = bytemuck::cast(<[u8; 64]>::try_from(&*block).expect("64"));
        let low = _mm512_permutex2var_epi8(t0, x, t1);
        let high = _mm512_permutex2var_epi8(t2, x, t3);
        let y = _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high);
        block.copy_from_slice(&bytemuck::cast::<__m512i, [u8; 64]>(y));
    }
    apply_lut_portable(blocks.into_remainder(), &lut);
}

/// 32 bytes at a time: widen to f32, `x * f + v`, then truncate and saturate. Clamping
/// at 255 first (`min(255, y)`, which keeps NaN) leaves the conversion's out-of-range
/// and NaN result, `i32::MIN`, and every negative value to the unsigned packs, which
/// saturate them to 0 as `clip` + `astype` does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn affine_u8_avx2(buf: &mut [u8], f: f32, v: f32) {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_add_ps, _mm256_cvtepi32_ps, _mm256_cvtepu8_epi32, _mm256_cvttps_epi32, _mm256_min_ps,
        _mm256_mul_ps, _mm256_packus_epi16, _mm256_packus_epi32, _mm256_permutevar8x32_epi32, _mm256_set1_ps,
        _mm256_setr_epi32,
    };
    let (fv, vv, top) = (_mm256_set1_ps(f), _mm256_set1_ps(v), _mm256_set1_ps(255.0));
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        let bytes: [u64; 4] = bytemuck::cast(<[u8; 32]>::try_from(&*block).expect("32"));
        let lanes = |q: usize| {
            let eight: __m128i = bytemuck::cast([bytes[q], 0]);
            let y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(eight)), fv), vv);
            _mm256_cvttps_epi32(_mm256_min_ps(top, y))
        };
        let packed =
            _mm256_packus_epi16(_mm256_packus_epi32(lanes(0), lanes(1)), _mm256_packus_epi32(lanes(2), lanes(3)));
        // The packs interleave the 128-bit halves: dwords 0, 4, 1, 5, ... hold bytes 0..32 in order.
        let out: __m256i = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        block.copy_from_slice(&bytemuck::cast::<__m256i, [u8; 32]>(out));
    }
    affine_u8_portable(blocks.into_remainder(), f, v);
}

/// OpenCV 5 `COLOR_RGB2GRAY` for 8-bit: 15-bit fixed-point BT.601 weights summing to 2^15.
#[inline]
pub(crate) fn gray(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 9798 + u32::from(g) * 19235 + u32::from(b) * 3735 + (1 << 14)) >> 15) as u8
}

/// torchvision-style brightness: `img * factor` (albumentations `adjust_brightness_torchvision`).
pub(crate) fn adjust_brightness(buf: &mut [u8], factor: f64) {
    if factor == 0.0 {
        buf.fill(0);
    } else if factor != 1.0 {
        multiply(buf, factor);
    }
}

/// torchvision-style contrast around the mean grey level.
pub(crate) fn adjust_contrast(buf: &mut [u8], factor: f64) {
    if factor == 1.0 {
        return;
    }
    let n = buf.len() / 3;
    let sum = gray_sum(buf);
    let mean = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    if factor == 0.0 {
        buf.fill((mean + 0.5) as u8);
        return;
    }
    multiply_add(buf, factor, mean * (1.0 - factor));
}

dispatch!(
    /// The sum of [`gray`] over the pixels of `buf`.
    fn gray_sum(buf: &[u8]) -> u64 {
        avx2_fma() => gray_sum_avx2,
        _ => gray_sum_portable,
    }
);

fn gray_sum_portable(buf: &[u8]) -> u64 {
    buf.chunks_exact(3).map(|p| u64::from(gray(p[0], p[1], p[2]))).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gray_sum_avx2(buf: &[u8]) -> u64 {
    let blocks = buf.chunks_exact(24);
    let rest = gray_sum_portable(blocks.remainder());
    blocks.map(|b| avx2::gray_sum(b)).sum::<u64>() + rest
}

dispatch!(
    /// Blend with the grey image: `cv2.addWeighted(img, f, gray, 1 - f, 0)`. OpenCV computes
    /// `fma(x, f, gray * (1 - f))` in float32 (the AVX2 build fuses it) and rounds half to even.
    pub(crate) fn adjust_saturation(buf: &mut [u8], factor: f64) {
        avx2_fma() => adjust_saturation_avx2,
        _ => adjust_saturation_body,
    }
);

/// Eight pixels per step with native FMA; factors 0 and 1 and the last pixels take the
/// portable code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn adjust_saturation_avx2(buf: &mut [u8], factor: f64) {
    if factor == 1.0 || factor == 0.0 {
        return adjust_saturation_body(buf, factor);
    }
    let mut blocks = buf.chunks_exact_mut(24);
    for block in &mut blocks {
        avx2::saturation(block, factor as f32, (1.0 - factor) as f32);
    }
    adjust_saturation_body(blocks.into_remainder(), factor);
}

#[inline(always)]
fn adjust_saturation_body(buf: &mut [u8], factor: f64) {
    if factor == 1.0 {
        return;
    }
    if factor == 0.0 {
        for p in buf.chunks_exact_mut(3) {
            p.fill(gray(p[0], p[1], p[2]));
        }
        return;
    }
    let (a, b) = (factor as f32, (1.0 - factor) as f32);
    // fmaf(x, a, gray * b) through f64: the product of an 8-bit value and an f32 is exact
    // there, and so is the sum whenever |1 - factor| >= 1e-6, which leaves the single
    // rounding to f32 that FMA does. (`f32::mul_add` is a libm call per value on
    // baseline x86-64.)
    let xa: [f64; 256] = std::array::from_fn(|x| x as f64 * f64::from(a));
    let gb: [f64; 256] = std::array::from_fn(|g| f64::from(g as f32 * b));
    for p in buf.chunks_exact_mut(3) {
        let c = gb[usize::from(gray(p[0], p[1], p[2]))];
        for v in p.iter_mut() {
            *v = saturate_round((xa[usize::from(*v)] + c) as f32);
        }
    }
}

/// Round half to even for |x| < 2^22 with two float adds (OpenCV's `cvRound`); x86-64's
/// baseline has no `roundss`, so `round_ties_even` would be a libm call.
#[inline]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (x + MAGIC) - MAGIC
}

/// `saturate_cast<uchar>(x)` for a float: round half to even, then clamp to [0, 255]
/// (clamping first gives the same result and leaves a plain conversion).
#[inline]
pub(super) fn saturate_round(x: f32) -> u8 {
    round_even(x.clamp(0.0, 255.0)) as i32 as u8
}

/// The brightness and saturation kernels eight pixels at a time, in the same operations
/// as the scalar code (FMA native where OpenCV's AVX2 code fuses), so the same bytes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_cvtepi32_ps, _mm256_cvtps_epi32, _mm256_fmadd_ps, _mm256_max_ps,
        _mm256_min_ps, _mm256_mul_ps, _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_set1_ps, _mm256_srli_epi32,
    };

    use clipshift_simd::rgb8x8;

    /// [`super::gray`] in every lane.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn gray([r, g, b]: [__m256i; 3]) -> __m256i {
        let weighted = _mm256_add_epi32(
            _mm256_add_epi32(
                _mm256_mullo_epi32(r, _mm256_set1_epi32(9798)),
                _mm256_mullo_epi32(g, _mm256_set1_epi32(19235)),
            ),
            _mm256_add_epi32(_mm256_mullo_epi32(b, _mm256_set1_epi32(3735)), _mm256_set1_epi32(1 << 14)),
        );
        _mm256_srli_epi32::<15>(weighted)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gray_sum(pixels: &[u8]) -> u64 {
        let lanes: [u32; 8] = bytemuck::cast(gray(rgb8x8::split(pixels)));
        lanes.iter().map(|&v| u64::from(v)).sum()
    }

    /// [`super::adjust_saturation`]: `saturate_round(fmaf(x, a, gray * b))` per value.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn saturation(pixels: &mut [u8], a: f32, b: f32) {
        let rgb = rgb8x8::split(pixels);
        let gb = _mm256_mul_ps(_mm256_cvtepi32_ps(gray(rgb)), _mm256_set1_ps(b));
        let blend = |x: __m256i| {
            let y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x), _mm256_set1_ps(a), gb);
            // Clamp, then cvtps2dq rounds half to even: saturate_round.
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, _mm256_set1_ps(0.0)), _mm256_set1_ps(255.0)))
        };
        rgb8x8::join([blend(rgb[0]), blend(rgb[1]), blend(rgb[2])], pixels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_equals_fused_float32_blend() {
        // Every (r, g) with a varying b, against fmaf + round-half-even as OpenCV's
        // AVX2 addWeighted computes it; factors across [0, 3] and near 1.
        let src: Vec<u8> = (0..=255u8)
            .flat_map(|r| (0..=255u8).flat_map(move |g| [r, g, r.wrapping_mul(7).wrapping_add(g.wrapping_mul(13))]))
            .collect();
        let near_one = [1.0 - 2e-6, 1.0 - 1e-6, 1.0 + 1e-6, 1.0 + 2e-6, 0.0, 3.0];
        for factor in (0..300).map(|k| k as f64 * 0.010_037).chain(near_one) {
            // The dispatched kernel (AVX2 where present) and the portable emulation.
            let (mut fast, mut portable) = (src.clone(), src.clone());
            adjust_saturation(&mut fast, factor);
            adjust_saturation_body(&mut portable, factor);
            let (a, b) = (factor as f32, (1.0 - factor) as f32);
            for buf in [fast, portable] {
                for (p, q) in src.chunks_exact(3).zip(buf.chunks_exact(3)) {
                    let gb = f32::from(gray(p[0], p[1], p[2])) * b;
                    for (&x, &y) in p.iter().zip(q) {
                        let want = f32::from(x).mul_add(a, gb).round_ties_even().clamp(0.0, 255.0) as u8;
                        assert_eq!(y, want, "factor {factor}, pixel {p:?}");
                    }
                }
            }
        }
    }

    // The AVX2 kernel, which VBMI's takes over from in `affine_u8`.
    dispatch!(fn affine_u8_without_vbmi(buf: &mut [u8], f: f32, v: f32) {
        avx2_fma() => affine_u8_avx2,
        _ => affine_u8_portable,
    });

    #[test]
    fn dispatched_kernels_equal_the_portable_ones() {
        let mut rng = crate::Rng::from_seed(3);
        let src: Vec<u8> = (0..97 * 31 * 3).map(|_| rng.next_u64() as u8).collect();
        let params = [
            (1.0, 0.0),
            (0.8, 12.5),
            (1.37, -40.25),
            (2.9, 0.0),
            (0.0, 300.0),
            (-1.5, 255.0),
            (3e38, -3e38),
            (f32::INFINITY, 0.0),
        ];
        for len in [0, 1, 31, 32, 63, 64, 65, 1000, src.len()] {
            for &(f, v) in &params {
                let (mut fast, mut portable) = (src[..len].to_vec(), src[..len].to_vec());
                affine_u8(&mut fast, f, v);
                affine_u8_portable(&mut portable, f, v);
                assert_eq!(fast, portable, "x * {f} + {v} over {len} values");
                let mut avx2 = src[..len].to_vec();
                affine_u8_without_vbmi(&mut avx2, f, v);
                assert_eq!(avx2, portable, "AVX2: x * {f} + {v} over {len} values");
            }
        }
        for len in [0, 3, 24, 27, 300, src.len()] {
            assert_eq!(gray_sum(&src[..len]), gray_sum_portable(&src[..len]), "grey sum over {len} values");
        }
    }

    #[test]
    fn gray_of_white_and_black() {
        assert_eq!(gray(255, 255, 255), 255);
        assert_eq!(gray(0, 0, 0), 0);
    }
}
