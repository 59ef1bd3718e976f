//! The augment stage: scan a data folder, record every source image and the sampled
//! parameters of every variant (`images.parquet`, `augmentations.parquet`).
//!
//! Work is partitioned by image and processed in bounded chunks, so memory does not
//! grow with the number of images. Unreadable images become rows of `errors.parquet`
//! and the rest of the run continues. Chunks are committed as parts every few seconds:
//! a killed run started again skips every image already committed (or recorded as an
//! error). With a [`Shard`], only the images whose relative path falls in it are read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clipshift_console::progress_bar;
use clipshift_tables::arrow::array::{BinaryArray, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use clipshift_tables::{
    AugmentManifest, ErrorKind, ErrorLog, InputsManifest, Lineage, RunDir, RunManifest, Shard, StageParts, Start,
    SuiteManifest, TableError, column, count_rows, fingerprint, read_error_files, read_files, schema, shard_part_files,
    stage_error_files,
};
use image::RgbImage;
use rayon::prelude::*;

use crate::source::{SourceImage, canonical, decode, scan_images};
use crate::{AugmentError, Fnv1a, Params, Rng, Suite};

/// Images decoded and augmented per chunk: bounds memory, keeps every core busy.
const CHUNK_IMAGES: usize = 64;

/// What the augment stage needs to know.
#[derive(Debug, Clone)]
pub struct AugmentConfig {
    pub run_dir: PathBuf,
    pub data_dir: PathBuf,
    pub suite: Suite,
    pub seed: u64,
    /// Side of the square canonical image every augmentation starts from.
    pub image_size: u32,
    /// Sources with more pixels are refused before decoding ([`crate::DEFAULT_MAX_PIXELS`]).
    pub max_pixels: u64,
    /// Also store every variant as PNG (table column and `images/<id>/<aug>.png`).
    pub save_images: bool,
    /// Use only the first `limit` images (in path order), before sharding.
    pub limit: Option<usize>,
    /// The part of the images this process handles.
    pub shard: Shard,
    /// Recompute everything, even what an earlier run with the same settings committed.
    pub fresh: bool,
}

/// What the stage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AugmentSummary {
    pub images: usize,
    pub variants: usize,
    pub errors: usize,
    /// Fresh, resumed, or already done.
    pub start: Start,
}

impl AugmentSummary {
    /// What `clipshift-augment` prints after `augment`: images, variants, errors, where.
    pub fn line(&self, run_dir: &Path) -> String {
        format!(
            "{} images, {} variants, {} errors{} -> {}",
            self.images,
            self.variants,
            self.errors,
            clipshift_console::start_note(self.start),
            run_dir.display()
        )
    }
}

/// Sees the canonical image of each new image the stage records (not duplicates, not
/// failures), once, as the image's rows are written. Through it `clipshift-fused` hands
/// the decoded sources to the encode stage, so no source is decoded twice.
pub type SourceObserver<'a> = &'a (dyn Fn(u64, RgbImage) + Sync);

/// The seed recorded for one variant: parameters are sampled from `Rng::from_seed(seed)`.
pub fn variant_seed(run_seed: u64, image_id: u64, augmentation: &str) -> u64 {
    Rng::keyed(run_seed, image_id, augmentation).next_u64()
}

/// Samples the parameters of every suite member for one image (the original first).
pub fn sample_variants(suite: &Suite, run_seed: u64, image_id: u64, size: u32) -> Vec<(String, u64, Params)> {
    let mut variants =
        vec![(schema::ORIGINAL.to_string(), variant_seed(run_seed, image_id, schema::ORIGINAL), Params::Identity)];
    for member in suite.members() {
        // The levels of a sweep share their family's draws (paired severities).
        let seed = variant_seed(run_seed, image_id, member.rng_key());
        let params = member.transform.sample(&mut Rng::from_seed(seed), size, size);
        variants.push((member.name.clone(), seed, params));
    }
    variants
}

struct ImageRows {
    path: String,
    /// What images.parquet records; its pixels are dropped once the variants are sampled.
    source: SourceImage,
    /// Made when variants are saved or an observer is shown the image.
    canonical: Option<RgbImage>,
    variants: Vec<(String, u64, Params, Option<Vec<u8>>)>,
}

pub fn run(config: &AugmentConfig) -> Result<AugmentSummary, AugmentError> {
    run_observed(config, None)
}

/// The stage, with `observer` shown the canonical image of every image it records.
pub fn run_observed(
    config: &AugmentConfig,
    observer: Option<SourceObserver<'_>>,
) -> Result<AugmentSummary, AugmentError> {
    let run = RunDir::new(&config.run_dir);
    run.create()?;
    run.check_contained()?;
    let shard = config.shard;
    let data_root = std::fs::canonicalize(&config.data_dir)
        .map_err(|source| AugmentError::Io { path: config.data_dir.clone(), source })?;
    let suite_digest = format!("{:016x}", Fnv1a::new().bytes(config.suite.to_json().to_string().as_bytes()).finish());
    let request = Lineage::from([
        ("seed".into(), config.seed.to_string()),
        ("suite".into(), suite_digest.clone()),
        ("image_size".into(), config.image_size.to_string()),
        ("max_pixels".into(), config.max_pixels.to_string()),
        ("data_root".into(), data_root.display().to_string()),
        ("limit".into(), format!("{:?}", config.limit)),
        ("save_images".into(), config.save_images.to_string()),
        // The tables' columns: a run written before `family`, `severity` and `floor`
        // existed is recomputed instead of being called finished.
        ("table_format".into(), "3".into()),
    ]);
    let mut manifest = RunManifest::load_shard(&run, shard)?;
    let committed = !shard_part_files(&run.images(), shard)?.is_empty();
    let start = manifest.begin("augment", request, config.fresh, committed);
    if start == Start::Done {
        tracing::info!(%shard, "augment already finished with these settings; nothing to do (--fresh recomputes)");
        // Keyword prompts change no pixel: a finished run takes new ones without recomputing.
        if let Some(augment) = manifest.augment.as_mut().filter(|a| a.suite.keywords != config.suite.keywords()) {
            augment.suite.keywords = config.suite.keywords();
            manifest.save_shard(&run, shard)?;
        }
        return summary(&run, shard, start);
    }
    manifest.save_shard(&run, shard)?;

    let mut files = scan_images(&data_root)?;
    if let Some(limit) = config.limit {
        files.truncate(limit);
    }
    let mut files: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|path| {
            let relative = relative_path(&data_root, &path);
            (path, relative)
        })
        .filter(|(_, relative)| shard.contains(relative))
        .collect();
    let tables = [(run.images(), schema::images()), (run.augmentations(), schema::augmentations())];
    let mut parts = StageParts::open(&run, "augment", shard, &tables, start == Start::Fresh)?;
    // Resumed: the images committed before (by content, to find duplicates) and every
    // path already accounted for, as an image or an error.
    let mut seen = committed_images(&run, shard)?;
    let mut done: HashSet<String> = seen.values().cloned().collect();
    done.extend(read_error_files(&stage_error_files(&run, "augment", shard)?)?.into_iter().filter_map(|e| e.path));
    files.retain(|(_, relative)| !done.contains(relative));
    tracing::info!(
        images = files.len(), already = done.len(), %shard, data = %data_root.display(), suite = config.suite.name(),
        "augment"
    );

    let errors = ErrorLog::new("augment");
    let progress = progress_bar(files.len() as u64, "augment");
    for chunk in files.chunks(CHUNK_IMAGES) {
        let rows: Vec<Option<ImageRows>> = chunk
            .par_iter()
            .map(|(path, relative)| {
                let result = process_image(config, &run, path, relative, observer.is_some());
                progress.inc(1);
                match result {
                    Ok(rows) => Some(rows),
                    Err(err) => {
                        errors.record(Some(relative), None, None, err.kind(), err.to_string());
                        None
                    }
                }
            })
            .collect();
        let mut kept = Vec::with_capacity(rows.len());
        for mut image in rows.into_iter().flatten() {
            if let Some(first) = seen.get(&image.source.image_id) {
                errors.record(
                    Some(&image.path),
                    Some(image.source.image_id),
                    None,
                    ErrorKind::Duplicate,
                    format!("same content as {first}; only the first is used"),
                );
                continue;
            }
            seen.insert(image.source.image_id, image.path.clone());
            if let (Some(observe), Some(canonical)) = (observer, image.canonical.take()) {
                observe(image.source.image_id, canonical);
            }
            kept.push(image);
        }
        write_chunk(&run, &config.suite, &kept, &mut parts)?;
        parts.commit_if_due(&errors)?;
    }
    progress.finish_and_clear();
    parts.finish(&errors)?;

    let mut ids: Vec<u64> = seen.keys().copied().collect();
    manifest.augment = Some(AugmentManifest {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        seed: config.seed,
        data_root,
        image_size: config.image_size,
        max_pixels: config.max_pixels,
        limit: config.limit,
        save_images: config.save_images,
        suite: suite_manifest(&config.suite),
        inputs: InputsManifest { images: ids.len(), fingerprint: fingerprint(&mut ids), suite: suite_digest },
    });
    manifest.complete("augment");
    manifest.save_shard(&run, shard)?;
    summary(&run, shard, start)
}

/// The images a shard committed: `image_id` -> relative path.
fn committed_images(run: &RunDir, shard: Shard) -> Result<HashMap<u64, String>, AugmentError> {
    let path = run.images();
    let mut images = HashMap::new();
    for batch in read_files(shard_part_files(&path, shard)?, 8192, Some(&[schema::IMAGE_ID, "path"]))? {
        let batch = batch?;
        let ids = column::<UInt64Array>(&batch, &path, schema::IMAGE_ID)?;
        let paths = column::<StringArray>(&batch, &path, "path")?;
        images.extend(ids.values().iter().zip(paths.iter()).map(|(id, p)| (*id, p.unwrap_or_default().to_string())));
    }
    Ok(images)
}

/// What the shard's tables hold.
fn summary(run: &RunDir, shard: Shard, start: Start) -> Result<AugmentSummary, AugmentError> {
    Ok(AugmentSummary {
        images: count_rows(&shard_part_files(&run.images(), shard)?)?,
        variants: count_rows(&shard_part_files(&run.augmentations(), shard)?)?,
        errors: count_rows(&stage_error_files(run, "augment", shard)?)?,
        start,
    })
}

fn process_image(
    config: &AugmentConfig,
    run: &RunDir,
    path: &Path,
    relative: &str,
    keep_canonical: bool,
) -> Result<ImageRows, AugmentError> {
    if path.to_str().is_none() {
        return Err(AugmentError::PathNotUtf8 { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| AugmentError::Read { path: path.to_path_buf(), source })?;
    let mut source = decode(path, &bytes, config.max_pixels)?;
    let base = (config.save_images || keep_canonical).then(|| canonical(&source.rgb, config.image_size));
    let mut variants = Vec::new();
    for (name, seed, params) in sample_variants(&config.suite, config.seed, source.image_id, config.image_size) {
        let png = match base.as_ref().filter(|_| config.save_images) {
            Some(base) => Some(save_variant(run, source.image_id, &name, &params.apply(base)?)?),
            None => None,
        };
        variants.push((name, seed, params, png));
    }
    // The decoded pixels are not kept past here: a chunk of large sources would be gigabytes.
    crate::jpeg::reuse_pixels(std::mem::replace(&mut source.rgb, RgbImage::new(0, 0)));
    Ok(ImageRows { path: relative.to_string(), source, canonical: base, variants })
}

fn save_variant(run: &RunDir, image_id: u64, name: &str, pixels: &image::RgbImage) -> Result<Vec<u8>, AugmentError> {
    let mut png = Vec::new();
    pixels
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| AugmentError::EncodePng { image_id, augmentation: name.to_string(), source })?;
    let dir = run.saved_images_dir().join(image_id.to_string());
    std::fs::create_dir_all(&dir).map_err(|source| AugmentError::Io { path: dir.clone(), source })?;
    let file = dir.join(format!("{name}.png"));
    clipshift_tables::write_atomic(&file, &png)?;
    Ok(png)
}

fn write_chunk(run: &RunDir, suite: &Suite, rows: &[ImageRows], parts: &mut StageParts) -> Result<(), AugmentError> {
    if rows.is_empty() {
        return Ok(());
    }
    let batch = RecordBatch::try_new(
        schema::images(),
        vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.source.image_id))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.path.as_str()))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.source.width))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.source.height))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.source.format))),
        ],
    )
    .map_err(|source| TableError::Arrow { path: run.images(), source })?;
    parts.write(0, &batch)?;

    let all = || rows.iter().flat_map(|r| r.variants.iter().map(move |v| (r.source.image_id, v)));
    let level = |name: &str| suite.member(name).and_then(|m| m.level.as_ref());
    let batch = RecordBatch::try_new(
        schema::augmentations(),
        vec![
            Arc::new(UInt64Array::from_iter_values(all().map(|(id, _)| id))),
            Arc::new(StringArray::from_iter_values(all().map(|(_, v)| v.0.as_str()))),
            Arc::new(UInt64Array::from_iter_values(all().map(|(_, v)| v.1))),
            Arc::new(StringArray::from_iter_values(all().map(|(_, v)| v.2.to_json()))),
            Arc::new(all().map(|(_, v)| level(&v.0).map(|l| l.family.as_str())).collect::<StringArray>()),
            Arc::new(all().map(|(_, v)| level(&v.0).map(|l| l.severity)).collect::<UInt32Array>()),
            Arc::new(BooleanArray::from_iter(all().map(|(_, v)| Some(suite.member(&v.0).is_some_and(|m| m.floor))))),
            Arc::new(all().map(|(_, v)| v.3.as_deref()).collect::<BinaryArray>()),
        ],
    )
    .map_err(|source| TableError::Arrow { path: run.augmentations(), source })?;
    parts.write(1, &batch)?;
    Ok(())
}

fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// The suite as `run.json` records it: every member with its hyperparameters resolved.
fn suite_manifest(suite: &Suite) -> SuiteManifest {
    let mut manifest: SuiteManifest =
        serde_json::from_value(suite.to_json()).expect("Suite::to_json has the manifest's shape");
    manifest.keywords = suite.keywords();
    manifest
}
