//! The text stage: embeds the prompts of a run once (labels x templates, the suite's
//! keyword prompts, the data's captions) with the model's text tower, then compares
//! every stored image embedding with them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clipshift_encode::{ModelSpec, SessionConfig, TextEncoder};
use clipshift_tables::arrow::array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use clipshift_tables::arrow::datatypes::SchemaRef;
use clipshift_tables::{
    ErrorLog, ImageGroups, RowTable, RunDir, RunManifest, TableError, TableWriter, TextManifest, column, read_table,
    schema,
};
use rayon::prelude::*;

use crate::TextError;
use crate::align::{LabelDistribution, caption_rank, class_embedding, dot, unit};
use crate::prompts::{LabelSet, check_templates, find_captions, read_captions};

const STAGE: &str = "text";

#[derive(Debug, Clone)]
pub struct TextConfig {
    pub run_dir: PathBuf,
    /// The model directory; by default the one `run.json` says encoded the images.
    pub model: Option<PathBuf>,
    /// One class name per line; by default CIFAR-100's.
    pub labels: Option<PathBuf>,
    /// Prompt templates with `{}` for the label; several are ensembled.
    pub templates: Vec<String>,
    /// A captions file (`path`, `caption`); by default `captions.parquet` or
    /// `captions.csv` in the data root, when there is one.
    pub captions: Option<PathBuf>,
    /// Prompts per text-tower call.
    pub batch: usize,
    pub session: SessionConfig,
}

/// What the stage did.
#[derive(Debug, Clone, Default)]
pub struct TextSummary {
    /// Why nothing was computed (a model without a text tower), if so.
    pub skipped: Option<String>,
    pub prompts: usize,
    pub embedding_seconds: f64,
    pub zero_shot_rows: usize,
    pub keyword_rows: usize,
    pub caption_rows: usize,
    pub captioned_images: usize,
    pub errors: usize,
}

pub fn run(config: &TextConfig) -> Result<TextSummary, TextError> {
    let run = RunDir::new(&config.run_dir);
    run.check_contained()?;
    // A sharded run is read whole: every shard must have finished.
    clipshift_tables::merge_shards(&run)?;
    let mut manifest = RunManifest::load(&run)?;
    manifest.require_complete(&run, "encode", "embeddings.parquet")?;
    manifest.check_embeddings_current(&run)?;
    let encode = manifest.encode_lineage().expect("checked: the encode section exists");
    let recorded = manifest.model.as_ref().expect("checked with the encode section");
    let spec = ModelSpec::of_run(recorded, config.model.as_deref())?;
    let Some(mut encoder) = TextEncoder::new(&spec, &config.session)? else {
        let reason = format!("model {} has no text tower (export it with one to get text alignment)", spec.name);
        return skip(&run, &mut manifest, reason);
    };
    if encoder.spec().tokenizer.is_none() {
        return skip(&run, &mut manifest, format!("model {}'s text tower has no tokenizer", spec.name));
    }
    let scale = spec.logit_scale.expect("validated with the text section").exp();

    let labels = match &config.labels {
        Some(path) => LabelSet::load(path)?,
        None => LabelSet::cifar100(),
    };
    check_templates(&config.templates)?;
    let augment = manifest.require_augment(&run)?;
    let keywords = augment.suite.keywords.clone();
    let errors = ErrorLog::new(STAGE);
    let captions_file = config.captions.clone().or_else(|| find_captions(&augment.data_root));
    let image_captions = match &captions_file {
        Some(path) => captions_by_image(&run, &read_captions(path, &errors))?,
        None => BTreeMap::new(),
    };

    // Every distinct prompt, embedded once.
    let mut prompts = Prompts::default();
    let label_prompts: Vec<Vec<usize>> = labels
        .names
        .iter()
        .map(|l| config.templates.iter().map(|t| prompts.add(&LabelSet::prompt(t, l))).collect())
        .collect();
    let keyword_prompts: Vec<(String, usize)> = keywords
        .values()
        .flatten()
        .map(|k| (k.clone(), prompts.add(k)))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let caption_prompts: Vec<(u64, usize)> = image_captions.iter().map(|(id, c)| (*id, prompts.add(c))).collect();
    tracing::info!(
        prompts = prompts.list.len(),
        labels = labels.names.len(),
        templates = config.templates.len(),
        keywords = keyword_prompts.len(),
        captions = caption_prompts.len(),
        provider = encoder.provider(),
        "embedding the prompts"
    );
    let started = Instant::now();
    let refs: Vec<&str> = prompts.list.iter().map(String::as_str).collect();
    let embeddings = encoder.embed(&refs, config.batch.max(1))?;
    let embedding_seconds = started.elapsed().as_secs_f64();
    tracing::info!(seconds = embedding_seconds, "embedded the prompts");
    write_text_embeddings(&run.text_embeddings(), &prompts.list, &embeddings, encoder.spec().embedding_dim)?;

    let classes: Vec<Vec<f64>> = label_prompts
        .iter()
        .map(|ids| class_embedding(&ids.iter().map(|i| embeddings[*i].as_slice()).collect::<Vec<_>>()))
        .collect();
    let keyword_units: Vec<(String, Vec<f64>)> =
        keyword_prompts.iter().map(|(k, i)| (k.clone(), unit(&embeddings[*i]))).collect();
    let caption_units: Vec<Vec<f64>> = caption_prompts.iter().map(|(_, i)| unit(&embeddings[*i])).collect();
    let caption_index: HashMap<u64, usize> = caption_prompts.iter().enumerate().map(|(j, (id, _))| (*id, j)).collect();

    let targets = Targets { labels: &labels.names, classes: &classes, scale, keywords: &keyword_units };
    let captions = Captions { units: &caption_units, index: &caption_index };
    let (zero_shot_rows, keyword_rows, caption_rows) = measure_run(&run, &targets, &captions)?;

    let records = errors.take();
    clipshift_tables::replace_stage_errors(&run, STAGE, &records)?;
    manifest.text = Some(TextManifest {
        encode,
        text_sha256: encoder.spec().sha256.clone(),
        labels: labels.source.clone(),
        label_count: labels.names.len(),
        templates: config.templates.clone(),
        keywords,
        captions: captions_file,
        captioned_images: caption_units.len(),
        prompts: prompts.list.len(),
        embedding_seconds,
    });
    manifest.save(&run)?;
    Ok(TextSummary {
        skipped: None,
        prompts: prompts.list.len(),
        embedding_seconds,
        zero_shot_rows,
        keyword_rows,
        caption_rows,
        captioned_images: caption_units.len(),
        errors: records.len(),
    })
}

/// Compares every image embedding of the run with the prompts and writes the three
/// tables; returns their row counts (zero-shot, keyword, caption).
fn measure_run(run: &RunDir, targets: &Targets, captions: &Captions) -> Result<(usize, usize, usize), TextError> {
    let mut out = Outputs::create(run, !targets.keywords.is_empty(), !captions.units.is_empty())?;
    let mut skipped = 0usize;
    let path = run.embeddings();
    let columns = [schema::IMAGE_ID, schema::AUGMENTATION, "embedding"];
    // Images in chunks, each chunk in parallel; rows keep the table's image order.
    for chunk in ImageGroups::open_files(&path, clipshift_tables::part_files(&path)?, Some(&columns))?.chunks(256) {
        skipped += out.add(measure_chunk(&path, &chunk?, targets, captions)?)?;
    }
    if skipped > 0 {
        tracing::warn!(
            images = skipped,
            "images without an embedded original are left out (their encode errors say why)"
        );
    }
    out.finish()
}

/// Nothing to compute: tables of an earlier model would be stale, so they go with the
/// section that named them.
fn skip(run: &RunDir, manifest: &mut RunManifest, reason: String) -> Result<TextSummary, TextError> {
    for table in [run.text_embeddings(), run.zero_shot(), run.keyword_alignment(), run.caption_alignment()] {
        remove_file(&table)?;
    }
    if manifest.text.take().is_some() {
        manifest.save(run)?;
    }
    clipshift_tables::replace_stage_errors(run, STAGE, &[])?;
    tracing::info!("text stage skipped: {reason}");
    Ok(TextSummary { skipped: Some(reason), ..TextSummary::default() })
}

fn remove_file(path: &Path) -> Result<(), TextError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TextError::Io { path: path.into(), source: e }),
        _ => Ok(()),
    }
}

/// Distinct prompts in first-seen order.
#[derive(Default)]
struct Prompts {
    list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Prompts {
    fn add(&mut self, prompt: &str) -> usize {
        if let Some(i) = self.index.get(prompt) {
            return *i;
        }
        self.list.push(prompt.to_string());
        self.index.insert(prompt.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The caption of every image of the run that has one, by `image_id`.
fn captions_by_image(run: &RunDir, captions: &HashMap<String, String>) -> Result<BTreeMap<u64, String>, TextError> {
    let path = run.images();
    let images = read_table(&path)?;
    let ids = column::<UInt64Array>(&images, &path, schema::IMAGE_ID)?;
    let paths = column::<StringArray>(&images, &path, "path")?;
    let found: BTreeMap<u64, String> = ids
        .values()
        .iter()
        .zip(paths.iter())
        .filter_map(|(id, p)| captions.get(p.unwrap_or_default()).map(|c| (*id, c.clone())))
        .collect();
    tracing::info!(captioned = found.len(), images = ids.len(), captions = captions.len(), "captions");
    Ok(found)
}

fn write_text_embeddings(path: &Path, prompts: &[String], rows: &[Vec<f32>], dim: usize) -> Result<(), TextError> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let arrow = |source| TableError::Arrow { path: path.to_path_buf(), source };
    let list = FixedSizeListArray::try_new(schema::list_item(), dim as i32, Arc::new(Float32Array::from(flat)), None)
        .map_err(arrow)?;
    let schema = schema::text_embeddings(dim as i32);
    let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(prompts)), Arc::new(list)];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(arrow)?;
    let mut writer = TableWriter::create(path, schema)?;
    writer.write(&batch)?;
    writer.finish()?;
    Ok(())
}

/// What every image embedding is compared with.
struct Targets<'a> {
    labels: &'a [String],
    classes: &'a [Vec<f64>],
    /// exp(logit_scale).
    scale: f64,
    keywords: &'a [(String, Vec<f64>)],
}

struct Captions<'a> {
    units: &'a [Vec<f64>],
    /// `image_id` -> its caption's row of `units`.
    index: &'a HashMap<u64, usize>,
}

struct ZeroShotRow {
    image_id: u64,
    augmentation: String,
    label: String,
    probability: f64,
    flipped: bool,
    kl_to_original: f64,
}

struct KeywordRow {
    image_id: u64,
    augmentation: String,
    prompt: String,
    delta_cosine: f64,
}

struct CaptionRow {
    image_id: u64,
    augmentation: String,
    cosine: f64,
    delta_cosine: f64,
    rank: u32,
}

/// The rows of one image.
#[derive(Default)]
struct ImageRows {
    zero_shot: Vec<ZeroShotRow>,
    keyword: Vec<KeywordRow>,
    caption: Vec<CaptionRow>,
}

fn measure_chunk(
    path: &Path,
    chunk: &[(u64, RecordBatch)],
    targets: &Targets,
    captions: &Captions,
) -> Result<Vec<Option<ImageRows>>, TextError> {
    chunk.par_iter().map(|(id, rows)| measure_image(path, *id, rows, targets, captions)).collect()
}

fn measure_image(
    path: &Path,
    image_id: u64,
    rows: &RecordBatch,
    targets: &Targets,
    captions: &Captions,
) -> Result<Option<ImageRows>, TextError> {
    let names = column::<StringArray>(rows, path, schema::AUGMENTATION)?;
    let lists = column::<FixedSizeListArray>(rows, path, "embedding")?;
    let values = lists.values().as_any().downcast_ref::<Float32Array>().expect("validated list of f32");
    let width = lists.value_length() as usize;
    let variants: Vec<(&str, Vec<f64>)> =
        (0..rows.num_rows()).map(|i| (names.value(i), unit(&values.values()[i * width..(i + 1) * width]))).collect();
    let Some((_, original)) = variants.iter().find(|(n, _)| *n == schema::ORIGINAL) else { return Ok(None) };
    let base = LabelDistribution::new(original, targets.classes, targets.scale);
    let (base_top, _) = base.top();
    let base_keywords: Vec<f64> = targets.keywords.iter().map(|(_, k)| dot(original, k)).collect();
    let own_caption = captions.index.get(&image_id).map(|j| (*j, dot(original, &captions.units[*j])));
    let mut out = ImageRows::default();
    for (name, embedding) in &variants {
        let dist = if *name == schema::ORIGINAL {
            base.clone()
        } else {
            LabelDistribution::new(embedding, targets.classes, targets.scale)
        };
        let (top, probability) = dist.top();
        out.zero_shot.push(ZeroShotRow {
            image_id,
            augmentation: name.to_string(),
            label: targets.labels[top].clone(),
            probability,
            flipped: top != base_top,
            kl_to_original: base.kl_to(&dist),
        });
        if *name != schema::ORIGINAL {
            for ((prompt, k), base) in targets.keywords.iter().zip(&base_keywords) {
                out.keyword.push(KeywordRow {
                    image_id,
                    augmentation: name.to_string(),
                    prompt: prompt.clone(),
                    delta_cosine: dot(embedding, k) - base,
                });
            }
        }
        if let Some((j, base)) = own_caption {
            let cosine = dot(embedding, &captions.units[j]);
            out.caption.push(CaptionRow {
                image_id,
                augmentation: name.to_string(),
                cosine,
                delta_cosine: cosine - base,
                rank: caption_rank(embedding, captions.units, j),
            });
        }
    }
    Ok(Some(out))
}

/// The stage's per-image tables, written as rows arrive.
struct Outputs {
    zero_shot: RowTable<ZeroShotRow>,
    keyword: Option<RowTable<KeywordRow>>,
    caption: Option<RowTable<CaptionRow>>,
}

impl Outputs {
    /// Tables a run has no rows for (no keyword prompts, no captions) are not written, and
    /// an earlier run's are removed.
    fn create(run: &RunDir, keywords: bool, captions: bool) -> Result<Self, TextError> {
        fn optional<R>(
            on: bool,
            path: PathBuf,
            schema: SchemaRef,
            columns: fn(&[R]) -> Vec<ArrayRef>,
        ) -> Result<Option<RowTable<R>>, TextError> {
            if on { Ok(Some(RowTable::create(&path, schema, columns)?)) } else { remove_file(&path).map(|()| None) }
        }
        Ok(Self {
            zero_shot: RowTable::create(&run.zero_shot(), schema::zero_shot(), |rows: &[ZeroShotRow]| {
                vec![
                    Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.image_id))) as ArrayRef,
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.augmentation.as_str()))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.label.as_str()))),
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.probability))),
                    Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.flipped)))),
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.kl_to_original))),
                ]
            })?,
            keyword: optional(
                keywords,
                run.keyword_alignment(),
                schema::keyword_alignment(),
                |rows: &[KeywordRow]| {
                    vec![
                        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.image_id))) as ArrayRef,
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.augmentation.as_str()))),
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.prompt.as_str()))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.delta_cosine))),
                    ]
                },
            )?,
            caption: optional(
                captions,
                run.caption_alignment(),
                schema::caption_alignment(),
                |rows: &[CaptionRow]| {
                    vec![
                        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.image_id))) as ArrayRef,
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.augmentation.as_str()))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.cosine))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.delta_cosine))),
                        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.rank))),
                    ]
                },
            )?,
        })
    }

    /// Adds the rows of a chunk of images; returns how many had no original.
    fn add(&mut self, images: Vec<Option<ImageRows>>) -> Result<usize, TextError> {
        let skipped = images.iter().filter(|i| i.is_none()).count();
        for rows in images.into_iter().flatten() {
            self.zero_shot.extend(rows.zero_shot)?;
            if let Some(t) = &mut self.keyword {
                t.extend(rows.keyword)?;
            }
            if let Some(t) = &mut self.caption {
                t.extend(rows.caption)?;
            }
        }
        Ok(skipped)
    }

    /// Writes what is left and commits every table; returns their row counts.
    fn finish(self) -> Result<(usize, usize, usize), TextError> {
        fn rows<R>(table: Option<RowTable<R>>) -> Result<usize, TableError> {
            table.map_or(Ok(0), RowTable::finish)
        }
        Ok((self.zero_shot.finish()?, rows(self.keyword)?, rows(self.caption)?))
    }
}
