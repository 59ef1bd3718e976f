//! The report's view of a run written in shards: every shard of one count must have
//! finished every stage with the same settings, and `run.json` is their merge.

use std::collections::{BTreeSet, HashMap};

use arrow::array::{StringArray, UInt64Array};

use crate::{Lineage, RunDir, RunManifest, Shard, TableError, column, fingerprint, read_table, schema, shard_counts};

/// The stages a shard runs, each of which must have finished.
const SHARD_STAGES: [&str; 3] = ["augment", "encode", "metrics"];

/// For a run written in shards, checks that every shard of one count finished every
/// stage with the same settings and that no image is in two shards, then writes the
/// merged `run.json`. Returns the shard count (1 for an unsharded run, left as it is).
pub fn merge_shards(run: &RunDir) -> Result<u32, TableError> {
    let mut counts = BTreeSet::new();
    for table in [run.images(), run.augmentations(), run.embeddings(), run.metrics(), run.pairwise()] {
        counts.extend(shard_counts(&table)?);
    }
    let count = match counts.len() {
        0 => return Ok(1),
        1 => *counts.first().expect("one count"),
        _ => {
            return Err(TableError::Shards {
                path: run.root().to_path_buf(),
                message: format!(
                    "the tables hold parts of runs with {} shards; run every stage again with one shard count",
                    counts.iter().map(u32::to_string).collect::<Vec<_>>().join(" and ")
                ),
            });
        }
    };
    if count == 1 {
        return Ok(1);
    }
    let mut manifests = Vec::new();
    let mut missing = Vec::new();
    for k in 0..count {
        let shard = Shard::new(k, count).expect("k < count");
        if !run.shard_manifest(shard).exists() {
            missing.push(format!("{shard} (not run)"));
            continue;
        }
        let manifest = RunManifest::load_shard(run, shard)?;
        if let Some(stage) = SHARD_STAGES.iter().find(|s| !manifest.progress.get(**s).is_some_and(|p| p.complete)) {
            missing.push(format!("{shard} ({stage} not finished)"));
        }
        manifests.push((shard, manifest));
    }
    if !missing.is_empty() {
        return Err(TableError::Shards {
            path: run.shards_dir(),
            message: format!(
                "{} of {count} shards are missing or unfinished: {}; run them (with --shard K/{count}) before the report",
                missing.len(),
                missing.join(", ")
            ),
        });
    }
    let (first_shard, first) = &manifests[0];
    for (shard, manifest) in &manifests[1..] {
        let settings = |m: &RunManifest| {
            let requests: Vec<Lineage> = SHARD_STAGES.iter().map(|s| without_images(&m.progress[*s].request)).collect();
            (requests, m.model.clone())
        };
        if settings(manifest) != settings(first) {
            return Err(TableError::Shards {
                path: run.shard_manifest(*shard),
                message: format!(
                    "shard {shard} ran with other settings (seed, suite, model, ...) than shard {first_shard}; \
                     run it again with the same ones"
                ),
            });
        }
    }

    // Shards split by path; two files with the same content in two shards are both kept,
    // where one run would keep the first only.
    let path = run.images();
    let images = read_table(&path)?;
    let ids = column::<UInt64Array>(&images, &path, schema::IMAGE_ID)?;
    let paths = column::<StringArray>(&images, &path, "path")?;
    let mut seen = HashMap::with_capacity(ids.len());
    for (id, file) in ids.values().iter().zip(paths.iter()) {
        if let Some(other) = seen.insert(*id, file.unwrap_or_default()) {
            return Err(TableError::Shards {
                path,
                message: format!(
                    "{other} and {} have the same content and were read by different shards; remove one of them \
                     (an unsharded run keeps the first only)",
                    file.unwrap_or_default()
                ),
            });
        }
    }
    let mut ids = ids.values().to_vec();
    let images = fingerprint(&mut ids);

    let mut merged = first.clone();
    let set_images = |lineage: &mut Lineage| {
        if lineage.contains_key("images") {
            lineage.insert("images".into(), images.clone());
        }
    };
    if let Some(augment) = merged.augment.as_mut() {
        augment.inputs.images = ids.len();
        augment.inputs.fingerprint = images.clone();
    }
    if let Some(encode) = merged.encode.as_mut() {
        set_images(&mut encode.augment);
    }
    if let Some(metrics) = merged.metrics.as_mut() {
        set_images(&mut metrics.encode);
    }
    for progress in merged.progress.values_mut() {
        set_images(&mut progress.request);
    }
    // The text and SAE stages run on the whole run, after the merge: their sections live
    // in run.json only.
    let whole = RunManifest::load(run)?;
    merged.text = whole.text;
    merged.sae = whole.sae;
    merged.save(run)?;
    tracing::info!(shards = count, images = ids.len(), "merged the shards' manifests into run.json");
    Ok(count)
}

fn without_images(lineage: &Lineage) -> Lineage {
    let mut lineage = lineage.clone();
    lineage.remove("images");
    lineage
}
