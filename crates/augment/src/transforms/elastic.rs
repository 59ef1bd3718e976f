//! Elastic displacement fields and the remap by them.

use image::RgbImage;

use super::warp::Warp;
use super::{BorderMode, field_blur, invalid, noise};
use crate::{AugmentError, Rng};

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
    let mut out = vec![0u8; image.as_raw().len()];
    Warp::displaced(dx.to_vec(), dy.to_vec(), border_mode).with_fill(fill).apply_rgb8(
        image.as_raw(),
        width,
        height,
        &mut out,
    );
    Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches dimensions"))
}
