//! Pillow's `Image.resize(size, Image.BICUBIC)` for RGB8 images, bit for bit.
//!
//! A port of `src/libImaging/Resample.c`: a separable convolution with the Keys cubic
//! (a = -0.5) whose support widens by the downscale factor (antialiasing), weights
//! computed in f64, normalised to sum to one, then rounded to 22-bit fixed point
//! (`PRECISION_BITS = 32 - 8 - 2`). The horizontal pass runs first, over the source rows
//! the vertical pass needs, and rounds to uint8; the vertical pass follows. A pass whose
//! axis keeps its size is skipped, as Pillow does.

use image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point weights of every output position along one axis.
struct Coefficients {
    /// Weights per output position (a run of `ksize`, zero-padded).
    ksize: usize,
    weights: Vec<i32>,
    /// `(first source index, number of taps)` per output position.
    bounds: Vec<(usize, usize)>,
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the box `[0, in_size)`.
fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv_filterscale = 1.0 / filterscale;
    let mut weights = vec![0i32; out_size * ksize];
    let mut bounds = Vec::with_capacity(out_size);
    let mut k = vec![0f64; ksize];
    for (xx, out) in weights.chunks_exact_mut(ksize).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero; negatives clamp to 0 either way.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let taps = xmax.max(0) as usize;
        let mut ww = 0.0;
        for (x, w) in k[..taps].iter_mut().enumerate() {
            *w = bicubic(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
            ww += *w;
        }
        if ww != 0.0 {
            k[..taps].iter_mut().for_each(|w| *w /= ww);
        }
        for (o, w) in out.iter_mut().zip(&k[..taps]) {
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            *o = if *w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push((xmin as usize, taps));
    }
    Coefficients { ksize, weights, bounds }
}

/// Pillow's `clip8`: drop the fraction bits and saturate to 0..=255.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes `image` to `width` x `height` exactly as Pillow's BICUBIC filter does.
pub(crate) fn resize_bicubic(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (image.width() as usize, image.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    if (sw, sh) == (dw, dh) || sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return if (sw, sh) == (dw, dh) { image.clone() } else { RgbImage::new(width, height) };
    }
    let vertical = coefficients(sh, dh);
    // Rows of the source the vertical pass reads.
    let first = vertical.bounds[0].0;
    let last = vertical.bounds[dh - 1].0 + vertical.bounds[dh - 1].1;

    // Horizontal pass over rows first..last (skipped when the width is kept).
    let (rows, row_width, offset): (std::borrow::Cow<'_, [u8]>, usize, usize) = if sw != dw {
        let horizontal = coefficients(sw, dw);
        let src = image.as_raw();
        let mut tmp = vec![0u8; (last - first) * dw * 3];
        for (line_out, y) in tmp.chunks_exact_mut(dw * 3).zip(first..last) {
            let line_in = &src[y * sw * 3..(y + 1) * sw * 3];
            for (xx, (px, &(xmin, taps))) in line_out.chunks_exact_mut(3).zip(&horizontal.bounds).enumerate() {
                let k = &horizontal.weights[xx * horizontal.ksize..][..taps];
                let mut ss = [HALF; 3];
                for (w, p) in k.iter().zip(line_in[xmin * 3..(xmin + taps) * 3].chunks_exact(3)) {
                    for c in 0..3 {
                        ss[c] += i32::from(p[c]) * w;
                    }
                }
                for c in 0..3 {
                    px[c] = clip8(ss[c]);
                }
            }
        }
        (tmp.into(), dw, first)
    } else {
        (image.as_raw().as_slice().into(), sw, 0)
    };

    if sh == dh {
        return RgbImage::from_raw(width, height, rows.into_owned()).expect("buffer size matches");
    }
    let stride = row_width * 3;
    let mut out = vec![0u8; dh * stride];
    let mut ss = vec![0i32; stride];
    for (yy, line_out) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, taps) = vertical.bounds[yy];
        let k = &vertical.weights[yy * vertical.ksize..][..taps];
        ss.fill(HALF);
        for (y, w) in (ymin - offset..).zip(k) {
            for (acc, p) in ss.iter_mut().zip(&rows[y * stride..(y + 1) * stride]) {
                *acc += i32::from(*p) * w;
            }
        }
        for (o, acc) in line_out.iter_mut().zip(&ss) {
            *o = clip8(*acc);
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer size matches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (src, dst) in [(451, 336), (1600, 358), (191, 224), (7, 3), (3, 11)] {
            let c = coefficients(src, dst);
            for (i, &(xmin, taps)) in c.bounds.iter().enumerate() {
                assert!(xmin + taps <= src);
                let sum: i32 = c.weights[i * c.ksize..][..taps].iter().sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= taps as i32, "{src}->{dst} at {i}: {sum}");
            }
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([0, 128, 255]));
        for (w, h) in [(10, 7), (80, 50), (37, 9), (12, 23)] {
            let out = resize_bicubic(&img, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| p.0 == [0, 128, 255]), "{w}x{h}");
        }
    }
}
