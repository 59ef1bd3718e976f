//! A synthetic run directory, written with polars, pushed through `run`.

use std::fs;
use std::path::{Path, PathBuf};

use clipshift_report::{ReportConfig, run};
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

/// Returns the run dir and the expected mean cosine similarity per augmentation.
pub(crate) fn synthetic_run(name: &str) -> (PathBuf, Vec<f64>) {
    let dir = std::env::temp_dir().join(format!("clipshift-report-it-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let members: Vec<serde_json::Value> =
        AUGS.iter().map(|a| serde_json::json!({"name": a, "transform": {}})).collect();
    let run = serde_json::json!({
        "tool_version": "0.1.0", "seed": 7, "data_root": dir.display().to_string(), "image_size": 224,
        "suite": {"name": "paper", "members": members},
        "model": {"name": "tiny-clip", "source": "random-init", "random_init": true, "sha256": "00", "dir": "models/tiny-clip"}
    });
    fs::write(dir.join("run.json"), serde_json::to_string_pretty(&run).unwrap()).unwrap();

    let mut rng = Lcg(42);
    let ids: Vec<u64> = (0..N_IMAGES as u64).map(|i| 1000 + i * 7).collect();
    write(
        &dir,
        "images.parquet",
        vec![
            Column::new("image_id".into(), ids.clone()),
            Column::new("path".into(), ids.iter().map(|i| format!("img{i}.png")).collect::<Vec<_>>()),
            Column::new("width".into(), vec![224u32; N_IMAGES]),
            Column::new("height".into(), vec![224u32; N_IMAGES]),
            Column::new("format".into(), vec!["png"; N_IMAGES]),
        ],
    );
    let variants: Vec<&str> = std::iter::once("original").chain(AUGS).collect();
    let (mut m_id, mut m_aug) = (vec![], vec![]);
    let mut m_cols: Vec<Vec<Option<f64>>> = vec![vec![]; 7];
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
                Some(1.0 - s * 0.5 + 0.01 * rng.next()),
                Some(1.0 - s * 0.3 + 0.01 * rng.next()),
                Some(1.0 - s * 0.6 + 0.01 * rng.next()),
                // A null where a metric is undefined for one image.
                if id == ids[0] && k == 2 { None } else { Some(1.0 - s * 0.4 + 0.01 * rng.next()) },
                Some(1.0 - s * 0.7 + 0.01 * rng.next()),
            ];
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
            Column::full_null("png".into(), n_aug_rows, &DataType::Binary),
        ],
    );
    let names = [
        "cosine_similarity",
        "l2_distance",
        "attention_similarity",
        "patch_similarity",
        "edge_preservation",
        "detail_preservation",
        "ssim",
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
    (dir, sums.iter().map(|s| s / N_IMAGES as f64).collect())
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

    // summary.parquet
    let s = read(&dir.join("summary.parquet"));
    assert_eq!(
        names(&s),
        ["augmentation", "metric", "n", "mean", "std", "median", "p05", "p95", "ci_low", "ci_high", "rank"]
    );
    assert_eq!(s.height(), 9 * 7);
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
        assert_eq!(n.get(i).unwrap() as usize, expect_n, "{a}/{m}");
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

    // Figures: SVG, PNG and Parquet per figure.
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

    let w = read(&report.join("wilcoxon.parquet"));
    assert_eq!(w.height(), 36 * 7);
    let ph = w.column("p_holm").unwrap().f64().unwrap().clone();
    let p = w.column("p_value").unwrap().f64().unwrap().clone();
    for i in 0..w.height() {
        assert!(ph.get(i).unwrap() >= p.get(i).unwrap());
    }

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
    assert!(!html.contains("http://") || !html.contains("src=\"http"), "index.html must not load remote resources");
    // No temporary files left behind.
    for entry in fs::read_dir(&dir).unwrap().chain(fs::read_dir(&report).unwrap()) {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left-over temp file {name}");
    }
    // Set CLIPSHIFT_KEEP_TEST_RUN=1 to inspect the report afterwards.
    if std::env::var_os("CLIPSHIFT_KEEP_TEST_RUN").is_none() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
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
