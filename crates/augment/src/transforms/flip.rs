//! The horizontal flip (`cv2.flip(img, 1)`) of RGB8 rows, in blocks of pixels.

use clipshift_simd::dispatch;

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
    // The permutation spelled out as constant indices, which compiles to straight-line
    // moves (timed against a pixel-by-pixel loop in docs/benchmarks.md, "Augment kernels").
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
    fn dispatched_kernel_equals_the_portable_one() {
        let mut rng = crate::Rng::from_seed(3);
        let src: Vec<u8> = (0..97 * 31 * 3).map(|_| rng.next_u64() as u8).collect();
        for width in [1, 15, 16, 17, 33, 97] {
            let src = &src[..width * 31 * 3];
            let (mut fast, mut portable) = (vec![0; src.len()], vec![0; src.len()]);
            hflip(src, width, &mut fast);
            hflip_portable(src, width, &mut portable);
            assert_eq!(fast, portable, "flip at width {width}");
        }
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

    /// `out[x] = src[width - 1 - x]` pixel by pixel: the definition, which both kernels
    /// must equal. Timed beside them for docs/benchmarks.md, "Augment kernels".
    #[test]
    fn kernels_equal_the_pixel_by_pixel_flip() {
        let (width, height) = (224, 224);
        let mut rng = crate::Rng::from_seed(5);
        let src: Vec<u8> = (0..width * height * 3).map(|_| rng.next_u64() as u8).collect();
        type Flip = fn(&[u8], usize, &mut [u8]);
        let by_pixel: Flip = |src, width, out| {
            for (dst, row) in out.chunks_exact_mut(width * 3).zip(src.chunks_exact(width * 3)) {
                for x in 0..width {
                    let from = 3 * (width - 1 - x);
                    dst[3 * x..3 * x + 3].copy_from_slice(&row[from..from + 3]);
                }
            }
        };
        let mut want = vec![0; src.len()];
        by_pixel(&src, width, &mut want);
        let mut timings = Vec::new();
        let kernels: [(&str, Flip); 3] =
            [("pixel by pixel", by_pixel), ("portable blocks", hflip_portable), ("dispatched", hflip)];
        for (name, flip) in kernels {
            let mut got = vec![0; src.len()];
            let clock = std::time::Instant::now();
            for _ in 0..200 {
                flip(&src, width, std::hint::black_box(&mut got));
            }
            timings.push(format!("{name} {:.1} us", clock.elapsed().as_secs_f64() * 1e6 / 200.0));
            assert_eq!(got, want, "{name}");
        }
        eprintln!("flip 224 x 224: {}", timings.join(", "));
    }
}
