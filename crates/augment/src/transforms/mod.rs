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
//! of `Perspective`, ...) but draws from the counter-based [`Rng`], so individual draws
//! differ from a seeded albumentations run while their distribution does not. Random
//! fields (noise, elastic displacement, dropout fill) are generated inside `apply` from
//! the recorded seed, so a `Params` value fully determines the output bytes.

mod blur;
mod field_blur;
mod noise;
mod pixel;
mod warp;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, Rng};
pub use warp::BorderMode;

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
}

impl Transform {
    /// The albumentations class this transform mirrors.
    pub fn albumentations_name(&self) -> &'static str {
        match self {
            Transform::GaussNoise(_) => "GaussNoise",
            Transform::GaussianBlur(_) => "GaussianBlur",
            Transform::ColorJitter(_) => "ColorJitter",
            Transform::ShiftScaleRotate(_) => "ShiftScaleRotate",
            Transform::HorizontalFlip => "HorizontalFlip",
            Transform::ElasticTransform(_) => "ElasticTransform",
            Transform::Perspective(_) => "Perspective",
            Transform::RandomBrightnessContrast(_) => "RandomBrightnessContrast",
            Transform::CoarseDropout(_) => "CoarseDropout",
        }
    }

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
        }
    }

    /// Draw parameters for an image of `width` x `height` (albumentations' distributions).
    pub fn sample(&self, rng: &mut Rng, width: u32, height: u32) -> Params {
        let (w, h) = (f64::from(width), f64::from(height));
        match self {
            Transform::GaussNoise(t) => {
                let std = uniform(rng, t.std_range);
                let mean = uniform(rng, t.mean_range);
                Params::GaussNoise { mean, std, per_channel: t.per_channel, seed: rng.next_u64() }
            }
            Transform::GaussianBlur(t) => {
                let sigma = uniform(rng, t.sigma_limit);
                let k = rng.int_inclusive(i64::from(t.blur_limit[0]), i64::from(t.blur_limit[1])) as u32;
                Params::GaussianBlur { ksize: blur_ksize(k, sigma), sigma }
            }
            Transform::ColorJitter(t) => {
                let brightness = uniform(rng, t.brightness);
                let contrast = uniform(rng, t.contrast);
                let saturation = uniform(rng, t.saturation);
                let hue = uniform(rng, t.hue);
                let mut order = [0u8, 1, 2, 3];
                for i in (1..4).rev() {
                    let j = rng.int_inclusive(0, i as i64) as usize;
                    order.swap(i, j);
                }
                Params::ColorJitter { brightness, contrast, saturation, hue, order }
            }
            Transform::ShiftScaleRotate(t) => {
                // Affine._get_translate_params: int(fraction * side) truncates toward zero.
                let shift_x = (uniform(rng, t.shift_limit_x) * w) as i64;
                let shift_y = (uniform(rng, t.shift_limit_y) * h) as i64;
                let scale_x = uniform(rng, [1.0 + t.scale_limit[0], 1.0 + t.scale_limit[1]]);
                let scale_y = uniform(rng, [1.0 + t.scale_limit[0], 1.0 + t.scale_limit[1]]);
                let angle = uniform(rng, t.rotate_limit);
                Params::ShiftScaleRotate {
                    shift_x,
                    shift_y,
                    scale_x,
                    scale_y,
                    angle,
                    border_mode: t.border_mode,
                    fill: t.fill,
                }
            }
            Transform::HorizontalFlip => Params::HorizontalFlip,
            Transform::ElasticTransform(t) => Params::ElasticTransform {
                alpha: t.alpha,
                sigma: t.sigma,
                seed: rng.next_u64(),
                border_mode: t.border_mode,
                fill: t.fill,
            },
            Transform::Perspective(t) => {
                let scale = uniform(rng, t.scale);
                let mut p = [[0f64; 2]; 4];
                for corner in &mut p {
                    for v in corner.iter_mut() {
                        *v = (rng.normal() * scale).abs() % 0.32;
                    }
                }
                p[1][0] = 1.0 - p[1][0];
                p[2] = [1.0 - p[2][0], 1.0 - p[2][1]];
                p[3][1] = 1.0 - p[3][1];
                let pts = p.map(|[x, y]| [x * w, y * h]);
                Params::Perspective { points: order_points(pts), border_mode: t.border_mode, fill: t.fill }
            }
            Transform::RandomBrightnessContrast(t) => {
                let alpha = 1.0 + uniform(rng, t.contrast_limit);
                let beta = uniform(rng, t.brightness_limit);
                Params::RandomBrightnessContrast { alpha, beta, brightness_by_max: t.brightness_by_max }
            }
            Transform::CoarseDropout(t) => {
                let n = rng.int_inclusive(i64::from(t.num_holes_range[0]), i64::from(t.num_holes_range[1]));
                let side = |rng: &mut Rng, r: Range, len: u32| -> u32 {
                    if r[1] >= 1.0 {
                        let hi = r[1].min(f64::from(len)) as i64;
                        let lo = (r[0] as i64).min(hi);
                        rng.int_inclusive(lo, hi) as u32
                    } else {
                        (f64::from(len) * uniform(rng, r)) as u32
                    }
                };
                // albumentations draws all heights, all widths, all tops, then all lefts.
                let hs: Vec<u32> = (0..n).map(|_| side(rng, t.hole_height_range, height).min(height)).collect();
                let ws: Vec<u32> = (0..n).map(|_| side(rng, t.hole_width_range, width).min(width)).collect();
                let ys: Vec<u32> = hs.iter().map(|&hh| rng.int_inclusive(0, i64::from(height - hh)) as u32).collect();
                let xs: Vec<u32> = ws.iter().map(|&hw| rng.int_inclusive(0, i64::from(width - hw)) as u32).collect();
                let holes = (0..n as usize).map(|i| [xs[i], ys[i], xs[i] + ws[i], ys[i] + hs[i]]).collect();
                Params::CoarseDropout { holes, fill: t.fill.clone(), seed: rng.next_u64() }
            }
        }
    }
}

fn uniform(rng: &mut Rng, r: Range) -> f64 {
    if r[0] == r[1] { r[0] } else { rng.uniform_range(r[0], r[1]) }
}

/// albumentations: an even `randint` result becomes the next odd size; 0 derives the size
/// from sigma as PIL does (`int(sigma * 3.5) * 2 + 1`).
fn blur_ksize(k: u32, sigma: f64) -> u32 {
    let size = if k == 0 { (sigma * 3.5) as u32 * 2 + 1 } else { k };
    if size % 2 == 0 { size + 1 } else { size }
}

/// albumentations `order_points`: sort by x, split left/right, order each by y; float32.
fn order_points(pts: [[f64; 2]; 4]) -> [[f32; 2]; 4] {
    let mut p = pts;
    // Python's sorted is stable on x.
    p.sort_by(|a, b| a[0].partial_cmp(&b[0]).unwrap_or(std::cmp::Ordering::Equal));
    let (tl, bl) = if p[0][1] < p[1][1] { (p[0], p[1]) } else { (p[1], p[0]) };
    let (tr, br) = if p[2][1] < p[3][1] { (p[2], p[3]) } else { (p[3], p[2]) };
    [tl, tr, br, bl].map(|[x, y]| [x as f32, y as f32])
}

fn invalid(augmentation: &str, message: impl Into<String>) -> AugmentError {
    AugmentError::InvalidParams { augmentation: augmentation.to_string(), message: message.into() }
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
        }
    }

    /// Apply to an RGB8 image. Pure: the same parameters give the same bytes.
    pub fn apply(&self, image: &RgbImage) -> Result<RgbImage, AugmentError> {
        let (width, height) = image.dimensions();
        let kind = self.kind();
        let finite = |vals: &[f64]| -> Result<(), AugmentError> {
            if vals.iter().all(|v| v.is_finite()) { Ok(()) } else { Err(invalid(kind, "non-finite parameter")) }
        };
        let src = image.as_raw();
        // Transforms that write every output value start from a blank buffer (elastic
        // builds its own); the rest edit a copy of the source.
        let mut out = match self {
            Params::GaussianBlur { .. }
            | Params::ShiftScaleRotate { .. }
            | Params::HorizontalFlip
            | Params::Perspective { .. } => vec![0u8; src.len()],
            Params::ElasticTransform { .. } => Vec::new(),
            _ => src.clone(),
        };
        match self {
            Params::Identity => {}
            Params::GaussNoise { mean, std, per_channel, seed } => {
                finite(&[*mean, *std])?;
                if *std < 0.0 {
                    return Err(invalid(kind, "std must be >= 0"));
                }
                noise::add_gauss_noise(&mut out, *mean, *std, *per_channel, *seed);
            }
            Params::GaussianBlur { ksize, sigma } => {
                finite(&[*sigma])?;
                if ksize % 2 == 0 || *ksize > 255 || *sigma <= 0.0 {
                    return Err(invalid(
                        kind,
                        format!("need an odd ksize <= 255 and sigma > 0, got {ksize} and {sigma}"),
                    ));
                }
                blur::sep_filter_u8(
                    src,
                    width,
                    height,
                    &blur::albumentations_kernel(*sigma, *ksize as usize),
                    &mut out,
                );
            }
            Params::ColorJitter { brightness, contrast, saturation, hue, order } => {
                finite(&[*brightness, *contrast, *saturation, *hue])?;
                let mut seen = [false; 4];
                for &i in order {
                    if i > 3 || std::mem::replace(&mut seen[i as usize], true) {
                        return Err(invalid(kind, format!("order must be a permutation of 0..4, got {order:?}")));
                    }
                }
                if *brightness < 0.0 || *contrast < 0.0 || *saturation < 0.0 {
                    return Err(invalid(kind, "factors must be >= 0"));
                }
                for &i in order {
                    match i {
                        0 => pixel::adjust_brightness(&mut out, *brightness),
                        1 => pixel::adjust_contrast(&mut out, *contrast),
                        2 => pixel::adjust_saturation(&mut out, *saturation),
                        _ => pixel::adjust_hue(&mut out, width as usize, *hue),
                    }
                }
            }
            Params::ShiftScaleRotate { shift_x, shift_y, scale_x, scale_y, angle, border_mode, fill } => {
                finite(&[*scale_x, *scale_y, *angle])?;
                let m = affine_matrix(width, height, *shift_x as f64, *shift_y as f64, *scale_x, *scale_y, *angle);
                if is_identity(&m) {
                    out.copy_from_slice(src);
                } else {
                    warp::warp_affine(src, width, height, m, *border_mode, [*fill; 3], &mut out);
                }
            }
            Params::HorizontalFlip => pixel::hflip(src, width as usize, &mut out),
            Params::ElasticTransform { alpha, sigma, seed, border_mode, fill } => {
                finite(&[*alpha, *sigma])?;
                if *sigma <= 0.0 || *sigma > 1000.0 {
                    return Err(invalid(kind, "sigma must be in (0, 1000]"));
                }
                let (dx, dy) = elastic_field(*seed, width, height, *alpha, *sigma);
                return remap_displaced(image, &dx, &dy, *border_mode, *fill);
            }
            Params::Perspective { points, border_mode, fill } => {
                if points.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(invalid(kind, "non-finite corner"));
                }
                let m = perspective_matrix(*points, width, height);
                warp::warp_perspective(src, width, height, &m, *border_mode, [*fill; 3], &mut out);
            }
            Params::RandomBrightnessContrast { alpha, beta, brightness_by_max } => {
                finite(&[*alpha, *beta])?;
                let beta = if *brightness_by_max {
                    beta * 255.0
                } else {
                    let n = src.len().max(1) as f64;
                    beta * (src.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / n)
                };
                pixel::multiply_add(&mut out, *alpha, beta);
            }
            Params::CoarseDropout { holes, fill, seed } => {
                let mut rng = Rng::from_seed(*seed);
                let stride = width as usize * 3;
                for hole in holes {
                    // numpy slicing clips to the image.
                    let x0 = hole[0].min(width) as usize;
                    let y0 = hole[1].min(height) as usize;
                    let x1 = hole[2].min(width) as usize;
                    let y1 = hole[3].min(height) as usize;
                    if x1 <= x0 || y1 <= y0 {
                        continue;
                    }
                    let colour = match fill {
                        DropoutFill::Value(v) => Some([*v; 3]),
                        DropoutFill::Rgb(c) => Some(*c),
                        DropoutFill::Mode(FillMode::RandomUniform) => {
                            let b = rng.next_u64().to_le_bytes();
                            Some([b[0], b[1], b[2]])
                        }
                        DropoutFill::Mode(FillMode::Random) => None,
                    };
                    for y in y0..y1 {
                        let row = &mut out[y * stride + x0 * 3..y * stride + x1 * 3];
                        match colour {
                            Some(c) => row.chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&c)),
                            None => {
                                for chunk in row.chunks_mut(8) {
                                    let b = rng.next_u64().to_le_bytes();
                                    chunk.copy_from_slice(&b[..chunk.len()]);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches dimensions"))
    }
}

/// albumentations `create_affine_transformation_matrix` with zero shear, centred at
/// `(w/2 - 0.5, h/2 - 0.5)`; returns the top two rows (source -> destination).
fn affine_matrix(width: u32, height: u32, tx: f64, ty: f64, sx: f64, sy: f64, angle: f64) -> [f64; 6] {
    let (cx, cy) = (f64::from(width) / 2.0 - 0.5, f64::from(height) / 2.0 - 0.5);
    let rad = angle.rem_euclid(360.0).to_radians();
    let (s, c) = rad.sin_cos();
    type M = [[f64; 3]; 3];
    let mul = |a: M, b: M| -> M {
        let mut r = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
            }
        }
        r
    };
    let shift_tl = [[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]];
    let scale = [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]];
    let rot = [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]];
    let shear = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let trans = [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]];
    let shift_c = [[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]];
    // numpy evaluates `a @ b @ c ...` left to right.
    let m = mul(mul(mul(mul(mul(shift_c, trans), shear), rot), scale), shift_tl);
    [m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]]
}

/// `np.allclose(m, eye(3))`: albumentations skips the warp for an identity matrix.
fn is_identity(m: &[f64; 6]) -> bool {
    let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    m.iter().zip(id).all(|(a, b): (&f64, f64)| (a - b).abs() <= 1e-8 + 1e-5 * b.abs())
}

/// albumentations `compute_perspective_params` + the `keep_size` rescale of `perspective`.
fn perspective_matrix(points: [[f32; 2]; 4], width: u32, height: u32) -> [f64; 9] {
    let mut p = points;
    // adjust_dimension mutates the corners in place when a side is shorter than 2 px.
    fn adjust(p: &mut [[f32; 2]; 4], i: usize, j: usize) -> f32 {
        let (mut d1, mut d2) = (p[i], p[j]);
        let size = ((d1[0] - d2[0]).powi(2) + (d1[1] - d2[1]).powi(2)).sqrt();
        if size >= 2.0 {
            return size;
        }
        let step = (2.0 - size) / 2.0;
        for k in 0..2 {
            if d1[k] > d2[k] {
                d1[k] += step;
            }
        }
        for k in 0..2 {
            if d1[k] > d2[k] {
                d2[k] -= step;
            }
        }
        for k in 0..2 {
            if d1[k] <= d2[k] {
                d1[k] -= step;
            }
        }
        for k in 0..2 {
            if d1[k] <= d2[k] {
                d2[k] += step;
            }
        }
        p[i] = d1;
        p[j] = d2;
        2.0
    }
    // Corner order: 0 top-left, 1 top-right, 2 bottom-right, 3 bottom-left.
    let max_width = adjust(&mut p, 1, 0).max(adjust(&mut p, 2, 3));
    let max_height = adjust(&mut p, 2, 1).max(adjust(&mut p, 3, 0));
    let (max_width, max_height) = ((max_width as i64).max(1) as f64, (max_height as i64).max(1) as f64);
    let (w, h) = (width as f32, height as f32);
    let dst = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let m = warp::perspective_transform(&p, &dst);
    let (sx, sy) = (f64::from(width) / max_width, f64::from(height) / max_height);
    [m[0] * sx, m[1] * sx, m[2] * sx, m[3] * sy, m[4] * sy, m[5] * sy, m[6], m[7], m[8]]
}

/// The elastic displacement fields `(dx, dy)` (row-major, `width * height` each) for a
/// recorded seed: standard normals from `Rng::from_seed(seed)`, then
/// [`elastic_field_from_noise`].
pub fn elastic_field(seed: u64, width: u32, height: u32, alpha: f64, sigma: f64) -> (Vec<f32>, Vec<f32>) {
    let n = width as usize * height as usize;
    let mut noise = vec![0f32; 2 * n];
    noise::fill_normals(Rng::from_seed(seed), &mut noise);
    elastic_field_from_noise(noise, width, height, alpha, sigma)
}

/// albumentations `generate_displacement_fields` (gaussian, `approximate=False`) from given
/// noise: `noise` holds the dx field then the dy field (`2 * width * height` standard
/// normals). Both are divided by their largest magnitude, blurred as one stacked
/// `(2h, w)` float32 image with `cv2.GaussianBlur((0, 0), sigma, BORDER_REPLICATE)`
/// (to f32 rounding, see `field_blur`),
/// and multiplied by `alpha`.
pub fn elastic_field_from_noise(
    mut noise: Vec<f32>,
    width: u32,
    height: u32,
    alpha: f64,
    sigma: f64,
) -> (Vec<f32>, Vec<f32>) {
    let n = width as usize * height as usize;
    noise.resize(2 * n, 0.0);
    let max_abs = noise.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max_abs > 1e-6 {
        noise.iter_mut().for_each(|v| *v /= max_abs);
    }
    if n > 0 {
        field_blur::blur_field(&mut noise, width as usize, 2 * height as usize, sigma);
    }
    let a = alpha as f32;
    noise.iter_mut().for_each(|v| *v *= a);
    let dy = noise.split_off(n);
    (noise, dy)
}

/// `cv2.remap` of `image` by the displacement `(dx, dy)`: output pixel `(x, y)` samples
/// the source at `(x + dx, y + dy)` (bilinear, as OpenCV 5's `remap` computes it).
pub fn remap_displaced(
    image: &RgbImage,
    dx: &[f32],
    dy: &[f32],
    border_mode: BorderMode,
    fill: u8,
) -> Result<RgbImage, AugmentError> {
    let (width, height) = image.dimensions();
    let n = width as usize * height as usize;
    if dx.len() != n || dy.len() != n {
        return Err(invalid("elastic_transform", format!("displacement fields must have {n} values each")));
    }
    let mut out = vec![0u8; n * 3];
    warp::remap_displaced(image.as_raw(), width, height, dx, dy, border_mode, [fill; 3], &mut out);
    Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches dimensions"))
}
