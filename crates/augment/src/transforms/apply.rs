//! [`Params::apply`]: a canonical image plus one draw's parameters to the augmented
//! image, one function per family. A `Params` can come from any JSON, so each function
//! checks the values it reads before it touches a pixel.

use image::RgbImage;

use super::elastic::elastic_field;
use super::geometry::{affine_matrix, is_identity, perspective_matrix};
use super::warp::Warp;
use super::{DropoutFill, FillMode, Params, blur, flip, hue, invalid, noise, pixel};
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
            Params::HorizontalFlip => Ok(horizontal_flip(image)),
            Params::ShiftScaleRotate { .. }
            | Params::ElasticTransform { .. }
            | Params::Perspective { .. }
            | Params::PixelShift { .. } => self.checked_warp(image.width(), image.height()).map(|warp| {
                let (src, (width, height)) = (image.as_raw(), image.dimensions());
                match warp {
                    Some(warp) => {
                        let mut out = vec![0u8; src.len()];
                        warp.apply_rgb8(src, width, height, &mut out);
                        out
                    }
                    None => src.clone(),
                }
            }),
            Params::RandomBrightnessContrast { alpha, beta, brightness_by_max } => {
                brightness_contrast(image, *alpha, *beta, *brightness_by_max)
            }
            Params::CoarseDropout { holes, fill, seed } => Ok(coarse_dropout(image, holes, fill, *seed)),
            Params::Jpeg { quality } => jpeg_round_trip(image, *quality),
            Params::ResizeRoundTrip { scale } => resize_round_trip(image, *scale),
        };
        let out = out.map_err(|message| invalid(self.kind(), message))?;
        let (width, height) = image.dimensions();
        Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches dimensions"))
    }

    /// The warp a geometric augmentation applies to an image of `width` x `height`, so
    /// that any map of the original (an attention map) can be moved into the variant's
    /// frame; `None` for the others (their output is in the original's frame) and for
    /// a geometric one that leaves every pixel in place.
    pub fn warp(&self, width: u32, height: u32) -> Result<Option<Warp>, AugmentError> {
        match self {
            // A flip is the affine map x -> w - 1 - x (integer coordinates: exact).
            Params::HorizontalFlip => {
                Ok(Some(Warp::affine([-1.0, 0.0, f64::from(width) - 1.0, 0.0, 1.0, 0.0], Default::default(), 0)))
            }
            _ => self.checked_warp(width, height).map_err(|message| invalid(self.kind(), message)),
        }
    }

    /// The warp of the parameters drawn through OpenCV's resamplers, their values checked.
    fn checked_warp(&self, width: u32, height: u32) -> Result<Option<Warp>, String> {
        Ok(match self {
            Params::ShiftScaleRotate { shift_x, shift_y, scale_x, scale_y, angle, border_mode, fill } => {
                finite(&[*scale_x, *scale_y, *angle])?;
                let m = affine_matrix(width, height, *shift_x as f64, *shift_y as f64, *scale_x, *scale_y, *angle);
                (!is_identity(&m)).then(|| Warp::affine(m, *border_mode, *fill))
            }
            Params::ElasticTransform { alpha, sigma, seed, border_mode, fill } => {
                finite(&[*alpha, *sigma])?;
                if *sigma <= 0.0 || *sigma > 1000.0 {
                    return Err("sigma must be in (0, 1000]".into());
                }
                let (dx, dy) = elastic_field(*seed, width, height, *alpha, *sigma);
                Some(Warp::displaced(dx, dy, *border_mode).with_fill(*fill))
            }
            Params::Perspective { points, border_mode, fill } => {
                if points.iter().flatten().any(|v| !v.is_finite()) {
                    return Err("non-finite corner".into());
                }
                Some(Warp::perspective(&perspective_matrix(*points, width, height), *border_mode, *fill))
            }
            Params::PixelShift { dx, dy, border_mode, fill } => {
                let m = [1.0, 0.0, f64::from(*dx), 0.0, 1.0, f64::from(*dy)];
                (dx | dy != 0).then(|| Warp::affine(m, *border_mode, *fill))
            }
            _ => None,
        })
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

fn horizontal_flip(image: &RgbImage) -> Vec<u8> {
    let mut out = vec![0u8; image.as_raw().len()];
    flip::hflip(image.as_raw(), image.width() as usize, &mut out);
    out
}

/// PIL's JPEG save at `quality` and load, through libjpeg-turbo's own code (see `jpeg`).
fn jpeg_round_trip(image: &RgbImage, quality: u32) -> Bytes {
    if !(1..=100).contains(&quality) {
        return Err(format!("quality must be within [1, 100], got {quality}"));
    }
    crate::jpeg::round_trip(image, quality).map(RgbImage::into_raw)
}

/// `cv2.resize` (bilinear) to `round(scale * side)` (at least 1) and back.
fn resize_round_trip(image: &RgbImage, scale: f64) -> Bytes {
    if !(scale.is_finite() && scale > 0.0 && scale <= 4.0) {
        return Err(format!("scale must be within (0, 4], got {scale}"));
    }
    let (width, height) = image.dimensions();
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    let small = crate::resize_linear(image, side(width), side(height));
    Ok(crate::resize_linear(&small, width, height).into_raw())
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
