//! Bad input at every stage: each failure is a row of errors.parquet with the same kind
//! whichever stage meets it, and the rest of the work is kept.

use std::sync::Arc;

use clipshift_augment::Suite;
use clipshift_augment::stage::AugmentConfig;
use clipshift_encode::SessionConfig;
use clipshift_encode::stage::EncodeConfig;
use clipshift_metrics::stage::MetricsConfig;
use clipshift_tables::arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use clipshift_tables::{ErrorKind, ErrorRecord, RunDir, TableWriter, column, read_errors, schema};

use crate::support::{copy_samples, table, temp_dir, tiny_model};

fn kinds(errors: &[ErrorRecord], stage: &str) -> Vec<(ErrorKind, Option<u64>, Option<String>)> {
    let mut found: Vec<_> =
        errors.iter().filter(|e| e.stage == stage).map(|e| (e.kind, e.image_id, e.augmentation.clone())).collect();
    found.sort_by_key(|(kind, id, aug)| (kind.as_str(), *id, aug.clone()));
    found
}

/// Rewrites augmentations.parquet with `params` of (image, augmentation) replaced.
fn corrupt_params(run: &RunDir, image_id: u64, augmentation: &str, params: &str) {
    let path = run.augmentations();
    let batch = table(&path);
    let ids = column::<UInt64Array>(&batch, &path, schema::IMAGE_ID).unwrap();
    let augs = column::<StringArray>(&batch, &path, schema::AUGMENTATION).unwrap();
    let old = column::<StringArray>(&batch, &path, "params").unwrap();
    let new: StringArray = (0..batch.num_rows())
        .map(|i| Some(if ids.value(i) == image_id && augs.value(i) == augmentation { params } else { old.value(i) }))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[batch.schema().index_of("params").unwrap()] = Arc::new(new);
    let mut writer = TableWriter::create(&path, batch.schema()).unwrap();
    writer.write(&RecordBatch::try_new(batch.schema(), columns).unwrap()).unwrap();
    writer.finish().unwrap();
}

#[test]
fn every_stage_records_the_same_kind_for_the_same_failure_and_keeps_the_rest() {
    let root = temp_dir("bad-input");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let files = copy_samples(&data, 2);
    std::fs::write(data.join("broken.jpg"), b"this is not a JPEG").unwrap();
    let run = RunDir::new(root.join("run"));
    let dir = run.root().to_path_buf();
    let suite = Suite::paper();
    let config = AugmentConfig {
        run_dir: dir.clone(),
        data_dir: data.clone(),
        suite,
        seed: 0,
        image_size: 224,
        save_images: false,
        limit: None,
    };
    clipshift_augment::stage::run(&config).unwrap();
    let images = table(&run.images());
    let ids = column::<UInt64Array>(&images, &run.images(), schema::IMAGE_ID).unwrap();
    let paths = column::<StringArray>(&images, &run.images(), "path").unwrap();
    let (first, second) = (ids.value(0), ids.value(1));

    // A damaged parameter record: encode cannot replay that one variant.
    corrupt_params(&run, first, "blur", "{not json");
    let encoded = clipshift_encode::stage::run(&EncodeConfig {
        run_dir: dir.clone(),
        model_dir: tiny_model(),
        policy: None,
        session: SessionConfig::default(),
        batch: 8,
        dump_pixels: None,
    })
    .unwrap();
    assert_eq!(encoded.rows, 2 * 10 - 1, "every other variant is encoded");

    // The second source changes into garbage after encoding: metrics cannot replay its pixels.
    let second_file = files.iter().find(|f| f.ends_with(paths.value(1))).unwrap();
    std::fs::write(second_file, b"garbage now").unwrap();
    clipshift_metrics::stage::run(&MetricsConfig { run_dir: dir.clone() }).unwrap();

    let errors = read_errors(&run.errors()).unwrap();
    assert_eq!(kinds(&errors, "augment"), vec![(ErrorKind::Decode, None, None)]);
    assert_eq!(kinds(&errors, "encode"), vec![(ErrorKind::Params, Some(first), Some("blur".into()))]);
    assert_eq!(
        kinds(&errors, "metrics"),
        vec![(ErrorKind::Decode, Some(second), None), (ErrorKind::MissingEmbedding, Some(first), Some("blur".into()))]
    );
    let decode = errors.iter().find(|e| e.stage == "metrics" && e.kind == ErrorKind::Decode).unwrap();
    assert!(decode.message.contains(paths.value(1)), "the message names the file: {}", decode.message);

    // The rest is kept: the unreadable image still has its embedding metrics, with null pixel metrics.
    let metrics = table(&run.metrics());
    let m_ids = column::<UInt64Array>(&metrics, &run.metrics(), schema::IMAGE_ID).unwrap();
    let cosine = column::<Float64Array>(&metrics, &run.metrics(), "cosine_similarity").unwrap();
    let ssim = column::<Float64Array>(&metrics, &run.metrics(), "ssim").unwrap();
    let rows: Vec<usize> = (0..metrics.num_rows()).filter(|&r| m_ids.value(r) == second).collect();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|&r| cosine.is_valid(r) && !ssim.is_valid(r)));
    assert_eq!(metrics.num_rows(), 9 + 8, "the first image lost only its blur row");
    std::fs::remove_dir_all(&root).unwrap();
}
