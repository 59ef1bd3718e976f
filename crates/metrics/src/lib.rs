//! Per-image metrics of clipshift: how far an augmented variant's embedding,
//! class-token attention and pixels moved from the original's, and the pairwise
//! distances among all variants of one image. Formulas are in `docs/tables.md`, "Metrics";
//! `reference/metrics_reference.py` recomputes every one with numpy, scipy, OpenCV
//! and scikit-image on committed fixtures, and the integration tests agree with it
//! to 1e-9 relative.
//!
//! This crate owns arithmetic only: it does not decode images, run models or touch
//! tables except through the `stage` module. No function returns NaN: an undefined
//! value is `None` (or [`MetricsError::TooSmall`]) and becomes `null` in the table.
//!
//! Speed against the Python peers (`cargo xtask bench metrics`) is in `docs/benchmarks.md`.

mod attention;
mod embedding;
mod error;
mod pairwise;
mod pixel;
mod ssim;
pub mod stage;

pub use attention::{AttentionMap, aligned_attention_similarity, attention_similarity, upsample_attention};
pub use embedding::{cosine_similarity, l2_distance};
pub use error::MetricsError;
pub use pairwise::{condensed_index, pdist_cosine, pdist_euclidean};
pub use pixel::{
    DETAIL_GRID, DETAIL_MIN_STD, OriginalFeatures, PATCH_GRID, PixelScores, detail_preservation, edge_preservation,
    patch_similarity, ssim,
};
