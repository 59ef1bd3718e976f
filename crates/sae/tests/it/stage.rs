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

#[test]
fn stage_tables_agree_with_the_embeddings() {
    let dir: PathBuf = std::env::temp_dir().join(format!("clipshift-sae-stage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
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
        model_dir: root().join("models/tiny-clip"),
        policy: None,
        session: SessionConfig::default(),
        batch: 8,
        dump_pixels: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();
    let sae_file = root().join("models/tiny-clip/sae-random.safetensors");
    let summary = run(&SaeConfig {
        run_dir: run_dir.root().to_path_buf(),
        sae: sae_file,
        model: None,
        concepts: None,
        batch: 64,
        session: SessionConfig::default(),
    })
    .unwrap();
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
    assert_eq!(read_table(&run_dir.latent_labels()).unwrap().num_rows(), 512);
    let _ = std::fs::remove_dir_all(&dir);
}
