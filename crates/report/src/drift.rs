//! Paired distribution tests of each augmentation's shift (`drift.parquet`), on unit
//! embeddings of at most `DRIFT_MAX_IMAGES` images (a seeded sample, the same for every
//! augmentation):
//!
//! - **Paired shift test**: d_i = â_i − ô_i per image; statistic ‖mean_i d_i‖; null:
//!   original and variant are exchangeable within each pair, so each d_i may flip its
//!   sign. Effect size ‖mean d‖ / mean ‖d_i‖ (1: every image moves the same way).
//! - **MMD two-sample test** between the original and the variant embedding sets:
//!   Gaussian kernel exp(−‖x − y‖² / (2σ²)), σ the median of the pooled pairwise
//!   distances (median heuristic), the unbiased MMD² estimator; null: the pooled
//!   labels are exchangeable. Effect size √max(MMD², 0).
//!
//! Both p-values are (1 + #{permuted ≥ observed}) / (1 + B) over B permutations drawn
//! from the report's seeded RNG. Checked against numpy on fixtures
//! (`reference/make_drift_fixtures.py`).

use std::collections::{BTreeMap, HashMap};

use clipshift_augment::Rng;
use clipshift_tables::arrow::array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use clipshift_tables::{ImageGroups, RunDir, column, schema};
use rayon::prelude::*;

use crate::ReportError;
use crate::stats;

/// Images in the tests: the sample keeps the n² kernel of every permutation cheap.
pub const DRIFT_MAX_IMAGES: usize = 500;
/// Permutations per test.
pub const DRIFT_PERMUTATIONS: usize = 999;

/// ‖mean_i s_i d_i‖ for signs s.
fn mean_norm(d: &[Vec<f64>], signs: Option<&[bool]>) -> f64 {
    let dim = d.first().map_or(0, Vec::len);
    let mut sum = vec![0.0; dim];
    for (i, v) in d.iter().enumerate() {
        let s = if signs.is_some_and(|s| !s[i]) { -1.0 } else { 1.0 };
        sum.iter_mut().zip(v).for_each(|(a, b)| *a += s * b);
    }
    sum.iter().map(|v| v * v).sum::<f64>().sqrt() / d.len() as f64
}

/// The paired sign-flip test: (statistic, effect size, p-value); `signs` are the
/// permutations (true keeps d_i, false flips it).
pub fn paired_shift_test(d: &[Vec<f64>], signs: &[Vec<bool>]) -> (f64, f64, f64) {
    let observed = mean_norm(d, None);
    let mean_length = d.iter().map(|v| v.iter().map(|x| x * x).sum::<f64>().sqrt()).sum::<f64>() / d.len() as f64;
    let effect = if mean_length > 0.0 { observed / mean_length } else { 0.0 };
    let exceed = signs.par_iter().filter(|s| mean_norm(d, Some(s)) >= observed).count();
    (observed, effect, (1 + exceed) as f64 / (1 + signs.len()) as f64)
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Unbiased MMD² of the first `m` pooled points against the rest, for the kernel matrix
/// `k` ([N, N]) with the points in the order `order`.
fn mmd2(k: &[f64], n_total: usize, m: usize, order: &[usize]) -> f64 {
    let n = n_total - m;
    let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
    for (i, &a) in order.iter().enumerate() {
        let row = &k[a * n_total..(a + 1) * n_total];
        for (j, &b) in order.iter().enumerate().skip(i + 1) {
            let v = row[b];
            match (i < m, j < m) {
                (true, true) => xx += 2.0 * v,
                (false, false) => yy += 2.0 * v,
                _ => xy += v,
            }
        }
    }
    xx / (m * (m - 1)) as f64 + yy / (n * (n - 1)) as f64 - 2.0 * xy / (m * n) as f64
}

/// The MMD test of `x` against `y`: (MMD², σ, effect size, p-value); `permutations`
/// reorder the pooled points [x, y].
pub fn mmd_test(x: &[Vec<f64>], y: &[Vec<f64>], permutations: &[Vec<usize>]) -> (f64, f64, f64, f64) {
    let pooled: Vec<&[f64]> = x.iter().chain(y).map(Vec::as_slice).collect();
    let n = pooled.len();
    let mut distances: Vec<f64> = Vec::with_capacity(n * (n - 1) / 2);
    let mut sq = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d2 = squared_distance(pooled[i], pooled[j]);
            sq[i * n + j] = d2;
            sq[j * n + i] = d2;
            distances.push(d2.sqrt());
        }
    }
    distances.sort_by(f64::total_cmp);
    let sigma = stats::quantile_sorted(&distances, 0.5);
    let k: Vec<f64> =
        if sigma > 0.0 { sq.iter().map(|d2| (-d2 / (2.0 * sigma * sigma)).exp()).collect() } else { vec![1.0; n * n] };
    let identity: Vec<usize> = (0..n).collect();
    let observed = mmd2(&k, n, x.len(), &identity);
    let exceed = permutations.par_iter().filter(|p| mmd2(&k, n, x.len(), p) >= observed).count();
    (observed, sigma, observed.max(0.0).sqrt(), (1 + exceed) as f64 / (1 + permutations.len()) as f64)
}

/// One row of `drift.parquet`.
#[derive(Debug, Clone)]
pub(crate) struct DriftRow {
    pub(crate) augmentation: String,
    pub(crate) n: u64,
    pub(crate) shift_statistic: f64,
    pub(crate) shift_effect: f64,
    pub(crate) shift_p: f64,
    pub(crate) mmd2: f64,
    pub(crate) mmd_bandwidth: f64,
    pub(crate) mmd_effect: f64,
    pub(crate) mmd_p: f64,
}

fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    v.iter().map(|x| if norm > 0.0 { f64::from(*x) / norm } else { 0.0 }).collect()
}

/// The tests for every augmentation of `augs` on the run's embeddings.
pub(crate) fn drift(run: &RunDir, augs: &[String], seed: u64) -> Result<Vec<DriftRow>, ReportError> {
    let path = run.embeddings();
    let parts = clipshift_tables::part_files(&path)?;
    // First the image ids alone, to draw the sample independently of the order of the
    // parts (a sharded run tests the same images as an unsharded one) ...
    let mut ids = std::collections::BTreeSet::new();
    for group in ImageGroups::open_files(&path, parts.clone(), Some(&[schema::IMAGE_ID]))? {
        ids.insert(group?.0);
    }
    let mut ids: Vec<u64> = ids.into_iter().collect();
    let mut rng = Rng::from_seed(seed);
    if ids.len() > DRIFT_MAX_IMAGES {
        rng.shuffle(&mut ids);
        ids.truncate(DRIFT_MAX_IMAGES);
        ids.sort_unstable();
    }
    // ... then the unit embeddings of the sampled images only (memory stays flat).
    let sampled: std::collections::HashSet<u64> = ids.iter().copied().collect();
    let columns = [schema::IMAGE_ID, schema::AUGMENTATION, "embedding"];
    let mut images: BTreeMap<u64, HashMap<String, Vec<f64>>> = BTreeMap::new();
    for group in ImageGroups::open_files(&path, parts, Some(&columns))? {
        let (id, rows): (u64, RecordBatch) = group?;
        if !sampled.contains(&id) {
            continue;
        }
        let names = column::<StringArray>(&rows, &path, schema::AUGMENTATION)?;
        let lists = column::<FixedSizeListArray>(&rows, &path, "embedding")?;
        let values = lists.values().as_any().downcast_ref::<Float32Array>().expect("validated list of f32");
        let width = lists.value_length() as usize;
        let image = images.entry(id).or_default();
        for i in 0..rows.num_rows() {
            image.insert(names.value(i).to_owned(), unit(&values.values()[i * width..(i + 1) * width]));
        }
    }
    let mut out = Vec::new();
    for aug in augs {
        let pairs: Vec<(&Vec<f64>, &Vec<f64>)> = ids
            .iter()
            .filter_map(|id| {
                let image = &images[id];
                Some((image.get(schema::ORIGINAL)?, image.get(aug.as_str())?))
            })
            .collect();
        let n = pairs.len();
        if n < 2 {
            continue;
        }
        let d: Vec<Vec<f64>> =
            pairs.iter().map(|(o, a)| a.iter().zip(o.iter()).map(|(x, y)| x - y).collect()).collect();
        let signs: Vec<Vec<bool>> =
            (0..DRIFT_PERMUTATIONS).map(|_| (0..n).map(|_| rng.next_u64() & 1 == 1).collect()).collect();
        let (shift_statistic, shift_effect, shift_p) = paired_shift_test(&d, &signs);
        let x: Vec<Vec<f64>> = pairs.iter().map(|(o, _)| (*o).clone()).collect();
        let y: Vec<Vec<f64>> = pairs.iter().map(|(_, a)| (*a).clone()).collect();
        let permutations: Vec<Vec<usize>> = (0..DRIFT_PERMUTATIONS)
            .map(|_| {
                let mut p: Vec<usize> = (0..2 * n).collect();
                rng.shuffle(&mut p);
                p
            })
            .collect();
        let (mmd2, mmd_bandwidth, mmd_effect, mmd_p) = mmd_test(&x, &y, &permutations);
        out.push(DriftRow {
            augmentation: aug.clone(),
            n: n as u64,
            shift_statistic,
            shift_effect,
            shift_p,
            mmd2,
            mmd_bandwidth,
            mmd_effect,
            mmd_p,
        });
    }
    Ok(out)
}

/// `drift.parquet`.
pub(crate) fn drift_frame(rows: &[DriftRow]) -> Result<polars::prelude::DataFrame, ReportError> {
    use polars::prelude::Column;
    let f = |name: &str, g: fn(&DriftRow) -> f64| Column::new(name.into(), rows.iter().map(g).collect::<Vec<_>>());
    crate::io::frame(
        "drift",
        &schema::drift(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.augmentation.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<_>>()),
            f("shift_statistic", |r| r.shift_statistic),
            f("shift_effect", |r| r.shift_effect),
            f("shift_p", |r| r.shift_p),
            f("mmd2", |r| r.mmd2),
            f("mmd_bandwidth", |r| r.mmd_bandwidth),
            f("mmd_effect", |r| r.mmd_effect),
            f("mmd_p", |r| r.mmd_p),
        ],
    )
}
