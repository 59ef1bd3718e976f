//! Pixel-level operations on RGB8 buffers, following albumentations 2.0 / albucore /
//! OpenCV arithmetic: float32 lookup tables truncated to uint8, OpenCV's fixed-point
//! grey and HSV conversions.

use crate::Rng;

/// albucore `clip(x, uint8)`: clip to [0, 255] then `astype(uint8)` (truncation).
#[inline]
fn clip_trunc(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

fn apply_lut(buf: &mut [u8], lut: &[u8; 256]) {
    for v in buf {
        *v = lut[usize::from(*v)];
    }
}

/// albucore `multiply_add(img, factor, value)` for uint8: a float32 LUT, clipped and truncated.
pub(crate) fn multiply_add(buf: &mut [u8], factor: f64, value: f64) {
    let (f, v) = (factor as f32, value as f32);
    let mut lut = [0u8; 256];
    for (i, l) in lut.iter_mut().enumerate() {
        *l = clip_trunc(i as f32 * f + v);
    }
    apply_lut(buf, &lut);
}

/// albucore `multiply(img, factor)` for uint8 (float32 LUT, truncated).
fn multiply(buf: &mut [u8], factor: f64) {
    let f = factor as f32;
    let mut lut = [0u8; 256];
    for (i, l) in lut.iter_mut().enumerate() {
        *l = clip_trunc(i as f32 * f);
    }
    apply_lut(buf, &lut);
}

/// OpenCV 5 `COLOR_RGB2GRAY` for 8-bit: 15-bit fixed-point BT.601 weights summing to 2^15.
#[inline]
pub(crate) fn gray(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 9798 + u32::from(g) * 19235 + u32::from(b) * 3735 + (1 << 14)) >> 15) as u8
}

/// torchvision-style brightness: `img * factor` (albumentations `adjust_brightness_torchvision`).
pub(crate) fn adjust_brightness(buf: &mut [u8], factor: f64) {
    if factor == 0.0 {
        buf.fill(0);
    } else if factor != 1.0 {
        multiply(buf, factor);
    }
}

/// torchvision-style contrast around the mean grey level.
pub(crate) fn adjust_contrast(buf: &mut [u8], factor: f64) {
    if factor == 1.0 {
        return;
    }
    let n = buf.len() / 3;
    let sum: u64 = buf.chunks_exact(3).map(|p| u64::from(gray(p[0], p[1], p[2]))).sum();
    let mean = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    if factor == 0.0 {
        buf.fill((mean + 0.5) as u8);
        return;
    }
    multiply_add(buf, factor, mean * (1.0 - factor));
}

/// Blend with the grey image: `cv2.addWeighted(img, f, gray, 1 - f, 0)`.
pub(crate) fn adjust_saturation(buf: &mut [u8], factor: f64) {
    if factor == 1.0 {
        return;
    }
    let (a, b) = (factor as f32, (1.0 - factor) as f32);
    for p in buf.chunks_exact_mut(3) {
        let g = gray(p[0], p[1], p[2]);
        if factor == 0.0 {
            p.fill(g);
            continue;
        }
        let gb = f32::from(g) * b;
        for v in p.iter_mut() {
            *v = (f32::from(*v) * a + gb).round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
}

struct HsvTables {
    sdiv: [i32; 256],
    hdiv: [i32; 256],
}

fn hsv_tables() -> HsvTables {
    let mut sdiv = [0i32; 256];
    let mut hdiv = [0i32; 256];
    for i in 1..256 {
        sdiv[i] = ((255 << 12) as f64 / i as f64).round_ties_even() as i32;
        hdiv[i] = ((180 << 12) as f64 / (6.0 * i as f64)).round_ties_even() as i32;
    }
    HsvTables { sdiv, hdiv }
}

/// OpenCV `COLOR_RGB2HSV` for 8-bit (H in 0..180, fixed point with 12-bit tables).
#[inline]
fn rgb_to_hsv(t: &HsvTables, r: u8, g: u8, b: u8) -> (i32, i32, i32) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let v = r.max(g).max(b);
    let vmin = r.min(g).min(b);
    let diff = v - vmin;
    let s = (diff * t.sdiv[v as usize] + (1 << 11)) >> 12;
    let h = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    let mut h = (h * t.hdiv[diff as usize] + (1 << 11)) >> 12;
    if h < 0 {
        h += 180;
    }
    (h, s, v)
}

/// OpenCV 5 `COLOR_HSV2RGB` for 8-bit: float32 sectors, the result truncated.
#[inline]
fn hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
    let s = f32::from(s) * (1.0 / 255.0);
    let v = f32::from(v) * (1.0 / 255.0);
    let (r, g, b);
    if s == 0.0 {
        (r, g, b) = (v, v, v);
    } else {
        const SECTOR: [[usize; 3]; 6] = [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]];
        let mut hh = f32::from(h) * (6.0 / 180.0);
        hh %= 6.0;
        if hh < 0.0 {
            hh += 6.0;
        }
        let mut sector = hh.floor() as i32;
        hh -= sector as f32;
        if !(0..6).contains(&sector) {
            sector = 0;
            hh = 0.0;
        }
        let tab = [v, v * (1.0 - s), v * (1.0 - s * hh), v * (1.0 - s * (1.0 - hh))];
        let sd = SECTOR[sector as usize];
        b = tab[sd[0]];
        g = tab[sd[1]];
        r = tab[sd[2]];
    }
    // OpenCV 5 truncates here (4.x rounded).
    let q = |x: f32| (x * 255.0).clamp(0.0, 255.0) as u8;
    [q(r), q(g), q(b)]
}

/// albumentations `adjust_hue_torchvision` for uint8: HSV round trip with a hue LUT
/// `(h + 180 * factor) mod 180`, truncated.
pub(crate) fn adjust_hue(buf: &mut [u8], factor: f64) {
    if factor == 0.0 {
        return;
    }
    let t = hsv_tables();
    let mut lut = [0u8; 256];
    for (i, l) in lut.iter_mut().enumerate() {
        *l = (i as f64 + 180.0 * factor).rem_euclid(180.0) as u8;
    }
    for p in buf.chunks_exact_mut(3) {
        let (h, s, v) = rgb_to_hsv(&t, p[0], p[1], p[2]);
        let h = lut[h.clamp(0, 255) as usize];
        p.copy_from_slice(&hsv_to_rgb(h, s as u8, v as u8));
    }
}

/// Add Gaussian noise `N(mean, std) * 255` per value as albucore adds a float array to
/// uint8: the noise is truncated toward zero, added, and the sum saturated to [0, 255].
/// The field is drawn from `Rng::from_seed(seed)`.
pub(crate) fn add_gauss_noise(buf: &mut [u8], mean: f64, std: f64, per_channel: bool, seed: u64) {
    let mut rng = Rng::from_seed(seed);
    let (m, s) = ((mean * 255.0) as f32, (std * 255.0) as f32);
    if per_channel {
        let mut chunks = buf.chunks_exact_mut(2);
        for pair in &mut chunks {
            let (z0, z1) = normal_pair(&mut rng);
            pair[0] = add_trunc(pair[0], m + s * z0);
            pair[1] = add_trunc(pair[1], m + s * z1);
        }
        for v in chunks.into_remainder() {
            let (z0, _) = normal_pair(&mut rng);
            *v = add_trunc(*v, m + s * z0);
        }
    } else {
        for p in buf.chunks_exact_mut(3) {
            let (z, _) = normal_pair(&mut rng);
            let n = m + s * z;
            for v in p {
                *v = add_trunc(*v, n);
            }
        }
    }
}

#[inline]
fn add_trunc(v: u8, noise: f32) -> u8 {
    (f32::from(v) + noise.trunc()).clamp(0.0, 255.0) as u8
}

/// Two independent standard normals from one Box-Muller draw (f32 precision is plenty
/// for a field that is truncated to uint8).
#[inline]
pub(crate) fn normal_pair(rng: &mut Rng) -> (f32, f32) {
    let bits = rng.next_u64();
    // 32 bits each; u1 in (0, 1], u2 in [0, 1).
    let u1 = ((bits >> 32) as f64 + 1.0) * (1.0 / 4_294_967_296.0);
    let u2 = (bits & 0xffff_ffff) as f64 * (1.0 / 4_294_967_296.0);
    let r = (-2.0 * u1.ln()).sqrt();
    let (sn, cs) = (std::f64::consts::TAU * u2).sin_cos();
    ((r * cs) as f32, (r * sn) as f32)
}

/// Mirror columns (`cv2.flip(img, 1)`).
pub(crate) fn hflip(buf: &mut [u8], width: usize) {
    for row in buf.chunks_exact_mut(width * 3) {
        let (mut i, mut j) = (0usize, width.saturating_sub(1));
        while i < j {
            for c in 0..3 {
                row.swap(i * 3 + c, j * 3 + c);
            }
            i += 1;
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip_is_close() {
        let t = hsv_tables();
        let mut worst = 0u8;
        for r in (0..=255u8).step_by(5) {
            for g in (0..=255u8).step_by(7) {
                for b in (0..=255u8).step_by(11) {
                    let (h, s, v) = rgb_to_hsv(&t, r, g, b);
                    let back = hsv_to_rgb(h as u8, s as u8, v as u8);
                    for (x, y) in back.iter().zip([r, g, b]) {
                        worst = worst.max(x.abs_diff(y));
                    }
                }
            }
        }
        // 8-bit HSV quantises hue to 2 degrees; OpenCV's round trip is lossy by a few levels.
        assert!(worst <= 8, "worst {worst}");
    }

    #[test]
    fn gray_of_white_and_black() {
        assert_eq!(gray(255, 255, 255), 255);
        assert_eq!(gray(0, 0, 0), 0);
    }

    #[test]
    fn flip_twice_is_identity() {
        let orig: Vec<u8> = (0..5 * 3 * 3).map(|i| i as u8).collect();
        let mut b = orig.clone();
        hflip(&mut b, 5);
        assert_ne!(b, orig);
        hflip(&mut b, 5);
        assert_eq!(b, orig);
    }
}
