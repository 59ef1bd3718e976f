//! Gaussian kernels and separable convolution as albumentations 2.0 / OpenCV compute them.

use super::warp::{BorderMode, border_index};
use clipshift_simd::dispatch;

/// albumentations `create_gaussian_kernel_1d(sigma, ksize)` (float64, normalised).
pub(crate) fn albumentations_kernel(sigma: f64, ksize: usize) -> Vec<f64> {
    let size = if ksize.is_multiple_of(2) { ksize + 1 } else { ksize };
    let r = (size / 2) as f64;
    let k: Vec<f64> = (0..size).map(|i| (-0.5 * ((i as f64 - r) / sigma).powi(2)).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// `cv2.sepFilter2D(img, -1, k, k)` on RGB8 with `BORDER_REFLECT_101`, bit for bit.
///
/// albumentations 2.0.8 `GaussianBlur` calls `sepFilter2D` with its float64 kernel, and
/// OpenCV 5 filters 8-bit images with that kernel as f32 and f32 intermediates (not the
/// 8-bit fixed-point path of `cv2.GaussianBlur`, which differs by up to 2 levels). Its
/// AVX2 build (`RowVec_8u32f`, `SymmColumnVec_32f8u` in `filter.simd.hpp`) fuses
/// multiply-adds: the row pass is `fma(k[n-1], s[n-1], ... fma(k[1], s[1], k[0] * s[0]))`,
/// taps in order, for the first `32 * floor(3w / 32)` values of a row, and the same with
/// separate multiplies and adds for the rest (the scalar loop); the column pass
/// (symmetric kernel) starts from the centre tap and adds the mirrored pairs outwards,
/// `acc = fma(s[r-j] + s[r+j], k[r+j], acc)` for j = 1..=r, fused in every column. The
/// sum is rounded half to even and saturated. Identical to `cv2.sepFilter2D` 5.0 on
/// x86-64 AVX2 (checked on 16M values of random and photographic images, all sizes).
///
/// On a CPU with AVX2 and FMA the fused steps are native, 32 values at a time; without
/// it they are emulated exactly through f64 ([`fma_step`], [`fma_f32`]).
pub(crate) fn sep_filter_u8(src: &[u8], width: u32, height: u32, kernel: &[f64], out: &mut [u8]) {
    let k: Vec<f32> = kernel.iter().map(|&v| v as f32).collect();
    sep_filter_f32_kernel(src, width as usize, height as usize, &k, out);
}

dispatch!(fn sep_filter_f32_kernel(src: &[u8], w: usize, h: usize, k: &[f32], out: &mut [u8]) {
    avx2_fma() => sep_filter_avx2,
    _ => sep_filter_emulated,
});

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sep_filter_avx2(src: &[u8], w: usize, h: usize, k: &[f32], out: &mut [u8]) {
    let r = k.len() / 2;
    sep_filter_body(
        src,
        w,
        h,
        k,
        out,
        |padded, fused| avx2::row_fused(k, padded, fused),
        |ring, centre, pairs, acc| avx2::column(&k[r..], ring, centre, pairs, acc),
    );
}

fn sep_filter_emulated(src: &[u8], w: usize, h: usize, k: &[f32], out: &mut [u8]) {
    let r = k.len() / 2;
    let exact_sums = k.iter().all(|&v| v == 0.0 || v >= 2f32.powi(-21));
    // Every nonzero value of the column pass is then at least 2^-124, a normal f32, which
    // the halfway test in `fma_step` assumes.
    let normal_sums = k.iter().all(|&v| v == 0.0 || v >= 2f32.powi(-62));
    let mut acc = vec![0f32; (w * 3).max(CHUNK)];
    sep_filter_body(
        src,
        w,
        h,
        k,
        out,
        |padded, fused| {
            for (b, block) in fused.chunks_exact_mut(CHUNK).enumerate() {
                row_block(k, &padded[b * CHUNK..], exact_sums, block.try_into().expect("full block"));
            }
        },
        |ring, centre, pairs, out| {
            for_blocks(out.len(), |i, _| {
                let block = (&mut acc[i..i + CHUNK]).try_into().expect("block");
                column_block(&k[r..], &ring[i..], centre, pairs, normal_sums, block);
            });
            for (o, &a) in out.iter_mut().zip(&acc) {
                *o = round_u8(a);
            }
        },
    );
}

/// [`sep_filter_u8`] around its two fused passes: `row_fused(padded, out)` for the first
/// `32 * floor(3w / 32)` values of a row and `column(ring, centre, pairs, out)` for a
/// whole rounded output row.
#[inline(always)]
fn sep_filter_body(
    src: &[u8],
    w: usize,
    h: usize,
    k: &[f32],
    out: &mut [u8],
    row_fused: impl Fn(&[f32], &mut [f32]),
    mut column: impl FnMut(&[f32], usize, &[(usize, usize)], &mut [u8]),
) {
    if w == 0 || h == 0 {
        return;
    }
    let (n, r) = (k.len(), k.len() / 2);
    let stride = w * 3;
    // Horizontal pass over a reflected, padded copy of each source row (on the flattened
    // RGB row tap `j` of value `i` is `padded[i + 3 * j]`) into a ring of the rows the
    // vertical pass still needs, which stays in cache.
    let mut padded = vec![0f32; (w + 2 * r) * 3];
    let xidx: Vec<usize> = (0..w + 2 * r)
        .map(|p| border_index(p as i64 - r as i64, w as i64, BorderMode::Reflect101).unwrap_or(0) * 3)
        .collect();
    let yidx: Vec<usize> = (0..h + 2 * r)
        .map(|p| border_index(p as i64 - r as i64, h as i64, BorderMode::Reflect101).unwrap_or(0))
        .collect();
    // Output row y reads source rows within [y - r, y + r] (one reflection when h > n,
    // else any row), so a ring of min(n, h) rows indexed by `row % ring_rows` suffices.
    let ring_rows = n.min(h);
    // (With `CHUNK` values of slack: a block of a row narrower than `CHUNK` reads past it.)
    let mut ring = vec![0f32; ring_rows * stride + CHUNK];
    let mut offsets = vec![0usize; n];
    let mut pair_rows: Vec<(usize, usize)> = Vec::with_capacity(r);
    // The AVX2 row filter takes 32 values at a time; the rest of a row goes through
    // OpenCV's scalar loop, which multiplies and adds separately.
    let vector_end = stride / 32 * 32;
    let mut done = 0;
    for y in 0..h {
        let need = if ring_rows == h { h } else { (y + r + 1).min(h) };
        while done < need {
            let line = &src[done * stride..(done + 1) * stride];
            for (v, &b) in padded[3 * r..3 * r + stride].iter_mut().zip(line) {
                *v = f32::from(b);
            }
            for p in (0..r).chain(w + r..w + 2 * r) {
                let sx = xidx[p];
                for (v, &b) in padded[3 * p..3 * p + 3].iter_mut().zip(&line[sx..sx + 3]) {
                    *v = f32::from(b);
                }
            }
            let slot = (done % ring_rows) * stride;
            let row = &mut ring[slot..slot + stride];
            let (fused, plain) = row.split_at_mut(vector_end);
            row_fused(&padded, fused);
            for (i, a) in plain.iter_mut().enumerate() {
                let i = vector_end + i;
                *a = k[0] * padded[i];
                for (j, &kj) in k.iter().enumerate().skip(1) {
                    *a += kj * padded[i + 3 * j];
                }
            }
            done += 1;
        }
        for (o, &sy) in offsets.iter_mut().zip(&yidx[y..y + n]) {
            *o = (sy % ring_rows) * stride;
        }
        let (centre, pairs) = (offsets[r], &offsets[r + 1..]);
        let mirrored = offsets[..r].iter().rev();
        pair_rows.clear();
        pair_rows.extend(pairs.iter().zip(mirrored).map(|(&d, &u)| (u, d)));
        column(&ring, centre, &pair_rows, &mut out[y * stride..(y + 1) * stride]);
    }
}

/// The fused passes with native FMA, four AVX2 vectors (32 values) at a time. The
/// kernel sizes albumentations' `GaussianBlur` draws by default (3, 5, 7) get their own
/// copies with the taps unrolled.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_ps, _mm256_cvtps_epi32, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_packus_epi16,
        _mm256_packus_epi32, _mm256_permutevar8x32_epi32, _mm256_set1_ps, _mm256_setr_epi32,
    };

    use super::round_u8;

    const BLOCK: usize = 32;

    #[inline(always)]
    fn load(s: &[f32], at: usize) -> __m256 {
        bytemuck::cast(<[f32; 8]>::try_from(&s[at..at + 8]).expect("8 values"))
    }

    /// `out[l] = fma(k[n-1], s[l + 3(n-1)], ... k[0] * s[l])`; `out.len()` is a multiple of 32.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_fused(k: &[f32], s: &[f32], out: &mut [f32]) {
        match k.len() {
            3 => row_taps::<3>(k, s, out),
            5 => row_taps::<5>(k, s, out),
            7 => row_taps::<7>(k, s, out),
            _ => row_taps::<0>(k, s, out),
        }
    }

    /// [`row_fused`] for `N` taps (0: any number).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn row_taps<const N: usize>(k: &[f32], s: &[f32], out: &mut [f32]) {
        let n = if N == 0 { k.len() } else { N };
        let k = &k[..n];
        let tap_at = |at: usize| -> &[f32; BLOCK] { s[at..at + BLOCK].try_into().expect("block") };
        for (b, block) in out.chunks_exact_mut(BLOCK).enumerate() {
            let at = b * BLOCK;
            let k0 = _mm256_set1_ps(k[0]);
            let first = tap_at(at);
            let mut acc = [0, 1, 2, 3].map(|q| _mm256_mul_ps(k0, load(first, 8 * q)));
            for (j, &kj) in k.iter().enumerate().skip(1) {
                let kj = _mm256_set1_ps(kj);
                let tap = tap_at(at + 3 * j);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(kj, load(tap, 8 * q), *a);
                }
            }
            for (o, v) in block.chunks_exact_mut(8).zip(acc) {
                o.copy_from_slice(&bytemuck::cast::<__m256, [f32; 8]>(v));
            }
        }
    }

    /// One output row: `round_u8(fma(s[d + l] + s[u + l], k[j], ... k[0] * s[centre + l]))`
    /// over the row pairs `(u, d)` of `rows`, `k[0]` the centre tap.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn column(k: &[f32], s: &[f32], centre: usize, rows: &[(usize, usize)], out: &mut [u8]) {
        match rows.len() {
            1 => column_taps::<1>(k, s, centre, rows, out),
            2 => column_taps::<2>(k, s, centre, rows, out),
            3 => column_taps::<3>(k, s, centre, rows, out),
            _ => column_taps::<0>(k, s, centre, rows, out),
        }
    }

    /// [`column`] for `R` row pairs (0: any number).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn column_taps<const R: usize>(k: &[f32], s: &[f32], centre: usize, rows: &[(usize, usize)], out: &mut [u8]) {
        let r = if R == 0 { rows.len() } else { R };
        let (rows, k) = (&rows[..r], &k[..=r]);
        let len = out.len();
        // One bounds check per row and block; the loads inside a block are then free.
        let block_at = |o: usize, at: usize| -> &[f32; BLOCK] { s[o + at..o + at + BLOCK].try_into().expect("block") };
        let mut blocks = out.chunks_exact_mut(BLOCK);
        for (b, block) in (&mut blocks).enumerate() {
            let at = b * BLOCK;
            let k0 = _mm256_set1_ps(k[0]);
            let c = block_at(centre, at);
            let mut acc = [0, 1, 2, 3].map(|q| _mm256_mul_ps(k0, load(c, 8 * q)));
            for (&kj, &(u, d)) in k[1..].iter().zip(rows) {
                let kj = _mm256_set1_ps(kj);
                let (up, down) = (block_at(u, at), block_at(d, at));
                for (q, a) in acc.iter_mut().enumerate() {
                    let pair = _mm256_add_ps(load(up, 8 * q), load(down, 8 * q));
                    *a = _mm256_fmadd_ps(pair, kj, *a);
                }
            }
            block.copy_from_slice(&round_block(acc));
        }
        let rest = blocks.into_remainder();
        let at = len - rest.len();
        for (i, o) in (at..).zip(rest) {
            let mut a = k[0] * s[centre + i];
            for (&kj, &(u, d)) in k[1..].iter().zip(rows) {
                a = (s[u + i] + s[d + i]).mul_add(kj, a);
            }
            *o = round_u8(a);
        }
    }

    /// [`round_u8`] of 32 values: `cvtps2dq` rounds half to even, and the two unsigned
    /// saturating packs clamp to [0, 255] (the sums are finite and far below 2^31).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn round_block(acc: [__m256; 4]) -> [u8; 32] {
        let [a, b, c, d] = acc.map(|v| _mm256_cvtps_epi32(v));
        let bytes = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
        // The packs interleave the 128-bit lanes: dwords 0, 4, 1, 5, ... hold values 0..32 in order.
        let order: __m256i = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        bytemuck::cast(order)
    }
}

/// Values per block of the fused passes (the AVX2 row filter's 32 values are two).
const CHUNK: usize = 16;

/// `fmaf(k, x, acc)` over a block through f64: the product of two f32 is exact there, so
/// the sum is rounded twice, which differs from one rounding only when the f64 sum lands
/// exactly halfway between two f32 values (f64 rounding cannot cross that point, which
/// it represents); then `halfway` is set and the caller redoes the block with the exact
/// [`fma_f32`]. The test assumes sums in the normal f32 range.
#[inline(always)]
fn fma_step(acc: &mut [f32; CHUNK], k: f32, x: &[f32; CHUNK], halfway: &mut bool) {
    let kd = f64::from(k);
    let mut h = 0u32;
    for (a, &v) in acc.iter_mut().zip(x) {
        let s = kd * f64::from(v) + f64::from(*a);
        // The 29 bits below an f32's precision are 1000...0 (all in the low word).
        h |= u32::from((s.to_bits() as u32) & 0x1fff_ffff == 0x1000_0000);
        *a = s as f32;
    }
    *halfway |= h != 0;
}

/// One block of the fused row pass: `out[l] = fma(k[n-1], s[l + 3(n-1)], ... k[0] * s[l])`.
///
/// With `exact_sums` (every nonzero tap at least 2^-21) the f64 sums are exact, so one
/// rounding to f32 is the fused result: every value involved is a multiple of the least
/// significant bit of the smallest tap (at least 2^-44, the inputs are integers) and
/// below 2^9, which takes at most 53 bits. Otherwise each step is the exact [`fma_f32`].
#[inline(never)]
fn row_block(k: &[f32], s: &[f32], exact_sums: bool, out: &mut [f32; CHUNK]) {
    let tap = |j: usize| -> &[f32; CHUNK] { s[3 * j..3 * j + CHUNK].try_into().expect("block in bounds") };
    let mut acc = tap(0).map(|v| k[0] * v);
    for (j, &kj) in k.iter().enumerate().skip(1) {
        let kd = f64::from(kj);
        if exact_sums {
            for (a, &v) in acc.iter_mut().zip(tap(j)) {
                *a = (kd * f64::from(v) + f64::from(*a)) as f32;
            }
        } else {
            for (a, &v) in acc.iter_mut().zip(tap(j)) {
                *a = fma_f32(kj, v, *a);
            }
        }
    }
    *out = acc;
}

/// One block of the column pass: `k[0]` is the centre tap and `k[j]` weighs the row pair
/// `rows[j - 1]`; rows are offsets into `s`. Without `normal_sums` every step is the
/// exact [`fma_f32`].
#[inline(never)]
fn column_block(
    k: &[f32],
    s: &[f32],
    centre: usize,
    rows: &[(usize, usize)],
    normal_sums: bool,
    out: &mut [f32; CHUNK],
) {
    let row = |o: usize| -> &[f32; CHUNK] { s[o..o + CHUNK].try_into().expect("block in bounds") };
    let pair = |(u, d): (usize, usize)| -> [f32; CHUNK] {
        let (u, d) = (row(u), row(d));
        std::array::from_fn(|l| u[l] + d[l])
    };
    let mut acc = row(centre).map(|v| k[0] * v);
    let mut halfway = !normal_sums;
    for (&kj, &p) in k[1..].iter().zip(rows) {
        fma_step(&mut acc, kj, &pair(p), &mut halfway);
    }
    if halfway {
        acc = row(centre).map(|v| k[0] * v);
        for (&kj, &p) in k[1..].iter().zip(rows) {
            for (a, v) in acc.iter_mut().zip(pair(p)) {
                *a = fma_f32(kj, v, *a);
            }
        }
    }
    *out = acc;
}

/// `fmaf(a, b, c)`: `a * b + c` rounded once to f32, without a libm call (`f32::mul_add`
/// is one per value on baseline x86-64). The product of two f32 is exact in f64; the
/// f64 sum is rounded to odd (its error, from TwoSum, decides), after which the
/// conversion to f32 rounds correctly (53 >= 24 + 2 bits).
#[inline(always)]
fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    let p = f64::from(a) * f64::from(b);
    let c = f64::from(c);
    let s = p + c;
    let t = s - p;
    let err = (p - (s - t)) + (c - t);
    let bits = s.to_bits();
    // Inexact and even: step to the odd neighbour on the side of the exact value (away
    // from zero when the error has the sign of the sum), written without branches so
    // that the loops vectorise.
    let step = if (err > 0.0) == (s > 0.0) { 1 } else { u64::MAX };
    let fix = u64::from(err != 0.0) & !bits & 1;
    f64::from_bits(bits.wrapping_add(step & fix.wrapping_neg())) as f32
}

/// `v.round_ties_even().clamp(0.0, 255.0) as u8` without a libm call per value (x86-64's
/// baseline has no rounding instruction): adding 2^23 to a value in [0, 255] rounds it
/// half to even into the low mantissa bits. NaN gives 0, as the cast does.
#[inline]
pub(crate) fn round_u8(v: f32) -> u8 {
    ((v.clamp(0.0, 255.0) + 8_388_608.0).to_bits() & 0xff) as u8
}

/// Values accumulated in registers at once (four SSE vectors).
const LANES: usize = 16;

/// Calls `f(start, lanes)` for blocks covering `0..len`: full blocks of [`LANES`] values,
/// the last one overlapping its neighbour (each value is computed the same way in either),
/// or one short block when `len < LANES`.
#[inline]
fn for_blocks(len: usize, mut f: impl FnMut(usize, usize)) {
    if len < LANES {
        if len > 0 {
            f(0, len);
        }
        return;
    }
    let mut i = 0;
    loop {
        f(i, LANES);
        if i + LANES == len {
            break;
        }
        i = (i + LANES).min(len - LANES);
    }
}

/// `init + k[0] * s[l] + k[1] * s[l + step] + ...` for each lane `l < lanes`, summed left
/// to right in f32. A full block keeps its sums in registers, which is what makes it fast.
#[inline]
fn dot(k: &[f32], s: &[f32], step: usize, lanes: usize, init: f32) -> [f32; LANES] {
    let mut acc = [init; LANES];
    if lanes == LANES {
        dot_full(k, s, step, &mut acc);
    } else {
        for (j, &kj) in k.iter().enumerate() {
            for (a, &v) in acc[..lanes].iter_mut().zip(&s[j * step..]) {
                *a += kj * v;
            }
        }
    }
    acc
}

#[inline(never)]
fn dot_full(k: &[f32], s: &[f32], step: usize, out: &mut [f32; LANES]) {
    let mut acc = *out;
    for (j, &kj) in k.iter().enumerate() {
        let v: &[f32; LANES] = s[j * step..j * step + LANES].try_into().expect("block in bounds");
        for l in 0..LANES {
            acc[l] += kj * v[l];
        }
    }
    *out = acc;
}

/// Like [`dot`] down columns: tap `j` reads `s[rows[j] + l]`.
#[inline]
fn dot_rows(k: &[f32], rows: &[usize], s: &[f32], lanes: usize, init: &[f32; LANES]) -> [f32; LANES] {
    let mut acc = *init;
    if lanes == LANES {
        dot_rows_full(k, rows, s, &mut acc);
    } else {
        for (&kj, &o) in k.iter().zip(rows) {
            for (a, &v) in acc[..lanes].iter_mut().zip(&s[o..]) {
                *a += kj * v;
            }
        }
    }
    acc
}

#[inline(never)]
fn dot_rows_full(k: &[f32], rows: &[usize], s: &[f32], out: &mut [f32; LANES]) {
    let mut acc = *out;
    for (&kj, &o) in k.iter().zip(rows) {
        let v: &[f32; LANES] = s[o..o + LANES].try_into().expect("block in bounds");
        for l in 0..LANES {
            acc[l] += kj * v[l];
        }
    }
    *out = acc;
}

/// OpenCV `getGaussianKernel(n, sigma, CV_32F)` for `n > 7`.
pub(crate) fn opencv_kernel_f32(n: usize, sigma: f64) -> Vec<f32> {
    let scale2x = -0.5 / (sigma * sigma);
    let mut k: Vec<f32> = Vec::with_capacity(n);
    let mut sum = 0f64;
    for i in 0..n {
        let x = i as f64 - (n as f64 - 1.0) * 0.5;
        let t = (scale2x * x * x).exp() as f32;
        sum += f64::from(t);
        k.push(t);
    }
    let inv = 1.0 / sum;
    k.iter().map(|&t| (f64::from(t) * inv) as f32).collect()
}

/// OpenCV's kernel size for `cv2.GaussianBlur(.., (0, 0), sigma)` on float images.
pub(crate) fn opencv_kernel_size(sigma: f64) -> usize {
    ((sigma * 4.0 * 2.0 + 1.0).round_ties_even() as usize) | 1
}

/// `cv2.GaussianBlur(field, (0, 0), sigma, borderType=BORDER_REPLICATE)` on a
/// single-channel `f32` image of `width` x `height`, in place. Every output value is
/// `((0 + k0 * s0) + k1 * s1) + ...` in f32, taps in order, rows then columns. The
/// reference for [`super::field_blur`], which takes a faster route to the same values
/// within f32 rounding.
#[cfg(test)]
pub(crate) fn gaussian_blur_f32_replicate(field: &mut [f32], width: usize, height: usize, sigma: f64) {
    let k = opencv_kernel_f32(opencv_kernel_size(sigma), sigma);
    blur_rows_replicate(field, width, height, &k);
    blur_columns_replicate(field, width, height, &k);
}

/// The row pass of [`gaussian_blur_f32_replicate`] with kernel `k`.
///
/// With sigma = 60 the kernel (481 taps) is wider than the image, so many taps read the
/// replicated border. A sum's leading border terms are shared by every sum that starts
/// there (`prefix[m]` holds the first `m`, added in the same order, so starting from it
/// skips them bit for bit), and its trailing border terms are products that can be
/// computed once (`tail[j] = k[j] * edge`) and only added.
pub(crate) fn blur_rows_replicate(field: &mut [f32], width: usize, height: usize, k: &[f32]) {
    let (n, r) = (k.len(), k.len() / 2);
    if width == 0 || height == 0 {
        return;
    }
    let mut prefix = vec![0f32; r + 1];
    let mut tail = vec![0f32; n];
    let mut padded = vec![0f32; width + 2 * r];
    let mut out = vec![0f32; width];
    for y in 0..height {
        let row = &mut field[y * width..(y + 1) * width];
        for (p, v) in padded.iter_mut().enumerate() {
            *v = row[(p as i64 - r as i64).clamp(0, width as i64 - 1) as usize];
        }
        for m in 0..r {
            prefix[m + 1] = prefix[m] + k[m] * row[0];
        }
        for (t, &kj) in tail.iter_mut().zip(k) {
            *t = kj * row[width - 1];
        }
        for_blocks(width, |x, lanes| {
            // Every lane of the block reads the left border for taps below `skip` and
            // the right border from `border` on.
            let skip = r.saturating_sub(x + lanes - 1);
            let border = (r + width).saturating_sub(x).clamp(skip, n);
            let mut acc = [prefix[skip]; LANES];
            if lanes == LANES {
                dot_full(&k[skip..border], &padded[x + skip..], 1, &mut acc);
                add_scalars(&tail[border..], &mut acc);
            } else {
                acc = dot(&k[skip..], &padded[x + skip..], 1, lanes, prefix[skip]);
            }
            out[x..x + lanes].copy_from_slice(&acc[..lanes]);
        });
        row.copy_from_slice(&out);
    }
}

/// The column pass of [`gaussian_blur_f32_replicate`] with kernel `k`, one strip of
/// [`LANES`] columns at a time so the strip stays in L1.
pub(crate) fn blur_columns_replicate(field: &mut [f32], width: usize, height: usize, k: &[f32]) {
    let (n, r) = (k.len(), k.len() / 2);
    if width == 0 || height == 0 {
        return;
    }
    let src = field.to_vec();
    let mut prefix = vec![[0f32; LANES]; r + 1];
    let mut tail = vec![[0f32; LANES]; n];
    let rows: Vec<usize> =
        (0..height + 2 * r).map(|p| (p as i64 - r as i64).clamp(0, height as i64 - 1) as usize * width).collect();
    for_blocks(width, |x, lanes| {
        let top = &src[x..x + lanes];
        let bottom = &src[(height - 1) * width + x..(height - 1) * width + x + lanes];
        for m in 0..r {
            let (done, next) = prefix.split_at_mut(m + 1);
            for ((p, &q), &e) in next[0].iter_mut().zip(&done[m]).zip(top) {
                *p = q + k[m] * e;
            }
        }
        for (t, &kj) in tail.iter_mut().zip(k) {
            for (t, &e) in t.iter_mut().zip(bottom) {
                *t = kj * e;
            }
        }
        for y in 0..height {
            // Taps below `skip` read the top row, taps from `border` on the bottom row.
            let skip = r.saturating_sub(y);
            let border = (height + r - y).clamp(skip, n);
            let acc = if lanes == LANES {
                let mut acc = prefix[skip];
                dot_full(&k[skip..border], &src[(y + skip - r) * width + x..], width, &mut acc);
                add_vectors(&tail[border..], &mut acc);
                acc
            } else {
                dot_rows(&k[skip..], &rows[y + skip..y + n], &src[x..], lanes, &prefix[skip])
            };
            field[y * width + x..y * width + x + lanes].copy_from_slice(&acc[..lanes]);
        }
    });
}

/// `acc[l] += t` for each `t` of `terms` in order.
#[inline(never)]
fn add_scalars(terms: &[f32], out: &mut [f32; LANES]) {
    let mut acc = *out;
    for &t in terms {
        for a in &mut acc {
            *a += t;
        }
    }
    *out = acc;
}

/// `acc[l] += t[l]` for each `t` of `terms` in order.
#[inline(never)]
fn add_vectors(terms: &[[f32; LANES]], out: &mut [f32; LANES]) {
    let mut acc = *out;
    for t in terms {
        for l in 0..LANES {
            acc[l] += t[l];
        }
    }
    *out = acc;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_normalised() {
        let k = albumentations_kernel(1.3, 5);
        assert_eq!(k.len(), 5);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(albumentations_kernel(1.0, 4).len(), 5);
        let k = opencv_kernel_f32(481, 60.0);
        assert!((k.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn dispatched_blur_equals_the_emulated_fma() {
        // On a CPU with FMA `sep_filter_u8` runs the AVX2 passes; they must give the bytes
        // of the exact f64 emulation, which the cv2 reference tests pin down elsewhere.
        let mut rng = crate::Rng::from_seed(7);
        for (w, h) in [(224, 224), (37, 19), (11, 40), (5, 3), (1, 9)] {
            let src: Vec<u8> = (0..w * h * 3).map(|_| rng.next_u64() as u8).collect();
            for (sigma, ksize) in [(0.8, 3), (1.4, 5), (2.9, 7), (5.0, 15)] {
                let k: Vec<f32> = albumentations_kernel(sigma, ksize).iter().map(|&v| v as f32).collect();
                let (mut fast, mut exact) = (vec![0u8; src.len()], vec![0u8; src.len()]);
                sep_filter_f32_kernel(&src, w, h, &k, &mut fast);
                sep_filter_emulated(&src, w, h, &k, &mut exact);
                assert_eq!(fast, exact, "{w}x{h}, ksize {ksize}");
            }
        }
    }

    #[test]
    fn blur_keeps_constant_image() {
        let src = vec![77u8; 9 * 5 * 3];
        let mut out = vec![0u8; src.len()];
        sep_filter_u8(&src, 9, 5, &albumentations_kernel(2.0, 7), &mut out);
        assert!(out.iter().all(|&v| v == 77));
    }
}
