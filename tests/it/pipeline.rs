//! The whole study on a few images with the tiny model: schemas and invariants of every table.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use clipshift_augment::stage::sample_variants;
use clipshift_augment::{Params, Suite, load_canonical};
use clipshift_encode::SessionConfig;
use clipshift_metrics::stage::MetricsConfig;
use clipshift_tables::arrow::array::{
    Array, FixedSizeListArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use clipshift_tables::{ErrorKind, RunDir, column, read_errors, schema};

use crate::support::{augment_config, copy_samples, encode_config, run_ok, stage_binary, table, temp_dir, tiny_model};

const SAMPLES: usize = 3;

/// A left-right mirror-symmetric image: its horizontal flip is itself.
fn write_symmetric_image(path: &Path) {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        let m = x.min(95 - x);
        image::Rgb([(m * 5) as u8, (y * 3) as u8, ((m * y) % 251) as u8])
    });
    img.save(path).unwrap();
}

fn strings(batch: &RecordBatch, path: &Path, name: &str) -> Vec<String> {
    column::<StringArray>(batch, path, name).unwrap().iter().map(|s| s.unwrap().to_string()).collect()
}

/// The run every step below checks: the data folder and the run directory.
struct Study {
    root: PathBuf,
    data: PathBuf,
    run: RunDir,
    suite: Suite,
    images: usize,
    variants: usize,
}

#[test]
fn pipeline_end_to_end_with_the_tiny_model() {
    let root = temp_dir("pipeline");
    let data = root.join("data");
    std::fs::create_dir_all(data.join("nested")).unwrap();
    let samples = copy_samples(&data, SAMPLES);
    write_symmetric_image(&data.join("nested/symmetric.png"));
    std::fs::write(data.join("broken.jpg"), b"this is not a JPEG").unwrap();
    write_captions(&data, &samples);
    let suite = Suite::paper();
    let variants = suite.members().len() + 1;
    assert_eq!(variants, 10);
    let study = Study { run: RunDir::new(root.join("run")), root, data, suite, images: SAMPLES + 1, variants };

    let sym_id = augment_records_and_replays(&study);
    let embeddings = encode_embeds_every_variant(&study);
    let metrics = metrics_measure_every_variant(&study, sym_id);
    text_aligns_every_variant(&study);
    sae_attributes_every_variant(&study);
    report_writes_every_output(&study);
    every_stage_reruns_alone(&study, &metrics, &embeddings);
    encode_threads_follow_the_cpus_it_may_use(&study);
    std::fs::remove_dir_all(&study.root).unwrap();
}

/// Augment writes both tables and one error row; recorded parameters are the sampled
/// ones and replay exactly. Returns the id of the mirror-symmetric image.
fn augment_records_and_replays(study: &Study) -> u64 {
    let (run, images, variants) = (&study.run, study.images, study.variants);
    let summary =
        clipshift_augment::stage::run(&augment_config(run.root(), &study.data, study.suite.clone(), 7)).unwrap();
    assert_eq!((summary.images, summary.variants, summary.errors), (images, images * variants, 1));
    let imgs = table(&run.images());
    assert_eq!(imgs.schema(), schema::images());
    assert_eq!(imgs.num_rows(), images);
    let augs = table(&run.augmentations());
    assert_eq!(augs.schema(), schema::augmentations());
    assert_eq!(augs.num_rows(), images * variants);
    let errors = read_errors(&run.errors()).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].stage.as_str(), errors[0].path.as_deref(), errors[0].kind),
        ("augment", Some("broken.jpg"), ErrorKind::Decode)
    );
    assert!(errors[0].message.contains("broken.jpg"), "{}", errors[0].message);

    // recorded parameters are the sampled ones, and replay is exact
    let ids = column::<UInt64Array>(&imgs, &run.images(), schema::IMAGE_ID).unwrap();
    let paths = strings(&imgs, &run.images(), "path");
    let sym_row = paths.iter().position(|p| p == "nested/symmetric.png").expect("nested image found");
    let sym_id = ids.value(sym_row);
    let aug_ids = column::<UInt64Array>(&augs, &run.augmentations(), schema::IMAGE_ID).unwrap();
    let aug_names = strings(&augs, &run.augmentations(), schema::AUGMENTATION);
    let aug_params = strings(&augs, &run.augmentations(), "params");
    for (i, (name, _, params)) in sample_variants(&study.suite, 7, sym_id, 224).into_iter().enumerate() {
        let row = (0..augs.num_rows()).find(|&r| aug_ids.value(r) == sym_id && aug_names[r] == name).unwrap();
        assert_eq!(Params::from_json(&name, &aug_params[row]).unwrap(), params, "variant {i} {name}");
    }

    // horizontal flip applied twice gives the original
    let base = load_canonical(&study.data.join(&paths[0]), 224).unwrap();
    let flip_row =
        (0..augs.num_rows()).find(|&r| aug_ids.value(r) == ids.value(0) && aug_names[r] == "horizontal_flip").unwrap();
    let flip = Params::from_json("horizontal_flip", &aug_params[flip_row]).unwrap();
    let once = flip.apply(&base).unwrap();
    assert_ne!(once, base);
    assert_eq!(flip.apply(&once).unwrap(), base);
    sym_id
}

/// Encode, with a batch size that splits images across batches: one row per variant,
/// attention rows that are distributions, and the model recorded in run.json.
fn encode_embeds_every_variant(study: &Study) -> RecordBatch {
    let run = &study.run;
    let rows = study.images * study.variants;
    let encoded = clipshift_encode::stage::run(&encode_config(run.root(), 7)).unwrap();
    assert_eq!(encoded.rows, rows);
    assert!(encoded.random_init);
    let emb = table(&run.embeddings());
    assert_eq!(emb.num_rows(), rows);
    let vectors = column::<FixedSizeListArray>(&emb, &run.embeddings(), "embedding").unwrap();
    let attention = column::<FixedSizeListArray>(&emb, &run.embeddings(), "cls_attention").unwrap();
    assert_eq!(vectors.value_length(), 32);
    assert_eq!(attention.value_length(), 49);
    for i in 0..emb.num_rows() {
        let a = attention.value(i);
        let a = a.as_any().downcast_ref::<Float32Array>().unwrap();
        let total: f32 = a.values().iter().sum();
        assert!(
            a.values().iter().all(|v| *v >= 0.0) && total > 0.0 && total <= 1.0 + 1e-5,
            "attention row {i} sums to {total}"
        );
    }
    let manifest = clipshift_tables::RunManifest::load(run).unwrap();
    assert!(manifest.model.unwrap().random_init);
    assert_eq!(manifest.augment.unwrap().seed, 7);
    emb
}

/// Metrics: every value in its range and non-null, an identical variant scores exactly
/// so, and the pairwise distances cover every variant. Returns metrics.parquet.
fn metrics_measure_every_variant(study: &Study, sym_id: u64) -> RecordBatch {
    let (run, images, variants) = (&study.run, study.images, study.variants);
    let measured = clipshift_metrics::stage::run(&MetricsConfig {
        run_dir: run.root().to_path_buf(),
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();
    assert_eq!(measured.metric_rows, images * (variants - 1));
    assert_eq!(measured.pairwise_rows, images * variants * (variants - 1) / 2);
    let metrics = table(&run.metrics());
    assert_eq!(metrics.schema(), schema::metrics());
    let m_ids = column::<UInt64Array>(&metrics, &run.metrics(), schema::IMAGE_ID).unwrap();
    let m_augs = strings(&metrics, &run.metrics(), schema::AUGMENTATION);
    let value = |name: &str, row: usize| {
        let c = column::<Float64Array>(&metrics, &run.metrics(), name).unwrap();
        c.is_valid(row).then(|| c.value(row))
    };
    let ranges: HashMap<&str, (f64, f64)> = HashMap::from([
        ("cosine_similarity", (-1.0, 1.0)),
        ("l2_distance", (0.0, f64::INFINITY)),
        ("attention_similarity", (0.0, 1.0)),
        ("attention_similarity_aligned", (0.0, 1.0)),
        ("patch_similarity", (0.0, 1.0)),
        ("edge_preservation", (0.0, 1.0)),
        ("detail_preservation", (0.0, 1.0)),
        ("ssim", (-1.0, 1.0)),
    ]);
    for row in 0..metrics.num_rows() {
        for name in schema::METRIC_COLUMNS.into_iter().filter(|n| *n != "sensitivity") {
            let v = value(name, row).unwrap_or_else(|| panic!("{name} null in row {row}"));
            let (lo, hi) = ranges[name];
            assert!(v.is_finite() && v >= lo - 1e-9 && v <= hi + 1e-9, "{name} = {v} out of [{lo}, {hi}] in row {row}");
        }
        // Sensitivity: (1 - cos) / (1 - SSIM), null where the pixels did not change.
        let (cos, ssim) = (value("cosine_similarity", row).unwrap(), value("ssim", row).unwrap());
        match value("sensitivity", row) {
            Some(v) => assert!((v - (1.0 - cos) / (1.0 - ssim)).abs() <= 1e-9 * v.max(1.0), "row {row}: {v}"),
            None => assert!(1.0 - ssim <= 1e-9, "row {row}: sensitivity null with SSIM {ssim}"),
        }
    }
    // the flip of a mirror-symmetric image is the same image: similarity 1, distance 0
    let sym_flip =
        (0..metrics.num_rows()).find(|&r| m_ids.value(r) == sym_id && m_augs[r] == "horizontal_flip").unwrap();
    assert!((value("cosine_similarity", sym_flip).unwrap() - 1.0).abs() < 1e-6);
    assert!(value("l2_distance", sym_flip).unwrap() < 1e-4);
    // (Not the aligned attention: it compares the mirrored map, and the model's attention
    // on a symmetric image need not be symmetric.)
    for name in ["attention_similarity", "patch_similarity", "edge_preservation", "detail_preservation", "ssim"] {
        assert!((value(name, sym_flip).unwrap() - 1.0).abs() < 1e-6, "{name} of an identical variant");
    }
    // In the variant's frame only for the augmentations that move pixels.
    for (row, aug) in m_augs.iter().enumerate() {
        let (paper, aligned) = (value("attention_similarity", row), value("attention_similarity_aligned", row));
        match aug.as_str() {
            "horizontal_flip" | "shift_scale_rotate" | "elastic" | "perspective" => {}
            other => assert_eq!(paper, aligned, "{other}: no warp, the paper's value"),
        }
    }
    // the augmentations really move the embedding: noise is not identical to the original
    let noise = (0..metrics.num_rows()).find(|&r| m_ids.value(r) == sym_id && m_augs[r] == "noise").unwrap();
    assert!(value("cosine_similarity", noise).unwrap() < 0.999_999);

    let pairs = table(&run.pairwise());
    assert_eq!(pairs.schema(), schema::pairwise());
    let cos = column::<Float64Array>(&pairs, &run.pairwise(), "cosine_distance").unwrap();
    let euc = column::<Float64Array>(&pairs, &run.pairwise(), "euclidean_distance").unwrap();
    for r in 0..pairs.num_rows() {
        assert!((0.0..=2.0 + 1e-9).contains(&cos.value(r)) && euc.value(r) >= 0.0);
    }
    let names: HashSet<String> =
        strings(&pairs, &run.pairwise(), "a").into_iter().chain(strings(&pairs, &run.pairwise(), "b")).collect();
    assert_eq!(names.len(), variants);
    layer_shift_equals_numpys(run, images * (variants - 1));
    metrics
}

/// `layer_shift.parquet` against numpy on the same stored states
/// (`crates/metrics/reference/layer_shift.py`): every image, augmentation and layer.
fn layer_shift_equals_numpys(run: &RunDir, comparisons: usize) {
    let manifest = clipshift_tables::RunManifest::load(run).unwrap();
    let [states, _] = manifest.model.unwrap().layer_states.expect("the tiny model exports its layer states");
    assert_eq!(states, 3, "the tiny model: after the pre-layernorm, then two blocks");
    let python = std::env::var_os("CLIPSHIFT_QUERY_PYTHON").expect(
        "CLIPSHIFT_QUERY_PYTHON (Python with pyarrow and numpy) is unset: run the tests through `cargo xtask test`",
    );
    let script = crate::support::workspace_root().join("crates/metrics/reference/layer_shift.py");
    let out = std::process::Command::new(python).arg(script).arg(run.root()).arg(states.to_string()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<(u64, String, u32, f64, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reference.len(), comparisons * states);

    let path = run.layer_shift();
    let shift = table(&path);
    assert_eq!(shift.schema(), schema::layer_shift());
    let ids = column::<UInt64Array>(&shift, &path, schema::IMAGE_ID).unwrap();
    let augs = strings(&shift, &path, schema::AUGMENTATION);
    let layers = column::<clipshift_tables::arrow::array::UInt32Array>(&shift, &path, "layer").unwrap();
    let cos = column::<Float64Array>(&shift, &path, schema::COSINE_SIMILARITY).unwrap();
    let l2 = column::<Float64Array>(&shift, &path, "l2_distance").unwrap();
    let ours: HashMap<(u64, String, u32), (f64, f64)> = (0..shift.num_rows())
        .map(|r| ((ids.value(r), augs[r].clone(), layers.value(r)), (cos.value(r), l2.value(r))))
        .collect();
    assert_eq!(ours.len(), reference.len(), "one row per image, augmentation and layer");
    for (id, aug, layer, want_cos, want_l2) in reference {
        let (got_cos, got_l2) = ours[&(id, aug.clone(), layer)];
        assert!((got_cos - want_cos).abs() < 1e-9, "{id} {aug} layer {layer}: cosine {got_cos} vs numpy {want_cos}");
        assert!(
            (got_l2 - want_l2).abs() < 1e-9 * want_l2.max(1.0),
            "{id} {aug} layer {layer}: L2 {got_l2} vs {want_l2}"
        );
    }
}

/// `captions.csv` for the data folder: a caption for every sample (one with a comma and
/// quotes), none for the symmetric image, and three bad rows: an empty caption, a second
/// different caption, and a file that is not in the run (ignored).
fn write_captions(data: &Path, samples: &[PathBuf]) {
    let mut csv = String::from("path,caption\n");
    for (i, sample) in samples.iter().enumerate() {
        let name = sample.file_name().unwrap().to_str().unwrap();
        csv += &format!("{name},\"Sample {i}, a \"\"real\"\" photograph.\"\n");
    }
    let first = samples[0].file_name().unwrap().to_str().unwrap();
    csv += &format!("broken.jpg,\n{first},another caption\nnot-here.png,a photo that is not in the run\n");
    std::fs::write(data.join("captions.csv"), csv).unwrap();
}

/// Text: every table against numpy on the stored embeddings
/// (`crates/text/reference/text_alignment.py`), with two templates ensembled, the paper
/// suite's keywords and the data's captions; the bad caption rows are error rows.
fn text_aligns_every_variant(study: &Study) {
    let (run, images, variants) = (&study.run, study.images, study.variants);
    let templates = vec!["a photo of a {}.".to_string(), "a drawing of a {}.".to_string()];
    let summary = clipshift_text::stage::run(&clipshift_text::stage::TextConfig {
        run_dir: run.root().to_path_buf(),
        model: None,
        labels: None,
        templates,
        captions: None,
        batch: 16,
        session: SessionConfig::default(),
    })
    .unwrap();
    let keywords = study.suite.keywords().values().flatten().collect::<HashSet<_>>().len();
    assert_eq!(keywords, 9, "the paper suite has a keyword prompt per augmentation");
    assert_eq!(summary.skipped, None);
    assert_eq!(summary.prompts, 100 * 2 + keywords + SAMPLES, "labels x templates, keywords, captions");
    assert_eq!(summary.zero_shot_rows, images * variants);
    assert_eq!(summary.keyword_rows, images * (variants - 1) * keywords);
    assert_eq!(summary.caption_rows, SAMPLES * variants, "the symmetric image has no caption");
    let errors: Vec<_> = read_errors(&run.errors()).unwrap().into_iter().filter(|e| e.stage == "text").collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.kind == ErrorKind::Caption && e.path.as_deref().unwrap().ends_with("captions.csv"))
    );
    assert!(errors.iter().any(|e| e.message.contains("row 5")) && errors.iter().any(|e| e.message.contains("row 6")));

    let python = std::env::var_os("CLIPSHIFT_QUERY_PYTHON").expect(
        "CLIPSHIFT_QUERY_PYTHON (Python with pyarrow and numpy) is unset: run the tests through `cargo xtask test`",
    );
    let script = crate::support::workspace_root().join("crates/text/reference/text_alignment.py");
    let out = std::process::Command::new(python).arg(script).arg(run.root()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |a: f64, b: &serde_json::Value, what: &str| {
        let b = b.as_f64().unwrap();
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}: {a} vs numpy {b}");
    };
    let key = |row: &serde_json::Value, n: usize| -> Vec<String> {
        row.as_array().unwrap()[..n].iter().map(|v| v.to_string().trim_matches('"').to_string()).collect()
    };

    let path = run.zero_shot();
    let zs = table(&path);
    assert_eq!(zs.schema(), schema::zero_shot());
    let ids = column::<UInt64Array>(&zs, &path, schema::IMAGE_ID).unwrap();
    let augs = strings(&zs, &path, schema::AUGMENTATION);
    let labels = strings(&zs, &path, "label");
    let probability = column::<Float64Array>(&zs, &path, "probability").unwrap();
    let flipped = column::<clipshift_tables::arrow::array::BooleanArray>(&zs, &path, "flipped").unwrap();
    let kl = column::<Float64Array>(&zs, &path, "kl_to_original").unwrap();
    let ours: HashMap<Vec<String>, usize> =
        (0..zs.num_rows()).map(|r| (vec![ids.value(r).to_string(), augs[r].clone()], r)).collect();
    let want = reference["zero_shot"].as_array().unwrap();
    assert_eq!((want.len(), ours.len()), (zs.num_rows(), zs.num_rows()));
    for row in want {
        let r = ours[&key(row, 2)];
        let row = row.as_array().unwrap();
        assert_eq!(labels[r], row[2].as_str().unwrap(), "top-1 label of {:?}", key(&row[..].to_vec().into(), 2));
        close(probability.value(r), &row[3], "probability");
        assert_eq!(flipped.value(r), row[4].as_bool().unwrap(), "flipped");
        close(kl.value(r), &row[5], "KL");
    }

    let path = run.keyword_alignment();
    let kw = table(&path);
    assert_eq!(kw.schema(), schema::keyword_alignment());
    let ids = column::<UInt64Array>(&kw, &path, schema::IMAGE_ID).unwrap();
    let augs = strings(&kw, &path, schema::AUGMENTATION);
    let prompts = strings(&kw, &path, "prompt");
    let delta = column::<Float64Array>(&kw, &path, "delta_cosine").unwrap();
    let ours: HashMap<Vec<String>, f64> = (0..kw.num_rows())
        .map(|r| (vec![ids.value(r).to_string(), augs[r].clone(), prompts[r].clone()], delta.value(r)))
        .collect();
    let want = reference["keyword"].as_array().unwrap();
    assert_eq!((want.len(), ours.len()), (kw.num_rows(), kw.num_rows()));
    for row in want {
        close(ours[&key(row, 3)], &row[3], "delta_cosine");
    }

    let path = run.caption_alignment();
    let cap = table(&path);
    assert_eq!(cap.schema(), schema::caption_alignment());
    let ids = column::<UInt64Array>(&cap, &path, schema::IMAGE_ID).unwrap();
    let augs = strings(&cap, &path, schema::AUGMENTATION);
    let cosine = column::<Float64Array>(&cap, &path, schema::COSINE_SIMILARITY).unwrap();
    let delta = column::<Float64Array>(&cap, &path, "delta_cosine").unwrap();
    let rank = column::<clipshift_tables::arrow::array::UInt32Array>(&cap, &path, "rank").unwrap();
    let ours: HashMap<Vec<String>, usize> =
        (0..cap.num_rows()).map(|r| (vec![ids.value(r).to_string(), augs[r].clone()], r)).collect();
    let want = reference["caption"].as_array().unwrap();
    assert_eq!(want.len(), cap.num_rows());
    for row in want {
        let r = ours[&key(row, 2)];
        close(cosine.value(r), &row[2], "caption cosine");
        close(delta.value(r), &row[3], "caption delta");
        assert_eq!(u64::from(rank.value(r)), row[4].as_u64().unwrap(), "caption rank");
    }
}

/// Report: the aggregate tables, every figure as SVG and PNG, the pixel figures replayed
/// from the source images (the run saved none), and the random-model banner.
fn report_writes_every_output(study: &Study) {
    let run = &study.run;
    clipshift_report::run(&clipshift_report::ReportConfig::new(run.root())).unwrap();
    for file in
        [run.summary(), run.distance_matrix(), run.linkage(), run.clusters(), run.report_dir().join("index.html")]
    {
        assert!(file.is_file(), "{} missing", file.display());
    }
    let report = run.report_dir();
    let svgs = std::fs::read_dir(&report)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(svgs >= 4, "only {svgs} SVG figures");
    for stem in ["gallery", "attention_overlays"] {
        let svg = std::fs::read_to_string(report.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<image"), "{stem}.svg has no pixels");
    }
    for entry in std::fs::read_dir(&report).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "svg") {
            assert!(path.with_extension("png").is_file(), "{} has no PNG", path.display());
        }
    }
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.to_lowercase().contains("random"), "the random-model banner is missing");
    // drift.parquet: both tests for every augmentation, on every image that encoded.
    let drift = table(&run.drift());
    assert_eq!(drift.num_rows(), study.variants - 1);
    let n = column::<UInt64Array>(&drift, &run.drift(), "n").unwrap();
    assert!((0..drift.num_rows()).all(|i| n.value(i) == study.images as u64));
    for p in ["shift_p", "mmd_p"] {
        let p = column::<Float64Array>(&drift, &run.drift(), p).unwrap();
        assert!((0..drift.num_rows()).all(|i| (1.0 / 1000.0..=1.0).contains(&p.value(i))));
    }
    layer_profile_is_the_mean_of_layer_shift(run, study.variants - 1);
    text_figures_summarise_the_text_tables(run, study.variants - 1);
    sae_figures_summarise_the_sae_tables(run, study.variants - 1);
}

/// The SAE stage with the tiny model's random SAE (k = 8) on every image that encoded.
fn sae_attributes_every_variant(study: &Study) {
    let run = &study.run;
    let summary = clipshift_sae::stage::run(&clipshift_sae::stage::SaeConfig {
        run_dir: run.root().to_path_buf(),
        sae: tiny_model().join("sae-random.safetensors"),
        model: None,
        concepts: None,
        batch: 64,
        session: SessionConfig::default(),
    })
    .unwrap();
    assert_eq!(summary.variants, study.images * (study.variants - 1));
    // At most k = 8 latents per variant (ReLU drops non-positive ones).
    assert!(summary.latent_rows > 0 && summary.latent_rows <= study.images * study.variants * 8);
}

/// The SAE figures' tables against brute-force sums over the SAE stage's tables: the
/// Jaccard overlap from the active sets of sae_latents.parquet, the top latents' mean
/// attribution from component_attribution.parquet, the faithfulness means.
fn sae_figures_summarise_the_sae_tables(run: &RunDir, augmentations: usize) {
    use clipshift_tables::arrow::array::UInt32Array;
    let report = run.report_dir();
    let path = run.sae_latents();
    let latents = table(&path);
    let (ids, augs) = (
        column::<UInt64Array>(&latents, &path, schema::IMAGE_ID).unwrap(),
        strings(&latents, &path, schema::AUGMENTATION),
    );
    let latent = column::<UInt32Array>(&latents, &path, "latent").unwrap();
    let mut sets: HashMap<(u64, String), HashSet<u32>> = HashMap::new();
    for (i, aug) in augs.iter().enumerate() {
        sets.entry((ids.value(i), aug.clone())).or_default().insert(latent.value(i));
    }
    let jaccard_path = report.join("sae_jaccard.parquet");
    let jaccard = table(&jaccard_path);
    assert_eq!(jaccard.num_rows(), augmentations);
    for (r, aug) in strings(&jaccard, &jaccard_path, schema::AUGMENTATION).iter().enumerate() {
        let values: Vec<f64> = sets
            .iter()
            .filter(|((_, a), _)| a == aug)
            .map(|((id, _), variant)| {
                let original = &sets[&(*id, schema::ORIGINAL.to_string())];
                original.intersection(variant).count() as f64 / original.union(variant).count() as f64
            })
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let got = column::<Float64Array>(&jaccard, &jaccard_path, "mean_jaccard").unwrap().value(r);
        assert!((got - mean).abs() < 1e-12, "{aug}: Jaccard {got} vs {mean}");
    }

    let path = run.component_attribution();
    let attribution = table(&path);
    let (ids, augs) = (
        column::<UInt64Array>(&attribution, &path, schema::IMAGE_ID).unwrap(),
        strings(&attribution, &path, schema::AUGMENTATION),
    );
    let latent = column::<UInt32Array>(&attribution, &path, "latent").unwrap();
    let patch = column::<Float64Array>(&attribution, &path, "patch_attribution").unwrap();
    let top_path = report.join("sae_top_latents.parquet");
    let top = table(&top_path);
    assert!(top.num_rows() > 0 && top.num_rows() <= augmentations * 6, "{} top-latent rows", top.num_rows());
    let top_augs = strings(&top, &top_path, schema::AUGMENTATION);
    let top_latent = column::<UInt32Array>(&top, &top_path, "latent").unwrap();
    let mean_patch = column::<Float64Array>(&top, &top_path, "mean_patch_attribution").unwrap();
    for (r, aug) in top_augs.iter().enumerate() {
        let images: HashSet<u64> =
            (0..attribution.num_rows()).filter(|&i| &augs[i] == aug).map(|i| ids.value(i)).collect();
        let sum: f64 = (0..attribution.num_rows())
            .filter(|&i| &augs[i] == aug && latent.value(i) == top_latent.value(r))
            .map(|i| patch.value(i))
            .sum();
        let want = sum / images.len() as f64;
        assert!(
            (mean_patch.value(r) - want).abs() < 1e-9,
            "{aug} latent {}: {} vs {want}",
            top_latent.value(r),
            mean_patch.value(r)
        );
    }

    let path = run.faithfulness();
    let curves = table(&path);
    let orders = strings(&curves, &path, "order");
    let n = column::<UInt32Array>(&curves, &path, "n").unwrap();
    let cosine = column::<Float64Array>(&curves, &path, "cosine").unwrap();
    let summary_path = report.join("sae_faithfulness.parquet");
    let summary = table(&summary_path);
    let s_orders = strings(&summary, &summary_path, "order");
    assert_eq!(s_orders.iter().collect::<HashSet<_>>().len(), 5, "five orders");
    for (r, order) in s_orders.iter().enumerate() {
        let count = column::<UInt32Array>(&summary, &summary_path, "n").unwrap().value(r);
        let rows: Vec<usize> = (0..curves.num_rows()).filter(|&i| &orders[i] == order && n.value(i) == count).collect();
        let mean = rows.iter().map(|&i| cosine.value(i)).sum::<f64>() / rows.len() as f64;
        let got = column::<Float64Array>(&summary, &summary_path, "mean_cosine").unwrap().value(r);
        assert!((got - mean).abs() < 1e-12, "{order} n = {count}: {got} vs {mean}");
    }
    let dendrogram = table(&report.join("sae_dendrogram.parquet"));
    let kinds = strings(&dendrogram, &report.join("sae_dendrogram.parquet"), "kind");
    assert_eq!(kinds.iter().filter(|k| *k == "leaf").count(), augmentations);
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    for stem in ["sae_top_latents", "sae_jaccard", "sae_faithfulness", "sae_dendrogram"] {
        assert!(html.contains(&format!("id=\"{stem}\"")), "index.html lacks the figure {stem}");
    }
}

/// The text figures' tables: the zero-shot flip rate and mean KL are the means of
/// zero_shot.parquet over images, recall@1 the share of rank-1 captions, inside their
/// intervals; every keyword cell and correlation is there.
fn text_figures_summarise_the_text_tables(run: &RunDir, augmentations: usize) {
    let report = run.report_dir();
    let (path, summary_path) = (run.zero_shot(), report.join("zero_shot_flips.parquet"));
    let zs = table(&path);
    let summary = table(&summary_path);
    assert_eq!(summary.num_rows(), augmentations);
    let augs = strings(&zs, &path, schema::AUGMENTATION);
    let flipped = column::<clipshift_tables::arrow::array::BooleanArray>(&zs, &path, "flipped").unwrap();
    let kl = column::<Float64Array>(&zs, &path, "kl_to_original").unwrap();
    let s_augs = strings(&summary, &summary_path, schema::AUGMENTATION);
    for (r, aug) in s_augs.iter().enumerate() {
        let rows: Vec<usize> = (0..zs.num_rows()).filter(|&i| &augs[i] == aug).collect();
        let flips = rows.iter().filter(|&&i| flipped.value(i)).count() as f64 / rows.len() as f64;
        let mean_kl = rows.iter().map(|&i| kl.value(i)).sum::<f64>() / rows.len() as f64;
        let get = |c: &str| column::<Float64Array>(&summary, &summary_path, c).unwrap().value(r);
        assert!((get("flip_rate") - flips).abs() < 1e-12, "{aug}: flip rate");
        assert!((get("mean_kl") - mean_kl).abs() < 1e-12, "{aug}: mean KL");
        assert!(get("flip_ci_low") <= flips + 1e-12 && flips <= get("flip_ci_high") + 1e-12, "{aug}: flip interval");
        assert!(get("kl_ci_low") <= mean_kl + 1e-12 && mean_kl <= get("kl_ci_high") + 1e-12, "{aug}: KL interval");
    }
    assert_eq!(table(&report.join("keyword_heatmap.parquet")).num_rows(), augmentations * 9);
    assert_eq!(table(&report.join("keyword_shift_correlation.parquet")).num_rows(), augmentations);

    let (path, summary_path) = (run.caption_alignment(), report.join("caption_retrieval.parquet"));
    let cap = table(&path);
    let summary = table(&summary_path);
    assert_eq!(summary.num_rows(), augmentations + 1, "the original and every augmentation");
    let augs = strings(&cap, &path, schema::AUGMENTATION);
    let rank = column::<clipshift_tables::arrow::array::UInt32Array>(&cap, &path, "rank").unwrap();
    for (r, aug) in strings(&summary, &summary_path, schema::AUGMENTATION).iter().enumerate() {
        let rows: Vec<usize> = (0..cap.num_rows()).filter(|&i| &augs[i] == aug).collect();
        let recall = rows.iter().filter(|&&i| rank.value(i) == 1).count() as f64 / rows.len() as f64;
        let got = column::<Float64Array>(&summary, &summary_path, "recall_at_1").unwrap().value(r);
        assert!((got - recall).abs() < 1e-12, "{aug}: recall@1 {got} vs {recall}");
    }
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    for stem in ["zero_shot_flips", "keyword_heatmap", "keyword_shift_correlation", "caption_retrieval"] {
        assert!(html.contains(&format!("id=\"{stem}\"")), "index.html lacks the figure {stem}");
    }
}

/// The depth figure's table: per augmentation and layer state, the mean over images of
/// `layer_shift.parquet`'s cosine, inside its interval, and the half-shift layer.
fn layer_profile_is_the_mean_of_layer_shift(run: &RunDir, augmentations: usize) {
    let (path, profile_path) = (run.layer_shift(), run.report_dir().join("layer_profile.parquet"));
    let shift = table(&path);
    let profile = table(&profile_path);
    assert_eq!(profile.num_rows(), augmentations * 3, "every augmentation at every layer state");
    let mut sums: HashMap<(String, u32), (f64, usize)> = HashMap::new();
    let augs = strings(&shift, &path, schema::AUGMENTATION);
    let layers = column::<clipshift_tables::arrow::array::UInt32Array>(&shift, &path, "layer").unwrap();
    let cos = column::<Float64Array>(&shift, &path, schema::COSINE_SIMILARITY).unwrap();
    for (r, aug) in augs.into_iter().enumerate() {
        let entry = sums.entry((aug, layers.value(r))).or_default();
        entry.0 += cos.value(r);
        entry.1 += 1;
    }
    let p_augs = strings(&profile, &profile_path, schema::AUGMENTATION);
    let p_layers = column::<clipshift_tables::arrow::array::UInt32Array>(&profile, &profile_path, "layer").unwrap();
    let mean = column::<Float64Array>(&profile, &profile_path, "mean_cosine_similarity").unwrap();
    let (lo, hi) = (
        column::<Float64Array>(&profile, &profile_path, "ci_low").unwrap(),
        column::<Float64Array>(&profile, &profile_path, "ci_high").unwrap(),
    );
    for r in 0..profile.num_rows() {
        let (sum, n) = sums[&(p_augs[r].clone(), p_layers.value(r))];
        assert!((mean.value(r) - sum / n as f64).abs() < 1e-12, "{} layer {}", p_augs[r], p_layers.value(r));
        assert!(lo.value(r) <= mean.value(r) + 1e-12 && mean.value(r) <= hi.value(r) + 1e-12);
    }
    assert!(run.report_dir().join("layer_profile.svg").is_file());
}

/// Every stage re-runs alone from the run directory, through its binary, with the same
/// result; a random-init model is announced once per stage, not twice.
fn every_stage_reruns_alone(study: &Study, metrics: &RecordBatch, emb: &RecordBatch) {
    let run = &study.run;
    let dir = run.root().to_str().unwrap();
    let out = run_ok(stage_binary("metrics").args(["--run", dir]));
    assert!(out.contains("nothing to do"), "a finished stage started again has nothing to do: {out}");
    run_ok(stage_binary("metrics").args(["--run", dir, "--fresh"]));
    assert_eq!(&table(&run.metrics()), metrics, "re-running metrics alone changed metrics.parquet");
    let out = run_ok(stage_binary("report").args(["--run", dir]));
    assert!(out.contains("index.html"), "report does not print where its results are: {out}");
    // Training from the command line: prints what it reached and where it wrote the SAE.
    let out = run_ok(stage_binary("sae").args(["train", "--run", dir, "--latents", "32", "--k", "4", "--epochs", "2"]));
    let trained = run.root().join("sae-m32-k4.safetensors");
    assert!(out.contains("explained variance") && out.contains(trained.to_str().unwrap()), "{out}");
    let sae = clipshift_sae::Sae::load(&trained).unwrap();
    assert_eq!((sae.d, sae.m, sae.k, sae.activation), (64, 32, 4, clipshift_sae::Activation::TopK));
    assert_eq!(sae.metadata["trained_by"], "clipshift-sae train");
    let model = tiny_model();
    let encode = stage_binary("encode")
        .args(["--run", dir, "--model", model.to_str().unwrap(), "--batch", "16", "--fresh"])
        .output();
    let encode = encode.unwrap();
    assert!(encode.status.success(), "{}", String::from_utf8_lossy(&encode.stderr));
    let stderr = String::from_utf8_lossy(&encode.stderr);
    assert_eq!(stderr.matches("meaningless").count(), 1, "the random-model warning, once:\n{stderr}");
    let emb2 = table(&run.embeddings());
    assert_eq!(emb2.num_rows(), emb.num_rows());
    let vectors = column::<FixedSizeListArray>(emb, &run.embeddings(), "embedding").unwrap();
    let v2 = column::<FixedSizeListArray>(&emb2, &run.embeddings(), "embedding").unwrap();
    let max_diff = (0..emb.num_rows())
        .flat_map(|i| {
            let a = vectors.value(i).as_any().downcast_ref::<Float32Array>().unwrap().values().to_vec();
            let b = v2.value(i).as_any().downcast_ref::<Float32Array>().unwrap().values().to_vec();
            a.into_iter().zip(b).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "batch 7 and batch 16 differ by {max_diff}");
}

/// ONNX Runtime's intra-op threads are one per CPU the process may run on, as `run.json`
/// records: under a one-CPU affinity mask (a Slurm job's cpuset), one thread, where ONNX
/// Runtime's own default would be one per core of the whole machine.
fn encode_threads_follow_the_cpus_it_may_use(study: &Study) {
    let run = &study.run;
    let recorded = || clipshift_tables::RunManifest::load(run).unwrap().encode.unwrap().intra_threads;
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(recorded(), Some(cpus), "the previous encode ran with every CPU of the process");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list");
    let first = allowed.trim().split([',', '-']).next().unwrap().to_string();
    let model = tiny_model();
    let encode = stage_binary("encode");
    let mut pinned = std::process::Command::new("taskset");
    pinned.args(["--cpu-list", &first]).arg(encode.get_program()).args([
        "--run",
        run.root().to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--fresh",
    ]);
    let out = pinned.output().unwrap_or_else(|e| panic!("taskset (util-linux: apt-get install util-linux): {e}"));
    assert!(out.status.success(), "{pinned:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(recorded(), Some(1), "encode on one CPU");
}

/// `suite` on the first `images` samples through augment (run seed `seed`), encode with
/// the tiny model, metrics and the report; the temporary root and the run directory.
fn run_suite(name: &str, suite: &Suite, images: usize, seed: u64) -> (PathBuf, RunDir) {
    let root = temp_dir(name);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    copy_samples(&data, images);
    let run = RunDir::new(root.join("run"));
    clipshift_augment::stage::run(&augment_config(run.root(), &data, suite.clone(), seed)).unwrap();
    clipshift_encode::stage::run(&encode_config(run.root(), 32)).unwrap();
    let metrics =
        MetricsConfig { run_dir: run.root().to_path_buf(), shard: clipshift_tables::Shard::WHOLE, fresh: false };
    clipshift_metrics::stage::run(&metrics).unwrap();
    clipshift_report::run(&clipshift_report::ReportConfig::new(run.root())).unwrap();
    (root, run)
}

/// A run of `suites/severity.toml` (three images): family and severity recorded for every
/// sweep level (null for the original and the flip), and the report's dose–response
/// table the mean of metrics.parquet over images at every level.
#[test]
fn severity_sweep_gives_a_dose_response() {
    use clipshift_tables::arrow::array::UInt32Array;
    let suite = Suite::load(&crate::support::workspace_root().join("suites/severity.toml")).unwrap();
    let (root, run) = run_suite("severity", &suite, 3, 3);

    let path = run.augmentations();
    let augs = table(&path);
    let names = strings(&augs, &path, schema::AUGMENTATION);
    let family = column::<StringArray>(&augs, &path, "family").unwrap();
    let severity = column::<UInt32Array>(&augs, &path, "severity").unwrap();
    for (i, name) in names.iter().enumerate() {
        match suite.member(name).and_then(|m| m.level.as_ref()) {
            Some(level) => {
                assert_eq!((family.value(i), severity.value(i)), (level.family.as_str(), level.severity), "{name}");
            }
            None => assert!(family.is_null(i) && severity.is_null(i), "{name}"),
        }
    }

    let path = run.metrics();
    let m = table(&path);
    let m_augs = strings(&m, &path, schema::AUGMENTATION);
    let cosine = column::<Float64Array>(&m, &path, schema::COSINE_SIMILARITY).unwrap();
    let dose_path = run.report_dir().join("dose_response.parquet");
    let dose = table(&dose_path);
    let quantity = strings(&dose, &dose_path, "quantity");
    let d_augs = strings(&dose, &dose_path, schema::AUGMENTATION);
    let d_mean = column::<Float64Array>(&dose, &dose_path, "mean").unwrap();
    let cosine_rows: Vec<usize> = (0..dose.num_rows()).filter(|&r| quantity[r] == schema::COSINE_SIMILARITY).collect();
    assert_eq!(cosine_rows.len(), 8 * 5, "every level of the eight families");
    for r in cosine_rows {
        let values: Vec<f64> = (0..m.num_rows()).filter(|&i| m_augs[i] == d_augs[r]).map(|i| cosine.value(i)).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((d_mean.value(r) - mean).abs() < 1e-12, "{}: {} vs {mean}", d_augs[r], d_mean.value(r));
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// A run of the paper's suite with the noise floor (four images): the floor members are
/// marked in augmentations.parquet, noise_floor.parquet is the brute-force comparison of
/// metrics.parquet with the per-image floor, the page names the augmentations inside it,
/// and the cosine figures carry the band.
#[test]
fn the_noise_floor_is_measured_beside_the_suite() {
    use clipshift_tables::arrow::array::BooleanArray;
    let (root, run) = run_suite("floor", &Suite::paper().with_floor().unwrap(), 4, 5);

    let path = run.augmentations();
    let augs = table(&path);
    let floor_col = column::<BooleanArray>(&augs, &path, "floor").unwrap();
    let floor_members = ["floor_jpeg95", "floor_shift1", "floor_resize75"];
    for (i, name) in strings(&augs, &path, schema::AUGMENTATION).iter().enumerate() {
        assert_eq!(floor_col.value(i), floor_members.contains(&name.as_str()), "{name}");
    }

    // Per image, the smallest cosine any floor member gives.
    let path = run.metrics();
    let m = table(&path);
    let (ids, m_augs) =
        (column::<UInt64Array>(&m, &path, schema::IMAGE_ID).unwrap(), strings(&m, &path, schema::AUGMENTATION));
    let cosine = column::<Float64Array>(&m, &path, schema::COSINE_SIMILARITY).unwrap();
    let mut floor: HashMap<u64, f64> = HashMap::new();
    for r in (0..m.num_rows()).filter(|&r| floor_members.contains(&m_augs[r].as_str())) {
        let v = floor.entry(ids.value(r)).or_insert(f64::INFINITY);
        *v = v.min(cosine.value(r));
    }
    assert_eq!(floor.len(), 4);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

    let path = run.noise_floor();
    let t = table(&path);
    let names = strings(&t, &path, schema::AUGMENTATION);
    let get = |c: &str| column::<Float64Array>(&t, &path, c).unwrap().clone();
    let (mean_cos, floor_cos, diff, hi) = (get("mean_cosine"), get("floor_cosine"), get("difference"), get("ci_high"));
    let inside = column::<BooleanArray>(&t, &path, "inside").unwrap();
    let is_floor = column::<BooleanArray>(&t, &path, "floor").unwrap();
    assert_eq!(t.num_rows(), 1 + 12, "the floor's own row and every augmentation");
    let mut said_inside = Vec::new();
    for (r, name) in names.iter().enumerate() {
        let name = name.as_str();
        if name == "noise_floor" {
            assert!((mean_cos.value(r) - mean(&floor.values().copied().collect::<Vec<_>>())).abs() < 1e-12);
            continue;
        }
        let rows: Vec<usize> = (0..m.num_rows()).filter(|&i| m_augs[i] == name).collect();
        let own: Vec<f64> = rows.iter().map(|&i| cosine.value(i)).collect();
        assert!((mean_cos.value(r) - mean(&own)).abs() < 1e-12, "{name}");
        assert_eq!(is_floor.value(r), floor_members.contains(&name), "{name}");
        if is_floor.value(r) {
            assert!(diff.is_null(r) && inside.is_null(r), "{name}: a floor member is not tested against itself");
            continue;
        }
        let d: Vec<f64> = rows.iter().map(|&i| cosine.value(i) - floor[&ids.value(i)]).collect();
        let under: Vec<f64> = rows.iter().map(|&i| floor[&ids.value(i)]).collect();
        assert!((diff.value(r) - mean(&d)).abs() < 1e-12, "{name}");
        assert!((floor_cos.value(r) - mean(&under)).abs() < 1e-12, "{name}");
        assert_eq!(inside.value(r), hi.value(r) >= 0.0, "{name}");
        if inside.value(r) {
            said_inside.push(name.to_owned());
        }
    }
    let page = std::fs::read_to_string(run.report_dir().join("index.html")).unwrap();
    let sentence = page.split("Noise floor (").nth(1).expect("the findings name the floor");
    let sentence = &sentence[..sentence.find("</li>").unwrap()];
    let inside_part = &sentence[sentence.find("Inside the floor").unwrap()..sentence.find("Outside:").unwrap()];
    for name in &said_inside {
        assert!(inside_part.contains(&format!("<b>{name}</b>")), "{name} missing from: {inside_part}");
    }
    for stem in ["cosine_distribution", "layer_profile"] {
        let svg = std::fs::read_to_string(run.report_dir().join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("noise floor"), "{stem} draws the floor");
    }
    let path = run.report_dir().join("layer_profile.parquet");
    let profile = table(&path);
    assert!(strings(&profile, &path, schema::AUGMENTATION).iter().any(|a| a == "noise_floor"), "per-layer floor rows");
    let path = run.report_dir().join("attention_alignment.parquet");
    assert_eq!(table(&path).num_rows(), 12, "both attention similarities of every augmentation");
    std::fs::remove_dir_all(&root).unwrap();
}
