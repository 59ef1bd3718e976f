//! Drawing [`Params`] from a [`Transform`] with albumentations' distributions.

use super::{Params, Range, Transform};
use crate::Rng;

impl Transform {
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
            Transform::Jpeg(t) => {
                let [lo, hi] = t.quality_range.map(i64::from);
                Params::Jpeg { quality: if lo == hi { lo as u32 } else { rng.int_inclusive(lo, hi) as u32 } }
            }
            Transform::PixelShift(t) => {
                let p = t.pixels as i32;
                let [dx, dy] = [[p, 0], [-p, 0], [0, p], [0, -p]][rng.int_inclusive(0, 3) as usize];
                Params::PixelShift { dx, dy, border_mode: t.border_mode, fill: t.fill }
            }
            Transform::ResizeRoundTrip(t) => Params::ResizeRoundTrip { scale: t.scale },
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
