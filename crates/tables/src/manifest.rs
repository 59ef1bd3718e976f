//! `run.json`: the resolved configuration of a run, one typed section per stage that
//! writes one. Each stage loads the manifest, sets its own section and saves it, so the
//! other stages' sections are kept.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{RunDir, TableError, write_atomic};

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
}

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
    pub embedding_dim: usize,
    pub image_size: u32,
    pub patch_size: u32,
    /// Preprocessing policy: `paper` or `clip`.
    pub resize_policy: String,
}

/// How the encode stage ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeManifest {
    /// `auto`, `cpu` or `cuda`, as asked.
    pub device: String,
    /// The execution provider that ran.
    pub provider: String,
    pub batch: usize,
    pub intra_threads: Option<usize>,
}

impl RunManifest {
    /// Reads the run's `run.json`; an absent file is an empty manifest.
    pub fn load(run: &RunDir) -> Result<Self, TableError> {
        Self::read(&run.manifest())
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
        Ok(Self { augment, model, encode })
    }

    /// Writes `run.json` atomically.
    pub fn save(&self, run: &RunDir) -> Result<(), TableError> {
        let path = run.manifest();
        let text =
            serde_json::to_string_pretty(self).map_err(|source| TableError::Json { path: path.clone(), source })?;
        write_atomic(&path, text.as_bytes())
    }

    /// The augment section, or an error naming `run.json` and the stage that writes it.
    pub fn require_augment(&self, run: &RunDir) -> Result<&AugmentManifest, TableError> {
        self.augment.as_ref().ok_or_else(|| TableError::Missing {
            path: run.manifest(),
            hint: "run.json has no augment section; run the `augment` stage first".into(),
        })
    }
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
            },
            inputs: InputsManifest { images: 2, fingerprint: "00ff".into() },
        }
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
        m.encode = Some(EncodeManifest { device: "cpu".into(), provider: "CPU".into(), batch: 4, intra_threads: None });
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
