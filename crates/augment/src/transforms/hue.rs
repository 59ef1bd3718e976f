//! albumentations' hue shift for uint8: OpenCV's fixed-point RGB -> HSV, a hue lookup
//! table, and OpenCV's float HSV -> RGB, whose vector loop and scalar tail quantise
//! differently (both reproduced).

use clipshift_simd::dispatch;

use super::pixel::saturate_round;

/// `fmaf(-s, x, 1)`; exact in f64 for every `s = S / 255` and hue fraction the HSV
/// conversion produces (checked exhaustively in the tests).
#[inline]
fn one_minus_product(s: f32, x: f32) -> f32 {
    (1.0 - f64::from(s) * f64::from(x)) as f32
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

/// The hue kernel eight pixels at a time, in the same operations as the scalar code
/// (FMA native where OpenCV's AVX2 code fuses), so the same bytes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_blendv_epi8, _mm256_cmpeq_epi32,
        _mm256_cvtepi32_ps, _mm256_cvttps_epi32, _mm256_fnmadd_ps, _mm256_max_epi32, _mm256_min_epi32, _mm256_mul_ps,
        _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_set1_ps, _mm256_shuffle_epi8, _mm256_slli_epi32,
        _mm256_srai_epi32, _mm256_sub_epi32, _mm256_sub_ps,
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

    #[test]
    fn dispatched_kernel_equals_the_portable_one() {
        let mut rng = crate::Rng::from_seed(3);
        let src: Vec<u8> = (0..96 * 31 * 3).map(|_| rng.next_u64() as u8).collect();
        let tables = HueTables::new(0.23);
        let (mut fast, mut portable) = (src.clone(), src.clone());
        hue_vector_blocks(&tables, &mut fast);
        hue_vector_blocks_portable(&tables, &mut portable);
        assert_eq!(fast, portable, "hue blocks");
    }
}
