//! [`Params::apply`]: a canonical image plus one draw's parameters to the augmented
//! image, one function per family. A `Params` can come from any JSON, so each function
//! checks the values it reads before it touches a pixel.

use image::RgbImage;

use super::elastic::{elastic_field, remap_bytes};
use super::geometry::{affine_matrix, is_identity, perspective_matrix};
use super::{BorderMode, DropoutFill, FillMode, Params, blur, flip, hue, invalid, noise, pixel, warp};
use crate::{AugmentError, Rng};

/// What a family's function returns: the output bytes, or why the parameters are invalid.
type Bytes = Result<Vec<u8>, String>;

impl Params {
    /// Apply to an RGB8 image. Pure: the same parameters give the same bytes.
    pub fn apply(&self, image: &RgbImage) -> Result<RgbImage, AugmentError> {
        let out = match self {
            Params::Identity => Ok(image.as_raw().clone()),
            Params::GaussNoise { mean, std, per_channel, seed } => gauss_noise(image, *mean, *std, *per_channel, *seed),
            Params::GaussianBlur { ksize, sigma } => gaussian_blur(image, *ksize, *sigma),
            Params::ColorJitter { brightness, contrast, saturation, hue, order } => {
                color_jitter(image, [*brightness, *contrast, *saturation, *hue], *order)
            }
            Params::ShiftScaleRotate { shift_x, shift_y, scale_x, scale_y, angle, border_mode, fill } => {
                let shift = [*shift_x as f64, *shift_y as f64];
                shift_scale_rotate(image, shift, [*scale_x, *scale_y], *angle, *border_mode, *fill)
            }
            Params::HorizontalFlip => Ok(horizontal_flip(image)),
            Params::ElasticTransform { alpha, sigma, seed, border_mode, fill } => {
                elastic_transform(image, *alpha, *sigma, *seed, *border_mode, *fill)
            }
            Params::Perspective { points, border_mode, fill } => perspective(image, *points, *border_mode, *fill),
            Params::RandomBrightnessContrast { alpha, beta, brightness_by_max } => {
                brightness_contrast(image, *alpha, *beta, *brightness_by_max)
            }
            Params::CoarseDropout { holes, fill, seed } => Ok(coarse_dropout(image, holes, fill, *seed)),
        };
        let out = out.map_err(|message| invalid(self.kind(), message))?;
        let (width, height) = image.dimensions();
        Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches dimensions"))
    }
}

fn finite(values: &[f64]) -> Result<(), String> {
    if values.iter().all(|v| v.is_finite()) { Ok(()) } else { Err("non-finite parameter".into()) }
}

fn gauss_noise(image: &RgbImage, mean: f64, std: f64, per_channel: bool, seed: u64) -> Bytes {
    finite(&[mean, std])?;
    if std < 0.0 {
        return Err("std must be >= 0".into());
    }
    let mut out = image.as_raw().clone();
    noise::add_gauss_noise(&mut out, mean, std, per_channel, seed);
    Ok(out)
}

fn gaussian_blur(image: &RgbImage, ksize: u32, sigma: f64) -> Bytes {
    finite(&[sigma])?;
    if ksize.is_multiple_of(2) || ksize > 255 || sigma <= 0.0 {
        return Err(format!("need an odd ksize <= 255 and sigma > 0, got {ksize} and {sigma}"));
    }
    let (width, height) = image.dimensions();
    let mut out = vec![0u8; image.as_raw().len()];
    let kernel = blur::albumentations_kernel(sigma, ksize as usize);
    blur::sep_filter_u8(image.as_raw(), width, height, &kernel, &mut out);
    Ok(out)
}

/// `factors`: brightness, contrast, saturation, hue; `order` indexes them.
fn color_jitter(image: &RgbImage, factors: [f64; 4], order: [u8; 4]) -> Bytes {
    finite(&factors)?;
    let mut seen = [false; 4];
    for &i in &order {
        if i > 3 || std::mem::replace(&mut seen[i as usize], true) {
            return Err(format!("order must be a permutation of 0..4, got {order:?}"));
        }
    }
    let [brightness, contrast, saturation, hue_shift] = factors;
    if brightness < 0.0 || contrast < 0.0 || saturation < 0.0 {
        return Err("factors must be >= 0".into());
    }
    let mut out = image.as_raw().clone();
    for &i in &order {
        match i {
            0 => pixel::adjust_brightness(&mut out, brightness),
            1 => pixel::adjust_contrast(&mut out, contrast),
            2 => pixel::adjust_saturation(&mut out, saturation),
            _ => hue::adjust_hue(&mut out, image.width() as usize, hue_shift),
        }
    }
    Ok(out)
}

fn shift_scale_rotate(
    image: &RgbImage,
    [shift_x, shift_y]: [f64; 2],
    [scale_x, scale_y]: [f64; 2],
    angle: f64,
    border_mode: BorderMode,
    fill: u8,
) -> Bytes {
    finite(&[scale_x, scale_y, angle])?;
    let (width, height) = image.dimensions();
    let m = affine_matrix(width, height, shift_x, shift_y, scale_x, scale_y, angle);
    let src = image.as_raw();
    if is_identity(&m) {
        return Ok(src.clone());
    }
    let mut out = vec![0u8; src.len()];
    warp::warp_affine(src, width, height, m, border_mode, [fill; 3], &mut out);
    Ok(out)
}

fn horizontal_flip(image: &RgbImage) -> Vec<u8> {
    let mut out = vec![0u8; image.as_raw().len()];
    flip::hflip(image.as_raw(), image.width() as usize, &mut out);
    out
}

fn elastic_transform(image: &RgbImage, alpha: f64, sigma: f64, seed: u64, border_mode: BorderMode, fill: u8) -> Bytes {
    finite(&[alpha, sigma])?;
    if sigma <= 0.0 || sigma > 1000.0 {
        return Err("sigma must be in (0, 1000]".into());
    }
    let (width, height) = image.dimensions();
    let (dx, dy) = elastic_field(seed, width, height, alpha, sigma);
    Ok(remap_bytes(image, &dx, &dy, border_mode, fill))
}

fn perspective(image: &RgbImage, points: [[f32; 2]; 4], border_mode: BorderMode, fill: u8) -> Bytes {
    if points.iter().flatten().any(|v| !v.is_finite()) {
        return Err("non-finite corner".into());
    }
    let (width, height) = image.dimensions();
    let m = perspective_matrix(points, width, height);
    let mut out = vec![0u8; image.as_raw().len()];
    warp::warp_perspective(image.as_raw(), width, height, &m, border_mode, [fill; 3], &mut out);
    Ok(out)
}

fn brightness_contrast(image: &RgbImage, alpha: f64, beta: f64, brightness_by_max: bool) -> Bytes {
    finite(&[alpha, beta])?;
    let src = image.as_raw();
    let beta = if brightness_by_max {
        beta * 255.0
    } else {
        let n = src.len().max(1) as f64;
        beta * (src.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / n)
    };
    let mut out = src.clone();
    pixel::multiply_add(&mut out, alpha, beta);
    Ok(out)
}

/// Holes are `[x_min, y_min, x_max, y_max)`, clipped to the image as numpy slicing
/// clips; random fills draw from `Rng::from_seed(seed)`, hole by hole.
fn coarse_dropout(image: &RgbImage, holes: &[[u32; 4]], fill: &DropoutFill, seed: u64) -> Vec<u8> {
    let (width, height) = image.dimensions();
    let mut out = image.as_raw().clone();
    let mut rng = Rng::from_seed(seed);
    let stride = width as usize * 3;
    for hole in holes {
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
    out
}
