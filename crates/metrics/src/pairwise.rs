//! Distances among the variants of one image, in `scipy.spatial.distance.pdist` order.

/// Position of the pair `(i, j)`, `i != j`, in a condensed distance vector of `n`
/// items (the inverse of `scipy.spatial.distance.squareform`); symmetric in `i`, `j`.
///
/// # Panics
/// If `i == j` (the diagonal is not stored) or either index is `>= n`.
pub fn condensed_index(n: usize, i: usize, j: usize) -> usize {
    assert!(i != j, "condensed_index: the diagonal ({i}, {i}) is not stored");
    assert!(i < n && j < n, "condensed_index: ({i}, {j}) out of range for n = {n}");
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// Condensed cosine distances `1 - u·v/(|u||v|)`, as `pdist(X, "cosine")`.
///
/// Like scipy, the cosine is clipped to [-1, 1], so distances lie in [0, 2]. Where
/// scipy returns NaN (a zero vector) this returns 1.0, the convention of
/// scikit-learn's `cosine_distances`: a zero vector is orthogonal to everything.
///
/// # Panics
/// If the vectors do not all have the same length.
pub fn pdist_cosine(vectors: &[&[f32]]) -> Vec<f64> {
    let rows = to_f64(vectors);
    let sq_norms: Vec<f64> = rows.iter().map(|r| dot(r, r)).collect();
    pairs(&rows, |i, j, a, b| {
        // sqrt of the product, so identical vectors are exactly 0 apart.
        let denom = (sq_norms[i] * sq_norms[j]).sqrt();
        if denom == 0.0 {
            return 1.0;
        }
        let cos = dot(a, b) / denom;
        let cos = if cos.abs() > 1.0 { cos.signum() } else { cos };
        let d = 1.0 - cos;
        if d.is_finite() { d } else { 1.0 }
    })
}

/// Condensed Euclidean distances, as `pdist(X, "euclidean")`.
///
/// # Panics
/// If the vectors do not all have the same length.
pub fn pdist_euclidean(vectors: &[&[f32]]) -> Vec<f64> {
    let rows = to_f64(vectors);
    pairs(&rows, |_, _, a, b| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt())
}

fn to_f64(vectors: &[&[f32]]) -> Vec<Vec<f64>> {
    if let Some(first) = vectors.first() {
        assert!(vectors.iter().all(|v| v.len() == first.len()), "pdist: vectors have different lengths");
    }
    vectors.iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn pairs(rows: &[Vec<f64>], f: impl Fn(usize, usize, &[f64], &[f64]) -> f64) -> Vec<f64> {
    let n = rows.len();
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            out.push(f(i, j, &rows[i], &rows[j]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_order_matches_pair_loop() {
        let n = 10;
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                assert_eq!(condensed_index(n, i, j), k);
                assert_eq!(condensed_index(n, j, i), k);
                k += 1;
            }
        }
    }

    #[test]
    fn small_inputs() {
        assert!(pdist_cosine(&[]).is_empty());
        assert!(pdist_euclidean(&[&[1.0]]).is_empty());
        let zero = [0.0f32, 0.0];
        let x = [1.0f32, 0.0];
        assert_eq!(pdist_cosine(&[&zero, &x, &zero]), vec![1.0, 1.0, 1.0]);
        assert_eq!(pdist_euclidean(&[&zero, &x]), vec![1.0]);
    }
}
