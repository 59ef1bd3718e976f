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
//! | embedding: cosine + L2 (D = 512) | 70 µs | 8.2 µs | 8.6x |
//! | pairwise: pdist cosine + euclidean (10 variants) | 80 µs | 44.3 µs | 1.8x |
//! | attention, [`attention_similarity`] | 2265 µs | 546 µs | 4.1x |
//! | attention, original's [`AttentionMap`] built once | 2265 µs | 356 µs | 6.4x |
//! | patch similarity | 3657 µs | 187 µs | 19.6x |
//! | edge preservation | 7904 µs | 723 µs | 10.9x |
//! | detail preservation | 24368 µs | 391 µs | 62x |
//! | SSIM, [`ssim`] (the original's side each time) | 84752 µs | 4001 µs | 21x |
//! | SSIM, original's side built once | 84752 µs | 1918 µs | 44x |
//! | all four via `compare`, with `OriginalFeatures::new` | 120681 µs | 3297 µs | 37x |
//!
//! The VM's speed drifts by up to 1.6x within minutes (a timing loop over the SSIM
//! kernel: best 1.70 ms, mean 2.7 ms), so only ratios from one run are comparable,
//! and even those move: a second run the same hour measured scikit-image's SSIM at
//! 55.8 ms and this crate's (side built once) at 2.72 ms, 20.5x.
//!
//! SSIM is the one family not under 1 ms. It keeps scikit-image's float64 arithmetic:
//! float32 would lose the 1e-9 agreement, because the variance is a difference of
//! large filtered squares. Per variant it filters three planes (y, y^2, x y) with the
//! separable 11-tap Gaussian and evaluates the SSIM term: about 93 four-wide vector
//! operations per four valid pixels with the symmetric taps folded and fused, 44 of
//! them multiplies or FMAs (see `ssim.rs`). This machine does at most 2 FMAs and 2
//! adds per cycle (measured: 3.2 to 3.5 of the two together), so nine comparisons
//! take at least 0.64 ms in float64 here (the FMA ports alone), about 0.8 ms at the
//! measured mix. Each of the kernel's three loops, run alone on data in the L1 cache
//! (a microbenchmark), takes 16.4 (row filter), 13.6 (column pass) and 7.0 (terms)
//! cycles per four pixels: 1.1 ms for nine. The kernel as a whole takes 1.70 ms (best
//! of 1500 repeats; criterion means 1.9 to 2.7 ms): the loops share the core,
//! and the luminance rows, read 32 columns at a time, wait on memory (7%). An
//! 8-wide AVX-512 column pass ran 1.2x faster than the AVX2 one in the same
//! microbenchmark; a full AVX-512 kernel is the next step, worth more on CPUs with two
//! 512-bit FMA units. The first version took 19.2 ms; the SSE2 build before the
//! dedicated AVX2 kernel, 3.0 ms. For scale, replaying the paper suite's nine
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
