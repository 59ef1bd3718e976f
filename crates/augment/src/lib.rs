//! clipshift-augment: source image -> canonical RGB8 image, the augmentation suite
//! (the paper's nine and more), counter-based parameter sampling, deterministic replay
//! ([`Replay`]), and the augment stage.
//!
//! Augmentations are pure functions of (canonical image, recorded parameters): the
//! parameters (including the seeds of random fields) are sampled once from an RNG keyed
//! by (run seed, image_id, augmentation name) and stored in `augmentations.parquet`, so
//! later stages replay the exact pixels without storing them. This crate knows nothing
//! of models or metrics.

pub mod cli;
mod error;
mod jpeg;
mod replay;
mod resize;
mod rng;
mod source;
pub mod stage;
mod suite;
mod transforms;

pub use error::AugmentError;
pub use image::RgbImage;
pub use replay::Replay;
pub use resize::resize_linear;
pub use rng::{Fnv1a, Rng};
pub use source::{
    DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, SourceImage, canonical, decode, image_id, load_canonical, read_source,
    scan_images,
};
pub use suite::{Level, Suite, SuiteMember};
pub use transforms::{
    BorderMode, CoarseDropout, ColorJitter, DropoutFill, ElasticTransform, FillMode, GaussNoise, GaussianBlur, Jpeg,
    Params, Perspective, PixelShift, RandomBrightnessContrast, Range, ResizeRoundTrip, ShiftScaleRotate, Transform,
    Warp, WarpedMap, elastic_field, elastic_field_from_noise, remap_displaced,
};
