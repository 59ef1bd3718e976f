//! Per-image metrics of clipshift: how far an augmented variant's embedding,
//! class-token attention and pixels moved from the original's, and the pairwise
//! distances among all variants of one image. Formulas are DESIGN.md's "Metrics";
//! `reference/metrics_reference.py` recomputes every one with numpy, scipy, OpenCV
//! and scikit-image on committed fixtures, and the integration tests agree with it
//! to 1e-9 relative.
//!
//! This crate owns arithmetic only: it does not decode images, run models or touch
//! tables except through the `stage` module. No function returns NaN: an undefined
//! value is `None` (or [`MetricsError::TooSmall`]) and becomes `null` in the table.
//!
//! # Performance: metrics
//!
//! `cargo xtask bench metrics`: one image's nine comparisons at 224 x 224 on one
//! thread, the Python peers (`reference/bench_peers.py`: the reference formulas in
//! numpy, scipy, OpenCV and scikit-image, on the bench's own images) and then the
//! criterion bench, in one run on a 2-core AMD EPYC Zen 4 VM. Pixel families use an
//! [`OriginalFeatures`] built once and include the variant's own luminance, which
//! [`OriginalFeatures::compare`] computes once for all four.
//!
//! | family, nine comparisons | Python peer | clipshift | speed-up |
//! |---|---:|---:|---:|
//! | embedding: cosine + L2 (D = 512) | 44 µs | 7.7 µs | 5.7x |
//! | pairwise: pdist cosine + euclidean (10 variants) | 53 µs | 43.8 µs | 1.2x |
//! | attention, [`attention_similarity`] | 1623 µs | 504 µs | 3.2x |
//! | attention, original's [`AttentionMap`] built once | 1623 µs | 306 µs | 5.3x |
//! | patch similarity | 2375 µs | 144 µs | 16.5x |
//! | edge preservation | 5914 µs | 608 µs | 9.7x |
//! | detail preservation | 14731 µs | 338 µs | 43.6x |
//! | SSIM, [`ssim`] (the original's side each time) | 49222 µs | 3668 µs | 13.4x |
//! | SSIM, original's side built once | 49222 µs | 2319 µs | 21.2x |
//! | all four via `compare`, with `OriginalFeatures::new` | 72242 µs | 3088 µs | 23.4x |
//!
//! SSIM is the one family not under 1 ms. It keeps scikit-image's float64 arithmetic:
//! float32 would lose the 1e-9 agreement, because the variance is a difference of
//! large filtered squares. Per variant it filters three planes (y, y^2, x y) with the
//! separable 11-tap Gaussian and evaluates the SSIM term, about 93 four-wide vector
//! operations per four valid pixels even with the symmetric taps folded and fused
//! (see `ssim.rs`). This machine sustains about 3 such operations per cycle at 3.6 GHz
//! (a loop of independent FMAs and adds), so nine comparisons cannot take less than
//! about 0.9 ms in float64 here; the kernel runs at 2.2 to 2.6 times that bound (best
//! of repeats, criterion mean). The first version took 19.2 ms; the SSE2 build before
//! the dedicated AVX2 kernel, 3.0 ms. For scale, replaying the paper suite's nine
//! augmentations from the original costs 3.3 ms per image on the same machine, before
//! the source is decoded, and encoding the ten images about 450 ms.

mod attention;
mod embedding;
mod error;
mod pairwise;
mod pixel;
mod ssim;
pub mod stage;

pub use attention::{AttentionMap, attention_similarity, upsample_attention};
pub use embedding::{cosine_similarity, l2_distance};
pub use error::MetricsError;
pub use pairwise::{condensed_index, pdist_cosine, pdist_euclidean};
pub use pixel::{
    DETAIL_GRID, DETAIL_MIN_STD, OriginalFeatures, PATCH_GRID, PixelScores, detail_preservation, edge_preservation,
    patch_similarity, ssim,
};
