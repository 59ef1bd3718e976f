//! The augmentations: what a suite member asks for ([`Transform`], albumentations 2.0
//! hyperparameters and defaults), what one draw of it is ([`Params`], every value
//! `apply` needs, including the seeds of random fields), and the pure function that
//! turns a canonical image plus [`Params`] into the augmented image.
//!
//! Names and tuple semantics follow albumentations 2.0.8: `GaussNoise(std_range=(a, b))`
//! is `Transform::GaussNoise(GaussNoise { std_range: [a, b], .. })`, `{"transform":
//! "gauss_noise", "std_range": [a, b]}` in JSON and `transform = "gauss_noise"`,
//! `std_range = [a, b]` in a suite TOML. Omitted fields take albumentations' defaults.
//!
//! Sampling uses the same distributions as albumentations (uniform ranges, integer
//! ranges inclusive, `randint` then odd-rounding for blur kernels, the Gaussian jitter
//! of `Perspective`, ...) but draws from the counter-based [`Rng`](crate::Rng), so
//! individual draws differ from a seeded albumentations run while their distribution
//! does not. Random fields (noise, elastic displacement, dropout fill) are generated
//! inside `apply` from the recorded seed, so a `Params` value fully determines the
//! output bytes.
//!
//! The modules: `spec` (the transforms and their validation), `params` (one draw and
//! its JSON), `sample` (drawing), `apply` (one function per family), `geometry` and
//! `elastic` (matrices and displacement fields), `warp` (OpenCV's resampling, also of
//! float maps through [`Warp`]), and the kernels: `pixel`
//! (brightness, contrast, saturation), `hue`, `flip`, `blur`, `field_blur`, `noise`,
//! `warp`.

mod apply;
mod blur;
mod elastic;
mod field_blur;
mod flip;
mod geometry;
mod hue;
mod noise;
mod params;
mod pixel;
mod sample;
mod spec;
mod warp;

pub use elastic::{elastic_field, elastic_field_from_noise, remap_displaced};
pub use params::Params;
pub use spec::{
    CoarseDropout, ColorJitter, DropoutFill, ElasticTransform, FillMode, GaussNoise, GaussianBlur, Jpeg, Perspective,
    PixelShift, RandomBrightnessContrast, Range, ResizeRoundTrip, ShiftScaleRotate, Transform,
};
pub use warp::{BorderMode, Warp, WarpedMap};

use crate::AugmentError;

/// The error for parameters `augmentation` cannot be applied with.
fn invalid(augmentation: &str, message: impl Into<String>) -> AugmentError {
    AugmentError::InvalidParams { augmentation: augmentation.to_string(), message: message.into() }
}
