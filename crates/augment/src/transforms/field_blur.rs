//! The Gaussian blur of elastic displacement fields, fast for the wide kernels elastic uses.
//!
//! albumentations blurs the stacked `(2h, w)` noise with `cv2.GaussianBlur((0, 0), sigma)`
//! and `BORDER_REPLICATE`. For the paper's sigma = 60 the kernel has 481 taps, wider than
//! the image, and the direct sums would cost several times the rest of an elastic call
//! (figures: docs/benchmarks.md, "Augment kernels").
//!
//! The row pass maps every row by the same matrix `H` (w x w: kernel taps, the clamped
//! ones folded onto the edge columns). A wide Gaussian is smooth, so `H` has a small
//! numerical rank: `H = C Q` with `Q` an orthonormal basis of its row space (pivoted
//! Gram-Schmidt in f64, stopped when every residual row is below [`TOLERANCE`] of the
//! largest row) and `C = H Qᵀ`. Each row is projected to `rank` coefficients, the column
//! pass runs on those narrow rows exactly as [`blur_columns_replicate`] does on full ones
//! (the two passes commute), and the rows are expanded back with `C`. For 224 x 224 and
//! sigma 60 that is about 10x fewer operations, and the result equals the direct f32 sum
//! to its own rounding (a few 1e-7 of the field's largest value; the tests bound it).
//! Narrow kernels have no small rank, so they keep the direct row pass.
//!
//! The passes are fixed-order f32 arithmetic (no FMA contraction, no reassociation), so a
//! field does not depend on the CPU's vector width and replays bit for bit.

use std::sync::{Arc, Mutex};

use super::blur::{blur_columns_replicate, blur_rows_replicate, opencv_kernel_f32, opencv_kernel_size};

/// Residual row norm, relative to the largest row of `H`, at which the basis stops.
const TOLERANCE: f64 = 1e-7;

/// `cv2.GaussianBlur(field, (0, 0), sigma, borderType=BORDER_REPLICATE)` on a
/// single-channel `width` x `height` f32 image, in place (see the module docs).
pub(crate) fn blur_field(field: &mut [f32], width: usize, height: usize, sigma: f64) {
    let k = opencv_kernel_f32(opencv_kernel_size(sigma), sigma);
    if width == 0 || height == 0 {
        return;
    }
    match row_factors(width, sigma, &k).as_ref() {
        Some(f) => {
            let mut coefficients = vec![0f32; height * f.rank];
            for (row, c) in field.chunks_exact(width).zip(coefficients.chunks_exact_mut(f.rank)) {
                f.project(row, c);
            }
            blur_columns_replicate(&mut coefficients, f.rank, height, &k);
            for (row, c) in field.chunks_exact_mut(width).zip(coefficients.chunks_exact(f.rank)) {
                f.expand(c, row);
            }
        }
        None => {
            blur_rows_replicate(field, width, height, &k);
            blur_columns_replicate(field, width, height, &k);
        }
    }
}

/// `H ≈ C Q` for one (width, sigma).
#[derive(Debug)]
struct RowFactors {
    /// The rank, rounded up with zero basis vectors.
    rank: usize,
    /// `Qᵀ`, `width` x `rank`.
    basis_t: Vec<f32>,
    /// `Cᵀ`, `rank` x `width`.
    coeff_t: Vec<f32>,
}

impl RowFactors {
    /// `out = Q row`, as `sum_i row[i] * Qᵀ[i]`.
    fn project(&self, row: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&v, q) in row.iter().zip(self.basis_t.chunks_exact(self.rank)) {
            for (o, &q) in out.iter_mut().zip(q) {
                *o += v * q;
            }
        }
    }

    /// `out = C coefficients`, as `sum_j coefficients[j] * Cᵀ[j]`.
    fn expand(&self, coefficients: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&c, col) in coefficients.iter().zip(self.coeff_t.chunks_exact(out.len())) {
            for (o, &v) in out.iter_mut().zip(col) {
                *o += c * v;
            }
        }
    }
}

type CacheEntry = (usize, u64, Arc<Option<RowFactors>>);

/// The factors for `width` and `sigma`, computed once per process: they cost more than
/// a blur (docs/benchmarks.md, "Augment kernels"), and every image of a run has the same size.
fn row_factors(width: usize, sigma: f64, k: &[f32]) -> Arc<Option<RowFactors>> {
    static CACHE: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, f)) = cache.iter().find(|(w, s, _)| *w == width && *s == sigma.to_bits()) {
        return Arc::clone(f);
    }
    let f = Arc::new(factor(&row_operator(width, k), width));
    cache.push((width, sigma.to_bits(), Arc::clone(&f)));
    f
}

/// `H[x][i]`: the weight of input column `i` in output column `x` (row-major, f64).
fn row_operator(width: usize, k: &[f32]) -> Vec<f64> {
    let r = (k.len() / 2) as i64;
    let mut h = vec![0f64; width * width];
    for x in 0..width {
        for (j, &kj) in k.iter().enumerate() {
            let i = (x as i64 + j as i64 - r).clamp(0, width as i64 - 1) as usize;
            h[x * width + i] += f64::from(kj);
        }
    }
    h
}

/// Pivoted Gram-Schmidt on the rows of `h` (n x n); `None` when the rank is too high for
/// the factors to be cheaper than the direct pass.
fn factor(h: &[f64], n: usize) -> Option<RowFactors> {
    let max_rank = n / 4;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut residual = h.to_vec();
    let scale = residual.chunks_exact(n).map(|r| dot(r, r)).fold(0f64, f64::max);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    loop {
        let (pivot, norm2) =
            residual.chunks_exact(n).map(|r| dot(r, r)).enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
        if norm2 <= TOLERANCE * TOLERANCE * scale {
            break;
        }
        if basis.len() == max_rank {
            return None;
        }
        let mut q = residual[pivot * n..(pivot + 1) * n].to_vec();
        // Twice, so the basis stays orthonormal to f64 precision.
        for _ in 0..2 {
            for b in &basis {
                let d = dot(&q, b);
                q.iter_mut().zip(b).for_each(|(v, b)| *v -= d * b);
            }
        }
        let norm = dot(&q, &q).sqrt();
        q.iter_mut().for_each(|v| *v /= norm);
        for r in residual.chunks_exact_mut(n) {
            let d = dot(r, &q);
            r.iter_mut().zip(&q).for_each(|(v, q)| *v -= d * q);
        }
        basis.push(q);
    }
    // Zero-padded to whole blocks of the column pass, which is fastest on full blocks.
    let rank = basis.len().max(1).next_multiple_of(16);
    let mut basis_t = vec![0f32; n * rank];
    let mut coeff_t = vec![0f32; rank * n];
    for (j, q) in basis.iter().enumerate() {
        for (i, &v) in q.iter().enumerate() {
            basis_t[i * rank + j] = v as f32;
        }
        for (x, row) in h.chunks_exact(n).enumerate() {
            coeff_t[j * n + x] = dot(row, q) as f32;
        }
    }
    Some(RowFactors { rank, basis_t, coeff_t })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;
    use crate::transforms::blur::gaussian_blur_f32_replicate;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::from_seed(seed);
        (0..n).map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0).collect()
    }

    /// The blur in f64: `V F Hᵀ` with both operators built from the f32 kernel.
    fn exact(field: &[f32], w: usize, h: usize, k: &[f32]) -> Vec<f64> {
        let (rows, cols) = (row_operator(w, k), row_operator(h, k));
        let mut across = vec![0f64; w * h];
        for (y, out) in across.chunks_exact_mut(w).enumerate() {
            for (x, o) in out.iter_mut().enumerate() {
                *o = (0..w).map(|i| rows[x * w + i] * f64::from(field[y * w + i])).sum();
            }
        }
        let mut out = vec![0f64; w * h];
        for y in 0..h {
            for a in 0..h {
                let v = cols[y * h + a];
                for x in 0..w {
                    out[y * w + x] += v * across[a * w + x];
                }
            }
        }
        out
    }

    /// The fast path and the direct f32 sums (cv2's order) against the f64 blur: the fast
    /// path is at least as close where it is taken, and identical to the direct one where
    /// the direct pass is kept.
    #[test]
    fn as_accurate_as_the_direct_blur() {
        let cases = [(224, 448, 60.0, true), (224, 448, 50.0, true), (37, 20, 30.0, true), (100, 60, 20.0, false)];
        for (w, h, sigma, low_rank) in cases.into_iter().chain([(224, 50, 6.0, false)]) {
            let k = opencv_kernel_f32(opencv_kernel_size(sigma), sigma);
            let clock = std::time::Instant::now();
            assert_eq!(row_factors(w, sigma, &k).is_some(), low_rank, "{w} sigma {sigma}: path");
            let factor_ms = clock.elapsed().as_secs_f64() * 1e3;
            let mut fast = noise(w * h, 3);
            let reference = exact(&fast, w, h, &k);
            let mut direct = fast.clone();
            let clock = std::time::Instant::now();
            blur_field(&mut fast, w, h, sigma);
            let fast_ms = clock.elapsed().as_secs_f64() * 1e3;
            gaussian_blur_f32_replicate(&mut direct, w, h, sigma);
            let direct_ms = clock.elapsed().as_secs_f64() * 1e3 - fast_ms;
            // Timings for docs/benchmarks.md, "Augment kernels" (run alone: `--test-threads=1`).
            eprintln!(
                "{w}x{h} sigma {sigma}: factors {factor_ms:.2} ms, blur {fast_ms:.2} ms, direct {direct_ms:.2} ms"
            );
            if !low_rank {
                assert_eq!(fast, direct, "{w} sigma {sigma}: direct pass");
                continue;
            }
            let scale = reference.iter().fold(0f64, |m, v| m.max(v.abs()));
            let error =
                |v: &[f32]| v.iter().zip(&reference).fold(0f64, |m, (&a, b)| m.max((f64::from(a) - b).abs())) / scale;
            let (fast, direct) = (error(&fast), error(&direct));
            eprintln!("{w}x{h} sigma {sigma}: max error / largest value: fast {fast:.2e}, direct {direct:.2e}");
            assert!(fast <= direct.max(1e-6), "{w}x{h} sigma {sigma}: fast {fast:.2e} vs direct {direct:.2e}");
        }
    }

    #[test]
    fn basis_is_orthonormal_and_reproduces_the_operator() {
        let k = opencv_kernel_f32(opencv_kernel_size(60.0), 60.0);
        let (n, h) = (224, row_operator(224, &k));
        let f = factor(&h, n).expect("low rank");
        let q = |i: usize, a: usize| f64::from(f.basis_t[i * f.rank + a]);
        let mut nonzero = 0;
        for a in 0..f.rank {
            for b in 0..f.rank {
                let d: f64 = (0..n).map(|i| q(i, a) * q(i, b)).sum();
                let expected = if a == b { d.round() } else { 0.0 };
                assert!((d - expected).abs() < 1e-6, "q{a}·q{b} = {d}");
                nonzero += usize::from(a == b && expected == 1.0);
            }
        }
        assert_eq!((nonzero, f.rank), (11, 16), "rank 11, padded to a block");
        let scale = h.iter().fold(0f64, |m, v| m.max(v.abs()));
        for x in 0..n {
            for i in 0..n {
                let v: f64 = (0..f.rank).map(|a| f64::from(f.coeff_t[a * n + x]) * q(i, a)).sum();
                assert!((v - h[x * n + i]).abs() < 1e-6 * scale, "H[{x}][{i}]");
            }
        }
    }
}
