//! Gaussian kernels and separable convolution as albumentations 2.0 / OpenCV compute them.

use super::warp::{BorderMode, border_index};

/// albumentations `create_gaussian_kernel_1d(sigma, ksize)` (float64, normalised).
pub(crate) fn albumentations_kernel(sigma: f64, ksize: usize) -> Vec<f64> {
    let size = if ksize.is_multiple_of(2) { ksize + 1 } else { ksize };
    let r = (size / 2) as f64;
    let k: Vec<f64> = (0..size).map(|i| (-0.5 * ((i as f64 - r) / sigma).powi(2)).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// `cv2.sepFilter2D(img, -1, k, k)` on RGB8 with `BORDER_REFLECT_101`.
///
/// OpenCV 5 filters 8-bit images with the float kernel (rows then columns, float
/// intermediates) and rounds; the 4.x 8-bit fixed-point path differs by up to 2 levels.
pub(crate) fn sep_filter_u8(src: &[u8], width: u32, height: u32, kernel: &[f64], out: &mut [u8]) {
    let k: Vec<f32> = kernel.iter().map(|&v| v as f32).collect();
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return;
    }
    let r = k.len() / 2;
    let stride = w * 3;
    // Horizontal pass over a reflected, padded copy of each row so the tap loop vectorises.
    let mut padded = vec![0f32; (w + 2 * r) * 3];
    let mut tmp = vec![0f32; w * h * 3];
    let xidx: Vec<usize> = (0..w + 2 * r)
        .map(|p| border_index(p as i64 - r as i64, w as i64, BorderMode::Reflect101).unwrap_or(0))
        .collect();
    for y in 0..h {
        let line = &src[y * stride..(y + 1) * stride];
        for (p, &sx) in xidx.iter().enumerate() {
            for c in 0..3 {
                padded[p * 3 + c] = f32::from(line[sx * 3 + c]);
            }
        }
        let trow = &mut tmp[y * stride..(y + 1) * stride];
        for (j, &kj) in k.iter().enumerate() {
            for (t, &s) in trow.iter_mut().zip(&padded[j * 3..j * 3 + stride]) {
                *t += kj * s;
            }
        }
    }
    let yidx: Vec<usize> = (0..h + 2 * r)
        .map(|p| border_index(p as i64 - r as i64, h as i64, BorderMode::Reflect101).unwrap_or(0))
        .collect();
    let mut acc = vec![0f32; stride];
    for y in 0..h {
        acc.fill(0.0);
        for (j, &kj) in k.iter().enumerate() {
            let sy = yidx[y + j];
            for (a, &s) in acc.iter_mut().zip(&tmp[sy * stride..(sy + 1) * stride]) {
                *a += kj * s;
            }
        }
        for (o, &a) in out[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *o = a.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
}

/// OpenCV `getGaussianKernel(n, sigma, CV_32F)` for `n > 7`.
pub(crate) fn opencv_kernel_f32(n: usize, sigma: f64) -> Vec<f32> {
    let scale2x = -0.5 / (sigma * sigma);
    let mut k: Vec<f32> = Vec::with_capacity(n);
    let mut sum = 0f64;
    for i in 0..n {
        let x = i as f64 - (n as f64 - 1.0) * 0.5;
        let t = (scale2x * x * x).exp() as f32;
        sum += f64::from(t);
        k.push(t);
    }
    let inv = 1.0 / sum;
    k.iter().map(|&t| (f64::from(t) * inv) as f32).collect()
}

/// `cv2.GaussianBlur(field, (0, 0), sigma, borderType=BORDER_REPLICATE)` on a
/// single-channel `f32` image of `width` x `height`, in place.
pub(crate) fn gaussian_blur_f32_replicate(field: &mut [f32], width: usize, height: usize, sigma: f64) {
    let n = ((sigma * 4.0 * 2.0 + 1.0).round_ties_even() as usize) | 1;
    let k = opencv_kernel_f32(n, sigma);
    let r = n / 2;
    // Rows: accumulate per tap across a padded copy so the inner loop vectorises.
    let mut padded = vec![0f32; width + 2 * r];
    let mut acc = vec![0f32; width];
    for y in 0..height {
        let row = &mut field[y * width..(y + 1) * width];
        for (p, v) in padded.iter_mut().enumerate() {
            *v = row[(p as i64 - r as i64).clamp(0, width as i64 - 1) as usize];
        }
        acc.fill(0.0);
        for (j, &kj) in k.iter().enumerate() {
            for (a, &s) in acc.iter_mut().zip(&padded[j..j + width]) {
                *a += kj * s;
            }
        }
        row.copy_from_slice(&acc);
    }
    // Columns: accumulate whole rows per tap.
    let src = field.to_vec();
    for y in 0..height {
        acc.fill(0.0);
        for (j, &kj) in k.iter().enumerate() {
            let sy = (y as i64 + j as i64 - r as i64).clamp(0, height as i64 - 1) as usize;
            for (a, &s) in acc.iter_mut().zip(&src[sy * width..(sy + 1) * width]) {
                *a += kj * s;
            }
        }
        field[y * width..(y + 1) * width].copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_normalised() {
        let k = albumentations_kernel(1.3, 5);
        assert_eq!(k.len(), 5);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(albumentations_kernel(1.0, 4).len(), 5);
        let k = opencv_kernel_f32(481, 60.0);
        assert!((k.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn blur_keeps_constant_image() {
        let src = vec![77u8; 9 * 5 * 3];
        let mut out = vec![0u8; src.len()];
        sep_filter_u8(&src, 9, 5, &albumentations_kernel(2.0, 7), &mut out);
        assert!(out.iter().all(|&v| v == 77));
    }
}
