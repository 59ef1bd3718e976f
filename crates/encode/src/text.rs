//! The text tower: CLIP's tokenizer (`tokenizer.json`, Hugging Face `tokenizers`) and the
//! ONNX session of `text_model.onnx`, prompts in, projected text embeddings out.

use std::path::PathBuf;

use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use crate::model::{TextSpec, check_sha256};
use crate::session::{OpenSession, extract, open_session};
use crate::{EncodeError, ModelSpec, SessionConfig};

/// Token ids and attention mask of a batch of prompts, `[N, context_length]` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
    pub count: usize,
}

/// A model's text tower, ready to embed prompts.
#[derive(Debug)]
pub struct TextEncoder {
    session: Session,
    /// Whether the graph takes sequences shorter than the context (then each batch is
    /// cut after its longest prompt: the causal mask makes the rest irrelevant).
    cut_padding: bool,
    tokenizer: Option<Tokenizer>,
    spec: TextSpec,
    onnx: PathBuf,
    provider: &'static str,
}

impl TextEncoder {
    /// Opens the text tower of `model`, checking its files against the sidecar's sha256;
    /// `None` when the model has no text tower.
    pub fn new(model: &ModelSpec, config: &SessionConfig) -> Result<Option<Self>, EncodeError> {
        let Some(spec) = model.text.clone() else { return Ok(None) };
        let onnx = model.dir.join(&spec.onnx);
        let OpenSession { session, provider, fallback } = open_session(&onnx, &spec.sha256, config)?;
        let cut_padding = check_contract(&session, &spec, &onnx)?;
        let tokenizer = match (&spec.tokenizer, &spec.tokenizer_sha256) {
            (Some(name), sha) => {
                let path = model.dir.join(name);
                if let Some(sha) = sha {
                    check_sha256(&path, sha)?;
                }
                Some(load_tokenizer(&path, spec.context_length)?)
            }
            (None, _) => None,
        };
        if let Some(reason) = fallback {
            tracing::warn!("text tower: CUDA requested but running on CPU: {reason}");
        }
        Ok(Some(Self { session, cut_padding, tokenizer, spec, onnx, provider }))
    }

    pub fn spec(&self) -> &TextSpec {
        &self.spec
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Token ids as transformers' CLIPTokenizer gives them with `padding="max_length",
    /// truncation=True, max_length=context_length`.
    pub fn tokenize(&self, prompts: &[&str]) -> Result<Tokens, EncodeError> {
        let Some(tokenizer) = &self.tokenizer else {
            return Err(EncodeError::Model {
                path: self.onnx.clone(),
                message: "this text tower has no tokenizer (model.json text.tokenizer is null)".into(),
            });
        };
        let context = self.spec.context_length;
        let mut tokens = Tokens { ids: Vec::new(), mask: Vec::new(), count: prompts.len() };
        for prompt in prompts {
            let encoding = tokenizer.encode(*prompt, true).map_err(|e| EncodeError::Model {
                path: self.onnx.clone(),
                message: format!("tokenising {prompt:?}: {e}"),
            })?;
            if encoding.get_ids().len() != context {
                return Err(EncodeError::Model {
                    path: self.onnx.clone(),
                    message: format!("{prompt:?} gave {} tokens, not {context}", encoding.get_ids().len()),
                });
            }
            tokens.ids.extend(encoding.get_ids().iter().map(|&i| i64::from(i)));
            tokens.mask.extend(encoding.get_attention_mask().iter().map(|&m| i64::from(m)));
        }
        Ok(tokens)
    }

    /// Projected, not normalised, text embeddings of token ids, `[N, embedding_dim]`.
    pub fn embed_tokens(&mut self, tokens: &Tokens) -> Result<Vec<f32>, EncodeError> {
        let (n, context) = (tokens.count, self.spec.context_length);
        if n == 0 {
            return Ok(Vec::new());
        }
        if tokens.ids.len() != n * context || tokens.mask.len() != n * context {
            return Err(EncodeError::runtime(
                "text input",
                format!("{} ids are not {n} x {context}", tokens.ids.len()),
            ));
        }
        if let Some(bad) = tokens.ids.iter().find(|&&i| i < 0 || i as usize >= self.spec.vocab_size) {
            return Err(EncodeError::runtime("text input", format!("token id {bad} outside the vocabulary")));
        }
        // Up to the longest prompt's last token: the positions after it change nothing.
        let length = if self.cut_padding {
            tokens.mask.chunks(context).map(|m| m.iter().rposition(|&v| v != 0).map_or(1, |i| i + 1)).max().unwrap_or(1)
        } else {
            context
        };
        let tensor = |values: &[i64]| {
            let cut: Vec<i64> = values.chunks(context).flat_map(|row| &row[..length]).copied().collect();
            Tensor::from_array(([n, length], cut)).map_err(|e| EncodeError::runtime("text input", e))
        };
        let inputs = ort::inputs!["input_ids" => tensor(&tokens.ids)?, "attention_mask" => tensor(&tokens.mask)?];
        let outputs = self.session.run(inputs).map_err(|e| EncodeError::runtime("text inference", e))?;
        let name = &self.spec.outputs.text_embeds;
        let (shape, embeds) = extract(&outputs, name)?;
        if shape != [n as i64, self.spec.embedding_dim as i64] {
            return Err(EncodeError::Output {
                name: name.clone(),
                message: format!("shape {shape:?}, expected [{n}, {}]", self.spec.embedding_dim),
            });
        }
        Ok(embeds.to_vec())
    }

    /// Text embeddings of `prompts`, `batch` at a time: one row of `embedding_dim` each,
    /// in the order given. Prompts are batched by token count, so short ones are not
    /// padded to the long ones' length.
    pub fn embed(&mut self, prompts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>, EncodeError> {
        let (dim, context) = (self.spec.embedding_dim, self.spec.context_length);
        let all = self.tokenize(prompts)?;
        let length = |i: &usize| all.mask[i * context..(i + 1) * context].iter().filter(|&&m| m != 0).count();
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(length);
        let mut rows = vec![Vec::new(); prompts.len()];
        for chunk in order.chunks(batch.max(1)) {
            let pick = |v: &[i64]| chunk.iter().flat_map(|i| &v[i * context..(i + 1) * context]).copied().collect();
            let tokens = Tokens { ids: pick(&all.ids), mask: pick(&all.mask), count: chunk.len() };
            for (i, row) in chunk.iter().zip(self.embed_tokens(&tokens)?.chunks(dim)) {
                rows[*i] = row.to_vec();
            }
        }
        Ok(rows)
    }
}

/// The graph against the text contract: inputs `input_ids` and `attention_mask`, int64
/// [N, S] with S the context length or dynamic; output `text_embeds` (as the sidecar
/// names it), float32 [N, D]. Returns whether the sequence length is dynamic.
fn check_contract(session: &Session, spec: &TextSpec, onnx: &std::path::Path) -> Result<bool, EncodeError> {
    use ort::value::{TensorElementType, ValueType};
    let bad = |message: String| Err(EncodeError::Model { path: onnx.to_path_buf(), message });
    let shape_of = |outlet: &ort::value::Outlet, ty: TensorElementType| match outlet.dtype() {
        ValueType::Tensor { ty: t, shape, .. } if *t == ty => Some(shape.to_vec()),
        _ => None,
    };
    let fits = |dims: &[i64], width: usize| dims.len() == 2 && (dims[1] < 0 || dims[1] == width as i64);
    let mut dynamic = true;
    for name in ["input_ids", "attention_mask"] {
        let Some(input) = session.inputs().iter().find(|i| i.name() == name) else {
            return bad(format!("the text graph has no input `{name}`"));
        };
        match shape_of(input, TensorElementType::Int64) {
            Some(dims) if fits(&dims, spec.context_length) => dynamic &= dims[1] < 0,
            other => {
                return bad(format!(
                    "input `{name}` is {other:?}, the contract wants int64 [N, {}] (the sidecar's context_length)",
                    spec.context_length
                ));
            }
        }
    }
    let name = &spec.outputs.text_embeds;
    let Some(output) = session.outputs().iter().find(|o| o.name() == name.as_str()) else {
        return bad(format!("the sidecar names output `{name}`, which the text graph does not have"));
    };
    match shape_of(output, TensorElementType::Float32) {
        Some(dims) if fits(&dims, spec.embedding_dim) => Ok(dynamic),
        other => bad(format!("output `{name}` is {other:?}, the contract wants float32 [N, {}]", spec.embedding_dim)),
    }
}

/// The tokenizer, which must truncate and pad to the context length (export_clip.py
/// writes it so).
fn load_tokenizer(path: &std::path::Path, context: usize) -> Result<Tokenizer, EncodeError> {
    let bad = |message: String| EncodeError::Model { path: path.to_path_buf(), message };
    let tokenizer = Tokenizer::from_file(path).map_err(|e| bad(format!("cannot load the tokenizer: {e}")))?;
    let truncates = tokenizer.get_truncation().is_some_and(|t| t.max_length == context);
    let pads = tokenizer
        .get_padding()
        .is_some_and(|p| matches!(p.strategy, tokenizers::PaddingStrategy::Fixed(n) if n == context));
    if !truncates || !pads {
        return Err(bad(format!("the tokenizer must truncate and pad to the context length {context}; re-export")));
    }
    Ok(tokenizer)
}
