use thiserror::Error;

/// Why a pixel metric could not be computed for an (original, variant) pair.
///
/// [`MetricsError::TooSmall`] means the metric is undefined for images this small:
/// the stage writes `null` for it. [`MetricsError::SizeMismatch`] means the variant
/// does not line up with the original pixel for pixel, which is an upstream fault:
/// the stage writes `null` and an `errors.parquet` row.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetricsError {
    #[error(
        "image sizes differ: original is {}x{}, variant is {}x{}",
        original.0, original.1, variant.0, variant.1
    )]
    SizeMismatch {
        /// (width, height) of the original.
        original: (u32, u32),
        /// (width, height) of the variant.
        variant: (u32, u32),
    },
    #[error("{metric} needs an image of at least {min_width}x{min_height} pixels, got {width}x{height}")]
    TooSmall { metric: &'static str, width: u32, height: u32, min_width: u32, min_height: u32 },
}

impl MetricsError {
    /// True when the metric is merely undefined for this image (write `null`, no error row).
    pub fn is_undefined(&self) -> bool {
        matches!(self, Self::TooSmall { .. })
    }
}
