//! A synthetic run directory, written with polars, pushed through `run`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clipshift_report::{ReportConfig, ReportSummary, run};
use clipshift_tables::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use clipshift_tables::{
    AugmentManifest, EncodeManifest, ErrorKind, ErrorLog, InputsManifest, MemberManifest, MetricsManifest,
    ModelManifest, RunDir, RunManifest, SuiteManifest, TableWriter, read_errors, schema,
};
use polars::prelude::*;

const AUGS: [&str; 9] = [
    "noise",
    "blur",
    "color_jitter",
    "shift_scale_rotate",
    "horizontal_flip",
    "elastic",
    "perspective",
    "brightness_contrast",
    "coarse_dropout",
];
/// Shift scale of each augmentation: noise moves embeddings most.
const SCALE: [f64; 9] = [0.9, 0.5, 0.35, 0.3, 0.05, 0.04, 0.25, 0.03, 0.4];
const N_IMAGES: usize = 30;
const DIM: usize = 8;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn write(dir: &Path, name: &str, cols: Vec<Column>) {
    let mut df = DataFrame::new_infer_height(cols).unwrap();
    let f = fs::File::create(dir.join(name)).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
}

fn cos_dist(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    1.0 - dot / (na * nb)
}

fn l2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// `images.parquet` as the augment stage writes it (arrow-rs, the tables
/// crate's schema), naming files that do not exist: no pixels can be replayed.
fn write_images(dir: &Path, ids: &[u64]) {
    let n = ids.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids.to_vec())),
        Arc::new(StringArray::from_iter_values(ids.iter().map(|i| format!("img{i}.png")))),
        Arc::new(UInt32Array::from(vec![224; n])),
        Arc::new(UInt32Array::from(vec![224; n])),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n("png", n))),
    ];
    let batch = RecordBatch::try_new(schema::images(), columns).unwrap();
    let mut writer = TableWriter::create(&RunDir::new(dir).images(), schema::images()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
}

/// `run.json` of a suite of `AUGS` and a random-init model.
fn write_manifest(dir: &Path) {
    let members =
        AUGS.iter().map(|a| MemberManifest { name: (*a).to_owned(), transform: Default::default() }).collect();
    let augment = AugmentManifest {
        tool_version: "0.1.0".into(),
        seed: 7,
        data_root: dir.to_path_buf(),
        image_size: 224,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        limit: None,
        save_images: false,
        suite: SuiteManifest { name: "paper".into(), members, keywords: Default::default() },
        inputs: InputsManifest { images: 0, fingerprint: "0000000000000000".into(), suite: "0".into() },
    };
    let model = ModelManifest {
        name: "tiny-clip".into(),
        source: "random-init".into(),
        random_init: true,
        sha256: "00".into(),
        dir: "models/tiny-clip".into(),
        sidecar: None,
        embedding_dim: DIM,
        image_size: 224,
        patch_size: 32,
        resize_policy: "paper".into(),
        layer_states: None,
    };
    let lineage = augment.lineage();
    let mut manifest = RunManifest { augment: Some(augment), model: Some(model), ..RunManifest::default() };
    let (device, provider) = ("cpu".to_string(), "cpu".to_string());
    manifest.encode = Some(EncodeManifest { device, provider, batch: 32, intra_threads: None, augment: lineage });
    manifest.metrics = Some(MetricsManifest { encode: manifest.encode_lineage().unwrap() });
    manifest.save(&RunDir::new(dir)).unwrap();
}

/// Returns the run dir and the expected mean cosine similarity per augmentation.
pub(crate) fn synthetic_run(name: &str) -> (PathBuf, Vec<f64>) {
    synthetic_run_sized(name, N_IMAGES)
}

/// A synthetic run of `n_images` images.
pub(crate) fn synthetic_run_sized(name: &str, n_images: usize) -> (PathBuf, Vec<f64>) {
    let dir = std::env::temp_dir().join(format!("clipshift-report-it-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    write_manifest(&dir);
    let mut rng = Lcg(42);
    let ids: Vec<u64> = (0..n_images as u64).map(|i| 1000 + i * 7).collect();
    write_images(&dir, &ids);
    let variants: Vec<&str> = std::iter::once("original").chain(AUGS).collect();
    let (mut m_id, mut m_aug) = (vec![], vec![]);
    let mut m_cols: Vec<Vec<Option<f64>>> = vec![vec![]; 9];
    let (mut p_id, mut p_a, mut p_b, mut p_c, mut p_e) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut a_id, mut a_aug) = (vec![], vec![]);
    let mut sums = vec![0.0; AUGS.len()];
    for &id in &ids {
        let base: Vec<f64> = (0..DIM).map(|_| rng.next() + 2.0).collect();
        let mut embs = vec![base.clone()];
        for s in SCALE {
            embs.push(base.iter().map(|x| x + s * rng.next() * 1.5).collect());
        }
        for (k, v) in variants.iter().enumerate() {
            a_id.push(id);
            a_aug.push(v.to_string());
            for j in k + 1..variants.len() {
                p_id.push(id);
                p_a.push(v.to_string());
                p_b.push(variants[j].to_string());
                p_c.push(cos_dist(&embs[k], &embs[j]));
                p_e.push(l2(&embs[k], &embs[j]));
            }
        }
        for (k, a) in AUGS.iter().enumerate() {
            let cs = 1.0 - cos_dist(&embs[0], &embs[k + 1]);
            sums[k] += cs;
            m_id.push(id);
            m_aug.push(a.to_string());
            let s = SCALE[k];
            let vals = [
                Some(cs),
                Some(l2(&embs[0], &embs[k + 1])),
                // Scores are at most 1, as the metrics stage's are (the tables are validated).
                Some((1.0 - s * 0.5 + 0.01 * rng.next()).min(1.0)),
                Some((1.0 - s * 0.45 + 0.01 * rng.next()).min(1.0)),
                Some((1.0 - s * 0.3 + 0.01 * rng.next()).min(1.0)),
                Some((1.0 - s * 0.6 + 0.01 * rng.next()).min(1.0)),
                // A null where a metric is undefined for one image.
                if id == ids[0] && k == 2 { None } else { Some((1.0 - s * 0.4 + 0.01 * rng.next()).min(1.0)) },
                Some((1.0 - s * 0.7 + 0.01 * rng.next()).min(1.0)),
                None,
            ];
            // Sensitivity, as the metrics stage derives it.
            let mut vals = vals;
            vals[8] = vals[0].zip(vals[7]).and_then(|(c, s)| clipshift_metrics::stage::sensitivity(c, s));
            for (c, v) in m_cols.iter_mut().zip(vals) {
                c.push(v);
            }
        }
    }
    let n_aug_rows = a_id.len();
    write(
        &dir,
        "augmentations.parquet",
        vec![
            Column::new("image_id".into(), a_id),
            Column::new("augmentation".into(), a_aug),
            Column::new("seed".into(), vec![1u64; n_aug_rows]),
            Column::new("params".into(), vec!["{}"; n_aug_rows]),
            Column::full_null("family".into(), n_aug_rows, &DataType::String),
            Column::full_null("severity".into(), n_aug_rows, &DataType::UInt32),
            Column::new("floor".into(), vec![false; n_aug_rows]),
            Column::full_null("png".into(), n_aug_rows, &DataType::Binary),
        ],
    );
    let names = [
        "cosine_similarity",
        "l2_distance",
        "attention_similarity",
        "attention_similarity_aligned",
        "patch_similarity",
        "edge_preservation",
        "detail_preservation",
        "ssim",
        "sensitivity",
    ];
    let mut cols = vec![Column::new("image_id".into(), m_id), Column::new("augmentation".into(), m_aug)];
    for (n, c) in names.iter().zip(m_cols) {
        cols.push(Column::new((*n).into(), c));
    }
    write(&dir, "metrics.parquet", cols);
    write(
        &dir,
        "pairwise.parquet",
        vec![
            Column::new("image_id".into(), p_id),
            Column::new("a".into(), p_a),
            Column::new("b".into(), p_b),
            Column::new("cosine_distance".into(), p_c),
            Column::new("euclidean_distance".into(), p_e),
        ],
    );
    (dir, sums.iter().map(|s| s / n_images as f64).collect())
}

fn read(path: &Path) -> DataFrame {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(f).finish().unwrap()
}

fn names(df: &DataFrame) -> Vec<String> {
    df.get_column_names().iter().map(|s| s.to_string()).collect()
}

#[test]
fn stage_writes_every_output() {
    let (dir, cos_means) = synthetic_run("full");
    let summary = run(&ReportConfig::new(&dir)).unwrap();
    assert_eq!(summary.n_images, N_IMAGES);
    assert_eq!(summary.n_augmentations, 9);
    assert!(summary.random_init);
    assert_eq!(summary.index_html, dir.join("report/index.html"));
    summary_has_every_statistic(&dir, &cos_means);
    clustering_tables_are_consistent(&dir);
    every_figure_has_svg_png_and_table(&dir, &summary);
    page_links_its_tables_and_nothing_outside(&dir, &summary);
    // Set CLIPSHIFT_KEEP_TEST_RUN=1 to inspect the report afterwards.
    if std::env::var_os("CLIPSHIFT_KEEP_TEST_RUN").is_none() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
}

/// summary.parquet: every augmentation x metric, intervals around the means, the
/// synthetic cosine means, noise ranked most disruptive.
fn summary_has_every_statistic(dir: &Path, cos_means: &[f64]) {
    let s = read(&dir.join("summary.parquet"));
    assert_eq!(
        names(&s),
        ["augmentation", "metric", "n", "mean", "std", "median", "p05", "p95", "ci_low", "ci_high", "rank"]
    );
    assert_eq!(s.height(), 9 * 9, "the seven measures, the aligned attention and the sensitivity");
    assert_eq!(s.column("n").unwrap().dtype(), &DataType::UInt64);
    assert_eq!(s.column("rank").unwrap().dtype(), &DataType::UInt32);
    let aug = s.column("augmentation").unwrap().str().unwrap().clone();
    let metric = s.column("metric").unwrap().str().unwrap().clone();
    let mean = s.column("mean").unwrap().f64().unwrap().clone();
    let n = s.column("n").unwrap().u64().unwrap().clone();
    let rank = s.column("rank").unwrap().u32().unwrap().clone();
    let (lo, hi) =
        (s.column("ci_low").unwrap().f64().unwrap().clone(), s.column("ci_high").unwrap().f64().unwrap().clone());
    let (p05, p95, med) = (
        s.column("p05").unwrap().f64().unwrap().clone(),
        s.column("p95").unwrap().f64().unwrap().clone(),
        s.column("median").unwrap().f64().unwrap().clone(),
    );
    for i in 0..s.height() {
        let (a, m) = (aug.get(i).unwrap(), metric.get(i).unwrap());
        let (mu, l, h) = (mean.get(i).unwrap(), lo.get(i).unwrap(), hi.get(i).unwrap());
        assert!(l <= mu && mu <= h, "{a}/{m}: CI [{l}, {h}] excludes mean {mu}");
        assert!(p05.get(i).unwrap() <= med.get(i).unwrap() && med.get(i).unwrap() <= p95.get(i).unwrap());
        let expect_n = if a == "color_jitter" && m == "detail_preservation" { N_IMAGES - 1 } else { N_IMAGES };
        if m != "sensitivity" {
            assert_eq!(n.get(i).unwrap() as usize, expect_n, "{a}/{m}");
        }
        if m == "cosine_similarity" {
            let k = AUGS.iter().position(|x| *x == a).unwrap();
            assert!((mu - cos_means[k]).abs() < 1e-12, "{a}: {mu} vs {}", cos_means[k]);
            if a == "noise" {
                assert_eq!(rank.get(i), Some(1), "noise must be most disruptive");
            }
        }
        if m == "l2_distance" && a == "noise" {
            assert_eq!(rank.get(i), Some(1));
        }
    }
}

/// The distance matrix, the linkage and the flat clusters.
fn clustering_tables_are_consistent(dir: &Path) {
    // distance_matrix.parquet: full 10 x 10 square, symmetric, zero diagonal.
    let d = read(&dir.join("distance_matrix.parquet"));
    assert_eq!(names(&d), ["a", "b", "cosine_distance", "euclidean_distance", "n_images"]);
    assert_eq!(d.height(), 100);
    let cd = d.column("cosine_distance").unwrap().f64().unwrap().clone();
    for i in 0..10 {
        assert_eq!(cd.get(i * 10 + i), Some(0.0));
        for j in 0..10 {
            assert_eq!(cd.get(i * 10 + j), cd.get(j * 10 + i));
        }
    }

    // linkage.parquet: 8 merges of the nine augmentations, 9 of the ten variants.
    let l = read(&dir.join("linkage.parquet"));
    assert_eq!(names(&l), ["set", "method", "step", "left", "right", "distance", "size"]);
    assert_eq!(l.height(), 8 + 9);
    let size = l.column("size").unwrap().u32().unwrap().clone();
    assert_eq!(size.get(7), Some(9));
    assert_eq!(size.get(16), Some(10));
    let dist = l.column("distance").unwrap().f64().unwrap().clone();
    for i in 1..8 {
        assert!(dist.get(i).unwrap() >= dist.get(i - 1).unwrap(), "ward merges must be monotone");
    }

    // clusters.parquet
    let c = read(&dir.join("clusters.parquet"));
    assert_eq!(names(&c), ["set", "method", "observation", "augmentation", "cluster", "leaf_position", "threshold"]);
    assert_eq!(c.height(), 9 + 10);
    let cl = c.column("cluster").unwrap().u32().unwrap().clone();
    let caug = c.column("augmentation").unwrap().str().unwrap().clone();
    let noise_cluster = (0..9).find(|&i| caug.get(i) == Some("noise")).and_then(|i| cl.get(i)).unwrap();
    let flip_cluster = (0..9).find(|&i| caug.get(i) == Some("horizontal_flip")).and_then(|i| cl.get(i)).unwrap();
    assert_ne!(noise_cluster, flip_cluster, "noise should not cluster with the near-invariant flip");
}

/// Figures: SVG, PNG and Parquet per figure, each labelled as made by a random-init model.
fn every_figure_has_svg_png_and_table(dir: &Path, summary: &ReportSummary) {
    let report = dir.join("report");
    for stem in [
        "cosine_distribution",
        "l2_kde",
        "dendrogram",
        "dendrogram_variants",
        "radar",
        "l2_bars",
        "heatmap_sorted",
        "heatmap_clustered",
        "ranked_profiles",
        "sample_heatmap",
        "sensitivity",
        "attention_alignment",
    ] {
        assert!(summary.figures.iter().any(|f| f == stem), "figure {stem} not produced");
        let svg = fs::read_to_string(report.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}.svg");
        assert!(svg.contains("RANDOM-INIT MODEL"), "{stem}.svg lacks the random-init warning");
        let png = image::open(report.join(format!("{stem}.png"))).unwrap().to_rgb8();
        assert!(png.pixels().any(|p| p[0] < 100 && p[1] < 100 && p[2] < 100), "{stem}.png has no dark pixels");
        let t = read(&report.join(format!("{stem}.parquet")));
        assert!(t.height() > 0, "{stem}.parquet is empty");
    }
    let kde = read(&report.join("l2_kde.parquet"));
    assert_eq!(names(&kde), ["augmentation", "l2_distance", "density"]);
    assert_eq!(kde.height(), 9 * 100);

    // The sensitivity figure's means are the summary's (polars) means of the column.
    let sens = read(&report.join("sensitivity.parquet"));
    let summary = read(&dir.join("summary.parquet"));
    assert_eq!(sens.height(), 9);
    for i in 0..sens.height() {
        let aug = sens.column("augmentation").unwrap().str().unwrap().get(i).unwrap().to_owned();
        let row = (0..summary.height())
            .find(|&r| {
                summary.column("augmentation").unwrap().str().unwrap().get(r) == Some(aug.as_str())
                    && summary.column("metric").unwrap().str().unwrap().get(r) == Some("sensitivity")
            })
            .unwrap();
        let want = summary.column("mean").unwrap().f64().unwrap().get(row).unwrap();
        let got = sens.column("mean").unwrap().f64().unwrap().get(i).unwrap();
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{aug}: {got} vs {want}");
    }
    // Both attention similarities beside each other are the summary's means.
    let both = read(&report.join("attention_alignment.parquet"));
    assert_eq!(both.height(), 9);
    for i in 0..both.height() {
        let aug = both.column("augmentation").unwrap().str().unwrap().get(i).unwrap().to_owned();
        for (column, metric) in
            [("paper_mean", "attention_similarity"), ("aligned_mean", "attention_similarity_aligned")]
        {
            let row = (0..summary.height())
                .find(|&r| {
                    summary.column("augmentation").unwrap().str().unwrap().get(r) == Some(aug.as_str())
                        && summary.column("metric").unwrap().str().unwrap().get(r) == Some(metric)
                })
                .unwrap();
            let want = summary.column("mean").unwrap().f64().unwrap().get(row).unwrap();
            assert_eq!(both.column(column).unwrap().f64().unwrap().get(i), Some(want), "{aug} {metric}");
        }
    }
    assert!(!dir.join("noise_floor.parquet").exists(), "no floor members: no floor table");

    let w = read(&report.join("wilcoxon.parquet"));
    assert_eq!(w.height(), 36 * 9);
    let ph = w.column("p_holm").unwrap().f64().unwrap().clone();
    let p = w.column("p_value").unwrap().f64().unwrap().clone();
    for i in 0..w.height() {
        assert!(ph.get(i).unwrap() >= p.get(i).unwrap());
    }
}

/// index.html: the banner, the headline finding, links to its tables, nothing loaded from
/// outside, and no temporary file left behind.
fn page_links_its_tables_and_nothing_outside(dir: &Path, summary: &ReportSummary) {
    let report = dir.join("report");
    let html = fs::read_to_string(&summary.index_html).unwrap();
    assert!(html.contains("id=\"random-init-banner\""));
    assert!(html.contains("most disruptive augmentation is <b>noise</b>"));
    for link in [
        "../summary.parquet",
        "../distance_matrix.parquet",
        "../linkage.parquet",
        "../clusters.parquet",
        "wilcoxon.parquet",
        "radar.parquet",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "index.html does not link {link}");
    }
    let outside = crate::page::outside_references(&html);
    assert!(outside.is_empty(), "index.html refers outside itself: {outside:?}");
    // No temporary files left behind.
    for entry in fs::read_dir(dir).unwrap().chain(fs::read_dir(&report).unwrap()) {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".partial"), "left-over temporary file {name}");
    }
}

#[test]
fn every_linkage_method_runs() {
    let (dir, _) = synthetic_run("methods");
    for m in clipshift_report::Linkage::ALL {
        let mut cfg = ReportConfig::new(&dir);
        cfg.linkage = m;
        cfg.bootstrap_resamples = 50;
        let s = run(&cfg).unwrap();
        assert!(s.n_clusters >= 1);
        let l = read(&dir.join("linkage.parquet"));
        let meth = l.column("method").unwrap().str().unwrap().clone();
        assert!(meth.iter().all(|x| x == Some(m.as_str())));
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_metrics_table_is_an_error_naming_the_file() {
    let (dir, _) = synthetic_run("missing");
    fs::remove_file(dir.join("metrics.parquet")).unwrap();
    let err = run(&ReportConfig::new(&dir)).unwrap_err();
    assert!(err.to_string().contains("metrics.parquet"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

/// Figures that need no pixels (the synthetic run has no source images).
const DATA_FIGURES: [&str; 10] = [
    "cosine_distribution",
    "l2_kde",
    "l2_bars",
    "dendrogram",
    "dendrogram_variants",
    "radar",
    "heatmap_sorted",
    "heatmap_clustered",
    "ranked_profiles",
    "sample_heatmap",
];

/// Every float column of `df` is free of NaN (undefined values are null).
fn assert_no_nan(df: &DataFrame, what: &str) {
    for c in df.columns() {
        if let Ok(ca) = c.f64() {
            assert!(!ca.iter().any(|v| v.is_some_and(f64::is_nan)), "{what}: NaN in column {}", c.name());
        }
    }
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2).zip(y.windows(2)).map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0).sum()
}

#[test]
fn cosine_distribution_table_is_what_is_plotted() {
    let (dir, _) = synthetic_run("cosdist");
    run(&ReportConfig::new(&dir)).unwrap();
    let t = read(&dir.join("report/cosine_distribution.parquet"));
    assert_eq!(
        names(&t),
        ["panel", "augmentation", "n", "mean", "std", "kind", "x_left", "x_right", "count", "density"]
    );
    assert_no_nan(&t, "cosine_distribution.parquet");
    let m = read(&dir.join("metrics.parquet"));
    let m_aug = m.column("augmentation").unwrap().str().unwrap().clone();
    let m_cos = m.column("cosine_similarity").unwrap().f64().unwrap().clone();
    let aug = t.column("augmentation").unwrap().str().unwrap().clone();
    let kind = t.column("kind").unwrap().str().unwrap().clone();
    let f = |name: &str| t.column(name).unwrap().f64().unwrap().clone();
    let (left, right, dens, mean, std) = (f("x_left"), f("x_right"), f("density"), f("mean"), f("std"));
    let count = t.column("count").unwrap().u64().unwrap().clone();
    let n = t.column("n").unwrap().u64().unwrap().clone();
    let panel = t.column("panel").unwrap().u32().unwrap().clone();
    let mut panel_means = Vec::new();
    for a in AUGS {
        let data: Vec<f64> =
            (0..m.height()).filter(|&i| m_aug.get(i) == Some(a)).filter_map(|i| m_cos.get(i)).collect();
        let rows: Vec<usize> = (0..t.height()).filter(|&i| aug.get(i) == Some(a)).collect();
        let hist: Vec<usize> = rows.iter().copied().filter(|&i| kind.get(i) == Some("histogram")).collect();
        let kde: Vec<usize> = rows.iter().copied().filter(|&i| kind.get(i) == Some("kde")).collect();
        assert_eq!(hist.len() + kde.len(), rows.len(), "{a}: unknown kind");
        let r0 = rows[0];
        assert_eq!(n.get(r0).unwrap() as usize, data.len(), "{a}: n");
        let mu = data.iter().sum::<f64>() / data.len() as f64;
        let sd = (data.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (data.len() - 1) as f64).sqrt();
        assert!((mean.get(r0).unwrap() - mu).abs() < 1e-12, "{a}: mean");
        assert!((std.get(r0).unwrap() - sd).abs() < 1e-12, "{a}: std");
        panel_means.push((panel.get(r0).unwrap(), mu));

        // Histogram: numpy's edges and counts, contiguous bins, counts sum to n,
        // density = count / (n * width), total area 1.
        let (edges, counts) = clipshift_report::histogram_auto(&data);
        assert_eq!(hist.len(), counts.len(), "{a}: bins");
        let total: u64 = hist.iter().map(|&i| count.get(i).unwrap()).sum();
        assert_eq!(total as usize, data.len(), "{a}: histogram counts must sum to n");
        let mut area = 0.0;
        for (j, &i) in hist.iter().enumerate() {
            assert_eq!(left.get(i), Some(edges[j]), "{a}: bin {j} left edge");
            assert_eq!(right.get(i), Some(edges[j + 1]), "{a}: bin {j} right edge");
            assert_eq!(count.get(i), Some(counts[j]), "{a}: bin {j} count");
            let w = edges[j + 1] - edges[j];
            let d = dens.get(i).unwrap();
            assert!((d - counts[j] as f64 / w / data.len() as f64).abs() <= 1e-9 * d.max(1.0), "{a}: bin {j} density");
            area += d * w;
        }
        assert!((area - 1.0).abs() < 1e-9, "{a}: histogram area {area}");

        // KDE: scipy gaussian_kde on 100 points from the sample's min to max.
        assert_eq!(kde.len(), 100, "{a}: KDE points");
        let xs: Vec<f64> = kde.iter().map(|&i| left.get(i).unwrap()).collect();
        let ys: Vec<f64> = kde.iter().map(|&i| dens.get(i).unwrap()).collect();
        let lo = data.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(xs, clipshift_report::linspace(lo, hi, 100), "{a}: KDE grid");
        let want = clipshift_report::gaussian_kde(&data, &xs).unwrap();
        for (y, w) in ys.iter().zip(&want) {
            assert!((y - w).abs() <= 1e-12 * w.max(1.0), "{a}: KDE {y} vs {w}");
        }
        // The curve covers [min, max] only (seaborn histplot's cut=0): its
        // area is the kernel mass inside the data range, a little under 1,
        // and the same density over the whole line integrates to 1.
        let inside = trapezoid(&xs, &ys);
        let h = sd * (data.len() as f64).powf(-0.2);
        let fine = |a: f64, b: f64| {
            let g = clipshift_report::linspace(a, b, 20_001);
            trapezoid(&g, &clipshift_report::gaussian_kde(&data, &g).unwrap())
        };
        assert!((inside - fine(lo, hi)).abs() < 2e-3, "{a}: KDE area on the plotted grid {inside}");
        assert!(inside > 0.8 && inside <= 1.0, "{a}: KDE area inside the data range {inside}");
        let whole = fine(lo - 10.0 * h, hi + 10.0 * h);
        assert!((whole - 1.0).abs() < 1e-6, "{a}: KDE integrates to {whole}");
    }
    // Panels run from the most disruptive (lowest mean) to the least.
    panel_means.sort_by_key(|p| p.0);
    assert!(panel_means.windows(2).all(|w| w[0].1 <= w[1].1), "panels not sorted by mean: {panel_means:?}");
    let svg = fs::read_to_string(dir.join("report/cosine_distribution.svg")).unwrap();
    assert!(svg.contains("Gaussian KDE") && svg.contains("histogram"), "legend missing");
    let _ = fs::remove_dir_all(&dir);
}

/// Few images (a single one: no std, no KDE) and many (more than the
/// 50-image sample): every figure is still drawn, with no NaN anywhere.
#[test]
fn figures_survive_few_and_many_images() {
    for n in [1usize, 2, 3, 60] {
        let (dir, _) = synthetic_run_sized(&format!("size{n}"), n);
        let mut cfg = ReportConfig::new(&dir);
        cfg.bootstrap_resamples = 200;
        let summary = run(&cfg).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        let report = dir.join("report");
        for stem in DATA_FIGURES {
            assert!(summary.figures.iter().any(|f| f == stem), "n = {n}: figure {stem} not produced");
        }
        for stem in &summary.figures {
            let svg = fs::read_to_string(report.join(format!("{stem}.svg"))).unwrap();
            for bad in ["NaN", "inf\"", ">inf", "-inf"] {
                assert!(!svg.contains(bad), "n = {n}: {stem}.svg contains {bad}");
            }
            assert!(report.join(format!("{stem}.png")).is_file(), "n = {n}: {stem}.png");
            assert_no_nan(&read(&report.join(format!("{stem}.parquet"))), &format!("n = {n}: {stem}.parquet"));
        }
        for table in ["summary.parquet", "distance_matrix.parquet", "linkage.parquet", "clusters.parquet"] {
            assert_no_nan(&read(&dir.join(table)), &format!("n = {n}: {table}"));
        }
        let html = fs::read_to_string(&summary.index_html).unwrap();
        assert!(!html.contains("NaN"), "n = {n}: index.html shows NaN");
        let cos = read(&report.join("cosine_distribution.parquet"));
        let kind = cos.column("kind").unwrap().str().unwrap().clone();
        let count = cos.column("count").unwrap().u64().unwrap().clone();
        let total: u64 =
            (0..cos.height()).filter(|&i| kind.get(i) == Some("histogram")).filter_map(|i| count.get(i)).sum();
        assert_eq!(total as usize, n * AUGS.len(), "n = {n}: histogram counts");
        let sample = read(&report.join("sample_heatmap.parquet"));
        assert_eq!(sample.height(), n.min(50) * AUGS.len(), "n = {n}: sample heatmap rows");
        if n == 1 {
            let kde = fs::read_to_string(report.join("l2_kde.svg")).unwrap();
            assert!(kde.contains("at least two"), "n = 1: l2_kde.svg should say why it has no curves");
        }
        if std::env::var_os("CLIPSHIFT_KEEP_TEST_RUN").is_none() {
            let _ = fs::remove_dir_all(&dir);
        } else {
            eprintln!("kept {}", dir.display());
        }
    }
}

/// The figures that cannot be drawn are rows of `errors.parquet` (stage
/// `report`), the rest of the report is written, a re-run replaces those rows
/// and the other stages' rows stay. A table that is not what it claims to be is
/// refused before anything is drawn.
#[test]
fn figures_that_cannot_be_drawn_are_rows_of_errors_parquet() {
    let (dir, _) = synthetic_run("errors");
    let run_dir = RunDir::new(&dir);
    // As in every synthetic run, source images that do not exist: nothing can be replayed.
    let metrics_log = ErrorLog::new("metrics");
    metrics_log.record(Some("img1000.png"), Some(1000), Some("blur"), ErrorKind::Metric, "ssim failed".into());
    clipshift_tables::replace_stage_errors(&run_dir, "metrics", &metrics_log.take()).unwrap();

    let summary = run(&ReportConfig::new(&dir)).unwrap();
    let rows = read_errors(&run_dir.errors()).unwrap();
    let report: Vec<_> = rows.iter().filter(|r| r.stage == "report").collect();
    assert_eq!(report.len(), summary.n_errors);
    assert!(report.iter().all(|r| r.kind == ErrorKind::Figure), "{report:#?}");
    let gallery: Vec<_> = report.iter().filter(|r| r.path.as_deref() == Some("report/gallery.svg")).collect();
    assert_eq!(gallery.len(), 3, "one row per sampled image: {report:#?}");
    assert!(gallery.iter().all(|r| r.image_id.is_some()));
    assert_eq!(rows.iter().filter(|r| r.stage == "metrics").count(), 1, "the metrics stage's row is kept");

    // The rest of the report is there, and the page says what is missing.
    for stem in DATA_FIGURES {
        assert!(summary.figures.iter().any(|f| f == stem), "figure {stem} not produced");
        assert!(run_dir.report_dir().join(format!("{stem}.svg")).is_file(), "{stem}.svg");
    }
    assert!(!summary.figures.iter().any(|f| f == "gallery" || f == "attention_overlays"));
    let html = fs::read_to_string(&summary.index_html).unwrap();
    assert!(html.contains(&format!("{} parts of this report could not be drawn", report.len())), "page");
    assert!(html.contains("1 failures were recorded"), "the metrics stage's failure is counted");

    // A re-run replaces the report's rows rather than adding to them.
    let again = run(&ReportConfig::new(&dir)).unwrap();
    let rows_again = read_errors(&run_dir.errors()).unwrap();
    assert_eq!(again.n_errors, summary.n_errors);
    assert_eq!(rows_again.len(), rows.len());

    fs::write(run_dir.embeddings(), b"not a parquet file").unwrap();
    let err = run(&ReportConfig::new(&dir)).unwrap_err().to_string();
    assert!(err.contains("embeddings.parquet") && err.contains("parquet"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}
