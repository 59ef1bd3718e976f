//! What a suite member asks for: each augmentation's hyperparameters with
//! albumentations 2.0's names and defaults ([`Transform`]), and their validation.

use serde::{Deserialize, Serialize};

use super::BorderMode;

/// A closed range `[low, high]` as albumentations writes tuples.
pub type Range = [f64; 2];

/// One augmentation kind with its hyperparameters (albumentations 2.0 names and defaults).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "transform", rename_all = "snake_case")]
pub enum Transform {
    /// `GaussNoise`.
    GaussNoise(GaussNoise),
    /// `GaussianBlur`.
    GaussianBlur(GaussianBlur),
    /// `ColorJitter`.
    ColorJitter(ColorJitter),
    /// `ShiftScaleRotate` (albumentations 2.0: a special case of `Affine`).
    ShiftScaleRotate(ShiftScaleRotate),
    /// `HorizontalFlip`.
    HorizontalFlip,
    /// `ElasticTransform`.
    ElasticTransform(ElasticTransform),
    /// `Perspective` (`keep_size=True`, `fit_output=False`).
    Perspective(Perspective),
    /// `RandomBrightnessContrast`.
    RandomBrightnessContrast(RandomBrightnessContrast),
    /// `CoarseDropout`.
    CoarseDropout(CoarseDropout),
    /// JPEG re-encoding as PIL does it (not an albumentations transform).
    Jpeg(Jpeg),
    /// A shift by whole pixels in one of the four axis directions (not albumentations).
    PixelShift(PixelShift),
    /// Down- and back up-sampling with OpenCV's bilinear resize (not albumentations).
    ResizeRoundTrip(ResizeRoundTrip),
}

/// `GaussNoise(std_range, mean_range, per_channel)`; ranges are fractions of 255.
/// (`noise_scale_factor` is fixed at 1: noise is drawn per pixel.)
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GaussNoise {
    pub std_range: Range,
    pub mean_range: Range,
    pub per_channel: bool,
}

impl Default for GaussNoise {
    fn default() -> Self {
        Self { std_range: [0.2, 0.44], mean_range: [0.0, 0.0], per_channel: true }
    }
}

/// `GaussianBlur(blur_limit, sigma_limit)`: `ksize = randint(*blur_limit)` (even sizes
/// become the next odd size; 0 means derived from sigma), `sigma = uniform(*sigma_limit)`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianBlur {
    pub blur_limit: [u32; 2],
    pub sigma_limit: Range,
}

impl Default for GaussianBlur {
    fn default() -> Self {
        Self { blur_limit: [0, 0], sigma_limit: [0.5, 3.0] }
    }
}

/// `ColorJitter`: factor ranges for brightness, contrast, saturation; hue shift range
/// in turns (within [-0.5, 0.5]). The four operations run in a random order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ColorJitter {
    pub brightness: Range,
    pub contrast: Range,
    pub saturation: Range,
    pub hue: Range,
}

impl Default for ColorJitter {
    fn default() -> Self {
        Self { brightness: [0.8, 1.2], contrast: [0.8, 1.2], saturation: [0.8, 1.2], hue: [-0.5, 0.5] }
    }
}

/// `ShiftScaleRotate`: shifts as fractions of width/height (truncated to whole pixels,
/// as `Affine` does), `scale_limit` relative to 1 (x and y drawn independently, as
/// `Affine(keep_ratio=False)` does), rotation in degrees. Bilinear, constant border.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShiftScaleRotate {
    pub shift_limit_x: Range,
    pub shift_limit_y: Range,
    pub scale_limit: Range,
    pub rotate_limit: Range,
    pub border_mode: BorderMode,
    pub fill: u8,
}

impl Default for ShiftScaleRotate {
    fn default() -> Self {
        Self {
            shift_limit_x: [-0.0625, 0.0625],
            shift_limit_y: [-0.0625, 0.0625],
            scale_limit: [-0.1, 0.1],
            rotate_limit: [-45.0, 45.0],
            border_mode: BorderMode::Constant,
            fill: 0,
        }
    }
}

/// `ElasticTransform(alpha, sigma)`: Gaussian noise fields normalised by their largest
/// magnitude, blurred with `sigma` (replicate border), scaled by `alpha`; bilinear remap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticTransform {
    pub alpha: f64,
    pub sigma: f64,
    pub border_mode: BorderMode,
    pub fill: u8,
}

impl Default for ElasticTransform {
    fn default() -> Self {
        Self { alpha: 1.0, sigma: 50.0, border_mode: BorderMode::Constant, fill: 0 }
    }
}

/// `Perspective(scale)`: corner jitter `|N(0, scale)| mod 0.32` of width/height.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Perspective {
    pub scale: Range,
    pub border_mode: BorderMode,
    pub fill: u8,
}

impl Default for Perspective {
    fn default() -> Self {
        Self { scale: [0.05, 0.1], border_mode: BorderMode::Constant, fill: 0 }
    }
}

/// `RandomBrightnessContrast`: `alpha = 1 + uniform(contrast_limit)`,
/// `beta = uniform(brightness_limit) * 255` (or `* mean(image)` without `brightness_by_max`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RandomBrightnessContrast {
    pub brightness_limit: Range,
    pub contrast_limit: Range,
    pub brightness_by_max: bool,
}

impl Default for RandomBrightnessContrast {
    fn default() -> Self {
        Self { brightness_limit: [-0.2, 0.2], contrast_limit: [-0.2, 0.2], brightness_by_max: true }
    }
}

/// `CoarseDropout`: hole sizes are pixels when the upper bound is >= 1, else fractions
/// of the image side (albumentations' rule).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoarseDropout {
    pub num_holes_range: [u32; 2],
    pub hole_height_range: Range,
    pub hole_width_range: Range,
    pub fill: DropoutFill,
}

impl Default for CoarseDropout {
    fn default() -> Self {
        Self {
            num_holes_range: [1, 2],
            hole_height_range: [0.1, 0.2],
            hole_width_range: [0.1, 0.2],
            fill: DropoutFill::Value(0),
        }
    }
}

/// How dropout holes are filled: `"random"` (uniform bytes per pixel and channel),
/// `"random_uniform"` (one random colour per hole), a grey level, or an RGB triple.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DropoutFill {
    Mode(FillMode),
    Value(u8),
    Rgb([u8; 3]),
}

/// The random dropout fills.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    Random,
    RandomUniform,
}

/// PIL's `image.save(buffer, "JPEG", quality=q)` then `Image.open(buffer).convert("RGB")`
/// (libjpeg-turbo's baseline encoder, 4:2:0 chroma), `q` uniform in `quality_range`.
/// One of the noise floor's changes that should not matter.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Jpeg {
    pub quality_range: [u32; 2],
}

impl Default for Jpeg {
    fn default() -> Self {
        Self { quality_range: [95, 95] }
    }
}

/// The image moved by `pixels` whole pixels left, right, up or down (one direction drawn
/// per image), `cv2.warpAffine` with a translation: the uncovered edge follows
/// `border_mode` (default `reflect101`, so no black strip appears).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PixelShift {
    pub pixels: u32,
    pub border_mode: BorderMode,
    pub fill: u8,
}

impl Default for PixelShift {
    fn default() -> Self {
        Self { pixels: 1, border_mode: BorderMode::Reflect101, fill: 0 }
    }
}

/// `cv2.resize` (`INTER_LINEAR`) to `round(scale * side)` and back to the original size.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResizeRoundTrip {
    pub scale: f64,
}

impl Default for ResizeRoundTrip {
    fn default() -> Self {
        Self { scale: 0.75 }
    }
}

impl Transform {
    /// Check hyperparameters the way albumentations' validators do; `Err` names the problem.
    pub fn validate(&self) -> Result<(), String> {
        fn range(name: &str, r: Range, lo: f64, hi: f64) -> Result<(), String> {
            if !(r[0].is_finite() && r[1].is_finite()) || r[0] > r[1] || r[0] < lo || r[1] > hi {
                return Err(format!("{name} must be a non-decreasing pair within [{lo}, {hi}], got {r:?}"));
            }
            Ok(())
        }
        let inf = f64::INFINITY;
        match self {
            Transform::GaussNoise(t) => {
                range("std_range", t.std_range, 0.0, 1.0)?;
                range("mean_range", t.mean_range, -1.0, 1.0)
            }
            Transform::GaussianBlur(t) => {
                range("sigma_limit", t.sigma_limit, 0.0, inf)?;
                if t.blur_limit[0] > t.blur_limit[1] {
                    return Err(format!("blur_limit must be non-decreasing, got {:?}", t.blur_limit));
                }
                if t.blur_limit[1] == 0 && t.sigma_limit[0] <= 0.0 {
                    return Err("blur_limit 0 derives the kernel from sigma, which must be > 0".into());
                }
                if t.blur_limit[1] > 255 {
                    return Err("blur_limit must be at most 255".into());
                }
                Ok(())
            }
            Transform::ColorJitter(t) => {
                range("brightness", t.brightness, 0.0, inf)?;
                range("contrast", t.contrast, 0.0, inf)?;
                range("saturation", t.saturation, 0.0, inf)?;
                range("hue", t.hue, -0.5, 0.5)
            }
            Transform::ShiftScaleRotate(t) => {
                range("shift_limit_x", t.shift_limit_x, -1.0, 1.0)?;
                range("shift_limit_y", t.shift_limit_y, -1.0, 1.0)?;
                range("scale_limit", t.scale_limit, -1.0, inf)?;
                range("rotate_limit", t.rotate_limit, -360.0, 360.0)
            }
            Transform::HorizontalFlip => Ok(()),
            Transform::ElasticTransform(t) => {
                if !(t.alpha.is_finite() && t.sigma.is_finite() && t.sigma > 0.0 && t.alpha >= 0.0) {
                    return Err(format!("alpha must be >= 0 and sigma > 0, got {} and {}", t.alpha, t.sigma));
                }
                if t.sigma > 1000.0 {
                    return Err("sigma must be at most 1000".into());
                }
                Ok(())
            }
            Transform::Perspective(t) => range("scale", t.scale, 0.0, 1.0),
            Transform::RandomBrightnessContrast(t) => {
                range("brightness_limit", t.brightness_limit, -1.0, 1.0)?;
                range("contrast_limit", t.contrast_limit, -1.0, inf)
            }
            Transform::CoarseDropout(t) => {
                if t.num_holes_range[0] > t.num_holes_range[1] || t.num_holes_range[0] == 0 {
                    return Err(format!(
                        "num_holes_range must be a non-decreasing pair >= 1, got {:?}",
                        t.num_holes_range
                    ));
                }
                range("hole_height_range", t.hole_height_range, 0.0, inf)?;
                range("hole_width_range", t.hole_width_range, 0.0, inf)
            }
            Transform::Jpeg(t) => {
                let [lo, hi] = t.quality_range;
                if !(1 <= lo && lo <= hi && hi <= 100) {
                    return Err(format!(
                        "quality_range must be a non-decreasing pair within [1, 100], got {:?}",
                        t.quality_range
                    ));
                }
                Ok(())
            }
            Transform::PixelShift(t) => {
                if t.pixels == 0 || t.pixels > 4096 {
                    return Err(format!("pixels must be within [1, 4096], got {}", t.pixels));
                }
                Ok(())
            }
            Transform::ResizeRoundTrip(t) => {
                if !(t.scale.is_finite() && t.scale > 0.0 && t.scale <= 4.0) {
                    return Err(format!("scale must be within (0, 4], got {}", t.scale));
                }
                Ok(())
            }
        }
    }
}
