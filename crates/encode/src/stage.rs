//! The encode stage: replay every variant of `augmentations.parquet`, preprocess it, run
//! the model in batches and stream `embeddings.parquet`.
//!
//! A producer thread decodes each source, replays its variants and writes their model
//! inputs straight into a tensor of the encoder's input pool, on the rayon pool (in
//! parallel over images, then over variants), while the calling thread runs the model on
//! the previous batch and gives its tensor back, and a writer thread turns outputs into
//! rows and commits them; bounded channels keep at most a few batches in memory, so
//! memory is flat in the number of images.
//!
//! A batch holds whole images (an image with more variants than `--batch` is split over
//! several, committed together), so the batches, and the embeddings, are the same
//! whether a run went through at once or was killed and resumed: a resumed run skips the
//! images committed before and starts packing where the killed one stopped.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use clipshift_augment::Replay;
use clipshift_console::{ProgressBar, progress_bar};
use clipshift_tables::arrow::array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array};
use clipshift_tables::{
    EncodeManifest, ErrorKind, ErrorLog, ImageGroups, ModelManifest, RunDir, RunManifest, Shard, SourceImages,
    StageParts, Start, TableError, count_rows, encode_lineage, read_error_files, read_u64_column, recorded_variants,
    schema, shard_part_files, stage_error_files,
};
use image::RgbImage;
use ort::value::Tensor;
use rayon::prelude::*;

use crate::{BatchOutput, EncodeError, Encoder, InputPool, ModelSpec, Preprocessor, ResizePolicy, SessionConfig};

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
    /// The part of the images this process handles.
    pub shard: Shard,
    /// Recompute everything, even what an earlier run with the same settings committed.
    pub fresh: bool,
}

/// What the stage did.
#[derive(Debug, Clone)]
pub struct EncodeSummary {
    pub rows: usize,
    pub errors: usize,
    /// The provider that ran, or `None` when there was nothing to do.
    pub provider: Option<&'static str>,
    pub model: String,
    pub random_init: bool,
    pub start: Start,
    /// Source files this process decoded (the others' canonical images were handed over).
    pub sources_decoded: usize,
    /// The model's share of the inference loop's time (the rest: waiting for batches,
    /// handing outputs to the writer); `None` when no batch ran.
    pub model_share: Option<f64>,
}

impl EncodeSummary {
    /// What `clipshift-encode` prints after `encode`: rows, model, how busy it was kept,
    /// errors, where.
    pub fn line(&self, run_dir: &Path) -> String {
        format!(
            "{} rows with {}{}{}, {} errors{} -> {}",
            self.rows,
            self.model,
            self.provider.map(|p| format!(" on {p}")).unwrap_or_default(),
            self.model_share.map(|s| format!(" (busy {:.0}% of the loop)", 100.0 * s)).unwrap_or_default(),
            self.errors,
            clipshift_console::start_note(self.start),
            run_dir.join("embeddings.parquet").display()
        )
    }
}

/// Sees the pixels of each image the stage prepares: its image id, its canonical
/// original and every variant that replayed, (augmentation, pixels) in table order.
/// Called on a rayon worker, once per image, before the image's inference. Through it
/// `clipshift-fused` computes the metrics stage's pixel scores from the same pixels, so
/// no variant is computed twice.
pub type VariantObserver<'a> = &'a (dyn Fn(u64, &RgbImage, &[(&str, &RgbImage)]) + Sync);

/// Hands over the canonical image of an image id when the caller holds it (taking it),
/// so the stage does not decode that source again; `None`: the stage decodes the file.
/// `clipshift-fused` holds what its augment stage decoded.
pub type HeldSources<'a> = &'a (dyn Fn(u64) -> Option<RgbImage> + Sync);

/// What `clipshift-fused` lends the stage; nothing, when it runs alone.
#[derive(Default)]
pub struct Hooks<'a> {
    pub held_sources: Option<HeldSources<'a>>,
    pub observer: Option<VariantObserver<'a>>,
    /// The model's session, opened beforehand by [`open_encoder`] with the same config
    /// (its error is the stage's, when the stage has work to do).
    pub encoder: Option<Result<Encoder, EncodeError>>,
}

/// The session the stage runs, as [`run_with`] opens it when no hook brings one.
/// Opening reads and hashes the model, optimises its graph and prepacks its weights
/// (and starts CUDA): a second or more, which `clipshift-fused` hides behind its augment
/// stage by opening it on another thread.
pub fn open_encoder(config: &EncodeConfig) -> Result<Encoder, EncodeError> {
    Encoder::new(ModelSpec::load(&config.model_dir)?, &config.session)
}

/// The session for `spec`: the one a hook opened beforehand, or a new one.
fn session_for(
    spec: &ModelSpec,
    opened: Option<Result<Encoder, EncodeError>>,
    config: &EncodeConfig,
) -> Result<Encoder, EncodeError> {
    let Some(opened) = opened else { return Encoder::new(spec.clone(), &config.session) };
    let encoder = opened?;
    if encoder.spec().sha256 != spec.sha256 {
        // The sidecar changed between the opening and the stage's own read of it.
        return Err(EncodeError::Model {
            path: spec.sidecar.clone(),
            message: "changed while the stage was starting; run it again".into(),
        });
    }
    Ok(encoder)
}

/// A batch's variants and their model input (`None` when there are none).
type Piece = (Vec<VariantKey>, Option<Tensor<f32>>);

/// Which variant a row of a batch is.
struct VariantKey {
    image_id: u64,
    augmentation: String,
}

/// One source image and the variants to replay on it.
struct ImageJob {
    image_id: u64,
    variants: Vec<(String, String)>, // (augmentation, params JSON)
}

/// One inference batch and the preparation failures of its images.
struct Batch {
    items: Vec<VariantKey>,
    /// The model input of `items` (`None` when there are none), from the encoder's pool.
    pixels: Option<Tensor<f32>>,
    errors: Option<ErrorLog>,
    /// Whether it ends its images (the last batch of a split image, or any other).
    whole: bool,
}

pub fn run(config: &EncodeConfig) -> Result<EncodeSummary, EncodeError> {
    run_with(config, Hooks::default())
}

/// The stage, taking held sources and showing the pixels of every image it prepares
/// through `hooks`.
pub fn run_with(config: &EncodeConfig, hooks: Hooks<'_>) -> Result<EncodeSummary, EncodeError> {
    let Hooks { held_sources, observer, encoder: opened } = hooks;
    let run = RunDir::new(&config.run_dir);
    let shard = config.shard;
    run.check_contained()?;
    run.require(&run.images(), "augment")?;
    run.require(&run.augmentations(), "augment")?;
    let mut manifest = RunManifest::load_shard(&run, shard)?;
    manifest.require_complete(&run, "augment", "augmentations.parquet")?;
    // What the embeddings are computed from, as read now (not when the stage ends).
    let augment = manifest.require_augment(&run)?.lineage();
    let spec = ModelSpec::load(&config.model_dir)?;
    let policy = config.policy.unwrap_or(spec.resize_policy);
    let request = encode_lineage(&augment, &spec.sha256, policy.as_str());
    let committed = !shard_part_files(&run.embeddings(), shard)?.is_empty();
    let start = manifest.begin("encode", request, config.fresh, committed);
    let decoded = AtomicUsize::new(0);
    let summary = |provider, start| -> Result<EncodeSummary, EncodeError> {
        Ok(EncodeSummary {
            rows: count_rows(&shard_part_files(&run.embeddings(), shard)?)?,
            errors: count_rows(&stage_error_files(&run, "encode", shard)?)?,
            provider,
            model: spec.name.clone(),
            random_init: spec.random_init,
            start,
            sources_decoded: decoded.load(Ordering::Relaxed),
            model_share: None,
        })
    };
    if start == Start::Done {
        tracing::info!(%shard, "encode already finished with these settings; nothing to do (--fresh recomputes)");
        return summary(None, start);
    }
    manifest.save_shard(&run, shard)?;
    let sources = SourceImages::load(&run, shard)?;

    let preprocessor = Preprocessor::new(&spec, policy);
    let mut encoder = session_for(&spec, opened, config)?;
    if let Some(reason) = encoder.fallback_reason() {
        tracing::warn!("CUDA requested but running on CPU: {reason}");
    }
    if spec.random_init {
        tracing::warn!(model = %spec.name, "random-init model: embeddings are meaningless, for testing only");
    }
    let batch = config.batch.max(1);
    let patches = encoder.has_attention().then(|| spec.grid() * spec.grid());
    let default_schema = schema::embeddings(spec.embedding_dim as i32, patches.map(|p| p as i32), None);
    let mut parts =
        StageParts::open(&run, "encode", shard, &[(run.embeddings(), default_schema)], start == Start::Fresh)?;
    // Resumed: skip every image with a committed embedding or error.
    let mut done: HashSet<u64> =
        read_u64_column(&shard_part_files(&run.embeddings(), shard)?, schema::IMAGE_ID)?.into_iter().collect();
    done.extend(read_error_files(&stage_error_files(&run, "encode", shard)?)?.into_iter().filter_map(|e| e.image_id));
    let total_images = sources.len().saturating_sub(done.len()) as u64;
    let threads = config.session.threads();
    tracing::info!(
        model = %spec.name, provider = encoder.provider(), threads, batch, ?policy,
        images = total_images, %shard, "encode"
    );

    let errors = ErrorLog::new("encode");
    // A resumed run that has no batch left keeps the shape its earlier run recorded.
    let recorded_states = manifest.model.as_ref().and_then(|m| m.layer_states).filter(|_| start == Start::Resume);
    let mut writer = EmbeddingWriter { dim: spec.embedding_dim, patches, schema: None, layer_states: recorded_states };
    let how = EncodeManifest {
        device: format!("{:?}", config.session.device).to_lowercase(),
        provider: encoder.provider().into(),
        batch,
        intra_threads: Some(threads),
        augment,
    };
    let progress = progress_bar(total_images, "encode");
    let augmentations = shard_part_files(&run.augmentations(), shard)?;

    let inputs = encoder.input_pool();
    let producer = Producer {
        sources: &sources,
        preprocessor: &preprocessor,
        config,
        held_sources,
        observer,
        decoded: &decoded,
        batch,
        inputs: &inputs,
    };

    // Three threads: the producer prepares batches, this one runs the model, a writer
    // turns outputs into rows and commits them, so that the model (a GPU's, above all)
    // never waits for Parquet.
    let rows = RowSink { parts: &mut parts, writer: &mut writer, errors: &errors, model_recorded: false };
    let mut record_model = |layer_states| -> Result<(), EncodeError> {
        record_in_manifest(&mut manifest, &spec, policy, layer_states, how.clone());
        Ok(manifest.save_shard(&run, shard)?)
    };
    let time = std::thread::scope(|scope| -> Result<LoopTime, EncodeError> {
        let (sender, receiver) = sync_channel::<Batch>(2);
        let producing = scope.spawn(|| producer.produce(&run.augmentations(), augmentations, &done, &progress, sender));
        let (to_writer, written) = sync_channel::<Encoded>(2);
        let writing = scope.spawn(move || rows.take(written, &mut record_model));
        let mut time = run_batches(&mut encoder, &receiver, to_writer, &errors);
        drop(receiver);
        time.writing = writing.join().expect("writer thread panicked")?;
        producing.join().expect("producer thread panicked")?;
        Ok(time)
    })?;
    progress.finish_and_clear();
    parts.finish(&errors)?;

    record_in_manifest(&mut manifest, &spec, policy, writer.layer_states, how);
    manifest.complete("encode");
    manifest.save_shard(&run, shard)?;
    tracing::info!(
        waiting_s = time.waiting.as_secs_f64(),
        model_s = time.model.as_secs_f64(),
        handing_s = time.handing.as_secs_f64(),
        writer_s = time.writing.as_secs_f64(),
        "inference loop"
    );
    Ok(EncodeSummary { model_share: time.model_share(), ..summary(Some(encoder.provider()), start)? })
}

/// The inference loop: runs the model on each batch the producer sends, gives its input
/// back to the pool and hands the outputs to the writer (a failed batch is recorded in
/// `errors`), until the producer is done or the writer stopped; where its time went.
fn run_batches(
    encoder: &mut Encoder,
    batches: &Receiver<Batch>,
    to_writer: SyncSender<Encoded>,
    errors: &ErrorLog,
) -> LoopTime {
    let inputs = encoder.input_pool();
    let mut time = LoopTime::default();
    loop {
        let waiting = Instant::now();
        let Ok(Batch { items, pixels, errors: prepare_errors, whole }) = batches.recv() else { break };
        time.waiting += waiting.elapsed();
        let mut output = None;
        if let Some(pixels) = pixels {
            let inference = Instant::now();
            let encoded = encoder.encode_tensor(&pixels);
            time.model += inference.elapsed();
            inputs.give_back(pixels);
            match encoded {
                Ok(encoded) => output = Some(encoded),
                Err(err) => {
                    for item in &items {
                        let (id, aug) = (Some(item.image_id), Some(item.augmentation.as_str()));
                        errors.record(None, id, aug, ErrorKind::Inference, err.to_string());
                    }
                }
            }
        }
        let handing = Instant::now();
        // A send fails only when the writer stopped on an error, which its join returns.
        let sent = to_writer.send(Encoded { items, output, prepare_errors, whole }).is_ok();
        time.handing += handing.elapsed();
        if !sent {
            break;
        }
    }
    time
}

/// Where the inference loop's time went: waiting for the producer's next batch, in the
/// model, handing the outputs to the writer (waiting when it is behind); and the
/// writer's own time, spent beside the loop.
#[derive(Default)]
struct LoopTime {
    waiting: Duration,
    model: Duration,
    handing: Duration,
    writing: Duration,
}

impl LoopTime {
    /// The model's share of the loop's time: how busy the loop kept an accelerator at
    /// most (`None` before any batch).
    fn model_share(&self) -> Option<f64> {
        let total = (self.waiting + self.model + self.handing).as_secs_f64();
        (self.model > Duration::ZERO).then(|| self.model.as_secs_f64() / total)
    }
}

/// A batch's model outputs (`None`: inference failed, recorded), on their way to the writer.
struct Encoded {
    items: Vec<VariantKey>,
    output: Option<BatchOutput>,
    prepare_errors: Option<ErrorLog>,
    /// Whether it ends its images: the rows may be committed after it.
    whole: bool,
}

/// The writer thread's side of the stage: rows into `embeddings.parquet`, commits at
/// image boundaries, the model's shapes into `run.json` before the first commit.
struct RowSink<'a> {
    parts: &'a mut StageParts,
    writer: &'a mut EmbeddingWriter,
    errors: &'a ErrorLog,
    model_recorded: bool,
}

impl RowSink<'_> {
    /// Writes every batch `encoded` brings, in order, until the loop hangs up; the time
    /// it spent.
    fn take(
        mut self,
        encoded: Receiver<Encoded>,
        record_model: &mut dyn FnMut(Option<[usize; 2]>) -> Result<(), EncodeError>,
    ) -> Result<Duration, EncodeError> {
        let mut busy = Duration::ZERO;
        for Encoded { items, output, prepare_errors, whole } in encoded {
            let start = Instant::now();
            if let Some(output) = output {
                self.writer.write(self.parts, &items, &output)?;
                // Recorded before the first commit, so a run killed later resumes knowing the shapes.
                if !self.model_recorded {
                    record_model(self.writer.layer_states)?;
                    self.model_recorded = true;
                }
            }
            if let Some(log) = prepare_errors {
                self.errors.append(log);
            }
            if whole {
                self.parts.commit_if_due(self.errors)?;
            }
            busy += start.elapsed();
        }
        Ok(busy)
    }
}

/// Records the model and how it ran in `run.json`, beside the other stages' sections.
fn record_in_manifest(
    manifest: &mut RunManifest,
    spec: &ModelSpec,
    policy: ResizePolicy,
    layer_states: Option<[usize; 2]>,
    how: EncodeManifest,
) {
    manifest.model = Some(ModelManifest {
        name: spec.name.clone(),
        source: spec.source.clone(),
        random_init: spec.random_init,
        sha256: spec.sha256.clone(),
        dir: std::fs::canonicalize(&spec.dir).unwrap_or(spec.dir.clone()),
        sidecar: (spec.sidecar.file_name() != Some("model.json".as_ref()))
            .then(|| std::fs::canonicalize(&spec.sidecar).unwrap_or(spec.sidecar.clone())),
        embedding_dim: spec.embedding_dim,
        image_size: spec.image_size,
        patch_size: spec.patch_size,
        resize_policy: policy.as_str().into(),
        layer_states,
    });
    manifest.encode = Some(how);
}

/// Streams the parts `files` of `augmentations.parquet` as one job per image.
fn image_jobs(
    path: &Path,
    files: Vec<PathBuf>,
) -> Result<impl Iterator<Item = Result<ImageJob, EncodeError>>, EncodeError> {
    let path = path.to_path_buf();
    Ok(ImageGroups::open_files(&path, files, None)?.map(move |group| {
        let (image_id, rows) = group?;
        Ok(ImageJob { image_id, variants: recorded_variants(&rows, &path)? })
    }))
}

/// The producer thread's side of the stage: packs whole images into batches, decodes
/// (or takes the held canonical image of) each source once, replays and preprocesses its
/// variants on the rayon pool, and sends the batches to the inference loop.
struct Producer<'a> {
    sources: &'a SourceImages,
    preprocessor: &'a Preprocessor,
    config: &'a EncodeConfig,
    held_sources: Option<HeldSources<'a>>,
    observer: Option<VariantObserver<'a>>,
    /// Source files decoded so far.
    decoded: &'a AtomicUsize,
    batch: usize,
    inputs: &'a InputPool,
}

impl Producer<'_> {
    /// Streams the images of `files` (parts of `augmentations.parquet` at `path`) not in
    /// `done` as batches; stops early when the receiver hung up.
    fn produce(
        &self,
        path: &Path,
        files: Vec<PathBuf>,
        done: &HashSet<u64>,
        progress: &ProgressBar,
        sender: SyncSender<Batch>,
    ) -> Result<(), EncodeError> {
        let mut jobs: Vec<ImageJob> = Vec::new();
        let mut variants = 0;
        for job in image_jobs(path, files)? {
            let job = job?;
            if done.contains(&job.image_id) {
                continue;
            }
            // Whole images per batch, packed greedily by their recorded variants.
            if !jobs.is_empty() && variants + job.variants.len() > self.batch {
                if !self.send(&mut jobs, progress, &sender)? {
                    return Ok(());
                }
                variants = 0;
            }
            variants += job.variants.len();
            jobs.push(job);
        }
        if !jobs.is_empty() {
            self.send(&mut jobs, progress, &sender)?;
        }
        Ok(())
    }

    /// Prepares `jobs` and sends them as one batch (an image with more variants than a
    /// batch as several); false when the receiver stopped on an error of its own.
    fn send(
        &self,
        jobs: &mut Vec<ImageJob>,
        progress: &ProgressBar,
        sender: &SyncSender<Batch>,
    ) -> Result<bool, EncodeError> {
        let log = ErrorLog::new("encode");
        let pieces = self.prepare(jobs, &log)?;
        progress.inc(jobs.len() as u64);
        jobs.clear();
        let last = pieces.len() - 1;
        let mut log = Some(log);
        for (i, (items, pixels)) in pieces.into_iter().enumerate() {
            let whole = i == last;
            let batch = Batch { items, pixels, errors: if whole { log.take() } else { None }, whole };
            if sender.send(batch).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Decodes (or takes) each source once, replays every variant and writes its model
    /// input into a tensor of the pool, each step in parallel over what it has most of
    /// (images, then variants), so that a batch of a few images still keeps many cores
    /// busy. One piece per batch: only a single image has more variants than a batch,
    /// and it is split.
    fn prepare(&self, jobs: &[ImageJob], errors: &ErrorLog) -> Result<Vec<Piece>, EncodeError> {
        let replays: Vec<Option<Replay>> = jobs.par_iter().map(|job| self.replay(job, errors)).collect();
        let wanted: Vec<(usize, &str, &str)> = jobs
            .iter()
            .enumerate()
            .filter(|(i, _)| replays[*i].is_some())
            .flat_map(|(i, job)| job.variants.iter().map(move |(aug, params)| (i, aug.as_str(), params.as_str())))
            .collect();
        let replayed: Vec<Option<Cow<'_, RgbImage>>> = wanted
            .par_iter()
            .map(|&(i, aug, params)| {
                let replay = replays[i].as_ref().expect("only images that loaded");
                replay
                    .variant(aug, params)
                    .map_err(|err| {
                        let (id, relative) = (jobs[i].image_id, self.sources.relative_path(jobs[i].image_id));
                        errors.record(relative, Some(id), Some(aug), err.kind(), err.to_string());
                    })
                    .ok()
            })
            .collect();
        // (image, augmentation, pixels) of every variant that replayed, in table order.
        let variants: Vec<(usize, &str, &RgbImage)> = wanted
            .iter()
            .zip(&replayed)
            .filter_map(|(&(i, aug, _), pixels)| pixels.as_deref().map(|p| (i, aug, p)))
            .collect();
        let mut tensors = Vec::new();
        for piece in variants.chunks(self.batch) {
            tensors.push(self.inputs.take(piece.len())?);
        }
        let len = self.preprocessor.tensor_len();
        rayon::join(
            || self.observe(jobs, &replays, &variants),
            || {
                tensors.par_iter_mut().zip(variants.par_chunks(self.batch)).for_each(|(tensor, piece)| {
                    let (_, data) = tensor.extract_tensor_mut();
                    data.par_chunks_mut(len).zip(piece).for_each(|(input, &(i, aug, image))| {
                        self.preprocessor.write_tensor(image, input);
                        self.dump(&jobs[i], aug, input, errors);
                    })
                })
            },
        );
        let mut pieces: Vec<Piece> = variants
            .chunks(self.batch)
            .zip(tensors)
            .map(|(piece, tensor)| {
                let items = piece
                    .iter()
                    .map(|&(i, aug, _)| VariantKey { image_id: jobs[i].image_id, augmentation: aug.to_owned() })
                    .collect();
                (items, Some(tensor))
            })
            .collect();
        if pieces.is_empty() {
            pieces.push((Vec::new(), None));
        }
        Ok(pieces)
    }

    /// The source of `job`, held or decoded; `None` (recorded) when it cannot be read.
    fn replay(&self, job: &ImageJob, errors: &ErrorLog) -> Option<Replay> {
        let (Some(relative), Some(path)) = (self.sources.relative_path(job.image_id), self.sources.file(job.image_id))
        else {
            errors.record(
                None,
                Some(job.image_id),
                None,
                ErrorKind::MissingImage,
                "image_id not in images.parquet".into(),
            );
            return None;
        };
        if let Some(canonical) = self.held_sources.and_then(|take| take(job.image_id)) {
            return Some(Replay::from_canonical(canonical));
        }
        self.decoded.fetch_add(1, Ordering::Relaxed);
        Replay::load(&path, self.sources.image_size(), self.sources.max_pixels())
            .map_err(|err| errors.record(Some(relative), Some(job.image_id), None, err.kind(), err.to_string()))
            .ok()
    }

    /// Shows the observer each image that loaded with its variants, in parallel over images.
    fn observe(&self, jobs: &[ImageJob], replays: &[Option<Replay>], variants: &[(usize, &str, &RgbImage)]) {
        let Some(observe) = self.observer else { return };
        (0..jobs.len()).into_par_iter().for_each(|i| {
            let Some(replay) = &replays[i] else { return };
            // `variants` runs image by image, in job order.
            let start = variants.partition_point(|v| v.0 < i);
            let end = variants.partition_point(|v| v.0 <= i);
            let seen: Vec<(&str, &RgbImage)> = variants[start..end].iter().map(|&(_, aug, p)| (aug, p)).collect();
            observe(jobs[i].image_id, replay.original(), &seen);
        });
    }

    /// With `--dump-pixels`, writes a variant's model input as `.npy` (a failure is recorded).
    fn dump(&self, job: &ImageJob, augmentation: &str, tensor: &[f32], errors: &ErrorLog) {
        let Some(dir) = &self.config.dump_pixels else { return };
        if let Err(err) = write_npy(dir, job.image_id, augmentation, tensor, tensor.len()) {
            let relative = self.sources.relative_path(job.image_id);
            errors.record(relative, Some(job.image_id), Some(augmentation), ErrorKind::Write, err.to_string());
        }
    }
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

/// Turns model outputs into rows of `embeddings.parquet`; the first output fixes the
/// shapes (whether the model exports per-layer states).
struct EmbeddingWriter {
    dim: usize,
    patches: Option<usize>,
    schema: Option<Arc<clipshift_tables::arrow::datatypes::Schema>>,
    /// `[states, width]` of the per-layer class-token states, once an output had them.
    layer_states: Option<[usize; 2]>,
}

impl EmbeddingWriter {
    fn write(&mut self, parts: &mut StageParts, items: &[VariantKey], output: &BatchOutput) -> Result<(), EncodeError> {
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
        if output.layer_cls_states.is_some() {
            self.layer_states = Some([output.layers, output.hidden]);
        }
        let table_schema = self
            .schema
            .get_or_insert_with(|| schema::embeddings(self.dim as i32, self.patches.map(|p| p as i32), layers))
            .clone();
        let path = Path::new("embeddings.parquet");
        let list = |values: Vec<f32>, width: usize, valid: bool| -> Result<Arc<dyn Array>, TableError> {
            let nulls = (!valid).then(|| clipshift_tables::arrow::buffer::NullBuffer::new_null(items.len()));
            FixedSizeListArray::try_new(schema::list_item(), width as i32, Arc::new(Float32Array::from(values)), nulls)
                .map(|a| Arc::new(a) as Arc<dyn Array>)
                .map_err(|source| TableError::Arrow { path: path.to_path_buf(), source })
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
        let batch = RecordBatch::try_new(table_schema, columns)
            .map_err(|source| TableError::Arrow { path: path.to_path_buf(), source })?;
        parts.write(0, &batch)?;
        Ok(())
    }
}
