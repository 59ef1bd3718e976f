//! Metrics on raw (unnormalised) embedding vectors, accumulated in f64.

/// Cosine similarity `u·v / (|u| |v|)`, clamped to [-1, 1] against rounding.
///
/// `None` when the lengths differ, either norm is 0, or an input is not finite.
pub fn cosine_similarity(u: &[f32], v: &[f32]) -> Option<f64> {
    if u.len() != v.len() {
        return None;
    }
    let (mut dot, mut uu, mut vv) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in u.iter().zip(v) {
        let (a, b) = (f64::from(a), f64::from(b));
        dot += a * b;
        uu += a * a;
        vv += b * b;
    }
    // sqrt of the product, so identical vectors give exactly 1.
    let cos = dot / (uu * vv).sqrt();
    (uu > 0.0 && vv > 0.0 && cos.is_finite()).then(|| cos.clamp(-1.0, 1.0))
}

/// Euclidean distance `|u - v|`, computed from the differences (no cancellation).
///
/// # Panics
/// If the lengths differ: both vectors come from one fixed-width embedding column,
/// so a mismatch is a caller bug. Finite inputs give a finite result.
pub fn l2_distance(u: &[f32], v: &[f32]) -> f64 {
    assert_eq!(u.len(), v.len(), "l2_distance: embedding lengths differ");
    u.iter()
        .zip(v)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from(b);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_edge_cases() {
        assert_eq!(cosine_similarity(&[1.0, 0.0], &[0.0, 0.0]), None);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(cosine_similarity(&[f32::NAN], &[1.0]), None);
        assert_eq!(cosine_similarity(&[f32::MAX, f32::MAX], &[1.0, 1.0]), Some(1.0));
        assert_eq!(cosine_similarity(&[3.0, 4.0], &[-3.0, -4.0]), Some(-1.0));
        assert_eq!(cosine_similarity(&[0.1, 0.7, 0.3], &[0.1, 0.7, 0.3]), Some(1.0));
    }

    #[test]
    fn l2_simple() {
        assert_eq!(l2_distance(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
        assert_eq!(l2_distance(&[], &[]), 0.0);
    }
}
