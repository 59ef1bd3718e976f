//! clipshift-simd: runtime CPU-feature dispatch for the pixel kernels of augment and
//! metrics, and the few AVX2 helpers they share. It owns the workspace's one exception
//! to `unsafe_code = "deny"` (in [`dispatch!`]) and nothing else: no kernels live here.
//!
//! The workspace is built for baseline x86-64 (SSE2), while OpenCV, scipy and
//! stringzilla, which the reference implementations call, pick AVX2 or AVX-512 code at
//! run time. A kernel that needs them to keep up has a fast version: a safe
//! `#[target_feature(enable = ...)]` function, either the portable body compiled again
//! for those features (same source, so the same bytes: Rust never contracts
//! `a * b + c`, and `f32::mul_add` rounds once either way) or explicit `std::arch` code.
//! [`dispatch!`] picks it when the CPU has the features and the portable body otherwise;
//! tests compare the two.
//!
//! Calling a `#[target_feature]` function is `unsafe`: the CPU must have the features.
//! [`dispatch!`] is the one place that does it, right after checking them, which is
//! what makes it sound.

/// Whether this CPU has AVX2 and FMA (detected once, then a cached load).
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU has AVX-512 (F, BW) with byte permutes (VBMI): Ice Lake and later,
/// Zen 4.
#[inline]
pub fn avx512_vbmi() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dispatch!(fn name(args: Types) -> Ret { avx512_vbmi() => fast_avx512, avx2_fma() => fast_avx2, _ => portable })`
/// defines `name(args)`: the first fast version whose check holds, else `portable`. Each
/// fast version is an x86-64-only `#[target_feature]` function whose features are
/// exactly what its check detects. `avx2_fma() => recompiled(body)` writes that function
/// itself: `body` (an `#[inline(always)]` function with the same signature) compiled
/// again for AVX2 and FMA:
///
/// ```
/// #[inline(always)]
/// fn total(values: &[f32]) -> f32 {
///     values.iter().sum()
/// }
/// clipshift_simd::dispatch!(fn sum(values: &[f32]) -> f32 { avx2_fma() => recompiled(total), _ => total });
/// assert_eq!(sum(&[1.0, 2.0, 3.5]), 6.5);
/// ```
#[macro_export]
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? { $($paths:tt)* }) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::dispatch!(@paths [$($arg: $ty),*] [$(-> $ret)?] $($paths)*)
        }
    };
    (@paths [$($arg:ident: $ty:ty),*] [$($ret:tt)*] avx2_fma() => recompiled($body:path), $($rest:tt)*) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn recompiled($($arg: $ty),*) $($ret)* {
            $body($($arg),*)
        }
        $crate::dispatch!(@paths [$($arg: $ty),*] [$($ret)*] avx2_fma() => recompiled, $($rest)*)
    }};
    (@paths [$($arg:ident: $ty:ty),*] [$($ret:tt)*] $check:ident() => $fast:path, $($rest:tt)*) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::$check() {
            // SAFETY: the CPU has the features `$fast` is compiled for (its check on the
            // line above).
            #[allow(unsafe_code)]
            return unsafe { $fast($($arg),*) };
        }
        $crate::dispatch!(@paths [$($arg: $ty),*] [$($ret)*] $($rest)*)
    }};
    (@paths [$($arg:ident: $ty:ty),*] [$($ret:tt)*] _ => $portable:path $(,)?) => {
        $portable($($arg),*)
    };
}

/// Eight RGB8 pixels (24 bytes) to and from one AVX2 vector of 32-bit lanes per channel.
#[cfg(target_arch = "x86_64")]
pub mod rgb8x8 {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_or_si256, _mm256_permutevar8x32_epi32, _mm256_set1_epi32, _mm256_setr_epi32,
        _mm256_shuffle_epi8, _mm256_slli_epi32,
    };

    /// Byte shuffles for [`split`]: channel c's byte 3p + c of each 128-bit half to the low
    /// byte of lane p, zeros above.
    const SPLIT: [[i8; 32]; 3] = {
        let mut masks = [[-1i8; 32]; 3];
        let mut i = 0;
        while i < 32 {
            let mut c = 0;
            while c < 3 {
                masks[c][i] = 3 * (i % 16 / 4) as i8 + c as i8;
                c += 1;
            }
            i += 4;
        }
        masks
    };

    /// The byte shuffle for [`join`]: drop every fourth byte, leaving 12 bytes of RGB at
    /// the start of each 128-bit half.
    const JOIN: [i8; 32] = {
        let mut mask = [-1i8; 32];
        let mut i = 0;
        while i < 32 {
            if i % 16 < 12 {
                mask[i] = (i % 16 / 3 * 4 + i % 16 % 3) as i8;
            }
            i += 1;
        }
        mask
    };

    /// The first eight pixels (24 bytes) of `pixels` in: `[r, g, b]`, lane `l` holding
    /// pixel `l`.
    ///
    /// # Safety
    ///
    /// Safe to call from code compiled for AVX2 (a `#[target_feature]` function), which
    /// is where the kernels that use it live.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub fn split(pixels: &[u8]) -> [__m256i; 3] {
        // One 32-byte load where the slice has the bytes (the 8 past the pixels are
        // ignored); a copy would cost a failed store-to-load forward per call.
        let bytes: [u8; 32] = match pixels.get(..32) {
            Some(whole) => whole.try_into().expect("32 bytes"),
            None => {
                let mut bytes = [0u8; 32];
                bytes[..24].copy_from_slice(&pixels[..24]);
                bytes
            }
        };
        // Pixels 0-3 (bytes 0..12) to the low 128-bit half, 4-7 (bytes 12..24) to the high one.
        let v = _mm256_permutevar8x32_epi32(bytemuck::cast(bytes), _mm256_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6));
        [
            _mm256_shuffle_epi8(v, bytemuck::cast(SPLIT[0])),
            _mm256_shuffle_epi8(v, bytemuck::cast(SPLIT[1])),
            _mm256_shuffle_epi8(v, bytemuck::cast(SPLIT[2])),
        ]
    }

    /// Channel lanes (each in 0..=255) out to 24 pixel bytes.
    ///
    /// # Safety
    ///
    /// As for [`split`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub fn join([r, g, b]: [__m256i; 3], pixels: &mut [u8]) {
        let byte = _mm256_set1_epi32(0xff);
        let words = _mm256_or_si256(
            _mm256_and_si256(r, byte),
            _mm256_or_si256(
                _mm256_slli_epi32::<8>(_mm256_and_si256(g, byte)),
                _mm256_slli_epi32::<16>(_mm256_and_si256(b, byte)),
            ),
        );
        let packed = _mm256_shuffle_epi8(words, bytemuck::cast(JOIN));
        let bytes: [u8; 32] = bytemuck::cast(packed);
        pixels[..12].copy_from_slice(&bytes[..12]);
        pixels[12..24].copy_from_slice(&bytes[16..28]);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn fused(a: f32, b: f32, c: f32) -> (f32, &'static str) {
        (a.mul_add(b, c), "avx2")
    }

    fn portable(a: f32, b: f32, c: f32) -> (f32, &'static str) {
        (a * b + c, "portable")
    }

    crate::dispatch!(fn pick(a: f32, b: f32, c: f32) -> (f32, &'static str) {
        avx2_fma() => fused,
        _ => portable,
    });

    #[test]
    fn dispatch_runs_the_fast_version_exactly_when_the_cpu_has_its_features() {
        // 1 + 2^-23 squared minus (1 + 2^-22): fused keeps the 2^-46 that rounding loses.
        let x = 1.0 + f32::EPSILON;
        let (value, path) = pick(x, x, -(1.0 + 2.0 * f32::EPSILON));
        if crate::avx2_fma() {
            assert_eq!((value, path), (2f32.powi(-46), "avx2"));
        } else {
            assert_eq!((value, path), (0.0, "portable"));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rgb_split_and_join_round_trip() {
        #[target_feature(enable = "avx2")]
        fn round_trip(pixels: &[u8]) -> ([[i32; 8]; 3], [u8; 24]) {
            let channels = super::rgb8x8::split(pixels);
            let mut out = [0u8; 24];
            super::rgb8x8::join(channels, &mut out);
            (channels.map(bytemuck::cast), out)
        }
        if !crate::avx2_fma() {
            return;
        }
        // Exactly eight pixels (copied), and eight followed by more bytes (loaded at once).
        let bytes: Vec<u8> = (0..40).map(|i| (i * 11 + 3) as u8).collect();
        for pixels in [&bytes[..24], &bytes[..]] {
            // SAFETY: AVX2 is present (checked above).
            #[allow(unsafe_code)]
            let (channels, out) = unsafe { round_trip(pixels) };
            for (c, lanes) in channels.iter().enumerate() {
                let want: Vec<i32> = (0..8).map(|p| i32::from(pixels[3 * p + c])).collect();
                assert_eq!(lanes.to_vec(), want, "channel {c}, {} bytes", pixels.len());
            }
            assert_eq!(out.to_vec(), pixels[..24]);
        }
    }
}
