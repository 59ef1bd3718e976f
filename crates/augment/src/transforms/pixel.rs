//! Pixel-level operations on RGB8 buffers, following albumentations 2.0 / albucore /
//! OpenCV arithmetic: float32 lookup tables truncated to uint8, OpenCV's fixed-point
//! grey and HSV conversions.

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

/// `fmaf(-s, x, 1)`; exact in f64 for every `s = S / 255` and hue fraction the HSV
/// conversion produces (checked exhaustively in the tests).
#[inline]
fn one_minus_product(s: f32, x: f32) -> f32 {
    (1.0 - f64::from(s) * f64::from(x)) as f32
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
fn saturate_round(x: f32) -> u8 {
    round_even(x.clamp(0.0, 255.0)) as i32 as u8
}

/// `x.trunc()` for 0 <= x < 2^31, without a libm call.
#[inline]
fn trunc_pos(x: f32) -> f32 {
    x as i32 as f32
}

struct HsvTables {
    sdiv: [i32; 256],
    hdiv: [i32; 256],
}

fn hsv_tables() -> HsvTables {
    let mut sdiv = [0i32; 256];
    let mut hdiv = [0i32; 256];
    for i in 1..256 {
        sdiv[i] = ((255 << 12) as f64 / i as f64).round_ties_even() as i32;
        hdiv[i] = ((180 << 12) as f64 / (6.0 * i as f64)).round_ties_even() as i32;
    }
    HsvTables { sdiv, hdiv }
}

/// OpenCV `COLOR_RGB2HSV` for 8-bit (H in 0..180, fixed point with 12-bit tables).
#[inline]
fn rgb_to_hsv(t: &HsvTables, r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let (sdiv, hdiv) = (t.sdiv[usize::from(v)], t.hdiv[usize::from(diff)]);
    let (r, g, b, vi, diff) = (i32::from(r), i32::from(g), i32::from(b), i32::from(v), i32::from(diff));
    let s = (diff * sdiv + (1 << 11)) >> 12;
    // OpenCV's masks rather than branches, which photographs and noise mispredict.
    let vr = -i32::from(vi == r);
    let vg = -i32::from(vi == g);
    let h = (vr & (g - b)) + (!vr & ((vg & (b - r + 2 * diff)) + (!vg & (r - g + 4 * diff))));
    let h = (h * hdiv + (1 << 11)) >> 12;
    ((h + (180 & (h >> 31))) as u8, s as u8, v)
}

/// Pixels per block of OpenCV's vectorised `HSV2RGB_b` loop in the AVX2 code path that
/// opencv-python's x86-64 wheels dispatch to (4 x 8 float lanes). Each row runs whole
/// blocks through the SIMD code and the remaining `width % 32` pixels through the
/// scalar code, and the two quantise differently.
const HSV2RGB_BLOCK: usize = 32;

/// OpenCV 5 `COLOR_HSV2RGB` for 8-bit, float32 throughout with `1 - s * h` fused.
/// `simd`: the vector loop (sector by truncation, result truncated); otherwise the scalar
/// tail (`fmod`, `cvFloor`, result rounded half to even by `saturate_cast`).
#[inline]
fn hsv_to_rgb(h: u8, s: u8, v: u8, simd: bool) -> [u8; 3] {
    const SECTOR: [[usize; 3]; 6] = [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]];
    let s = f32::from(s) * (1.0 / 255.0);
    let v = f32::from(v) * (1.0 / 255.0);
    let hh = f32::from(h) * (6.0f32 / 180.0);
    let (sector, frac) = if simd {
        let pre = trunc_pos(hh);
        ((pre - trunc_pos(pre * (1.0f32 / 6.0)) * 6.0) as usize, hh - pre)
    } else {
        if s == 0.0 {
            return [saturate_round(v * 255.0); 3];
        }
        // fmod(hh, 6) for hh >= 0 (h < 180 never wraps).
        let hh = if hh >= 6.0 { hh % 6.0 } else { hh };
        let pre = trunc_pos(hh);
        (pre as usize, hh - pre)
    };
    let tab = [v, v * (1.0 - s), v * one_minus_product(s, frac), v * one_minus_product(s, 1.0 - frac)];
    let [b, g, r] = SECTOR[sector].map(|k| tab[k] * 255.0);
    if simd { [r as u8, g as u8, b as u8] } else { [r, g, b].map(saturate_round) }
}

/// albumentations `adjust_hue_torchvision` for uint8: HSV round trip with a hue LUT
/// `(h + 180 * factor) mod 180`, truncated. `width` matters because OpenCV converts
/// back row by row (see [`HSV2RGB_BLOCK`]).
pub(crate) fn adjust_hue(buf: &mut [u8], width: usize, factor: f64) {
    if factor == 0.0 || width == 0 {
        return;
    }
    let tables = HueTables::new(factor);
    let simd_px = width / HSV2RGB_BLOCK * HSV2RGB_BLOCK;
    for row in buf.chunks_exact_mut(width * 3) {
        let (head, tail) = row.split_at_mut(simd_px * 3);
        hue_vector_blocks(&tables, head);
        for p in tail.chunks_exact_mut(3) {
            let (hi, si, vi) = rgb_to_hsv(&tables.hsv, p[0], p[1], p[2]);
            let [r, g, b] = hsv_to_rgb(tables.shift[usize::from(hi)], si, vi, false);
            (p[0], p[1], p[2]) = (r, g, b);
        }
    }
}

struct HueTables {
    hsv: HsvTables,
    /// The hue shift.
    shift: [u8; 256],
    /// Per hue before the shift, for the vector path: the shifted hue's sector, and the
    /// fraction x in the middle channel `v * (1 - s * x)` (x = frac in odd sectors,
    /// where OpenCV picks tab[2], and 1 - frac in even ones, tab[3]).
    sector: [u8; 256],
    mid: [f32; 256],
}

impl HueTables {
    fn new(factor: f64) -> Self {
        let shift: [u8; 256] = std::array::from_fn(|i| (i as f64 + 180.0 * factor).rem_euclid(180.0) as u8);
        let mut sector = [0u8; 256];
        let mut mid = [0f32; 256];
        for (h, &shifted) in shift.iter().enumerate() {
            let hh = f32::from(shifted) * (6.0f32 / 180.0);
            let pre = trunc_pos(hh);
            let frac = hh - pre;
            let sec = (pre - trunc_pos(pre * (1.0f32 / 6.0)) * 6.0) as u8;
            sector[h] = sec;
            mid[h] = if sec % 2 == 1 { frac } else { 1.0 - frac };
        }
        Self { hsv: hsv_tables(), shift, sector, mid }
    }
}

/// Which of (tab[0], tab[1], middle) lands in r, g, b for each sector (OpenCV's
/// sector_data read for this order).
const HUE_PERM: [[usize; 3]; 6] = [[0, 2, 1], [2, 0, 1], [1, 0, 2], [1, 2, 0], [2, 1, 0], [0, 1, 2]];

dispatch!(
    /// The hue shift over whole blocks of [`HSV2RGB_BLOCK`] pixels (OpenCV's vector loop).
    fn hue_vector_blocks(tables: &HueTables, pixels: &mut [u8]) {
        avx2_fma() => hue_vector_blocks_avx2,
        _ => hue_vector_blocks_portable,
    }
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hue_vector_blocks_avx2(tables: &HueTables, pixels: &mut [u8]) {
    avx2::hue(tables, pixels);
}

fn hue_vector_blocks_portable(tables: &HueTables, pixels: &mut [u8]) {
    const B: usize = HSV2RGB_BLOCK;
    let (mut sec, mut s, mut v, mut x) = ([0u8; B], [0u8; B], [0u8; B], [0f32; B]);
    let mut q = [[0u8; B]; 3];
    for block in pixels.chunks_exact_mut(B * 3) {
        for (i, p) in block.chunks_exact(3).enumerate() {
            let (hi, si, vi) = rgb_to_hsv(&tables.hsv, p[0], p[1], p[2]);
            (sec[i], s[i], v[i], x[i]) = (tables.sector[usize::from(hi)], si, vi, tables.mid[usize::from(hi)]);
        }
        // Lane-wise arithmetic the compiler can vectorise.
        for i in 0..B {
            let sf = f32::from(s[i]) * (1.0 / 255.0);
            let vf = f32::from(v[i]) * (1.0 / 255.0);
            q[0][i] = (vf * 255.0) as i32 as u8;
            q[1][i] = (vf * (1.0 - sf) * 255.0) as i32 as u8;
            q[2][i] = (vf * one_minus_product(sf, x[i]) * 255.0) as i32 as u8;
        }
        for (i, p) in block.chunks_exact_mut(3).enumerate() {
            // Byte by byte: a 3-byte temporary read back as a word stalls store forwarding.
            for (d, &k) in p.iter_mut().zip(&HUE_PERM[usize::from(sec[i])]) {
                *d = q[k][i];
            }
        }
    }
}

/// The colour kernels eight pixels at a time, in the same operations as the scalar code
/// (FMA native where OpenCV's AVX2 code fuses), so the same bytes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_blendv_epi8, _mm256_cmpeq_epi32,
        _mm256_cvtepi32_ps, _mm256_cvtps_epi32, _mm256_cvttps_epi32, _mm256_fmadd_ps, _mm256_fnmadd_ps,
        _mm256_max_epi32, _mm256_max_ps, _mm256_min_epi32, _mm256_min_ps, _mm256_mul_ps, _mm256_mullo_epi32,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_shuffle_epi8, _mm256_slli_epi32, _mm256_srai_epi32,
        _mm256_srli_epi32, _mm256_sub_epi32, _mm256_sub_ps,
    };

    use super::{HUE_PERM, HueTables};
    use clipshift_simd::rgb8x8;

    /// `HUE_PERM[sector][c]` as byte-shuffle tables, one per output channel c.
    const SECTOR_SOURCE: [[u8; 32]; 3] = {
        let mut tables = [[0u8; 32]; 3];
        let mut i = 0;
        while i < 32 {
            let mut c = 0;
            while c < 3 {
                if i % 16 < HUE_PERM.len() {
                    tables[c][i] = HUE_PERM[i % 16][c] as u8;
                }
                c += 1;
            }
            i += 1;
        }
        tables
    };

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

    /// [`super::rgb_to_hsv`], the hue shift and the vector-loop `hsv_to_rgb`, eight
    /// pixels at a time (`pixels.len()` is a multiple of 24).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn hue(tables: &HueTables, pixels: &mut [u8]) {
        for block in pixels.chunks_exact_mut(24) {
            hue_block(tables, block);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hue_block(tables: &HueTables, pixels: &mut [u8]) {
        let [r, g, b] = rgb8x8::split(pixels);
        let v = _mm256_max_epi32(_mm256_max_epi32(r, g), b);
        let diff = _mm256_sub_epi32(v, _mm256_min_epi32(_mm256_min_epi32(r, g), b));
        // Table lookups lane by lane (loops, not `array::map`, which would not inline).
        let lookup = |x: __m256i, table: &[i32; 256]| -> __m256i {
            let x: [i32; 8] = bytemuck::cast(x);
            let mut y = [0i32; 8];
            for l in 0..8 {
                y[l] = table[x[l] as usize & 0xff];
            }
            bytemuck::cast(y)
        };
        let (sdiv, hdiv) = (lookup(v, &tables.hsv.sdiv), lookup(diff, &tables.hsv.hdiv));
        let fixed = |x: __m256i, div: __m256i| {
            _mm256_srai_epi32::<12>(_mm256_add_epi32(_mm256_mullo_epi32(x, div), _mm256_set1_epi32(1 << 11)))
        };
        let s = fixed(diff, sdiv);
        let (vr, vg) = (_mm256_cmpeq_epi32(v, r), _mm256_cmpeq_epi32(v, g));
        let two_diff = _mm256_slli_epi32::<1>(diff);
        let h_r = _mm256_sub_epi32(g, b);
        let h_g = _mm256_add_epi32(_mm256_sub_epi32(b, r), two_diff);
        let h_b = _mm256_add_epi32(_mm256_sub_epi32(r, g), _mm256_slli_epi32::<1>(two_diff));
        let h = fixed(_mm256_blendv_epi8(_mm256_blendv_epi8(h_b, h_g, vg), h_r, vr), hdiv);
        let h = _mm256_add_epi32(h, _mm256_and_si256(_mm256_set1_epi32(180), _mm256_srai_epi32::<31>(h)));
        let hues: [i32; 8] = bytemuck::cast(h);
        let (mut sector, mut mid) = ([0i32; 8], [0f32; 8]);
        for l in 0..8 {
            let hue = hues[l] as usize & 0xff;
            sector[l] = i32::from(tables.sector[hue]);
            mid[l] = tables.mid[hue];
        }
        let (sector, mid): (__m256i, __m256) = (bytemuck::cast(sector), bytemuck::cast(mid));
        let scale = _mm256_set1_ps(1.0 / 255.0);
        let sf = _mm256_mul_ps(_mm256_cvtepi32_ps(s), scale);
        let vf = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
        let (one, full) = (_mm256_set1_ps(1.0), _mm256_set1_ps(255.0));
        let q0 = _mm256_cvttps_epi32(_mm256_mul_ps(vf, full));
        let q1 = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(vf, _mm256_sub_ps(one, sf)), full));
        let q2 = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(vf, _mm256_fnmadd_ps(sf, mid, one)), full));
        // The source of channel c for each lane's sector: HUE_PERM[sector][c], looked up
        // with a byte shuffle (the sector is the low byte of its lane).
        let select = |table: [u8; 32]| {
            let pick = _mm256_and_si256(_mm256_shuffle_epi8(bytemuck::cast(table), sector), _mm256_set1_epi32(0xff));
            let one_or_two = _mm256_blendv_epi8(q1, q2, _mm256_cmpeq_epi32(pick, _mm256_set1_epi32(2)));
            _mm256_blendv_epi8(one_or_two, q0, _mm256_cmpeq_epi32(pick, _mm256_set1_epi32(0)))
        };
        rgb8x8::join([select(SECTOR_SOURCE[0]), select(SECTOR_SOURCE[1]), select(SECTOR_SOURCE[2])], pixels);
    }
}

dispatch!(
    /// Mirror columns (`cv2.flip(img, 1)`) of `src` into `out`.
    pub(crate) fn hflip(src: &[u8], width: usize, out: &mut [u8]) {
        avx2_fma() => hflip_avx2,
        _ => hflip_portable,
    }
);

/// Pixels per block of the flip.
const FLIP_BLOCK: usize = 16;

/// Byte shuffles for [`hflip_avx2`]: `FLIP_MASKS[k][s]` moves the bytes of 16-byte source
/// vector `s` of a block to their places in output vector `k` (-1: not from `s`).
const FLIP_MASKS: [[[i8; 16]; 3]; 3] = {
    let mut masks = [[[-1i8; 16]; 3]; 3];
    let mut i = 0;
    while i < 3 * FLIP_BLOCK {
        let from = 3 * (FLIP_BLOCK - 1 - i / 3) + i % 3;
        masks[i / 16][from / 16][i % 16] = (from % 16) as i8;
        i += 1;
    }
    masks
};

/// Each output vector is the union of byte shuffles of the source vectors it draws from.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hflip_avx2(src: &[u8], width: usize, out: &mut [u8]) {
    use std::arch::x86_64::{__m128i, _mm_or_si128, _mm_setzero_si128, _mm_shuffle_epi8};
    flip_rows(src, width, out, |s, d| {
        let parts: [__m128i; 3] = bytemuck::cast(*s);
        for (k, chunk) in d.chunks_exact_mut(16).enumerate() {
            let mut v = _mm_setzero_si128();
            for (part, mask) in parts.iter().zip(&FLIP_MASKS[k]) {
                if mask.iter().any(|&m| m >= 0) {
                    v = _mm_or_si128(v, _mm_shuffle_epi8(*part, bytemuck::cast(*mask)));
                }
            }
            chunk.copy_from_slice(&bytemuck::cast::<__m128i, [u8; 16]>(v));
        }
    });
}

fn hflip_portable(src: &[u8], width: usize, out: &mut [u8]) {
    // The permutation spelled out as constant indices compiles to straight-line moves; a
    // pixel-by-pixel loop cost four times as much.
    flip_rows(src, width, out, |s, d| *d = std::array::from_fn(|i| s[(FLIP_BLOCK - 1 - i / 3) * 3 + i % 3]));
}

/// The flip of each row: `flip_block(source, destination)` mirrors whole blocks of
/// [`FLIP_BLOCK`] pixels, taken from the right end; the leftover pixels go one by one.
#[inline(always)]
fn flip_rows(
    src: &[u8],
    width: usize,
    out: &mut [u8],
    flip_block: impl Fn(&[u8; 3 * FLIP_BLOCK], &mut [u8; 3 * FLIP_BLOCK]),
) {
    if width == 0 {
        return;
    }
    let blocks = width / FLIP_BLOCK;
    for (dst, row) in out.chunks_exact_mut(width * 3).zip(src.chunks_exact(width * 3)) {
        for b in 0..blocks {
            let s = row[(width - (b + 1) * FLIP_BLOCK) * 3..(width - b * FLIP_BLOCK) * 3].try_into().expect("block");
            let d = (&mut dst[b * FLIP_BLOCK * 3..(b + 1) * FLIP_BLOCK * 3]).try_into().expect("block");
            flip_block(s, d);
        }
        for i in blocks * FLIP_BLOCK..width {
            let j = width - 1 - i;
            dst[3 * i..3 * i + 3].copy_from_slice(&row[3 * j..3 * j + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip_is_close() {
        let t = hsv_tables();
        let mut worst = 0u8;
        for r in (0..=255u8).step_by(5) {
            for g in (0..=255u8).step_by(7) {
                for b in (0..=255u8).step_by(11) {
                    let (h, s, v) = rgb_to_hsv(&t, r, g, b);
                    let back = hsv_to_rgb(h, s, v, true);
                    for (x, y) in back.iter().zip([r, g, b]) {
                        worst = worst.max(x.abs_diff(y));
                    }
                }
            }
        }
        // 8-bit HSV quantises hue to 2 degrees; OpenCV's round trip is lossy by a few levels.
        assert!(worst <= 8, "worst {worst}");
    }

    #[test]
    fn hsv_fma_emulation_is_exact_on_its_whole_domain() {
        for s8 in 0..=255u8 {
            let s = f32::from(s8) * (1.0 / 255.0);
            for h in 0..=255u8 {
                let hh = f32::from(h) * (6.0f32 / 180.0);
                let scalar = hh % 6.0;
                for frac in [hh - hh.trunc(), scalar - scalar.floor()] {
                    for x in [frac, 1.0 - frac] {
                        assert_eq!(one_minus_product(s, x).to_bits(), (-s).mul_add(x, 1.0).to_bits(), "s {s8} h {h}");
                    }
                }
            }
        }
    }

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

    #[test]
    fn hue_vector_blocks_equal_the_per_pixel_conversion() {
        let t = hsv_tables();
        let src: Vec<u8> = (0..1 << 18).flat_map(|i: u32| [(i * 37) as u8, (i >> 4) as u8, (i >> 10) as u8]).collect();
        for factor in [-0.5, -0.2, -0.013, 0.07, 0.31, 0.5] {
            let lut: Vec<u8> = (0..256).map(|i| (i as f64 + 180.0 * factor).rem_euclid(180.0) as u8).collect();
            let mut buf = src.clone();
            adjust_hue(&mut buf, 64, factor);
            for (p, q) in src.chunks_exact(3).zip(buf.chunks_exact(3)) {
                let (h, s, v) = rgb_to_hsv(&t, p[0], p[1], p[2]);
                assert_eq!(q, hsv_to_rgb(lut[usize::from(h)], s, v, true), "factor {factor}, pixel {p:?}");
            }
        }
    }

    #[test]
    fn hsv_to_rgb_matches_cv2_in_both_code_paths() {
        // (h, s, v), then cv2.cvtColor(COLOR_HSV2RGB) in column 0 (vector loop) and in
        // column 32 of a 33-pixel row (scalar tail).
        let cases = [
            ([1, 90, 85], [85, 56, 55], [85, 56, 55]),
            ([1, 170, 45], [45, 16, 14], [45, 16, 15]),
            ([100, 200, 30], [6, 22, 30], [6, 22, 30]),
            ([179, 255, 255], [255, 0, 8], [255, 0, 8]),
            ([37, 13, 201], [198, 201, 190], [199, 201, 191]),
        ];
        for ([h, s, v], simd, scalar) in cases {
            assert_eq!(hsv_to_rgb(h, s, v, true), simd, "{h} {s} {v}");
            assert_eq!(hsv_to_rgb(h, s, v, false), scalar, "{h} {s} {v}");
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
        let tables = HueTables::new(0.23);
        let head = &src[..96 * 31 * 3];
        let (mut fast, mut portable) = (head.to_vec(), head.to_vec());
        hue_vector_blocks(&tables, &mut fast);
        hue_vector_blocks_portable(&tables, &mut portable);
        assert_eq!(fast, portable, "hue blocks");
        for width in [1, 15, 16, 17, 33, 97] {
            let src = &src[..width * 31 * 3];
            let (mut fast, mut portable) = (vec![0; src.len()], vec![0; src.len()]);
            hflip(src, width, &mut fast);
            hflip_portable(src, width, &mut portable);
            assert_eq!(fast, portable, "flip at width {width}");
        }
    }

    #[test]
    fn gray_of_white_and_black() {
        assert_eq!(gray(255, 255, 255), 255);
        assert_eq!(gray(0, 0, 0), 0);
    }

    #[test]
    fn flip_twice_is_identity() {
        let orig: Vec<u8> = (0..5 * 3 * 3).map(|i| i as u8).collect();
        let mut b = vec![0; orig.len()];
        hflip(&orig, 5, &mut b);
        assert_ne!(b, orig);
        assert_eq!(b[..3], orig[12..15]);
        let mut c = vec![0; orig.len()];
        hflip(&b, 5, &mut c);
        assert_eq!(c, orig);
    }
}
