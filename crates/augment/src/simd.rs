//! Runtime CPU-feature dispatch for the pixel kernels.
//!
//! The workspace is built for baseline x86-64 (SSE2), while OpenCV and stringzilla, which
//! albumentations calls, pick AVX2 or AVX-512 code at run time. A kernel that needs them
//! to keep up has a fast version: a safe `#[target_feature(enable = ...)]` function,
//! either the portable body compiled again for those features (same source, so the same
//! bytes: Rust never contracts `a * b + c`, and `f32::mul_add` rounds once either way) or
//! explicit `std::arch` code. [`dispatch!`] picks it when the CPU has the features and
//! the portable body otherwise; tests compare the two.
//!
//! Calling a `#[target_feature]` function is `unsafe`: the CPU must have the features.
//! [`dispatch!`] is the one place that does it, right after checking them, which is
//! what makes it sound; it is the crate's only exception to `unsafe_code = "deny"`.

/// Whether this CPU has AVX2 and FMA (detected once, then a cached load).
#[inline]
pub(crate) fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU has AVX-512 with byte permutes (VBMI): Ice Lake and later, Zen 4.
#[inline]
pub(crate) fn avx512_vbmi() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// ```ignore
/// dispatch!(fn name(args: Types) -> Ret { avx512_vbmi() => fast_avx512, avx2_fma() => fast_avx2, _ => portable });
/// ```
/// defines `name(args)`: the first fast version whose check holds, else `portable`. Each
/// fast version is an x86-64-only `#[target_feature]` function whose features are
/// exactly what its check detects.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? { $($paths:tt)* }) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::simd::dispatch!(@paths ($($arg),*) $($paths)*)
        }
    };
    (@paths ($($arg:ident),*) $check:ident() => $fast:path, $($rest:tt)*) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::simd::$check() {
            // SAFETY: the CPU has the features `$fast` is compiled for (its check on the
            // line above).
            #[allow(unsafe_code)]
            return unsafe { $fast($($arg),*) };
        }
        $crate::simd::dispatch!(@paths ($($arg),*) $($rest)*)
    }};
    (@paths ($($arg:ident),*) _ => $portable:path $(,)?) => {
        $portable($($arg),*)
    };
}
pub(crate) use dispatch;
