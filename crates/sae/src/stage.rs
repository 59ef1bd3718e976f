//! The SAE stage: every variant's last class-token state through the SAE, attributed
//! and checked against the original's, and every latent labelled by text.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clipshift_encode::{ModelSpec, SessionConfig};
use clipshift_tables::arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use clipshift_tables::{ImageGroups, RowTable, RunDir, RunManifest, SaeManifest, TableError, column, schema};
use rayon::prelude::*;

use crate::attribution::{Lens, State, faithfulness, restore_counts};
use crate::labels::{Concepts, label_latents};
use crate::{Code, Head, Sae, SaeError};

const STAGE: &str = "sae";
/// Images whose states are encoded in one product with the SAE's encoder.
const CHUNK_IMAGES: usize = 256;

#[derive(Debug, Clone)]
pub struct SaeConfig {
    pub run_dir: PathBuf,
    /// The SAE (docs/sae.md's safetensors layout).
    pub sae: PathBuf,
    /// The model directory; by default the one `run.json` says encoded the images.
    pub model: Option<PathBuf>,
    /// Concepts to label latents with, one per line; by default ImageNet-1k's class names.
    pub concepts: Option<PathBuf>,
    /// Prompts per text-tower call.
    pub batch: usize,
    pub session: SessionConfig,
}

/// What the stage did.
#[derive(Debug, Clone)]
pub struct SaeSummary {
    pub variants: usize,
    pub latent_rows: usize,
    pub attribution_rows: usize,
    pub faithfulness_rows: usize,
    /// Latents labelled, or why none were when the model has no text tower.
    pub labelled: Result<usize, String>,
    pub seconds: f64,
}

pub fn run(config: &SaeConfig) -> Result<SaeSummary, SaeError> {
    let started = Instant::now();
    let (run, mut manifest) = open_encoded(&config.run_dir)?;
    let encode = manifest.encode_lineage().expect("checked: the encode section exists");
    let recorded = manifest.model.as_ref().expect("checked with the encode section");
    let spec = ModelSpec::of_run(recorded, config.model.as_deref())?;
    let head = Head::of_model(&spec)?;
    let sae = Sae::load(&config.sae)?;
    let lens = Lens::new(&head, &sae).map_err(|e| match e {
        SaeError::Config(message) => SaeError::Input { path: config.sae.clone(), message },
        other => other,
    })?;
    let seed = manifest.require_augment(&run)?.seed;
    let seconds = |t: Instant| format!("{:.2} s", t.elapsed().as_secs_f64());
    tracing::info!(
        d = sae.d,
        m = sae.m,
        k = sae.k,
        activation = sae.activation.as_str(),
        took = seconds(started),
        "SAE loaded and projected through the head"
    );
    let phase = Instant::now();

    let mut out = Outputs::create(&run)?;
    let counts = restore_counts(sae.k);
    let path = run.embeddings();
    let columns = [schema::IMAGE_ID, schema::AUGMENTATION, "layer_cls_states"];
    let model = Model { sae: &sae, lens: &lens, counts: &counts, seed, hidden: head.d };
    let mut skipped = 0;
    let groups = ImageGroups::open_files(&path, clipshift_tables::part_files(&path)?, Some(&columns))?;
    for chunk in groups.chunks(CHUNK_IMAGES) {
        skipped += out.add(model.chunk(&path, &chunk?)?)?;
    }
    if skipped > 0 {
        tracing::warn!(
            images = skipped,
            "images without an encoded original are left out (their encode errors say why)"
        );
    }
    let variants = out.variants;
    let (latent_rows, attribution_rows, faithfulness_rows) = out.finish()?;
    tracing::info!(variants, took = seconds(phase), "codes, attribution and faithfulness written");
    let phase = Instant::now();

    let concepts = Concepts::new(config.concepts.as_deref(), &manifest.require_augment(&run)?.suite.keywords)?;
    let labelled = label_latents(&run.latent_labels(), &spec, &lens, &sae, &concepts, config.batch, &config.session)?;
    match &labelled {
        Ok(n) => {
            tracing::info!(latents = n, concepts = concepts.names.len(), took = seconds(phase), "latents labelled")
        }
        Err(reason) => tracing::info!("latent labels skipped: {reason}"),
    }
    let seconds = started.elapsed().as_secs_f64();
    manifest.sae = Some(SaeManifest {
        encode,
        file: config.sae.clone(),
        sha256: clipshift_encode::file_sha256(&config.sae)?,
        d: sae.d,
        m: sae.m,
        k: sae.k,
        activation: sae.activation.as_str().into(),
        input_norm: sae.input_norm.as_str().into(),
        concepts: labelled.is_ok().then(|| concepts.source.clone()),
        concept_count: if labelled.is_ok() { concepts.names.len() } else { 0 },
        seconds,
    });
    manifest.save(&run)?;
    clipshift_tables::replace_stage_errors(&run, STAGE, &[])?;
    Ok(SaeSummary { variants, latent_rows, attribution_rows, faithfulness_rows, labelled, seconds })
}

/// What every image's states go through.
struct Model<'a> {
    sae: &'a Sae,
    lens: &'a Lens,
    counts: &'a [usize],
    seed: u64,
    hidden: usize,
}

/// The rows of one image.
#[derive(Default)]
struct ImageRows {
    latents: Vec<LatentRow>,
    attribution: Vec<AttributionRow>,
    faithfulness: Vec<FaithfulnessRow>,
    variants: usize,
}

struct LatentRow {
    image_id: u64,
    augmentation: Arc<str>,
    latent: u32,
    activation: f32,
}

struct AttributionRow {
    image_id: u64,
    augmentation: Arc<str>,
    latent: u32,
    z_original: f32,
    z_augmented: f32,
    patch: f64,
    act_x_grad: f64,
}

struct FaithfulnessRow {
    image_id: u64,
    augmentation: Arc<str>,
    order: &'static str,
    n: u32,
    cosine: f64,
}

impl Model<'_> {
    /// The rows of a chunk of images (`None` for an image without its original).
    fn chunk(&self, path: &Path, chunk: &[(u64, RecordBatch)]) -> Result<Vec<Option<ImageRows>>, SaeError> {
        let mut names = Vec::new();
        let mut states = Vec::new();
        for (_, rows) in chunk {
            names.push(last_states(path, rows, self.hidden, &mut states)?);
        }
        let n = states.len() / self.hidden;
        if n == 0 {
            return Ok(Vec::new());
        }
        let codes = self.sae.encode(&states, n)?;
        let states = self.lens.states(&states, n)?;
        let mut offset = 0;
        let images: Vec<(u64, &[Arc<str>], usize)> = chunk
            .iter()
            .zip(&names)
            .map(|((id, _), names)| {
                offset += names.len();
                (*id, names.as_slice(), offset - names.len())
            })
            .collect();
        Ok(images
            .par_iter()
            .map(|&(id, names, at)| self.image(id, names, &codes[at..at + names.len()], &states[at..at + names.len()]))
            .collect())
    }

    fn image(&self, image_id: u64, names: &[Arc<str>], codes: &[Code], states: &[State]) -> Option<ImageRows> {
        let o = names.iter().position(|n| &**n == schema::ORIGINAL)?;
        let mut out = ImageRows::default();
        for ((name, code), state) in names.iter().zip(codes).zip(states) {
            out.latents.extend(code.latents.iter().zip(&code.values).map(|(&latent, &activation)| LatentRow {
                image_id,
                augmentation: name.clone(),
                latent,
                activation,
            }));
            if &**name == schema::ORIGINAL {
                continue;
            }
            out.variants += 1;
            let latents = self.lens.attribute(self.sae, &states[o], &codes[o], state, code);
            out.attribution.extend(latents.iter().map(|l| AttributionRow {
                image_id,
                augmentation: name.clone(),
                latent: l.latent,
                z_original: l.z_original,
                z_augmented: l.z_augmented,
                patch: l.patch,
                act_x_grad: l.act_x_grad,
            }));
            let mut rng = clipshift_augment::Rng::keyed(self.seed, image_id, &format!("sae-random-order:{name}"));
            let curves = faithfulness(self.lens, self.sae, &states[o], state, code, &latents, self.counts, &mut rng);
            out.faithfulness.extend(curves.into_iter().map(|(order, n, cosine)| FaithfulnessRow {
                image_id,
                augmentation: name.clone(),
                order: order.as_str(),
                n: n as u32,
                cosine: cosine.clamp(-1.0, 1.0),
            }));
        }
        Some(out)
    }
}

/// Appends the last block's class-token state of every row of `rows` to `states`;
/// returns the rows' augmentation names.
fn last_states(
    path: &Path,
    rows: &RecordBatch,
    hidden: usize,
    states: &mut Vec<f32>,
) -> Result<Vec<Arc<str>>, SaeError> {
    let variants = column::<StringArray>(rows, path, schema::AUGMENTATION)?;
    let lists = rows.column_by_name("layer_cls_states").ok_or_else(|| no_states(path))?;
    let lists = lists.as_any().downcast_ref::<FixedSizeListArray>().ok_or_else(|| no_states(path))?;
    if lists.null_count() > 0 {
        return Err(no_states(path));
    }
    let values = lists.values().as_any().downcast_ref::<Float32Array>().expect("validated list of f32");
    let width = lists.value_length() as usize;
    if !width.is_multiple_of(hidden) {
        return Err(TableError::Column {
            path: path.to_path_buf(),
            column: "layer_cls_states".into(),
            message: format!("width {width} is not a multiple of the model's hidden size {hidden}"),
        }
        .into());
    }
    // The last block's state: the last `hidden` values of each row.
    states.extend((0..rows.num_rows()).flat_map(|i| &values.values()[(i + 1) * width - hidden..(i + 1) * width]));
    Ok((0..rows.num_rows()).map(|i| Arc::<str>::from(variants.value(i))).collect())
}

/// The last class-token states of a finished run's variants (`originals_only`: of its
/// originals), [n, d] row-major, for training.
pub struct RunStates {
    pub states: Vec<f32>,
    pub d: usize,
    pub manifest: RunManifest,
}

/// A run whose embeddings (every shard) are finished and current, with its manifest.
fn open_encoded(run_dir: &Path) -> Result<(RunDir, RunManifest), SaeError> {
    let run = RunDir::new(run_dir);
    run.check_contained()?;
    clipshift_tables::merge_shards(&run)?;
    let manifest = RunManifest::load(&run)?;
    manifest.require_complete(&run, "encode", "embeddings.parquet")?;
    manifest.check_embeddings_current(&run)?;
    Ok((run, manifest))
}

pub fn run_states(run_dir: &Path, originals_only: bool) -> Result<RunStates, SaeError> {
    let (run, manifest) = open_encoded(run_dir)?;
    let path = run.embeddings();
    // The width the encode stage recorded: the model files need not be at hand to train.
    let recorded = manifest.model.as_ref().expect("checked with the encode section");
    let [_, d] = recorded.layer_states.ok_or_else(|| no_states(&path))?;
    let columns = [schema::IMAGE_ID, schema::AUGMENTATION, "layer_cls_states"];
    let mut states = Vec::new();
    for group in ImageGroups::open_files(&path, clipshift_tables::part_files(&path)?, Some(&columns))? {
        let (_, rows) = group?;
        let mut image = Vec::new();
        let names = last_states(&path, &rows, d, &mut image)?;
        for (name, state) in names.iter().zip(image.chunks_exact(d)) {
            if !originals_only || &**name == schema::ORIGINAL {
                states.extend_from_slice(state);
            }
        }
    }
    Ok(RunStates { states, d, manifest })
}

fn no_states(path: &Path) -> SaeError {
    TableError::Column {
        path: path.to_path_buf(),
        column: "layer_cls_states".into(),
        message: "the SAE stage needs the class-token states; encode with a model that exports layer_cls_states".into(),
    }
    .into()
}

/// The stage's per-image tables, written as rows arrive.
struct Outputs {
    latents: RowTable<LatentRow>,
    attribution: RowTable<AttributionRow>,
    faithfulness: RowTable<FaithfulnessRow>,
    variants: usize,
}

fn ids<R>(rows: &[R], id: fn(&R) -> u64) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(rows.iter().map(id)))
}

fn names<R>(rows: &[R], name: fn(&R) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(name)))
}

impl Outputs {
    fn create(run: &RunDir) -> Result<Self, SaeError> {
        Ok(Self {
            latents: RowTable::create(&run.sae_latents(), schema::sae_latents(), |rows: &[LatentRow]| {
                vec![
                    ids(rows, |r| r.image_id),
                    names(rows, |r| &r.augmentation),
                    Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.latent))),
                    Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.activation))),
                ]
            })?,
            attribution: RowTable::create(
                &run.component_attribution(),
                schema::component_attribution(),
                |rows: &[AttributionRow]| {
                    vec![
                        ids(rows, |r| r.image_id),
                        names(rows, |r| &r.augmentation),
                        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.latent))),
                        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.z_original))),
                        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.z_augmented))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.patch))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.act_x_grad))),
                    ]
                },
            )?,
            faithfulness: RowTable::create(
                &run.faithfulness(),
                schema::faithfulness(),
                |rows: &[FaithfulnessRow]| {
                    vec![
                        ids(rows, |r| r.image_id),
                        names(rows, |r| &r.augmentation),
                        names(rows, |r| r.order),
                        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.n))),
                        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.cosine))),
                    ]
                },
            )?,
            variants: 0,
        })
    }

    /// Adds the rows of a chunk of images; returns how many had no original.
    fn add(&mut self, images: Vec<Option<ImageRows>>) -> Result<usize, SaeError> {
        let skipped = images.iter().filter(|i| i.is_none()).count();
        for rows in images.into_iter().flatten() {
            self.variants += rows.variants;
            self.latents.extend(rows.latents)?;
            self.attribution.extend(rows.attribution)?;
            self.faithfulness.extend(rows.faithfulness)?;
        }
        Ok(skipped)
    }

    fn finish(self) -> Result<(usize, usize, usize), SaeError> {
        Ok((self.latents.finish()?, self.attribution.finish()?, self.faithfulness.finish()?))
    }
}
