//! What one draw of an augmentation is ([`Params`]): every value `apply` needs,
//! including the seeds of random fields, and its JSON form in the `params` column.

use serde::{Deserialize, Serialize};

use super::{BorderMode, DropoutFill, invalid};
use crate::AugmentError;

/// One sampled draw of an augmentation: everything [`Params::apply`] needs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "transform", rename_all = "snake_case", deny_unknown_fields)]
pub enum Params {
    /// The unaugmented image (`original`).
    Identity,
    /// Adds `(mean + std * N(0, 1)) * 255` per value; the field comes from `seed`.
    GaussNoise {
        mean: f64,
        std: f64,
        per_channel: bool,
        seed: u64,
    },
    /// Separable Gaussian blur with an odd `ksize` and `sigma`.
    GaussianBlur {
        ksize: u32,
        sigma: f64,
    },
    /// Factors, hue shift and the order (0 brightness, 1 contrast, 2 saturation, 3 hue).
    ColorJitter {
        brightness: f64,
        contrast: f64,
        saturation: f64,
        hue: f64,
        order: [u8; 4],
    },
    /// Whole-pixel shift, per-axis scale, rotation in degrees about the image centre.
    ShiftScaleRotate {
        shift_x: i64,
        shift_y: i64,
        scale_x: f64,
        scale_y: f64,
        angle: f64,
        border_mode: BorderMode,
        fill: u8,
    },
    HorizontalFlip,
    /// The displacement fields are regenerated from `seed`.
    ElasticTransform {
        alpha: f64,
        sigma: f64,
        seed: u64,
        border_mode: BorderMode,
        fill: u8,
    },
    /// Ordered source corners (top-left, top-right, bottom-right, bottom-left) in pixels.
    Perspective {
        points: [[f32; 2]; 4],
        border_mode: BorderMode,
        fill: u8,
    },
    /// `out = clip(in * alpha + beta * 255)` (or `beta * mean(image)` when not `by_max`).
    RandomBrightnessContrast {
        alpha: f64,
        beta: f64,
        brightness_by_max: bool,
    },
    /// Holes as `[x_min, y_min, x_max, y_max)`; random fills come from `seed`.
    CoarseDropout {
        holes: Vec<[u32; 4]>,
        fill: DropoutFill,
        seed: u64,
    },
    /// JPEG encoding at `quality` (1 to 100) and decoding, as PIL does both.
    Jpeg {
        quality: u32,
    },
    /// Output pixel `(x, y)` is source pixel `(x - dx, y - dy)`, the uncovered edge by `border_mode`.
    PixelShift {
        dx: i32,
        dy: i32,
        border_mode: BorderMode,
        fill: u8,
    },
    /// Bilinear resize to `round(scale * width)` x `round(scale * height)` and back.
    ResizeRoundTrip {
        scale: f64,
    },
}

impl Params {
    /// The JSON stored in the `params` column (tagged with `"transform"`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("params serialise to JSON")
    }

    /// Parse a `params` column value; `augmentation` names the variant in errors.
    pub fn from_json(augmentation: &str, json: &str) -> Result<Params, AugmentError> {
        serde_json::from_str(json).map_err(|e| invalid(augmentation, format!("cannot parse params JSON: {e}")))
    }

    /// The snake_case tag of this variant (`"gauss_noise"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Params::Identity => "identity",
            Params::GaussNoise { .. } => "gauss_noise",
            Params::GaussianBlur { .. } => "gaussian_blur",
            Params::ColorJitter { .. } => "color_jitter",
            Params::ShiftScaleRotate { .. } => "shift_scale_rotate",
            Params::HorizontalFlip => "horizontal_flip",
            Params::ElasticTransform { .. } => "elastic_transform",
            Params::Perspective { .. } => "perspective",
            Params::RandomBrightnessContrast { .. } => "random_brightness_contrast",
            Params::CoarseDropout { .. } => "coarse_dropout",
            Params::Jpeg { .. } => "jpeg",
            Params::PixelShift { .. } => "pixel_shift",
            Params::ResizeRoundTrip { .. } => "resize_round_trip",
        }
    }
}
