//! Attention similarity: the class-token-to-patch attention grid, upsampled to the
//! image size exactly as `cv2.resize(grid, (width, height), interpolation=INTER_LINEAR)`
//! does on float32.

/// Upsample a row-major `g x g` float32 grid (`g * g == grid.len()`) to
/// `width x height`, bit for bit as `cv2.resize(..., INTER_LINEAR)` on float32 does in
/// opencv-python-headless 5.0 (the reference script checks this on every fixture).
///
/// That implementation maps destination pixel `d` to the source coordinate
/// `(d + 0.5) * src/dst - 0.5` in f64, clamps at the borders, keeps the fraction `t`
/// as f32, and interpolates each axis as `fma(s1 - s0, t, s0)` in f32, horizontally
/// first. OpenCV 4.x used `s0*(1-t) + s1*t` with an f32 coordinate instead, which
/// differs from this by at most one f32 ulp per pixel.
///
/// `None` when the length is not a non-zero square or a target side is 0.
pub fn upsample_attention(grid: &[f32], width: u32, height: u32) -> Option<Vec<f32>> {
    let g = grid_side(grid.len())?;
    if width == 0 || height == 0 {
        return None;
    }
    let (w, h) = (width as usize, height as usize);
    let xs = linear_taps(g, w);
    let ys = linear_taps(g, h);
    let mut rows = vec![0.0f32; g * w];
    for (src, dst) in grid.chunks_exact(g).zip(rows.chunks_exact_mut(w)) {
        for (out, &(s, t)) in dst.iter_mut().zip(&xs) {
            *out = lerp(src, s, t, 1);
        }
    }
    let mut out = vec![0.0f32; w * h];
    for (dst, &(s, t)) in out.chunks_exact_mut(w).zip(&ys) {
        for (x, o) in dst.iter_mut().enumerate() {
            *o = lerp(&rows[x..], s, t, w);
        }
    }
    Some(out)
}

/// Attention similarity `1 / (1 + mean((A - A')^2))` of two class-token attention
/// vectors (row-major `g x g` grids), each upsampled to `width x height` by
/// [`upsample_attention`] and min-max normalised to [0, 1] when its max exceeds its
/// min (a constant map is left as it is). Everything after the upsampling is f64.
///
/// `None` when the lengths differ, are not a non-zero square, a target side is 0, or
/// an input is not finite (for a model without attention output the stage never
/// calls this and writes `null`).
pub fn attention_similarity(a: &[f32], b: &[f32], width: u32, height: u32) -> Option<f64> {
    if a.len() != b.len() || !a.iter().chain(b).all(|x| x.is_finite()) {
        return None;
    }
    let ma = normalised(upsample_attention(a, width, height)?);
    let mb = normalised(upsample_attention(b, width, height)?);
    let sum: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y) * (x - y)).sum();
    let score = 1.0 / (1.0 + sum / ma.len() as f64);
    score.is_finite().then_some(score)
}

fn grid_side(len: usize) -> Option<usize> {
    let g = (len as f64).sqrt().round() as usize;
    (g > 0 && g * g == len).then_some(g)
}

/// For each destination index: the left source index and the f32 fraction towards the
/// next one (0 at the clamped borders, where only the left sample is used).
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let s = f.floor();
            if s < 0.0 {
                (0, 0.0)
            } else if s as usize >= src - 1 {
                (src - 1, 0.0)
            } else {
                (s as usize, (f - s) as f32)
            }
        })
        .collect()
}

fn lerp(line: &[f32], s: usize, t: f32, stride: usize) -> f32 {
    let s0 = line[s * stride];
    if t == 0.0 {
        return s0;
    }
    let s1 = line[(s + 1) * stride];
    (s1 - s0).mul_add(t, s0)
}

fn normalised(map: Vec<f32>) -> Vec<f64> {
    let map: Vec<f64> = map.into_iter().map(f64::from).collect();
    let (lo, hi) = map.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if hi > lo {
        let range = hi - lo;
        map.into_iter().map(|x| (x - lo) / range).collect()
    } else {
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(attention_similarity(&[0.5; 49], &[0.5; 50], 224, 224), None);
        assert_eq!(attention_similarity(&[0.5; 48], &[0.5; 48], 224, 224), None);
        assert_eq!(attention_similarity(&[], &[], 224, 224), None);
        assert_eq!(attention_similarity(&[0.5; 49], &[0.5; 49], 0, 224), None);
        let mut nan = [0.5f32; 49];
        nan[3] = f32::NAN;
        assert_eq!(attention_similarity(&nan, &[0.5; 49], 224, 224), None);
    }

    #[test]
    fn identical_and_constant_maps() {
        let a: Vec<f32> = (0..49).map(|i| i as f32 / 49.0).collect();
        assert_eq!(attention_similarity(&a, &a, 224, 224), Some(1.0));
        assert_eq!(attention_similarity(&[0.02; 49], &[0.02; 49], 61, 45), Some(1.0));
        let s = attention_similarity(&a, &[0.02; 49], 224, 224).unwrap();
        assert!(s > 0.0 && s < 1.0);
    }

    #[test]
    fn one_by_one_grid_is_constant() {
        assert_eq!(upsample_attention(&[0.25], 3, 2), Some(vec![0.25; 6]));
    }
}
