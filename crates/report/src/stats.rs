//! Small numeric routines whose semantics are pinned to numpy / scipy
//! (checked against fixtures in `reference/`).

use clipshift_augment::Rng;

/// Sample mean; NaN for an empty slice.
pub(crate) fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Standard deviation with `ddof` degrees of freedom removed (numpy `std(ddof=..)`).
pub(crate) fn std_dev(xs: &[f64], ddof: usize) -> f64 {
    if xs.len() <= ddof {
        return f64::NAN;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - ddof) as f64).sqrt()
}

/// Quantile of already sorted data with numpy's default `linear` method,
/// including numpy's two-sided lerp that keeps results monotone.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q;
    let lo = h.floor() as usize;
    if lo + 1 >= n {
        return sorted[n - 1];
    }
    let t = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[lo + 1]);
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// Quantile of unsorted data (numpy `quantile`, method `linear`).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, q)
}

/// Percentile bootstrap 95% interval of the mean (`resamples` resamples). The
/// resamples come from the SplitMix64 sequence of `seed`, fully specified, so
/// intervals are identical on every platform and release.
pub fn bootstrap_mean_ci(xs: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let n = xs.len();
    if n == 0 || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Rng::from_state(seed);
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    (quantile_sorted(&means, 0.025), quantile_sorted(&means, 0.975))
}

/// Pearson's correlation coefficient (scipy `pearsonr(x, y).statistic`); NaN when
/// either side is constant or there are fewer than two pairs.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let (mx, my) = (mean(&x[..n]), mean(&y[..n]));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Percentile bootstrap 95% interval of Pearson's r, resampling pairs from the
/// SplitMix64 sequence of `seed`; resamples where r is undefined are left out.
pub fn bootstrap_pearson_ci(x: &[f64], y: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let n = x.len().min(y.len());
    if n < 2 || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Rng::from_state(seed);
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
    let mut rs: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            for i in 0..n {
                let j = rng.below(n);
                bx[i] = x[j];
                by[i] = y[j];
            }
            Some(pearson(&bx, &by)).filter(|r| r.is_finite())
        })
        .collect();
    rs.sort_by(f64::total_cmp);
    (quantile_sorted(&rs, 0.025), quantile_sorted(&rs, 0.975))
}

/// Gaussian KDE with Scott's bandwidth (scipy `gaussian_kde(xs)(grid)` for 1-D data).
/// Returns `None` when the data has fewer than two points or zero variance,
/// where scipy raises a singular-matrix error.
pub fn gaussian_kde(xs: &[f64], grid: &[f64]) -> Option<Vec<f64>> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let var = std_dev(xs, 1).powi(2);
    let factor = (n as f64).powf(-1.0 / 5.0);
    let cov = var * factor * factor;
    if cov.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !cov.is_finite() {
        return None;
    }
    let norm = 1.0 / ((2.0 * std::f64::consts::PI * cov).sqrt() * n as f64);
    Some(
        grid.iter()
            .map(|&g| xs.iter().map(|&x| (-(g - x) * (g - x) / (2.0 * cov)).exp()).sum::<f64>() * norm)
            .collect(),
    )
}

/// `numpy.histogram(xs, bins="auto")`: bin edges and counts. numpy 2's "auto"
/// width is min(max(Freedman-Diaconis, sqrt / 2), Sturges); a constant sample
/// gets one bin from x - 0.5 to x + 0.5 and an empty one a bin from 0 to 1.
pub fn histogram_auto(xs: &[f64]) -> (Vec<f64>, Vec<u64>) {
    let n = xs.len();
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = match (sorted.first(), sorted.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (0.0, 1.0),
    };
    let (first, last) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let bins = if n == 0 {
        1
    } else {
        let nf = n as f64;
        let ptp = hi - lo;
        let sturges = ptp / (nf.log2() + 1.0);
        let sqrt = ptp / nf.sqrt();
        let iqr = quantile_sorted(&sorted, 0.75) - quantile_sorted(&sorted, 0.25);
        let fd = 2.0 * iqr * nf.powf(-1.0 / 3.0);
        let width = fd.max(sqrt / 2.0).min(sturges);
        if width > 0.0 { ((last - first) / width).ceil() as usize } else { 1 }
    };
    let edges = linspace(first, last, bins + 1);
    let mut counts = vec![0u64; bins];
    for &x in &sorted {
        if !(first..=last).contains(&x) {
            continue;
        }
        // numpy's index computation, then its one-ULP corrections at the edges.
        let mut i = (((x - first) / (last - first)) * bins as f64) as usize;
        if i == bins {
            i -= 1;
        }
        if x < edges[i] {
            i -= 1;
        } else if x >= edges[i + 1] && i != bins - 1 {
            i += 1;
        }
        counts[i] += 1;
    }
    (edges, counts)
}

/// `n` evenly spaced points from `lo` to `hi` inclusive (numpy `linspace`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![lo],
        _ => {
            let step = (hi - lo) / (n - 1) as f64;
            let mut v: Vec<f64> = (0..n).map(|i| lo + i as f64 * step).collect();
            v[n - 1] = hi;
            v
        }
    }
}

/// Complementary error function, accurate to ~1e-15 relative: power series
/// below 2, Lentz continued fraction above.
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf series: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut k = 0.0;
        loop {
            k += 1.0;
            term *= -x2 / k;
            let add = term / (2.0 * k + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum;
    }
    if x > 27.0 {
        return 0.0;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for i in 1..500 {
        let a = i as f64 / 2.0;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}

/// Two-sided p-value of a standard normal statistic.
fn normal_two_sided(z: f64) -> f64 {
    (erfc(z.abs() / std::f64::consts::SQRT_2)).min(1.0)
}

/// Result of a paired Wilcoxon signed-rank test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wilcoxon {
    /// min(R+, R-), as scipy reports for the two-sided test.
    pub statistic: f64,
    pub p_value: f64,
    /// Number of non-zero differences used.
    pub n: usize,
    /// "exact", "asymptotic" or "permutation".
    pub method: &'static str,
}

/// Average ranks (1-based) of `v`, plus tie group sizes.
fn average_ranks(v: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && v[idx[j]] == v[idx[i]] {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        ties.push(j - i);
        i = j;
    }
    (ranks, ties)
}

/// Null distribution of R+ for `n` untied observations: counts of subsets of
/// {1..n} with each sum, divided by 2^n (scipy `_get_wilcoxon_distr`).
fn wilcoxon_pmf(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    for k in 1..=n {
        for s in (k..=max).rev() {
            counts[s] += counts[s - k];
        }
    }
    let total = 2f64.powi(n as i32);
    counts.iter().map(|c| c / total).collect()
}

/// Paired two-sided Wilcoxon signed-rank test with scipy.stats.wilcoxon's
/// defaults (zero_method="wilcox", correction=False, method="auto").
pub fn wilcoxon(x: &[f64], y: &[f64]) -> Wilcoxon {
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    let n_total = d.len();
    let nz: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    let n_zero = n_total - nz.len();
    let count = nz.len();
    if count == 0 {
        return Wilcoxon { statistic: 0.0, p_value: f64::NAN, n: 0, method: "asymptotic" };
    }
    let abs: Vec<f64> = nz.iter().map(|v| v.abs()).collect();
    let (ranks, ties) = average_ranks(&abs);
    let r_plus: f64 = nz.iter().zip(&ranks).filter(|(v, _)| **v > 0.0).map(|(_, r)| r).sum();
    let r_minus: f64 = nz.iter().zip(&ranks).filter(|(v, _)| **v < 0.0).map(|(_, r)| r).sum();
    let has_ties = ties.iter().any(|&t| t > 1);
    let statistic = r_plus.min(r_minus);
    let cnt = count as f64;

    if n_total <= 50 && !has_ties && n_zero == 0 {
        let pmf = wilcoxon_pmf(count);
        let mean = cnt * (cnt + 1.0) / 4.0;
        let cdf = |k: f64| -> f64 {
            if k < 0.0 {
                return 0.0;
            }
            let k = k as usize;
            if k as f64 <= mean {
                pmf[..=k.min(pmf.len() - 1)].iter().sum()
            } else {
                1.0 - pmf[(k + 1).min(pmf.len())..].iter().sum::<f64>()
            }
        };
        let sf = |k: f64| -> f64 {
            let k = k as usize;
            if k as f64 <= mean {
                pmf[k.min(pmf.len())..].iter().sum()
            } else {
                1.0 - pmf[..k.min(pmf.len())].iter().sum::<f64>()
            }
        };
        let p = (2.0 * sf(r_plus.floor()).min(cdf(r_plus.ceil()))).clamp(0.0, 1.0);
        return Wilcoxon { statistic, p_value: p, n: count, method: "exact" };
    }
    if n_total <= 13 {
        // scipy runs a permutation test here; with 2^n <= 8192 sign flips it is exhaustive.
        let rnz: Vec<f64> = ranks.clone();
        let m = rnz.len();
        let obs = r_plus;
        let gamma = obs.abs() * 1e-14;
        let (mut le, mut ge) = (0usize, 0usize);
        let total = 1usize << m;
        for mask in 0..total {
            let s: f64 = (0..m).filter(|i| mask >> i & 1 == 1).map(|i| rnz[i]).sum();
            if s <= obs + gamma {
                le += 1;
            }
            if s >= obs - gamma {
                ge += 1;
            }
        }
        let p = (2.0 * (le as f64 / total as f64).min(ge as f64 / total as f64)).min(1.0);
        return Wilcoxon { statistic, p_value: p, n: count, method: "permutation" };
    }
    let mn = cnt * (cnt + 1.0) * 0.25;
    let tie_correct: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum();
    let se = ((cnt * (cnt + 1.0) * (2.0 * cnt + 1.0) - tie_correct / 2.0) / 24.0).sqrt();
    let z = (r_plus - mn) / se;
    Wilcoxon { statistic, p_value: normal_two_sided(z), n: count, method: "asymptotic" }
}

/// Holm step-down adjustment; NaN p-values stay NaN and do not count as tests.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (j, &i) in idx.iter().enumerate() {
        let adj = ((m - j) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_linear() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        // numpy.quantile(xs, [0.05, 0.5, 0.95])
        assert!((quantile(&xs, 0.05) - 1.0).abs() < 1e-12);
        assert!((quantile(&xs, 0.5) - 3.5).abs() < 1e-12);
        assert!((quantile(&xs, 0.95) - 7.949999999999999).abs() < 1e-12);
    }

    #[test]
    fn erfc_known_values() {
        assert!((erfc(0.5) - 0.4795001221869535).abs() < 1e-15);
        assert!((erfc(1.0) - 0.15729920705028513).abs() < 1e-15);
        assert!((erfc(3.0) / 2.209049699858544e-05 - 1.0).abs() < 1e-13);
        assert!((erfc(6.0) / 2.1519736712498913e-17 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn holm_is_monotone_and_capped() {
        let adj = holm(&[0.01, 0.04, 0.03, f64::NAN]);
        assert!((adj[0] - 0.03).abs() < 1e-15);
        assert!((adj[2] - 0.06).abs() < 1e-15);
        assert!((adj[1] - 0.06).abs() < 1e-15);
        assert!(adj[3].is_nan());
    }
}
