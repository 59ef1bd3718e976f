//! The stage on a real run: augment and encode two sample photographs with the tiny model,
//! then check the SAE tables against what they must hold.

use std::collections::HashMap;
use std::path::PathBuf;

use clipshift_augment::Suite;
use clipshift_augment::stage::AugmentConfig;
use clipshift_encode::SessionConfig;
use clipshift_encode::stage::EncodeConfig;
use clipshift_sae::stage::{SaeConfig, run};
use clipshift_tables::arrow::array::{Array, FixedSizeListArray};
use clipshift_tables::arrow::array::{Float32Array, Float64Array, StringArray, UInt32Array, UInt64Array};
use clipshift_tables::{RunDir, column, read_table, schema};

use crate::root;

/// The stage on `run_dir` with the SAE `sae`, the model's defaults otherwise.
fn run_sae(run_dir: &RunDir, sae: PathBuf) -> clipshift_sae::stage::SaeSummary {
    let config = SaeConfig {
        run_dir: run_dir.root().to_path_buf(),
        sae,
        model: None,
        concepts: None,
        batch: 64,
        session: SessionConfig::default(),
    };
    run(&config).unwrap()
}

/// Augments two sample photographs under the paper's suite into `dir/run` and encodes them
/// with the model at `model` (a directory or a sidecar).
fn encoded_samples(dir: &std::path::Path, model: PathBuf) -> RunDir {
    let _ = std::fs::remove_dir_all(dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for name in ["cat_chelsea.png", "coffee_cup.png"] {
        std::fs::copy(root().join("data/samples").join(name), data.join(name)).unwrap();
    }
    let run_dir = RunDir::new(dir.join("run"));
    clipshift_augment::stage::run(&AugmentConfig {
        run_dir: run_dir.root().to_path_buf(),
        data_dir: data,
        suite: Suite::paper(),
        seed: 3,
        image_size: 224,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        save_images: false,
        limit: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();
    clipshift_encode::stage::run(&EncodeConfig {
        run_dir: run_dir.root().to_path_buf(),
        model_dir: model,
        policy: None,
        session: SessionConfig::default(),
        batch: 8,
        dump_pixels: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();
    run_dir
}

/// `dir/model` holding copies of the tiny model's files `names`.
fn tiny_copy(dir: &std::path::Path, names: &[&str]) -> PathBuf {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for name in names {
        std::fs::copy(root().join("models/tiny-clip").join(name), model.join(name)).unwrap();
    }
    model
}

/// A run encoded through a named sidecar (as an int8 or float16 copy's) is read again
/// through it, not through its directory's model.json, which here names another model.
#[test]
fn a_run_encoded_through_a_named_sidecar_is_read_through_it() {
    let dir: PathBuf = std::env::temp_dir().join(format!("clipshift-sae-sidecar-{}", std::process::id()));
    let model = tiny_copy(&dir, &["model.onnx", "head.safetensors", "text_model.onnx", "tokenizer.json"]);
    let tiny = root().join("models/tiny-clip");
    let sidecar = std::fs::read_to_string(tiny.join("model.json")).unwrap();
    std::fs::write(model.join("model.copy.json"), &sidecar).unwrap();
    let mut other: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
    other["sha256"] = "0".repeat(64).into();
    std::fs::write(model.join("model.json"), other.to_string()).unwrap();

    let run_dir = encoded_samples(&dir.join("work"), model.join("model.copy.json"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.root().join("run.json")).unwrap()).unwrap();
    let recorded = manifest["model"]["sidecar"].as_str().unwrap_or_default();
    assert!(recorded.ends_with("model.copy.json"), "run.json records {:?}", manifest["model"]);
    let summary = run_sae(&run_dir, tiny.join("sae-random.safetensors"));
    assert_eq!(summary.variants, 18);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Training reads a run's states at the width its run.json recorded: the model that
/// encoded it need not be at hand any more (a run copied off the cluster, say).
#[test]
fn a_runs_states_are_read_without_its_model() {
    let dir: PathBuf = std::env::temp_dir().join(format!("clipshift-sae-no-model-{}", std::process::id()));
    let model = tiny_copy(&dir, &["model.onnx", "model.json", "head.safetensors"]);
    let run_dir = encoded_samples(&dir.join("work"), model.clone());
    std::fs::remove_dir_all(&model).unwrap();
    let states = clipshift_sae::stage::run_states(run_dir.root(), true).unwrap();
    assert_eq!((states.d, states.states.len()), (64, 2 * 64), "the 2 originals' last states");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stage_tables_agree_with_the_embeddings() {
    let dir: PathBuf = std::env::temp_dir().join(format!("clipshift-sae-stage-{}", std::process::id()));
    let run_dir = encoded_samples(&dir, root().join("models/tiny-clip"));
    let sae_file = root().join("models/tiny-clip/sae-random.safetensors");
    let summary = run_sae(&run_dir, sae_file);
    assert_eq!(summary.variants, 18);
    assert_eq!(summary.labelled, Ok(512));

    // The cosine of each variant's embedding with its original's, from encode's table.
    let path = run_dir.embeddings();
    let table = read_table(&path).unwrap();
    let ids = column::<UInt64Array>(&table, &path, schema::IMAGE_ID).unwrap();
    let names = column::<StringArray>(&table, &path, schema::AUGMENTATION).unwrap();
    let lists = column::<FixedSizeListArray>(&table, &path, "embedding").unwrap();
    let values = lists.values().as_any().downcast_ref::<Float32Array>().unwrap().values();
    let width = lists.value_length() as usize;
    let embedding = |i: usize| values[i * width..(i + 1) * width].iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let mut by_key = HashMap::new();
    for i in 0..table.num_rows() {
        by_key.insert((ids.value(i), names.value(i).to_string()), embedding(i));
    }
    let cosine = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt())
    };

    // n = 0 restores nothing: the cosine of the embeddings, through the exported head.
    let path = run_dir.faithfulness();
    let table = read_table(&path).unwrap();
    let (fid, fname) = (
        column::<UInt64Array>(&table, &path, schema::IMAGE_ID).unwrap(),
        column::<StringArray>(&table, &path, schema::AUGMENTATION).unwrap(),
    );
    let (order, n, cos) = (
        column::<StringArray>(&table, &path, "order").unwrap(),
        column::<UInt32Array>(&table, &path, "n").unwrap(),
        column::<Float64Array>(&table, &path, "cosine").unwrap(),
    );
    assert_eq!(table.num_rows(), 18 * 5 * clipshift_sae::restore_counts(8).len());
    for i in (0..table.num_rows()).filter(|&i| n.value(i) == 0) {
        let original = &by_key[&(fid.value(i), schema::ORIGINAL.to_string())];
        let variant = &by_key[&(fid.value(i), fname.value(i).to_string())];
        let want = cosine(original, variant);
        assert!(
            (cos.value(i) - want).abs() < 1e-4,
            "{} {}: {} vs {want}",
            fname.value(i),
            order.value(i),
            cos.value(i)
        );
    }

    // At most k active latents per variant (the original included), every attribution
    // row a latent active in the original or the variant.
    let path = run_dir.sae_latents();
    let latents = read_table(&path).unwrap();
    assert!(latents.num_rows() <= 20 * 8 && latents.num_rows() >= 20);
    let path = run_dir.component_attribution();
    let attribution = read_table(&path).unwrap();
    let zo = column::<Float32Array>(&attribution, &path, "z_original").unwrap();
    let za = column::<Float32Array>(&attribution, &path, "z_augmented").unwrap();
    assert!((0..attribution.num_rows()).all(|i| zo.value(i) != 0.0 || za.value(i) != 0.0));
    labels_are_the_best_concepts(&run_dir);
    a_trained_sae_runs_on_the_same_run(&run_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each latent's label is the concept whose text embedding is closest to its decoder
/// direction through the head (both checked against references elsewhere), by brute force
/// in f64.
fn labels_are_the_best_concepts(run_dir: &RunDir) {
    let path = run_dir.latent_labels();
    let table = read_table(&path).unwrap();
    assert_eq!(table.num_rows(), 512);
    let spec = clipshift_encode::ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    let sae = clipshift_sae::Sae::load(&root().join("models/tiny-clip/sae-random.safetensors")).unwrap();
    let lens = clipshift_sae::Lens::new(&clipshift_sae::Head::of_model(&spec).unwrap(), &sae).unwrap();
    let concepts = clipshift_sae::Concepts::new(None, &Suite::paper().keywords()).unwrap();
    let mut encoder = clipshift_encode::TextEncoder::new(&spec, &SessionConfig::default()).unwrap().unwrap();
    let prompts: Vec<&str> = concepts.names.iter().map(String::as_str).collect();
    let unit = |v: Vec<f64>| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let texts: Vec<Vec<f64>> = encoder
        .embed(&prompts, 64)
        .unwrap()
        .into_iter()
        .map(|e| unit(e.into_iter().map(f64::from).collect()))
        .collect();
    let latents = column::<UInt32Array>(&table, &path, "latent").unwrap();
    let labels = column::<StringArray>(&table, &path, "label").unwrap();
    let scores = column::<Float64Array>(&table, &path, "score").unwrap();
    for i in (0..table.num_rows()).step_by(7) {
        let e = unit(lens.latent_embedding(latents.value(i) as usize));
        let cos: Vec<f64> = texts.iter().map(|t| t.iter().zip(&e).map(|(a, b)| a * b).sum()).collect();
        let best = (0..cos.len()).fold(0, |b, c| if cos[c] > cos[b] { c } else { b });
        let second = (0..cos.len()).filter(|&c| c != best).map(|c| cos[c]).fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (scores.value(i) - cos[best]).abs() < 1e-5,
            "latent {}: score {} vs {}",
            latents.value(i),
            scores.value(i),
            cos[best]
        );
        // A near tie may fall either way in f32.
        if cos[best] - second > 1e-5 {
            assert_eq!(labels.value(i), concepts.names[best], "latent {}", latents.value(i));
        }
    }
}

/// `train` on the run's states writes an SAE that the stage then runs with.
fn a_trained_sae_runs_on_the_same_run(run_dir: &RunDir) {
    use clipshift_sae::train::{TrainConfig, train};
    let states = clipshift_sae::stage::run_states(run_dir.root(), false).unwrap();
    assert_eq!((states.d, states.states.len()), (64, 20 * 64), "2 images x 10 variants");
    // The last block's state: the last 64 values of layer_cls_states.
    let path = run_dir.embeddings();
    let emb = read_table(&path).unwrap();
    let lists = emb.column_by_name("layer_cls_states").unwrap().as_any().downcast_ref::<FixedSizeListArray>().unwrap();
    let values = lists.values().as_any().downcast_ref::<Float32Array>().unwrap();
    let width = lists.value_length() as usize;
    let mut want: Vec<Vec<f32>> =
        (0..emb.num_rows()).map(|i| values.values()[(i + 1) * width - 64..(i + 1) * width].to_vec()).collect();
    let mut got: Vec<Vec<f32>> = states.states.chunks_exact(64).map(<[f32]>::to_vec).collect();
    let key = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    let config = TrainConfig { latents: 32, k: 4, epochs: 3, batch: 8, holdout: 0.2, ..TrainConfig::seed_defaults() };
    let (trainer, summary) = train(&states.states, 64, &config, |_, _| {}).unwrap();
    assert_eq!((summary.train_samples, summary.holdout_samples), (16, 4));
    let file = run_dir.root().join("trained.safetensors");
    trainer.sae(HashMap::new()).unwrap().save(&file).unwrap();
    let summary = run_sae(run_dir, file);
    assert_eq!(summary.variants, 18);
}
