//! Aggregation: per-augmentation summaries (polars), averaged distance
//! matrices, clustering and paired tests.

use std::collections::HashMap;

use clipshift_augment::Fnv1a;
use clipshift_tables::RunDir;
use clipshift_tables::schema::{self, COSINE_SIMILARITY, METRICS, MetricColumn};
use polars::prelude::*;

use crate::cluster::{self, Merge};
use crate::io::{col_f64, col_str, col_u64, frame, scan, table_name};
use crate::stats;
use crate::{Linkage, ReportError};

/// The paper's radar metrics.
pub(crate) const RADAR: [&str; 5] =
    [COSINE_SIMILARITY, "attention_similarity", "patch_similarity", "edge_preservation", "detail_preservation"];

/// `metrics.parquet` in memory: values[metric][augmentation][image].
pub(crate) struct MetricData {
    pub(crate) augs: Vec<String>,
    pub(crate) metrics: Vec<MetricColumn>,
    pub(crate) image_ids: Vec<u64>,
    values: Vec<Vec<Vec<Option<f64>>>>,
}

impl MetricData {
    pub(crate) fn load(run: &RunDir, suite_order: &[String]) -> Result<Self, ReportError> {
        let path = run.metrics();
        let table = &table_name(&path);
        let df = scan(&path)?.collect().map_err(ReportError::polars(table))?;
        let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
        let metrics: Vec<MetricColumn> =
            METRICS.iter().copied().filter(|m| names.iter().any(|n| n == m.name)).collect();
        let ids = col_u64(&df, table, schema::IMAGE_ID)?;
        let augcol = col_str(&df, table, schema::AUGMENTATION)?;
        let mut augs: Vec<String> = suite_order.iter().filter(|a| augcol.contains(a)).cloned().collect();
        for a in &augcol {
            if a != schema::ORIGINAL && !augs.contains(a) {
                augs.push(a.clone());
            }
        }
        let mut image_ids = ids.clone();
        image_ids.sort_unstable();
        image_ids.dedup();
        let img_ix: HashMap<u64, usize> = image_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let aug_ix: HashMap<&str, usize> = augs.iter().enumerate().map(|(i, a)| (a.as_str(), i)).collect();
        let mut values = vec![vec![vec![None; image_ids.len()]; augs.len()]; metrics.len()];
        for (mi, m) in metrics.iter().enumerate() {
            let col = col_f64(&df, table, m.name)?;
            for (r, v) in col.into_iter().enumerate() {
                if let Some(&ai) = aug_ix.get(augcol[r].as_str()) {
                    values[mi][ai][img_ix[&ids[r]]] = v;
                }
            }
        }
        Ok(Self { augs, metrics, image_ids, values })
    }

    pub(crate) fn metric_index(&self, column: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == column)
    }

    /// Non-null values of one metric for one augmentation.
    pub(crate) fn values(&self, metric: usize, aug: usize) -> Vec<f64> {
        self.values[metric][aug].iter().flatten().copied().collect()
    }

    /// Value for one image (by index into `image_ids`).
    pub(crate) fn value(&self, metric: usize, aug: usize, image: usize) -> Option<f64> {
        self.values[metric][aug][image]
    }

    /// Values of two augmentations on the images where both are defined.
    pub(crate) fn paired(&self, metric: usize, a: usize, b: usize) -> (Vec<f64>, Vec<f64>) {
        self.values[metric][a].iter().zip(&self.values[metric][b]).filter_map(|(x, y)| Some(((*x)?, (*y)?))).unzip()
    }
}

/// One row of `summary.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub augmentation: String,
    pub metric: String,
    pub n: u64,
    pub mean: f64,
    pub std: f64,
    pub median: f64,
    pub p05: f64,
    pub p95: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// 1 = largest shift from the original (most disruptive) for this metric.
    pub rank: u32,
}

/// The bootstrap seed of one (augmentation, metric): FNV-1a of both names, so
/// each has its own stream, independent of the order they are computed in.
fn name_seed(seed: u64, a: &str, b: &str) -> u64 {
    Fnv1a::with_seed(seed).bytes(a.as_bytes()).bytes(&[0]).bytes(b.as_bytes()).finish()
}

/// Per augmentation and metric statistics. Mean, std, median and n come from
/// a polars group-by; quantiles and the bootstrap interval are computed here
/// with numpy's definitions.
pub(crate) fn summarize(
    run: &RunDir,
    data: &MetricData,
    resamples: usize,
    seed: u64,
) -> Result<Vec<SummaryRow>, ReportError> {
    let path = run.metrics();
    let table = &table_name(&path);
    let lf = scan(&path)?;
    let mut rows = Vec::new();
    for (mi, m) in data.metrics.iter().enumerate() {
        let c = m.name;
        let df = lf
            .clone()
            .select([col("augmentation"), col(c).cast(DataType::Float64)])
            .filter(col(c).is_not_null().and(col(c).is_not_nan()))
            .group_by([col("augmentation")])
            .agg([
                col(c).count().cast(DataType::UInt64).alias("n"),
                col(c).mean().alias("mean"),
                col(c).std(1).alias("std"),
                col(c).median().alias("median"),
            ])
            .collect()
            .map_err(ReportError::polars(table))?;
        let augs = col_str(&df, table, "augmentation")?;
        let n = col_u64(&df, table, "n")?;
        let mean = col_f64(&df, table, "mean")?;
        let std = col_f64(&df, table, "std")?;
        let median = col_f64(&df, table, "median")?;
        let by_aug: HashMap<&str, usize> = augs.iter().enumerate().map(|(i, a)| (a.as_str(), i)).collect();
        let mut metric_rows = Vec::new();
        for (ai, aug) in data.augs.iter().enumerate() {
            let Some(&r) = by_aug.get(aug.as_str()) else {
                continue;
            };
            let mut v = data.values(mi, ai);
            v.sort_by(f64::total_cmp);
            let (ci_low, ci_high) = stats::bootstrap_mean_ci(&v, resamples, name_seed(seed, aug, c));
            metric_rows.push(SummaryRow {
                augmentation: aug.clone(),
                metric: c.to_owned(),
                n: n[r],
                mean: mean[r].unwrap_or(f64::NAN),
                std: std[r].unwrap_or(f64::NAN),
                median: median[r].unwrap_or(f64::NAN),
                p05: stats::quantile_sorted(&v, 0.05),
                p95: stats::quantile_sorted(&v, 0.95),
                ci_low,
                ci_high,
                rank: 0,
            });
        }
        // Rank 1 = most disruptive: lowest similarity, or highest distance.
        let mut order: Vec<usize> = (0..metric_rows.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (metric_rows[a].mean, metric_rows[b].mean);
            let o = if m.higher_is_similar { x.total_cmp(&y) } else { y.total_cmp(&x) };
            o.then(a.cmp(&b))
        });
        for (rank, &i) in order.iter().enumerate() {
            metric_rows[i].rank = rank as u32 + 1;
        }
        rows.extend(metric_rows);
    }
    Ok(rows)
}

pub(crate) fn summary_frame(rows: &[SummaryRow]) -> Result<DataFrame, ReportError> {
    let s = |f: fn(&SummaryRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let f = |f: fn(&SummaryRow) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    frame(
        "summary.parquet",
        &schema::summary(),
        vec![
            Column::new("augmentation".into(), s(|r| r.augmentation.clone())),
            Column::new("metric".into(), s(|r| r.metric.clone())),
            Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<_>>()),
            Column::new("mean".into(), f(|r| r.mean)),
            Column::new("std".into(), f(|r| r.std)),
            Column::new("median".into(), f(|r| r.median)),
            Column::new("p05".into(), f(|r| r.p05)),
            Column::new("p95".into(), f(|r| r.p95)),
            Column::new("ci_low".into(), f(|r| r.ci_low)),
            Column::new("ci_high".into(), f(|r| r.ci_high)),
            Column::new("rank".into(), rows.iter().map(|r| r.rank).collect::<Vec<_>>()),
        ],
    )
}

/// Averaged (over images) distances between variants, as square matrices.
pub(crate) struct DistanceMatrix {
    pub(crate) variants: Vec<String>,
    pub(crate) cosine: Vec<Vec<f64>>,
    pub(crate) euclidean: Vec<Vec<f64>>,
    pub(crate) n_images: Vec<Vec<u64>>,
}

impl DistanceMatrix {
    /// Reads `pairwise.parquet`; `order` fixes the variant order (original first).
    pub(crate) fn load(run: &RunDir, order: &[String]) -> Result<Self, ReportError> {
        let path = run.pairwise();
        let table = &table_name(&path);
        let df = scan(&path)?
            .group_by([col("a"), col("b")])
            .agg([
                col("cosine_distance").cast(DataType::Float64).mean().alias("cosine"),
                col("euclidean_distance").cast(DataType::Float64).mean().alias("euclidean"),
                col("cosine_distance").count().cast(DataType::UInt64).alias("n"),
            ])
            .collect()
            .map_err(ReportError::polars(table))?;
        let a = col_str(&df, table, "a")?;
        let b = col_str(&df, table, "b")?;
        let cos = col_f64(&df, table, "cosine")?;
        let euc = col_f64(&df, table, "euclidean")?;
        let n = col_u64(&df, table, "n")?;
        let mut pairs = HashMap::new();
        for i in 0..a.len() {
            pairs.insert((a[i].clone(), b[i].clone()), (cos[i], euc[i], n[i]));
        }
        let present = |v: &String| a.contains(v) || b.contains(v);
        let mut variants: Vec<String> = order.iter().filter(|v| present(v)).cloned().collect();
        for v in a.iter().chain(&b) {
            if !variants.contains(v) {
                variants.push(v.clone());
            }
        }
        let k = variants.len();
        let mut cosine = vec![vec![0.0; k]; k];
        let mut euclidean = vec![vec![0.0; k]; k];
        let mut n_images = vec![vec![0u64; k]; k];
        for i in 0..k {
            for j in 0..k {
                if i == j {
                    continue;
                }
                let key = (variants[i].clone(), variants[j].clone());
                let rev = (variants[j].clone(), variants[i].clone());
                let (c, e, cnt) = pairs.get(&key).or_else(|| pairs.get(&rev)).copied().ok_or_else(|| {
                    ReportError::table(table, format!("no distances between `{}` and `{}`", variants[i], variants[j]))
                })?;
                let (Some(c), Some(e)) = (c, e) else {
                    return Err(ReportError::table(
                        table,
                        format!("only null distances between `{}` and `{}`", variants[i], variants[j]),
                    ));
                };
                cosine[i][j] = c;
                euclidean[i][j] = e;
                n_images[i][j] = cnt;
            }
        }
        Ok(Self { variants, cosine, euclidean, n_images })
    }

    /// The sub-matrix over the named variants (in that order).
    pub(crate) fn select(&self, names: &[String]) -> Vec<Vec<f64>> {
        let ix: Vec<usize> = names.iter().filter_map(|n| self.variants.iter().position(|v| v == n)).collect();
        ix.iter().map(|&i| ix.iter().map(|&j| self.cosine[i][j]).collect()).collect()
    }

    pub(crate) fn frame(&self) -> Result<DataFrame, ReportError> {
        let (mut a, mut b, mut c, mut e, mut n) = (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..self.variants.len() {
            for j in 0..self.variants.len() {
                a.push(self.variants[i].clone());
                b.push(self.variants[j].clone());
                c.push(self.cosine[i][j]);
                e.push(self.euclidean[i][j]);
                n.push(self.n_images[i][j]);
            }
        }
        frame(
            "distance_matrix.parquet",
            &schema::distance_matrix(),
            vec![
                Column::new("a".into(), a),
                Column::new("b".into(), b),
                Column::new("cosine_distance".into(), c),
                Column::new("euclidean_distance".into(), e),
                Column::new("n_images".into(), n),
            ],
        )
    }
}

/// Clustering of one set of variants.
#[derive(Clone, Debug)]
pub(crate) struct Clustering {
    /// "augmentations" (the suite) or "variants" (suite plus original).
    pub(crate) set: &'static str,
    pub(crate) method: Linkage,
    pub(crate) labels: Vec<String>,
    pub(crate) merges: Vec<Merge>,
    pub(crate) threshold: f64,
    pub(crate) clusters: Vec<u32>,
    pub(crate) leaf_order: Vec<usize>,
}

impl Clustering {
    pub(crate) fn new(
        set: &'static str,
        labels: Vec<String>,
        square: &[Vec<f64>],
        method: Linkage,
        ratio: f64,
    ) -> Self {
        let n = labels.len();
        let merges = cluster::linkage(&cluster::condensed(square), n, method);
        let threshold = cluster::threshold(&merges, ratio);
        let clusters = cluster::fcluster_distance(&merges, n, threshold);
        let leaf_order = cluster::leaf_order(&merges, n);
        Self { set, method, labels, merges, threshold, clusters, leaf_order }
    }

    pub(crate) fn n_clusters(&self) -> usize {
        let mut c = self.clusters.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    }
}

pub(crate) fn linkage_frame(cs: &[&Clustering]) -> Result<DataFrame, ReportError> {
    let (mut set, mut method, mut step, mut left, mut right, mut dist, mut size) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for c in cs {
        for (i, m) in c.merges.iter().enumerate() {
            set.push(c.set);
            method.push(c.method.as_str());
            step.push(i as u32);
            left.push(m.left as u32);
            right.push(m.right as u32);
            dist.push(m.distance);
            size.push(m.size as u32);
        }
    }
    frame(
        "linkage.parquet",
        &schema::linkage(),
        vec![
            Column::new("set".into(), set),
            Column::new("method".into(), method),
            Column::new("step".into(), step),
            Column::new("left".into(), left),
            Column::new("right".into(), right),
            Column::new("distance".into(), dist),
            Column::new("size".into(), size),
        ],
    )
}

pub(crate) fn clusters_frame(cs: &[&Clustering]) -> Result<DataFrame, ReportError> {
    let (mut set, mut method, mut idx, mut aug, mut cl, mut leaf, mut thr) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for c in cs {
        for (i, label) in c.labels.iter().enumerate() {
            set.push(c.set);
            method.push(c.method.as_str());
            idx.push(i as u32);
            aug.push(label.clone());
            cl.push(c.clusters[i]);
            leaf.push(c.leaf_order.iter().position(|&l| l == i).unwrap_or(0) as u32);
            thr.push(c.threshold);
        }
    }
    frame(
        "clusters.parquet",
        &schema::clusters(),
        vec![
            Column::new("set".into(), set),
            Column::new("method".into(), method),
            Column::new("observation".into(), idx),
            Column::new("augmentation".into(), aug),
            Column::new("cluster".into(), cl),
            Column::new("leaf_position".into(), leaf),
            Column::new("threshold".into(), thr),
        ],
    )
}

/// One paired comparison of two augmentations on one metric.
#[derive(Clone, Debug)]
pub(crate) struct PairTest {
    pub(crate) metric: String,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) n: usize,
    pub(crate) mean_diff: f64,
    pub(crate) test: stats::Wilcoxon,
    pub(crate) p_holm: f64,
}

/// Wilcoxon signed-rank tests over images for every pair of augmentations,
/// Holm-corrected within each metric.
pub(crate) fn pair_tests(data: &MetricData) -> Vec<PairTest> {
    let mut out = Vec::new();
    for (mi, m) in data.metrics.iter().enumerate() {
        let mut tests = Vec::new();
        for a in 0..data.augs.len() {
            for b in a + 1..data.augs.len() {
                let (x, y) = data.paired(mi, a, b);
                let test = stats::wilcoxon(&x, &y);
                let mean_diff = stats::mean(&x) - stats::mean(&y);
                tests.push(PairTest {
                    metric: m.name.to_owned(),
                    a: data.augs[a].clone(),
                    b: data.augs[b].clone(),
                    n: x.len(),
                    mean_diff,
                    test,
                    p_holm: f64::NAN,
                });
            }
        }
        let p: Vec<f64> = tests.iter().map(|t| t.test.p_value).collect();
        for (t, adj) in tests.iter_mut().zip(stats::holm(&p)) {
            t.p_holm = adj;
        }
        out.extend(tests);
    }
    out
}

pub(crate) fn pair_tests_frame(tests: &[PairTest]) -> Result<DataFrame, ReportError> {
    frame(
        "wilcoxon.parquet",
        &schema::wilcoxon(),
        vec![
            Column::new("metric".into(), tests.iter().map(|t| t.metric.clone()).collect::<Vec<_>>()),
            Column::new("a".into(), tests.iter().map(|t| t.a.clone()).collect::<Vec<_>>()),
            Column::new("b".into(), tests.iter().map(|t| t.b.clone()).collect::<Vec<_>>()),
            Column::new("n_pairs".into(), tests.iter().map(|t| t.n as u64).collect::<Vec<_>>()),
            Column::new("n_nonzero".into(), tests.iter().map(|t| t.test.n as u64).collect::<Vec<_>>()),
            Column::new("mean_difference".into(), tests.iter().map(|t| t.mean_diff).collect::<Vec<_>>()),
            Column::new("statistic".into(), tests.iter().map(|t| t.test.statistic).collect::<Vec<_>>()),
            Column::new("p_value".into(), tests.iter().map(|t| t.test.p_value).collect::<Vec<_>>()),
            Column::new("p_holm".into(), tests.iter().map(|t| t.p_holm).collect::<Vec<_>>()),
            Column::new("method".into(), tests.iter().map(|t| t.test.method).collect::<Vec<_>>()),
            Column::new("significant".into(), tests.iter().map(|t| t.p_holm < 0.05).collect::<Vec<_>>()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radar_metrics_are_metric_columns() {
        for m in RADAR {
            assert!(METRICS.iter().any(|c| c.name == m), "{m} is not a column of metrics.parquet");
        }
    }

    #[test]
    fn bootstrap_seed_is_fnv1a_of_both_names() {
        // FNV-1a, basis xor seed, over "blur", a zero byte, "ssim": the seeds every
        // report so far used, so its intervals do not change.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ 9;
        for byte in b"blur\0ssim" {
            h = (h ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(name_seed(9, "blur", "ssim"), h);
        assert_ne!(name_seed(9, "blur", "ssim"), name_seed(9, "blurs", "sim"));
    }
}
