//! The SAE and head files: safetensors in the layout of docs/sae.md, read into plain
//! row-major f32 arrays and checked against each other and the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::SaeError;

/// How the top k pre-activations become latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// z = ReLU(TopK_k(pre)): ViT-Prisma's and the contract's default.
    TopKRelu,
    /// z = TopK_k(pre), signed: attributing-clip's SAEs have no ReLU.
    TopK,
}

/// What the SAE does to h before encoding and after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputNorm {
    None,
    /// ViT-Prisma's `normalize_activations = "layer_norm"`: x = (h - mean) / (std + 1e-5)
    /// with the unbiased std; the reconstruction is scaled back, ĥ = std · x̂ + mean.
    LayerNorm,
}

impl Activation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TopKRelu => "topk_relu",
            Self::TopK => "topk",
        }
    }

    /// The inverse of `as_str`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::TopKRelu, Self::TopK].into_iter().find(|a| a.as_str() == name)
    }
}

impl InputNorm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::LayerNorm => "layer_norm",
        }
    }
}

/// A TopK sparse autoencoder on d-dimensional states with m latents.
#[derive(Debug, Clone)]
pub struct Sae {
    pub d: usize,
    pub m: usize,
    pub k: usize,
    pub activation: Activation,
    pub input_norm: InputNorm,
    /// [d, m], row-major.
    pub w_enc: Vec<f32>,
    pub b_enc: Vec<f32>,
    /// [m, d], row-major: row j is latent j's decoder direction.
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
    /// Everything else the file's metadata says (its provenance).
    pub metadata: HashMap<String, String>,
}

/// The model's head after the last block: e(h) = P (γ ⊙ (h - mean h) / σ(h) + β).
#[derive(Debug, Clone)]
pub struct Head {
    pub d: usize,
    /// Embedding width D.
    pub dim: usize,
    pub gamma: Vec<f64>,
    pub beta: Vec<f64>,
    /// [D, d], row-major (transformers' `visual_projection.weight`).
    pub proj: Vec<f64>,
    pub eps: f64,
}

fn bad(path: &Path, message: impl Into<String>) -> SaeError {
    SaeError::Input { path: path.to_path_buf(), message: message.into() }
}

fn read(path: &Path) -> Result<Vec<u8>, SaeError> {
    std::fs::read(path).map_err(|source| SaeError::Io { path: path.to_path_buf(), source })
}

/// One f32 (or f64, narrowed) tensor of the given shape.
fn tensor(path: &Path, st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>, SaeError> {
    let view = st.tensor(name).map_err(|_| bad(path, format!("has no tensor {name:?}")))?;
    if view.shape() != shape {
        return Err(bad(path, format!("tensor {name:?} has shape {:?}, expected {shape:?}", view.shape())));
    }
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
        Dtype::F64 => view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
        other => return Err(bad(path, format!("tensor {name:?} is {other:?}; expected F32 or F64"))),
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(path, format!("tensor {name:?} has a non-finite value at index {i}")));
    }
    Ok(values)
}

fn shape_of(path: &Path, st: &SafeTensors, name: &str) -> Result<Vec<usize>, SaeError> {
    Ok(st.tensor(name).map_err(|_| bad(path, format!("has no tensor {name:?}")))?.shape().to_vec())
}

impl Sae {
    /// Reads `W_enc` [d, m], `b_enc` [m], `W_dec` [m, d], `b_dec` [d] and the metadata
    /// `k` (required), `activation` (`topk_relu` by default, or `topk`) and
    /// `input_norm` (`none` by default, or `layer_norm`).
    pub fn load(path: &Path) -> Result<Self, SaeError> {
        let bytes = read(path)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let enc = shape_of(path, &st, "W_enc")?;
        let [d, m] = enc[..] else {
            return Err(bad(path, format!("W_enc has shape {enc:?}, expected [d, m]")));
        };
        let k: usize = metadata
            .get("k")
            .ok_or_else(|| bad(path, "has no metadata \"k\" (the number of active latents)"))?
            .parse()
            .map_err(|_| bad(path, format!("metadata k = {:?} is not a count", metadata["k"])))?;
        if d == 0 || m == 0 || k == 0 || k > m {
            return Err(bad(path, format!("d = {d}, m = {m}, k = {k}: need 0 < k <= m and d > 0")));
        }
        let activation = match metadata.get("activation") {
            None => Activation::TopKRelu,
            Some(name) => Activation::parse(name)
                .ok_or_else(|| bad(path, format!("unknown activation {name:?} (topk_relu or topk)")))?,
        };
        let input_norm = match metadata.get("input_norm").map(String::as_str) {
            None | Some("none") => InputNorm::None,
            Some("layer_norm") => InputNorm::LayerNorm,
            Some(other) => return Err(bad(path, format!("unknown input_norm {other:?} (none or layer_norm)"))),
        };
        Ok(Self {
            d,
            m,
            k,
            activation,
            input_norm,
            w_enc: tensor(path, &st, "W_enc", &[d, m])?,
            b_enc: tensor(path, &st, "b_enc", &[m])?,
            w_dec: tensor(path, &st, "W_dec", &[m, d])?,
            b_dec: tensor(path, &st, "b_dec", &[d])?,
            metadata,
        })
    }

    /// Writes the SAE in the layout `load` reads, with its metadata (k, activation and
    /// input_norm set from the fields).
    pub fn save(&self, path: &Path) -> Result<(), SaeError> {
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let data = [
            ("W_enc", bytes(&self.w_enc), vec![self.d, self.m]),
            ("b_enc", bytes(&self.b_enc), vec![self.m]),
            ("W_dec", bytes(&self.w_dec), vec![self.m, self.d]),
            ("b_dec", bytes(&self.b_dec), vec![self.d]),
        ];
        let views = data
            .iter()
            .map(|(name, data, shape)| {
                let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                    .map_err(|e| bad(path, format!("tensor {name}: {e}")))?;
                Ok((*name, view))
            })
            .collect::<Result<Vec<_>, SaeError>>()?;
        let mut metadata = self.metadata.clone();
        metadata.insert("k".into(), self.k.to_string());
        metadata.insert("activation".into(), self.activation.as_str().into());
        metadata.insert("input_norm".into(), self.input_norm.as_str().into());
        safetensors::tensor::serialize_to_file(views, Some(metadata), path)
            .map_err(|e| bad(path, format!("cannot write: {e}")))
    }

    /// Latent j's decoder direction.
    pub fn decoder_row(&self, j: usize) -> &[f32] {
        &self.w_dec[j * self.d..(j + 1) * self.d]
    }
}

impl Head {
    /// Reads a model's `head.safetensors`; its metadata must name the model's sha256.
    pub fn load(path: &Path, model_sha256: &str, eps: f64) -> Result<Self, SaeError> {
        let bytes = read(path)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let recorded = header.metadata().as_ref().and_then(|m| m.get("model_sha256").cloned()).unwrap_or_default();
        if !recorded.eq_ignore_ascii_case(model_sha256) {
            return Err(bad(
                path,
                format!("belongs to model {recorded:?}, not to {model_sha256}; re-export the model"),
            ));
        }
        let proj_shape = shape_of(path, &st, "visual_projection.weight")?;
        let [dim, d] = proj_shape[..] else {
            return Err(bad(path, format!("visual_projection.weight has shape {proj_shape:?}, expected [D, d]")));
        };
        let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
        Ok(Self {
            d,
            dim,
            gamma: wide(tensor(path, &st, "vision_model.post_layernorm.weight", &[d])?),
            beta: wide(tensor(path, &st, "vision_model.post_layernorm.bias", &[d])?),
            proj: wide(tensor(path, &st, "visual_projection.weight", &[dim, d])?),
            eps,
        })
    }

    /// The head of a model directory, from `model.json`'s `head` section (an int8 or float16
    /// copy's sidecar shares the float32 model's head: the section names that model).
    pub fn of_model(spec: &clipshift_encode::ModelSpec) -> Result<Self, SaeError> {
        let path: PathBuf = spec.head_path()?.ok_or_else(|| {
            SaeError::Config(format!(
                "model {} has no head.safetensors; re-export it with models/export_clip.py (it writes one)",
                spec.name
            ))
        })?;
        let head_spec = spec.head.as_ref().expect("head_path found it");
        let owner = head_spec.model_sha256.as_deref().unwrap_or(&spec.sha256);
        let head = Self::load(&path, owner, head_spec.layer_norm_eps)?;
        if spec.hidden_size.is_some_and(|h| h != head.d) || head.dim != spec.embedding_dim {
            return Err(bad(
                &path,
                format!(
                    "has d = {}, D = {}; the model has {:?}, {}",
                    head.d, head.dim, spec.hidden_size, spec.embedding_dim
                ),
            ));
        }
        Ok(head)
    }
}
