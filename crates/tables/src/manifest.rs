//! `run.json`: the resolved configuration of a run, one typed section per stage that
//! writes one. Each stage loads the manifest, sets its own section and saves it, so the
//! other stages' sections are kept.
//!
//! `progress` records, per stage, what it was asked to compute and whether it finished:
//! a stage started again with the same request resumes (or has nothing to do), one with a
//! changed request recomputes, and the next stage refuses tables that are not complete.
//! A shard K of N keeps its own manifest, `shards/KKKK-of-NNNN.json`; the report merges
//! them into `run.json` ([`merge_shards`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{RunDir, Shard, TableError, write_atomic};

/// The whole of `run.json`. The file keeps the augment section's keys at the top level
/// (`seed`, `suite`, `data_root`, …), beside `model` and `encode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunManifest {
    /// Written by the augment stage; `None` before it ran.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentManifest>,
    /// Written by the encode stage: the model the embeddings come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelManifest>,
    /// Written by the encode stage: how inference ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode: Option<EncodeManifest>,
    /// Written by the metrics stage: what its tables were computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsManifest>,
    /// Written by the text stage: what its tables were computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextManifest>,
    /// Written by the SAE stage: the SAE and what its tables were computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sae: Option<SaeManifest>,
    /// Per stage (`augment`, `encode`, `metrics`): what it was asked and whether it finished.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub progress: BTreeMap<String, StageProgress>,
}

/// Where a stage's work stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageProgress {
    /// Whether the stage finished: its tables hold every row.
    pub complete: bool,
    /// What the stage was asked to compute: its inputs and the options that change its rows.
    pub request: Lineage,
}

/// How a stage starts, from its request and what `run.json` says of its last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Nothing of it is kept: first run, changed request, or `--fresh`.
    Fresh,
    /// The same request was interrupted: continue after its last commit.
    Resume,
    /// The same request already finished: nothing to do.
    Done,
}

/// What a stage's tables were computed from, by name (`seed`, `suite`, `model_sha256`, …),
/// so the next stage can tell whether they are still current and say what changed.
pub type Lineage = BTreeMap<String, String>;

/// What the augment stage was asked to do, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentManifest {
    /// The clipshift version that wrote the run.
    pub tool_version: String,
    pub seed: u64,
    /// The folder the images' relative paths in `images.parquet` start from.
    pub data_root: PathBuf,
    /// Side of the square canonical image every variant starts from.
    pub image_size: u32,
    /// Sources with more pixels are refused; the later stages decode with the same limit.
    pub max_pixels: u64,
    pub limit: Option<usize>,
    pub save_images: bool,
    pub suite: SuiteManifest,
    pub inputs: InputsManifest,
}

/// The augmentation suite with every hyperparameter resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteManifest {
    pub name: String,
    pub members: Vec<MemberManifest>,
    /// Member -> keyword prompts, for the text stage; not part of the augment lineage,
    /// since they change no pixel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keywords: BTreeMap<String, Vec<String>>,
}

/// One suite member: its name and its transform's hyperparameters (`transform`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberManifest {
    pub name: String,
    #[serde(flatten)]
    pub transform: serde_json::Map<String, serde_json::Value>,
}

/// A fingerprint of the images a run read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputsManifest {
    pub images: usize,
    /// FNV-1a over the sorted image ids, as 16 hex digits.
    pub fingerprint: String,
    /// FNV-1a over the resolved suite's JSON, as 16 hex digits.
    pub suite: String,
}

/// The model of the encode stage (from its `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub name: String,
    /// A checkpoint name, or `random-init`.
    pub source: String,
    pub random_init: bool,
    /// sha256 of the ONNX file.
    pub sha256: String,
    pub dir: PathBuf,
    /// The sidecar the model was loaded from, when not `dir`'s `model.json` (an int8 or
    /// float16 copy's `model.int8.json`, `model.fp16.json`): later stages load the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<PathBuf>,
    pub embedding_dim: usize,
    pub image_size: u32,
    pub patch_size: u32,
    /// Preprocessing policy: `paper` or `clip`.
    pub resize_policy: String,
    /// `[states, width]` of `layer_cls_states` in embeddings.parquet (the class token after
    /// the pre-layernorm, then after each block), when the model exports them.
    #[serde(default)]
    pub layer_states: Option<[usize; 2]>,
}

impl ModelManifest {
    /// What `ModelSpec::load` takes to load this model again: its sidecar, or its directory.
    pub fn path(&self) -> &Path {
        self.sidecar.as_deref().unwrap_or(&self.dir)
    }
}

/// How the encode stage ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeManifest {
    /// `auto`, `cpu` or `cuda`, as asked.
    pub device: String,
    /// The execution provider that ran.
    pub provider: String,
    pub batch: usize,
    /// ONNX Runtime's intra-op threads (`None` in runs that left them to ONNX Runtime).
    pub intra_threads: Option<usize>,
    /// The augment stage's lineage the embeddings were computed from.
    pub augment: Lineage,
}

/// What the metrics stage's tables were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsManifest {
    /// The encode stage's lineage ([`RunManifest::encode_lineage`]).
    pub encode: Lineage,
}

/// What the text stage's tables were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextManifest {
    /// The encode stage's lineage ([`RunManifest::encode_lineage`]).
    pub encode: Lineage,
    /// sha256 of the text tower's ONNX file.
    pub text_sha256: String,
    /// Where the zero-shot labels came from (a file, or `cifar100` for the built-in list).
    pub labels: String,
    pub label_count: usize,
    pub templates: Vec<String>,
    /// Keyword prompts per augmentation (from the suite).
    pub keywords: BTreeMap<String, Vec<String>>,
    /// The captions file, when the data had one.
    pub captions: Option<PathBuf>,
    pub captioned_images: usize,
    /// Distinct prompts embedded, and the seconds it took.
    pub prompts: usize,
    pub embedding_seconds: f64,
}

/// What the SAE stage's tables were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaeManifest {
    /// The encode stage's lineage ([`RunManifest::encode_lineage`]).
    pub encode: Lineage,
    /// The SAE file, its sha256 and shape (d state width, m latents, k active).
    pub file: PathBuf,
    pub sha256: String,
    pub d: usize,
    pub m: usize,
    pub k: usize,
    pub activation: String,
    pub input_norm: String,
    /// Where the concept vocabulary came from (a file, or `imagenet1k`), and how many
    /// concepts labelled the latents (none without a text tower).
    pub concepts: Option<String>,
    pub concept_count: usize,
    pub seconds: f64,
}

impl AugmentManifest {
    /// Everything the augment stage's tables depend on.
    pub fn lineage(&self) -> Lineage {
        Lineage::from([
            ("seed".into(), self.seed.to_string()),
            ("suite".into(), self.inputs.suite.clone()),
            ("images".into(), self.inputs.fingerprint.clone()),
            ("image_size".into(), self.image_size.to_string()),
            ("max_pixels".into(), self.max_pixels.to_string()),
        ])
    }
}

impl RunManifest {
    /// Reads the run's `run.json`; an absent file is an empty manifest.
    pub fn load(run: &RunDir) -> Result<Self, TableError> {
        Self::read(&run.manifest())
    }

    /// Reads the manifest of one shard (`run.json` for the whole run).
    pub fn load_shard(run: &RunDir, shard: Shard) -> Result<Self, TableError> {
        Self::read(&run.shard_manifest(shard))
    }

    /// Writes the manifest of one shard atomically (`run.json` for the whole run).
    pub fn save_shard(&self, run: &RunDir, shard: Shard) -> Result<(), TableError> {
        let path = run.shard_manifest(shard);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TableError::Io { path: dir.to_path_buf(), source })?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|source| TableError::Json { path: path.clone(), source })?;
        write_atomic(&path, text.as_bytes())
    }

    /// Decides how `stage` starts for `request` and records it as started (unless there is
    /// nothing to do). A changed request is logged with what changed. `committed` says
    /// whether the shard holds parts of the stage's primary table: without them (another
    /// shard count replaced them) there is nothing to keep.
    pub fn begin(&mut self, stage: &str, request: Lineage, fresh: bool, committed: bool) -> Start {
        let start = match self.progress.get(stage) {
            Some(last) if last.request == request && !fresh && committed => {
                if last.complete {
                    Start::Done
                } else {
                    Start::Resume
                }
            }
            Some(last) if last.request != request => {
                tracing::warn!(
                    stage,
                    "inputs changed since the last run ({}): recomputing from scratch",
                    changes(&last.request, &request).join(", ")
                );
                Start::Fresh
            }
            _ => Start::Fresh,
        };
        if start != Start::Done {
            self.progress.insert(stage.into(), StageProgress { complete: false, request });
        }
        start
    }

    /// Records that `stage` finished.
    pub fn complete(&mut self, stage: &str) {
        if let Some(progress) = self.progress.get_mut(stage) {
            progress.complete = true;
        }
    }

    /// Refuses to read the tables of `stage` (named by `table`) unless it finished. A
    /// manifest of an older run without `progress` counts as finished.
    pub fn require_complete(&self, run: &RunDir, stage: &str, table: &str) -> Result<(), TableError> {
        match self.progress.get(stage) {
            Some(progress) if !progress.complete => {
                Err(TableError::Incomplete { path: run.root().join(table), stage: stage.into() })
            }
            _ => Ok(()),
        }
    }

    fn read(path: &Path) -> Result<Self, TableError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
        let mut keys: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|source| TableError::Json { path: path.to_path_buf(), source })?;
        // Each section is parsed strictly on its own, so a damaged one is an error that
        // names its key rather than a section silently missing.
        let model = keys.remove("model").map(|v| section(path, "model.", v)).transpose()?;
        let encode = keys.remove("encode").map(|v| section(path, "encode.", v)).transpose()?;
        let metrics = keys.remove("metrics").map(|v| section(path, "metrics.", v)).transpose()?;
        let text = keys.remove("text").map(|v| section(path, "text.", v)).transpose()?;
        let sae = keys.remove("sae").map(|v| section(path, "sae.", v)).transpose()?;
        let progress = keys.remove("progress").map(|v| section(path, "progress.", v)).transpose()?.unwrap_or_default();
        let augment: Option<AugmentManifest> =
            if keys.is_empty() { None } else { Some(section(path, "", serde_json::Value::Object(keys))?) };
        if let Some(a) = &augment
            && a.image_size == 0
        {
            return Err(TableError::Column {
                path: path.to_path_buf(),
                column: "image_size".into(),
                message: "expected a positive integer, found 0".into(),
            });
        }
        Ok(Self { augment, model, encode, metrics, text, sae, progress })
    }

    /// Writes `run.json` atomically.
    pub fn save(&self, run: &RunDir) -> Result<(), TableError> {
        let path = run.manifest();
        let text =
            serde_json::to_string_pretty(self).map_err(|source| TableError::Json { path: path.clone(), source })?;
        write_atomic(&path, text.as_bytes())
    }

    /// Everything the encode stage's tables depend on: the augment lineage it read, the
    /// model file and the preprocessing policy. `None` before encode ran.
    pub fn encode_lineage(&self) -> Option<Lineage> {
        let (encode, model) = (self.encode.as_ref()?, self.model.as_ref()?);
        Some(encode_lineage(&encode.augment, &model.sha256, &model.resize_policy))
    }

    /// Refuses embeddings.parquet when it was computed from other augment tables than
    /// the run has now (the augment stage re-ran with another seed, suite or images).
    pub fn check_embeddings_current(&self, run: &RunDir) -> Result<(), TableError> {
        let augment = self.require_augment(run)?.lineage();
        let encode = self.encode.as_ref().ok_or_else(|| TableError::Missing {
            path: run.manifest(),
            hint: "run.json has no encode section; run the `encode` stage first".into(),
        })?;
        stale_if_changed(run, "embeddings.parquet", "encode", &encode.augment, &augment)
    }

    /// Refuses metrics.parquet and pairwise.parquet when they were computed from other
    /// embeddings than the run has now, and embeddings that are themselves stale.
    pub fn check_metrics_current(&self, run: &RunDir) -> Result<(), TableError> {
        self.check_embeddings_current(run)?;
        let encode = self.encode_lineage().expect("checked: the encode section exists");
        let metrics = self.metrics.as_ref().ok_or_else(|| TableError::Missing {
            path: run.manifest(),
            hint: "run.json has no metrics section; run the `metrics` stage first".into(),
        })?;
        stale_if_changed(run, "metrics.parquet", "metrics", &metrics.encode, &encode)
    }

    /// Refuses the text stage's tables when they were computed from other embeddings
    /// than the run has now; `Ok(false)` when the text stage has not run.
    pub fn check_text_current(&self, run: &RunDir) -> Result<bool, TableError> {
        let Some(text) = &self.text else { return Ok(false) };
        self.check_embeddings_current(run)?;
        let encode = self.encode_lineage().expect("checked: the encode section exists");
        stale_if_changed(run, "zero_shot.parquet", "text", &text.encode, &encode)?;
        Ok(true)
    }

    /// Refuses the SAE stage's tables when they were computed from other embeddings
    /// than the run has now; `Ok(false)` when the SAE stage has not run.
    pub fn check_sae_current(&self, run: &RunDir) -> Result<bool, TableError> {
        let Some(sae) = &self.sae else { return Ok(false) };
        self.check_embeddings_current(run)?;
        let encode = self.encode_lineage().expect("checked: the encode section exists");
        stale_if_changed(run, "component_attribution.parquet", "sae", &sae.encode, &encode)?;
        Ok(true)
    }

    /// The augment section, or an error naming `run.json` and the stage that writes it.
    pub fn require_augment(&self, run: &RunDir) -> Result<&AugmentManifest, TableError> {
        self.augment.as_ref().ok_or_else(|| TableError::Missing {
            path: run.manifest(),
            hint: "run.json has no augment section; run the `augment` stage first".into(),
        })
    }
}

/// The fingerprint of a set of images: FNV-1a over their sorted ids, as 16 hex digits.
pub fn fingerprint(ids: &mut [u64]) -> String {
    ids.sort_unstable();
    format!("{:016x}", ids.iter().fold(crate::Fnv1a::new(), |h, &id| h.word(id)).finish())
}

/// Everything embeddings depend on: the augment lineage, the model file and the
/// preprocessing policy.
pub fn encode_lineage(augment: &Lineage, model_sha256: &str, resize_policy: &str) -> Lineage {
    let mut lineage = augment.clone();
    lineage.insert("model_sha256".into(), model_sha256.into());
    lineage.insert("resize_policy".into(), resize_policy.into());
    lineage
}

/// `key: old -> new` for every key whose value differs.
fn changes(was: &Lineage, now: &Lineage) -> Vec<String> {
    let keys: BTreeSet<&String> = was.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| was.get(*k) != now.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), Clone::clone);
            format!("{k}: {} -> {}", show(was.get(k)), show(now.get(k)))
        })
        .collect()
}

/// An error listing what changed between the lineage a table was computed from and the
/// run's current one, and which stage to re-run.
fn stale_if_changed(run: &RunDir, table: &str, stage: &str, was: &Lineage, now: &Lineage) -> Result<(), TableError> {
    let changes = changes(was, now);
    if changes.is_empty() {
        return Ok(());
    }
    Err(TableError::Stale { path: run.root().join(table), changes: changes.join(", "), stage: stage.into() })
}

fn section<T: serde::de::DeserializeOwned>(
    path: &Path,
    prefix: &str,
    value: serde_json::Value,
) -> Result<T, TableError> {
    serde_path_to_error::deserialize(value).map_err(|e| TableError::Column {
        path: path.to_path_buf(),
        column: format!("{prefix}{}", e.path()),
        message: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn augment() -> AugmentManifest {
        let mut transform = serde_json::Map::new();
        transform.insert("transform".into(), "gaussian_blur".into());
        transform.insert("sigma".into(), serde_json::json!([1.0, 2.0]));
        AugmentManifest {
            tool_version: "0.1.0".into(),
            seed: 7,
            data_root: "/data".into(),
            image_size: 224,
            max_pixels: 1000,
            limit: None,
            save_images: false,
            suite: SuiteManifest {
                name: "paper".into(),
                members: vec![MemberManifest { name: "blur".into(), transform }],
                keywords: BTreeMap::new(),
            },
            inputs: InputsManifest { images: 2, fingerprint: "00ff".into(), suite: "abcd".into() },
        }
    }

    fn encode(from: &AugmentManifest) -> EncodeManifest {
        EncodeManifest {
            device: "cpu".into(),
            provider: "CPU".into(),
            batch: 4,
            intra_threads: None,
            augment: from.lineage(),
        }
    }

    fn model() -> ModelManifest {
        ModelManifest {
            name: "m".into(),
            source: "random-init".into(),
            random_init: true,
            sha256: "aa".into(),
            dir: "models/m".into(),
            sidecar: None,
            embedding_dim: 32,
            image_size: 224,
            patch_size: 32,
            resize_policy: "paper".into(),
            layer_states: None,
        }
    }

    #[test]
    fn a_table_computed_from_changed_inputs_is_refused_naming_what_changed() {
        let run = RunDir::new("/a-run");
        let mut m = RunManifest { augment: Some(augment()), model: Some(model()), ..RunManifest::default() };
        m.encode = Some(encode(&augment()));
        m.metrics = Some(MetricsManifest { encode: m.encode_lineage().unwrap() });
        m.check_metrics_current(&run).unwrap();
        // The augment stage re-ran with another seed: embeddings and metrics are stale.
        m.augment.as_mut().unwrap().seed = 8;
        let err = m.check_embeddings_current(&run).unwrap_err().to_string();
        assert!(
            err.contains("embeddings.parquet") && err.contains("seed: 7 -> 8") && err.contains("`encode`"),
            "{err}"
        );
        // Encode re-ran on the new tables, with another model: metrics alone are stale.
        m.encode = Some(encode(m.augment.as_ref().unwrap()));
        m.model.as_mut().unwrap().sha256 = "bb".into();
        m.check_embeddings_current(&run).unwrap();
        let err = m.check_metrics_current(&run).unwrap_err().to_string();
        assert!(
            err.contains("metrics.parquet") && err.contains("model_sha256: aa -> bb") && err.contains("seed: 7 -> 8")
        );
        assert!(err.contains("`metrics`"), "{err}");
    }

    #[test]
    fn sections_survive_each_other_and_keep_the_flat_layout() {
        let run = RunDir::new(std::env::temp_dir().join(format!("clipshift-manifest-{}", std::process::id())));
        run.create().unwrap();
        assert_eq!(RunManifest::load(&run).unwrap(), RunManifest::default());
        let mut m = RunManifest::load(&run).unwrap();
        m.augment = Some(augment());
        m.save(&run).unwrap();
        let mut m = RunManifest::load(&run).unwrap();
        m.encode = Some(encode(&augment()));
        m.save(&run).unwrap();
        let back = RunManifest::load(&run).unwrap();
        assert_eq!(back.augment, Some(augment()));
        assert_eq!(back.encode.as_ref().unwrap().batch, 4);
        assert_eq!(back.model, None);
        // External readers see the documented keys where they always were.
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.manifest()).unwrap()).unwrap();
        assert_eq!(raw["seed"], 7);
        assert_eq!(raw["suite"]["members"][0]["name"], "blur");
        assert_eq!(raw["suite"]["members"][0]["transform"], "gaussian_blur");
        assert_eq!(raw["encode"]["batch"], 4);
        std::fs::remove_dir_all(run.root()).unwrap();
    }

    #[test]
    fn a_stage_resumes_only_the_same_unfinished_request() {
        let run = RunDir::new(std::env::temp_dir().join(format!("clipshift-manifest-start-{}", std::process::id())));
        let request = Lineage::from([("seed".to_string(), "1".to_string())]);
        let mut m = RunManifest::default();
        assert_eq!(m.begin("encode", request.clone(), false, false), Start::Fresh);
        let err = m.require_complete(&run, "encode", "embeddings.parquet").unwrap_err().to_string();
        assert!(err.contains("embeddings.parquet is incomplete") && err.contains("`encode`"), "{err}");
        assert_eq!(m.begin("encode", request.clone(), false, true), Start::Resume);
        m.complete("encode");
        m.require_complete(&run, "encode", "embeddings.parquet").unwrap();
        assert_eq!(m.begin("encode", request.clone(), false, true), Start::Done);
        m.require_complete(&run, "encode", "embeddings.parquet").unwrap();
        // Its parts replaced by another shard count, or --fresh: from scratch.
        assert_eq!(m.begin("encode", request.clone(), false, false), Start::Fresh);
        m.complete("encode");
        assert_eq!(m.begin("encode", request.clone(), true, true), Start::Fresh);
        m.complete("encode");
        let changed = Lineage::from([("seed".to_string(), "2".to_string())]);
        assert_eq!(m.begin("encode", changed.clone(), false, true), Start::Fresh);
        assert!(m.require_complete(&run, "encode", "embeddings.parquet").is_err());
        assert_eq!(m.progress["encode"].request, changed);

        // A shard keeps its own manifest; progress survives the round trip.
        run.create().unwrap();
        let shard = Shard::new(1, 3).unwrap();
        m.save_shard(&run, shard).unwrap();
        assert!(run.root().join("shards/0001-of-0003.json").is_file() && !run.manifest().exists());
        assert_eq!(RunManifest::load_shard(&run, shard).unwrap(), m);
        std::fs::remove_dir_all(run.root()).unwrap();
    }

    #[test]
    fn a_manifest_without_the_augment_section_names_the_stage() {
        let run = RunDir::new("/nonexistent-run");
        let err = RunManifest::default().require_augment(&run).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("augment"), "{err}");
    }

    #[test]
    fn a_damaged_section_is_an_error_naming_its_key() {
        let run = RunDir::new(std::env::temp_dir().join(format!("clipshift-manifest-bad-{}", std::process::id())));
        run.create().unwrap();
        let mut m = RunManifest { augment: Some(augment()), ..RunManifest::default() };
        m.save(&run).unwrap();
        let text =
            std::fs::read_to_string(run.manifest()).unwrap().replace("\"image_size\": 224", "\"image_size\": \"big\"");
        std::fs::write(run.manifest(), text).unwrap();
        let err = RunManifest::load(&run).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("image_size") && err.contains("u32"), "{err}");
        m.augment.as_mut().unwrap().image_size = 0;
        m.save(&run).unwrap();
        let err = RunManifest::load(&run).unwrap_err().to_string();
        assert!(err.contains("image_size") && err.contains("positive"), "{err}");
        std::fs::write(run.manifest(), r#"{"model": {"name": 3}}"#).unwrap();
        let err = RunManifest::load(&run).unwrap_err().to_string();
        assert!(err.contains("model.name"), "{err}");
        std::fs::remove_dir_all(run.root()).unwrap();
    }
}
