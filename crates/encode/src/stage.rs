//! The encode stage: replay every variant of `augmentations.parquet`, preprocess it, run
//! the model in batches and stream `embeddings.parquet`.
//!
//! A producer thread decodes, augments and normalises whole images on the rayon pool
//! while the calling thread runs inference on the previous batch; a bounded channel
//! keeps at most a few batches in memory, so memory is flat in the number of images.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use clipshift_augment::Replay;
use clipshift_console::progress_bar;
use clipshift_tables::arrow::array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array};
use clipshift_tables::{
    EncodeManifest, ErrorKind, ErrorLog, ImageGroups, ModelManifest, RunDir, RunManifest, SourceImages, TableError,
    TableWriter, recorded_variants, schema,
};
use rayon::prelude::*;

use crate::{BatchOutput, EncodeError, Encoder, ModelSpec, Preprocessor, ResizePolicy, SessionConfig};

/// What the encode stage needs to know.
#[derive(Debug, Clone)]
pub struct EncodeConfig {
    pub run_dir: PathBuf,
    /// A model directory holding `model.onnx` and `model.json`.
    pub model_dir: PathBuf,
    /// Overrides the sidecar's resize policy.
    pub policy: Option<ResizePolicy>,
    pub session: SessionConfig,
    /// Images per inference call.
    pub batch: usize,
    /// Also write every input tensor as `<dir>/<image_id>/<augmentation>.npy`.
    pub dump_pixels: Option<PathBuf>,
}

/// What the stage did.
#[derive(Debug, Clone)]
pub struct EncodeSummary {
    pub rows: usize,
    pub errors: usize,
    pub provider: &'static str,
    pub model: String,
    pub random_init: bool,
}

/// One variant, ready for the model.
struct Prepared {
    image_id: u64,
    augmentation: String,
    tensor: Vec<f32>,
}

/// One source image and the variants to replay on it.
struct ImageJob {
    image_id: u64,
    variants: Vec<(String, String)>, // (augmentation, params JSON)
}

pub fn run(config: &EncodeConfig) -> Result<EncodeSummary, EncodeError> {
    let run = RunDir::new(&config.run_dir);
    run.check_contained()?;
    run.require(&run.images(), "augment")?;
    run.require(&run.augmentations(), "augment")?;
    let sources = SourceImages::load(&run)?;
    // What the embeddings are computed from, as read now (not when the stage ends).
    let augment = RunManifest::load(&run)?.require_augment(&run)?.lineage();

    let spec = ModelSpec::load(&config.model_dir)?;
    let policy = config.policy.unwrap_or(spec.resize_policy);
    let preprocessor = Preprocessor::new(&spec, policy);
    let mut encoder = Encoder::new(spec.clone(), &config.session)?;
    if let Some(reason) = encoder.fallback_reason() {
        tracing::warn!("CUDA requested but running on CPU: {reason}");
    }
    if spec.random_init {
        tracing::warn!(model = %spec.name, "random-init model: embeddings are meaningless, for testing only");
    }
    tracing::info!(model = %spec.name, provider = encoder.provider(), batch = config.batch, ?policy, "encode");

    let total_images = sources.len() as u64;
    let errors = ErrorLog::new("encode");
    let batch = config.batch.max(1);
    let mut writer = EmbeddingWriter::new(&run.embeddings(), &spec, encoder.has_attention());
    let progress = progress_bar(total_images, "encode");

    std::thread::scope(|scope| -> Result<(), EncodeError> {
        // Enough images per job to fill about one inference batch.
        let (sender, receiver) = sync_channel::<Vec<Prepared>>(2);
        let producer = scope.spawn(|| -> Result<(), EncodeError> {
            let sender = sender;
            let mut jobs = Vec::new();
            for job in image_jobs(&run.augmentations())? {
                jobs.push(job?);
                let variants: usize = jobs.iter().map(|j| j.variants.len()).sum();
                if variants >= batch {
                    let prepared = prepare(&jobs, &sources, &preprocessor, config, &errors);
                    progress.inc(jobs.len() as u64);
                    jobs.clear();
                    if sender.send(prepared).is_err() {
                        return Ok(()); // the consumer stopped on an error of its own
                    }
                }
            }
            if !jobs.is_empty() {
                let prepared = prepare(&jobs, &sources, &preprocessor, config, &errors);
                progress.inc(jobs.len() as u64);
                let _ = sender.send(prepared);
            }
            Ok(())
        });

        let mut pending: Vec<Prepared> = Vec::new();
        let mut flat = Vec::new();
        let mut infer = |items: Vec<Prepared>, writer: &mut EmbeddingWriter| -> Result<(), EncodeError> {
            flat.clear();
            for item in &items {
                flat.extend_from_slice(&item.tensor);
            }
            match encoder.encode(&flat, items.len()) {
                Ok(output) => writer.write(&items, &output),
                Err(err) => {
                    for item in &items {
                        errors.record(
                            None,
                            Some(item.image_id),
                            Some(&item.augmentation),
                            ErrorKind::Inference,
                            err.to_string(),
                        );
                    }
                    Ok(())
                }
            }
        };
        for prepared in receiver {
            pending.extend(prepared);
            while pending.len() >= batch {
                let rest = pending.split_off(batch);
                infer(std::mem::replace(&mut pending, rest), &mut writer)?;
            }
        }
        if !pending.is_empty() {
            infer(std::mem::take(&mut pending), &mut writer)?;
        }
        producer.join().expect("producer thread panicked")
    })?;
    progress.finish_and_clear();

    let rows = writer.finish()?;
    let error_count = errors.save(&run.errors())?;
    let how = EncodeManifest {
        device: format!("{:?}", config.session.device).to_lowercase(),
        provider: encoder.provider().into(),
        batch,
        intra_threads: config.session.intra_threads,
        augment,
    };
    record_in_manifest(&run, &spec, policy, how)?;
    Ok(EncodeSummary {
        rows,
        errors: error_count,
        provider: encoder.provider(),
        model: spec.name,
        random_init: spec.random_init,
    })
}

/// Records the model and how it ran in `run.json`, beside the other stages' sections.
fn record_in_manifest(
    run: &RunDir,
    spec: &ModelSpec,
    policy: ResizePolicy,
    how: EncodeManifest,
) -> Result<(), EncodeError> {
    let mut manifest = RunManifest::load(run)?;
    manifest.model = Some(ModelManifest {
        name: spec.name.clone(),
        source: spec.source.clone(),
        random_init: spec.random_init,
        sha256: spec.sha256.clone(),
        dir: std::fs::canonicalize(&spec.dir).unwrap_or(spec.dir.clone()),
        embedding_dim: spec.embedding_dim,
        image_size: spec.image_size,
        patch_size: spec.patch_size,
        resize_policy: policy.as_str().into(),
    });
    manifest.encode = Some(how);
    Ok(manifest.save(run)?)
}

/// Streams `augmentations.parquet` as one job per image.
fn image_jobs(path: &Path) -> Result<impl Iterator<Item = Result<ImageJob, EncodeError>>, EncodeError> {
    let path = path.to_path_buf();
    Ok(ImageGroups::open(&path)?.map(move |group| {
        let (image_id, rows) = group?;
        Ok(ImageJob { image_id, variants: recorded_variants(&rows, &path)? })
    }))
}

/// Decodes each image once and replays its variants, in parallel over images.
fn prepare(
    jobs: &[ImageJob],
    sources: &SourceImages,
    preprocessor: &Preprocessor,
    config: &EncodeConfig,
    errors: &ErrorLog,
) -> Vec<Prepared> {
    jobs.par_iter()
        .flat_map_iter(|job| {
            let (Some(relative), Some(path)) = (sources.relative_path(job.image_id), sources.file(job.image_id)) else {
                errors.record(
                    None,
                    Some(job.image_id),
                    None,
                    ErrorKind::MissingImage,
                    "image_id not in images.parquet".into(),
                );
                return Vec::new();
            };
            let replay = match Replay::load(&path, sources.image_size(), sources.max_pixels()) {
                Ok(replay) => replay,
                Err(err) => {
                    errors.record(Some(relative), Some(job.image_id), None, err.kind(), err.to_string());
                    return Vec::new();
                }
            };
            job.variants
                .iter()
                .filter_map(|(aug, params)| {
                    let pixels = match replay.variant(aug, params) {
                        Ok(pixels) => pixels,
                        Err(err) => {
                            errors.record(Some(relative), Some(job.image_id), Some(aug), err.kind(), err.to_string());
                            return None;
                        }
                    };
                    let mut tensor = vec![0.0f32; preprocessor.tensor_len()];
                    preprocessor.write_tensor(&pixels, &mut tensor);
                    if let Some(dir) = &config.dump_pixels
                        && let Err(err) = write_npy(dir, job.image_id, aug, &tensor, preprocessor.tensor_len())
                    {
                        errors.record(Some(relative), Some(job.image_id), Some(aug), ErrorKind::Write, err.to_string());
                    }
                    Some(Prepared { image_id: job.image_id, augmentation: aug.clone(), tensor })
                })
                .collect()
        })
        .collect()
}

/// Writes a float32 `[3, S, S]` tensor as a NumPy `.npy` file.
fn write_npy(dir: &Path, image_id: u64, augmentation: &str, tensor: &[f32], len: usize) -> Result<(), EncodeError> {
    let side = ((len / 3) as f64).sqrt() as usize;
    let folder = dir.join(image_id.to_string());
    std::fs::create_dir_all(&folder).map_err(|source| EncodeError::Io { path: folder.clone(), source })?;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': (3, {side}, {side}), }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + tensor.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in tensor {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(clipshift_tables::write_atomic(&folder.join(format!("{augmentation}.npy")), &bytes)?)
}

/// Streams `embeddings.parquet`, creating the file when the first batch fixes the shapes.
struct EmbeddingWriter {
    path: PathBuf,
    dim: usize,
    patches: Option<usize>,
    writer: Option<(TableWriter, Arc<clipshift_tables::arrow::datatypes::Schema>)>,
}

impl EmbeddingWriter {
    fn new(path: &Path, spec: &ModelSpec, has_attention: bool) -> Self {
        let patches = has_attention.then(|| spec.grid() * spec.grid());
        Self { path: path.to_path_buf(), dim: spec.embedding_dim, patches, writer: None }
    }

    fn write(&mut self, items: &[Prepared], output: &BatchOutput) -> Result<(), EncodeError> {
        if output.embedding_dim != self.dim {
            return Err(EncodeError::Output {
                name: "image_embeds".into(),
                message: format!(
                    "width {} differs from the sidecar's embedding_dim {}",
                    output.embedding_dim, self.dim
                ),
            });
        }
        let layers = output.layer_cls_states.as_ref().map(|_| (output.layers as i32, output.hidden as i32));
        let (writer, table_schema) = match &mut self.writer {
            Some(w) => w,
            None => {
                let s = schema::embeddings(self.dim as i32, self.patches.map(|p| p as i32), layers);
                let w = TableWriter::create(&self.path, s.clone())?;
                self.writer.insert((w, s))
            }
        };
        let list = |values: Vec<f32>, width: usize, valid: bool| -> Result<Arc<dyn Array>, TableError> {
            let nulls = (!valid).then(|| clipshift_tables::arrow::buffer::NullBuffer::new_null(items.len()));
            FixedSizeListArray::try_new(schema::list_item(), width as i32, Arc::new(Float32Array::from(values)), nulls)
                .map(|a| Arc::new(a) as Arc<dyn Array>)
                .map_err(|source| TableError::Arrow { path: self.path.clone(), source })
        };
        let mut columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(UInt64Array::from_iter_values(items.iter().map(|i| i.image_id))),
            Arc::new(StringArray::from_iter_values(items.iter().map(|i| i.augmentation.as_str()))),
            list(output.embeddings.clone(), self.dim, true)?,
        ];
        columns.push(match &output.cls_attention {
            Some(att) => list(att.clone(), output.patches, true)?,
            None => list(vec![0.0; items.len()], 1, false)?,
        });
        if let Some(states) = &output.layer_cls_states {
            columns.push(list(states.clone(), output.layers * output.hidden, true)?);
        }
        let batch = RecordBatch::try_new(table_schema.clone(), columns)
            .map_err(|source| TableError::Arrow { path: self.path.clone(), source })?;
        writer.write(&batch)?;
        Ok(())
    }

    fn finish(self) -> Result<usize, EncodeError> {
        match self.writer {
            Some((writer, _)) => Ok(writer.finish()?),
            None => {
                let s = schema::embeddings(self.dim as i32, self.patches.map(|p| p as i32), None);
                Ok(TableWriter::create(&self.path, s)?.finish()?)
            }
        }
    }
}
