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
//! `cargo bench --profile dev -p clipshift-metrics`: one image's nine comparisons at
//! 224 x 224 on one thread (2-core AMD EPYC Zen 4 VM, baseline x86-64 = SSE2 code,
//! load ~1 from other builds; the old and new code were run back to back). Pixel
//! families use an [`OriginalFeatures`] built once and include the variant's own
//! luminance, about 40 µs of each row, which [`OriginalFeatures::compare`] computes
//! once for all four.
//!
//! | family, nine comparisons | before | after |
//! |---|---:|---:|
//! | embedding: cosine + L2 (D = 512) | 8 µs | 8 µs |
//! | pairwise: pdist cosine + euclidean (10 variants) | 43 µs | 43 µs |
//! | attention, [`attention_similarity`] | 4335 µs | 497 µs |
//! | attention, original's [`AttentionMap`] built once | — | 324 µs |
//! | patch similarity | 900 µs | 140 µs |
//! | edge preservation | 2394 µs | 826 µs |
//! | detail preservation | 1629 µs | 576 µs |
//! | SSIM | 19165 µs | 4111 µs |
//! | all four via `compare`, with `OriginalFeatures::new` | 25286 µs | 6444 µs |
//!
//! SSIM is the one family not under 1 ms: it filters three f64 planes (y, y^2, x y)
//! with the separable 11-tap Gaussian, about 280 000 outputs of 16 flops per variant,
//! which runs at the SSE2 throughput; a build for AVX2 (`-C target-cpu=x86-64-v3`)
//! was only about 23% faster in a standalone test, and f32 filtering loses the 1e-9
//! agreement (the variance is a difference of large filtered squares). For scale,
//! replaying the paper suite's nine augmentations from the original costs 12.4 ms
//! per image on the same machine, before the source is decoded.

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
