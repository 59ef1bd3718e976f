//! The model contract: `model.onnx` plus the `model.json` sidecar written by
//! `models/export_clip.py`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::EncodeError;

/// How a variant image becomes the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizePolicy {
    /// The paper's: the input is already the square, augmented image; rescale and normalise only
    /// (resized with bilinear interpolation if its size differs from the model's).
    Paper,
    /// Hugging Face CLIPImageProcessor: shortest edge to the input size with PIL bicubic
    /// (antialiased), centre crop, rescale, normalise.
    Clip,
}

impl ResizePolicy {
    /// The name `model.json`, `run.json` and `--policy` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Clip => "clip",
        }
    }
}

/// Names of the graph outputs the encoder reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputNames {
    pub image_embeds: String,
    #[serde(default)]
    pub last_attention: Option<String>,
    #[serde(default)]
    pub layer_cls_states: Option<String>,
}

/// The text tower: `model.json`'s `text` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    pub onnx: String,
    pub sha256: String,
    /// `tokenizer.json` (Hugging Face `tokenizers` format), absent when the tower's
    /// vocabulary is not a tokenizer's (test checkpoints).
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub tokenizer_sha256: Option<String>,
    /// Tokens per prompt (CLIP: 77), the graph's fixed sequence length.
    pub context_length: usize,
    pub vocab_size: usize,
    /// Width of `text_embeds`; equals the vision tower's `embedding_dim`.
    pub embedding_dim: usize,
    pub outputs: TextOutputNames,
}

/// The head after the last block (`model.json`'s `head` section): post-layernorm and
/// visual projection in `head.safetensors`, so that analyses of the last class-token
/// state h can map it to the embedding, e(h) = projᵀ LN(h).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub file: String,
    pub sha256: String,
    pub layer_norm_eps: f64,
    /// The sha256 of the float32 `model.onnx` whose weights the head holds, when the
    /// sidecar says so: an int8 or float16 copy's sidecar names its source here, so that
    /// analyses through the head accept the copy (absent in older sidecars: the model's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
}

/// Names of the text graph's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextOutputNames {
    pub text_embeds: String,
}

/// The parsed `model.json` sidecar plus the directory it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub source: String,
    #[serde(default)]
    pub random_init: bool,
    #[serde(default)]
    pub seed: Option<u64>,
    pub onnx: String,
    pub sha256: String,
    pub image_size: u32,
    pub patch_size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize_policy: ResizePolicy,
    pub embedding_dim: usize,
    #[serde(default)]
    pub hidden_size: Option<usize>,
    #[serde(default)]
    pub num_layers: Option<usize>,
    #[serde(default)]
    pub num_heads: Option<usize>,
    pub outputs: OutputNames,
    /// The head file, when the model was exported with one.
    #[serde(default)]
    pub head: Option<HeadSpec>,
    /// The text tower, when the model was exported with one.
    #[serde(default)]
    pub text: Option<TextSpec>,
    /// CLIP's learned temperature as stored in the checkpoint: the logits of image-text
    /// cosine similarities are `exp(logit_scale) x cos`.
    #[serde(default)]
    pub logit_scale: Option<f64>,
    #[serde(skip)]
    pub dir: PathBuf,
    /// The sidecar file it was loaded from.
    #[serde(skip)]
    pub sidecar: PathBuf,
}

impl ModelSpec {
    /// Loads a model from its directory (its `model.json`), from a sidecar file such as
    /// `model.int8.json`, or from the path of an `.onnx` file (then its directory's
    /// `model.json`). The files the sidecar names are checked against its sha256 by
    /// whoever opens them (`Encoder::new`, `TextEncoder::new`, `head_path`), so a stage
    /// hashes only what it uses.
    pub fn load(path: &Path) -> Result<Self, EncodeError> {
        let dir =
            if path.is_dir() { path.to_path_buf() } else { path.parent().unwrap_or(Path::new(".")).to_path_buf() };
        let sidecar = if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            path.to_path_buf()
        } else {
            dir.join("model.json")
        };
        let text = std::fs::read_to_string(&sidecar)
            .map_err(|e| EncodeError::Model { path: sidecar.clone(), message: format!("cannot read sidecar: {e}") })?;
        let mut spec: ModelSpec = serde_json::from_str(&text)
            .map_err(|e| EncodeError::Model { path: sidecar.clone(), message: format!("invalid sidecar: {e}") })?;
        spec.dir = dir;
        spec.validate(&sidecar)?;
        spec.sidecar = sidecar;
        Ok(spec)
    }

    /// The model that encoded a run, for a later stage: `chosen` (its `--model` option), or
    /// else the sidecar or directory the run's `run.json` records; refused unless its
    /// sha256 is the one recorded.
    pub fn of_run(recorded: &clipshift_tables::ModelManifest, chosen: Option<&Path>) -> Result<Self, EncodeError> {
        let path = chosen.unwrap_or(recorded.path());
        let spec = Self::load(path)?;
        if spec.sha256 != recorded.sha256 {
            return Err(EncodeError::Model {
                path: path.to_path_buf(),
                message: format!(
                    "is not the model that encoded this run ({}, sha256 {}); pass that model with --model",
                    recorded.name, recorded.sha256
                ),
            });
        }
        Ok(spec)
    }

    fn validate(&self, sidecar: &Path) -> Result<(), EncodeError> {
        let bad = |message: String| Err(EncodeError::Model { path: sidecar.to_path_buf(), message });
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!("image_size {} is not a multiple of patch_size {}", self.image_size, self.patch_size));
        }
        if self.std.iter().any(|s| *s <= 0.0) {
            return bad("std must be positive".into());
        }
        if self.embedding_dim == 0 {
            return bad("embedding_dim must be positive".into());
        }
        if let Some(text) = &self.text {
            if text.embedding_dim != self.embedding_dim {
                return bad(format!(
                    "the text tower's embedding_dim {} differs from the vision tower's {}",
                    text.embedding_dim, self.embedding_dim
                ));
            }
            if text.context_length == 0 {
                return bad("text context_length must be positive".into());
            }
            if self.logit_scale.is_none_or(|s| !s.is_finite()) {
                return bad("a model with a text tower needs a finite logit_scale".into());
            }
        }
        Ok(())
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.dir.join(&self.onnx)
    }

    /// The head file, its sha256 checked against the sidecar; `None` for a model
    /// exported without one.
    pub fn head_path(&self) -> Result<Option<PathBuf>, EncodeError> {
        let Some(head) = &self.head else { return Ok(None) };
        let path = self.dir.join(&head.file);
        check_sha256(&path, &head.sha256)?;
        Ok(Some(path))
    }

    /// Side of the square patch grid, g (the attention map has g x g entries).
    pub fn grid(&self) -> usize {
        (self.image_size / self.patch_size) as usize
    }
}

/// Checks a file the sidecar names against the sha256 it records.
pub(crate) fn check_sha256(path: &Path, expected: &str) -> Result<(), EncodeError> {
    let actual = file_sha256(path)?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(EncodeError::Model {
            path: path.to_path_buf(),
            message: format!("sha256 {actual} does not match the sidecar's {expected}; re-export the model"),
        });
    }
    Ok(())
}

/// Hex sha256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, EncodeError> {
    use std::io::Read;
    let io = |source| EncodeError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
