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
//! 224 x 224 on one thread (2-core AMD EPYC Zen 4 VM; "first" is the first version,
//! "now" the current one, each measured back to back with its predecessor). Pixel
//! families use an [`OriginalFeatures`] built once and include the variant's own
//! luminance, about 40 µs of each row, which [`OriginalFeatures::compare`] computes
//! once for all four.
//!
//! | family, nine comparisons | first | now |
//! |---|---:|---:|
//! | embedding: cosine + L2 (D = 512) | 8 µs | 8 µs |
//! | pairwise: pdist cosine + euclidean (10 variants) | 43 µs | 42 µs |
//! | attention, [`attention_similarity`] | 4335 µs | 472 µs |
//! | attention, original's [`AttentionMap`] built once | — | 298 µs |
//! | patch similarity | 900 µs | 136 µs |
//! | edge preservation | 2394 µs | 707 µs |
//! | detail preservation | 1629 µs | 490 µs |
//! | SSIM | 19165 µs | 3045 µs |
//! | all four via `compare`, with `OriginalFeatures::new` | 25286 µs | 4283 µs |
//!
//! SSIM is the one family not under 1 ms: it filters three f64 planes (y, y^2, x y)
//! with the separable 11-tap Gaussian, about 280 000 outputs of 16 flops per variant.
//! Under AVX2 ([`clipshift_simd::dispatch!`], as for luminance, edges and detail) the
//! same operations run four doubles wide, which gives the same bits and is 21% faster
//! than the SSE2 build; the cost is 7.4 ns per valid pixel at every image size from 40
//! to 448 pixels, so it is not waiting on memory, and fusing the multiply-adds did not
//! change it. f32 filtering would lose the 1e-9 agreement (the variance is a difference
//! of large filtered squares). For scale, replaying the paper suite's nine
//! augmentations from the original costs 2.6 ms per image on the same machine, before
//! the source is decoded.

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
