//! The metrics stage: for every image, compare each augmented variant with the original
//! (embedding, attention and pixel metrics) and measure all pairwise distances among its
//! variants; writes `metrics.parquet` and `pairwise.parquet`, and, when the model exports
//! per-layer class-token states, `layer_shift.parquet` (the same comparison at every depth).
//!
//! Pixels are replayed from `augmentations.parquet`, never stored (or, run by
//! `clipshift-fused`, scored from the pixels the encode stage computed: `KnownPixels`).
//! Both input tables are streamed image by image in the same order, so memory does not
//! grow with the run.
//! Chunks of images are committed as parts; a resumed run skips the committed images.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clipshift_augment::{Params, Replay};
use clipshift_console::progress_bar;
use clipshift_tables::arrow::array::{
    Array, FixedSizeListArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use clipshift_tables::{
    ErrorKind, ErrorLog, ImageGroups, MetricsManifest, RunDir, RunManifest, Shard, SourceImages, StageParts, Start,
    TableError, column, count_rows, read_error_files, read_u64_column, recorded_variants, schema, shard_part_files,
    stage_error_files,
};
use image::RgbImage;
use rayon::prelude::*;

use crate::{
    AttentionMap, OriginalFeatures, PixelScores, aligned_attention_similarity, cosine_similarity, l2_distance,
    pdist_cosine, pdist_euclidean,
};

/// Images processed together: bounds memory, keeps every core busy.
const CHUNK_IMAGES: usize = 32;

/// What the metrics stage needs to know.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub run_dir: PathBuf,
    /// The part of the images this process handles.
    pub shard: Shard,
    /// Recompute everything, even what an earlier run with the same inputs committed.
    pub fresh: bool,
}

/// What the stage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSummary {
    /// Images measured by this run (not those committed by an earlier one).
    pub images: usize,
    pub metric_rows: usize,
    pub pairwise_rows: usize,
    pub errors: usize,
    pub start: Start,
}

impl MetricsSummary {
    /// What `clipshift-metrics` prints after `metrics`: counts and where.
    pub fn line(&self, run_dir: &Path) -> String {
        format!(
            "{} images, {} metric rows, {} pairwise rows, {} errors{} -> {}",
            self.images,
            self.metric_rows,
            self.pairwise_rows,
            self.errors,
            clipshift_console::start_note(self.start),
            run_dir.join("metrics.parquet").display()
        )
    }
}

/// Pixel scores of variants computed elsewhere in this process: `clipshift-fused` records
/// them from the encode stage's pixels (`clipshift_encode::stage::run_with`), so the
/// stage neither decodes nor replays those images. An image it does not hold (one a
/// resumed run encoded in an earlier process) is replayed as usual: the rows are the
/// same either way, computed by the same `OriginalFeatures::compare` on the same pixels.
/// It holds a few numbers per variant until the stage takes them (about 1 KiB per image).
#[derive(Default)]
pub struct KnownPixels {
    images: Mutex<HashMap<u64, ImageScores>>,
}

/// One image's pixel scores by augmentation (a failed comparison's message).
type ImageScores = HashMap<String, Result<PixelScores, String>>;

impl KnownPixels {
    /// Scores every variant of image `image_id` against its `original`.
    pub fn record(&self, image_id: u64, original: &RgbImage, variants: &[(&str, &RgbImage)]) {
        let features = OriginalFeatures::new(original);
        let scores = variants
            .iter()
            .filter(|(aug, _)| *aug != schema::ORIGINAL)
            .map(|(aug, pixels)| (aug.to_string(), features.compare(pixels).map_err(|e| e.to_string())))
            .collect();
        self.images.lock().expect("known pixels poisoned").insert(image_id, scores);
    }

    fn take(&self, image_id: u64) -> Option<ImageScores> {
        self.images.lock().expect("known pixels poisoned").remove(&image_id)
    }
}

/// Where one image's pixel scores come from.
enum PixelSource {
    Known(ImageScores),
    /// Replayed here; `None` when the source cannot be (recorded once).
    Replayed(Option<(Replay, OriginalFeatures)>),
}

impl PixelSource {
    fn open(id: u64, known: Option<&KnownPixels>, sources: &SourceImages, errors: &ErrorLog) -> Self {
        match known.and_then(|k| k.take(id)) {
            Some(scores) => Self::Known(scores),
            None => Self::Replayed(original_pixels(id, sources, errors)),
        }
    }

    /// The scores of one variant; `None` when the source could not be replayed.
    fn scores(&self, augmentation: &str, params: &str) -> Option<Result<PixelScores, (ErrorKind, String)>> {
        match self {
            Self::Known(scores) => Some(match scores.get(augmentation) {
                Some(Ok(s)) => Ok(*s),
                Some(Err(message)) => Err((ErrorKind::Metric, message.clone())),
                None => Err((ErrorKind::Metric, "no pixels were computed for this variant".into())),
            }),
            Self::Replayed(pixels) => pixels.as_ref().map(|p| pixel_scores(p, augmentation, params)),
        }
    }
}

/// A failure of the stage as a whole (per-image failures go to `errors.parquet`).
#[derive(Debug, thiserror::Error)]
pub enum MetricsStageError {
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The variants of one image: from augmentations.parquet, joined with their embeddings.
struct ImageInput {
    image_id: u64,
    variants: Vec<(String, String)>,        // (augmentation, params JSON), table order
    embeddings: HashMap<String, Embedding>, // by augmentation
}

struct Embedding {
    vector: Vec<f32>,
    attention: Option<Vec<f32>>,
    /// The class token after the pre-layernorm, then after each block, back to back.
    layers: Option<Vec<f32>>,
}

#[derive(Default)]
struct ImageOutput {
    metrics: Vec<(u64, String, [Option<f64>; schema::METRICS.len()])>,
    pairs: Vec<(u64, String, String, Option<f64>, f64)>,
    /// (image, augmentation, layer, cosine, L2) of the class-token states.
    layers: Vec<(u64, String, u32, Option<f64>, f64)>,
}

pub fn run(config: &MetricsConfig) -> Result<MetricsSummary, MetricsStageError> {
    run_with(config, None)
}

/// The stage, taking the pixel scores `known` holds instead of replaying those images.
pub fn run_with(config: &MetricsConfig, known: Option<&KnownPixels>) -> Result<MetricsSummary, MetricsStageError> {
    let run = RunDir::new(&config.run_dir);
    let shard = config.shard;
    run.check_contained()?;
    run.require(&run.augmentations(), "augment")?;
    run.require(&run.embeddings(), "encode")?;
    let mut manifest = RunManifest::load_shard(&run, shard)?;
    manifest.require_complete(&run, "augment", "augmentations.parquet")?;
    manifest.require_complete(&run, "encode", "embeddings.parquet")?;
    manifest.check_embeddings_current(&run)?;
    let lineage = manifest.encode_lineage().expect("checked: the encode section exists");
    let committed = !shard_part_files(&run.metrics(), shard)?.is_empty();
    // The request is the embeddings' lineage and the tables' columns (format 2 added
    // `sensitivity`, 3 `attention_similarity_aligned`): a run written before is
    // recomputed instead of being called finished.
    let mut request = lineage.clone();
    request.insert("table_format".into(), "3".into());
    let start = manifest.begin("metrics", request, config.fresh, committed);
    let mut images = 0;
    let summary = |images, start| -> Result<MetricsSummary, TableError> {
        Ok(MetricsSummary {
            images,
            metric_rows: count_rows(&shard_part_files(&run.metrics(), shard)?)?,
            pairwise_rows: count_rows(&shard_part_files(&run.pairwise(), shard)?)?,
            errors: count_rows(&stage_error_files(&run, "metrics", shard)?)?,
            start,
        })
    };
    if start == Start::Done {
        tracing::info!(%shard, "metrics already finished with these inputs; nothing to do (--fresh recomputes)");
        return Ok(summary(0, start)?);
    }
    manifest.save_shard(&run, shard)?;
    let sources = SourceImages::load(&run, shard)?;

    // `[states, width]` of the per-layer class-token states, when embeddings hold them.
    let layer_states = manifest.model.as_ref().and_then(|m| m.layer_states);
    let mut tables = vec![(run.metrics(), schema::metrics()), (run.pairwise(), schema::pairwise())];
    if layer_states.is_some() {
        tables.push((run.layer_shift(), schema::layer_shift()));
    }
    let mut parts = StageParts::open(&run, "metrics", shard, &tables, start == Start::Fresh)?;
    // Resumed: skip every image with committed rows or errors.
    let mut done: HashSet<u64> = HashSet::new();
    for table in [run.metrics(), run.pairwise()] {
        done.extend(read_u64_column(&shard_part_files(&table, shard)?, schema::IMAGE_ID)?);
    }
    done.extend(read_error_files(&stage_error_files(&run, "metrics", shard)?)?.into_iter().filter_map(|e| e.image_id));
    let errors = ErrorLog::new("metrics");
    let progress = progress_bar(sources.len().saturating_sub(done.len()) as u64, "metrics");

    let embeddings_path = run.embeddings();
    let mut needed = vec![schema::IMAGE_ID, schema::AUGMENTATION, "embedding", "cls_attention"];
    if layer_states.is_some() {
        needed.push("layer_cls_states");
    }
    let embedding_parts = shard_part_files(&embeddings_path, shard)?;
    let mut embedded = ImageGroups::open_files(&embeddings_path, embedding_parts, Some(needed.as_slice()))?.peekable();
    let augmentations_path = run.augmentations();
    let mut chunk = Vec::with_capacity(CHUNK_IMAGES);
    let mut groups = ImageGroups::open_files(&augmentations_path, shard_part_files(&augmentations_path, shard)?, None)?;
    loop {
        let next = groups.next().transpose()?;
        let finished = next.is_none();
        if let Some((image_id, rows)) = next {
            // embeddings.parquet holds a subsequence of these images, in the same order.
            let has_rows = match embedded.peek() {
                Some(Ok((id, _))) => *id == image_id,
                Some(Err(_)) => true, // surface the read error below
                None => false,
            };
            let embedding_rows = if has_rows { Some(embedded.next().expect("peeked")?.1) } else { None };
            if !done.contains(&image_id) {
                let variants = recorded_variants(&rows, &augmentations_path)?;
                let embeddings = match embedding_rows {
                    Some(rows) => read_embeddings(&rows, &embeddings_path)?,
                    None => HashMap::new(),
                };
                chunk.push(ImageInput { image_id, variants, embeddings });
            }
        }
        if chunk.len() == CHUNK_IMAGES || (finished && !chunk.is_empty()) {
            let outputs: Vec<ImageOutput> = chunk
                .par_iter()
                .map(|input| {
                    let out = measure_image(input, known, &sources, &errors, layer_states);
                    progress.inc(1);
                    out
                })
                .collect();
            images += chunk.len();
            write_outputs(&outputs, &mut parts)?;
            parts.commit_if_due(&errors)?;
            chunk.clear();
        }
        if finished {
            break;
        }
    }
    progress.finish_and_clear();
    // Every embedded image must have been met in augmentations.parquet's order.
    if let Some(group) = embedded.next() {
        let (id, _) = group?;
        return Err(TableError::Column {
            path: embeddings_path,
            column: schema::IMAGE_ID.into(),
            message: format!(
                "image {id} is not in augmentations.parquet, or not in its order: the tables come from different \
                 runs of the augment stage; re-run the encode stage"
            ),
        }
        .into());
    }
    parts.finish(&errors)?;
    manifest.metrics = Some(MetricsManifest { encode: lineage });
    manifest.complete("metrics");
    manifest.save_shard(&run, shard)?;
    Ok(summary(images, start)?)
}

fn read_embeddings(rows: &RecordBatch, path: &Path) -> Result<HashMap<String, Embedding>, TableError> {
    let augs = column::<StringArray>(rows, path, schema::AUGMENTATION)?;
    let vectors = column::<FixedSizeListArray>(rows, path, "embedding")?;
    let attention = column::<FixedSizeListArray>(rows, path, "cls_attention")?;
    let layers = rows.column_by_name("layer_cls_states").is_some();
    let layers = if layers { Some(column::<FixedSizeListArray>(rows, path, "layer_cls_states")?) } else { None };
    let floats = |list: &FixedSizeListArray, i: usize| -> Result<Vec<f32>, TableError> {
        let values = list.value(i);
        let values = values.as_any().downcast_ref::<Float32Array>().ok_or_else(|| TableError::Column {
            path: path.to_path_buf(),
            column: "embedding".into(),
            message: "expected float32 items".into(),
        })?;
        Ok(values.values().to_vec())
    };
    let mut out = HashMap::with_capacity(rows.num_rows());
    for i in 0..rows.num_rows() {
        let attention = if attention.is_valid(i) { Some(floats(attention, i)?) } else { None };
        let layers = match layers {
            Some(list) if list.is_valid(i) => Some(floats(list, i)?),
            _ => None,
        };
        out.insert(augs.value(i).to_string(), Embedding { vector: floats(vectors, i)?, attention, layers });
    }
    Ok(out)
}

/// The original's pixels and their features, or `None` (recorded) when the source
/// cannot be replayed: the image's pixel metrics are then null.
fn original_pixels(id: u64, sources: &SourceImages, errors: &ErrorLog) -> Option<(Replay, OriginalFeatures)> {
    let relative = sources.relative_path(id);
    let Some(file) = sources.file(id) else {
        let message = "image_id not in images.parquet: pixel metrics left null".to_string();
        errors.record(None, Some(id), None, ErrorKind::MissingImage, message);
        return None;
    };
    match Replay::load(&file, sources.image_size(), sources.max_pixels()) {
        Ok(replay) => {
            let features = OriginalFeatures::new(replay.original());
            Some((replay, features))
        }
        Err(err) => {
            errors.record(relative, Some(id), None, err.kind(), format!("pixel metrics left null: {err}"));
            None
        }
    }
}

/// The pixel metrics of one variant, replayed from its recorded parameters.
fn pixel_scores(
    (replay, features): &(Replay, OriginalFeatures),
    augmentation: &str,
    params: &str,
) -> Result<PixelScores, (ErrorKind, String)> {
    let pixels = replay.variant(augmentation, params).map_err(|e| (e.kind(), e.to_string()))?;
    features.compare(&pixels).map_err(|e| (ErrorKind::Metric, e.to_string()))
}

fn measure_image(
    input: &ImageInput,
    known: Option<&KnownPixels>,
    sources: &SourceImages,
    errors: &ErrorLog,
    layer_states: Option<[usize; 2]>,
) -> ImageOutput {
    let id = input.image_id;
    let size = sources.image_size();
    let mut out = ImageOutput::default();
    let relative = sources.relative_path(id);
    let Some(original) = input.embeddings.get(schema::ORIGINAL) else {
        errors.record(
            relative,
            Some(id),
            Some(schema::ORIGINAL),
            ErrorKind::MissingEmbedding,
            "no embedding of the original: image skipped".into(),
        );
        return out;
    };
    let pixels = PixelSource::open(id, known, sources, errors);
    let original_attention = original.attention.as_deref().and_then(|a| AttentionMap::new(a, size, size));
    for (aug, params) in &input.variants {
        if aug == schema::ORIGINAL {
            continue;
        }
        let Some(variant) = input.embeddings.get(aug) else {
            errors.record(
                relative,
                Some(id),
                Some(aug),
                ErrorKind::MissingEmbedding,
                "no embedding: no metrics row".into(),
            );
            continue;
        };
        let attention = match (&original_attention, &variant.attention) {
            (Some(map), Some(b)) => map.similarity(b),
            _ => None,
        };
        // In the variant's frame: the original's map moved by the pixels' warp (the
        // paper's value for an augmentation that moves no pixel).
        let aligned = match (&original.attention, &variant.attention) {
            (Some(a), Some(b)) => match Params::from_json(aug, params).and_then(|p| p.warp(size, size)) {
                Ok(Some(warp)) => aligned_attention_similarity(a, b, &warp, size, size),
                Ok(None) => attention,
                Err(_) => None,
            },
            _ => None,
        };
        let pixel = pixels.scores(aug, params).and_then(|scores| match scores {
            Ok(scores) => Some(scores),
            Err((kind, message)) => {
                errors.record(relative, Some(id), Some(aug), kind, message);
                None
            }
        });
        if let (Some([count, width]), Some(a), Some(b)) = (layer_states, &original.layers, &variant.layers)
            && a.len() == count * width
            && b.len() == count * width
        {
            for (layer, (u, v)) in a.chunks_exact(width).zip(b.chunks_exact(width)).enumerate() {
                out.layers.push((id, aug.clone(), layer as u32, cosine_similarity(u, v), l2_distance(u, v)));
            }
        }
        let cosine = cosine_similarity(&original.vector, &variant.vector);
        let ssim = pixel.and_then(|p| p.ssim);
        out.metrics.push((
            id,
            aug.clone(),
            [
                cosine,
                Some(l2_distance(&original.vector, &variant.vector)),
                attention,
                aligned,
                pixel.and_then(|p| p.patch_similarity),
                pixel.and_then(|p| p.edge_preservation),
                pixel.and_then(|p| p.detail_preservation),
                ssim,
                cosine.zip(ssim).and_then(|(c, s)| sensitivity(c, s)),
            ],
        ));
    }
    // Pairwise distances among every variant that has an embedding, in table order.
    let present: Vec<(&str, &[f32])> = input
        .variants
        .iter()
        .filter_map(|(aug, _)| input.embeddings.get(aug).map(|e| (aug.as_str(), e.vector.as_slice())))
        .collect();
    let vectors: Vec<&[f32]> = present.iter().map(|(_, v)| *v).collect();
    let cosine = pdist_cosine(&vectors);
    let euclid = pdist_euclidean(&vectors);
    let mut k = 0;
    for i in 0..present.len() {
        for j in i + 1..present.len() {
            let c = cosine[k];
            out.pairs.push((
                id,
                present[i].0.to_string(),
                present[j].0.to_string(),
                c.is_finite().then_some(c),
                euclid[k],
            ));
            k += 1;
        }
    }
    out
}

/// (1 − cos) / (1 − SSIM): the embedding's shift per unit of structural pixel change;
/// undefined (null) when the pixels did not change (1 − SSIM below 1e-9).
pub fn sensitivity(cosine: f64, ssim: f64) -> Option<f64> {
    let change = 1.0 - ssim;
    (change > 1e-9).then(|| ((1.0 - cosine) / change).max(0.0))
}

fn write_outputs(outputs: &[ImageOutput], parts: &mut StageParts) -> Result<(), TableError> {
    let rows: Vec<_> = outputs.iter().flat_map(|o| &o.metrics).collect();
    if !rows.is_empty() {
        let mut columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        ];
        for m in 0..schema::METRIC_COLUMNS.len() {
            // No NaN reaches a table: non-finite values become null.
            columns.push(Arc::new(rows.iter().map(|r| r.2[m].filter(|v| v.is_finite())).collect::<Float64Array>()));
        }
        let batch = RecordBatch::try_new(schema::metrics(), columns)
            .map_err(|source| TableError::Arrow { path: "metrics.parquet".into(), source })?;
        parts.write(0, &batch)?;
    }
    let rows: Vec<_> = outputs.iter().flat_map(|o| &o.pairs).collect();
    if !rows.is_empty() {
        let batch = RecordBatch::try_new(
            schema::pairwise(),
            vec![
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
                Arc::new(rows.iter().map(|r| r.3).collect::<Float64Array>()),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            ],
        )
        .map_err(|source| TableError::Arrow { path: "pairwise.parquet".into(), source })?;
        parts.write(1, &batch)?;
    }
    let rows: Vec<_> = outputs.iter().flat_map(|o| &o.layers).collect();
    if !rows.is_empty() {
        let batch = RecordBatch::try_new(
            schema::layer_shift(),
            vec![
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(rows.iter().map(|r| r.3.filter(|v| v.is_finite())).collect::<Float64Array>()),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            ],
        )
        .map_err(|source| TableError::Arrow { path: "layer_shift.parquet".into(), source })?;
        parts.write(2, &batch)?;
    }
    Ok(())
}
