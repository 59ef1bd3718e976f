//! Latent labels: each latent's decoder direction through the head (the seed's
//! LogitLens) against a concept vocabulary embedded by the text tower.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use clipshift_encode::{ModelSpec, SessionConfig, TextEncoder};
use clipshift_tables::RowTable;
use clipshift_tables::arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use clipshift_tables::schema;
use clipshift_text::LabelSet;

use crate::attribution::Lens;
use crate::linalg::{matmul_f32, norm};
use crate::{Sae, SaeError};

/// The default vocabulary: ImageNet-1k's class names.
const IMAGENET1K: &str = include_str!("../concepts/imagenet1k.txt");
/// Latents whose similarities are computed in one product.
const CHUNK_LATENTS: usize = 4096;

/// The concepts latents are labelled with: a vocabulary plus the suite's keyword prompts
/// (so a latent that points at "a blurry photo" says so).
#[derive(Debug, Clone)]
pub struct Concepts {
    /// `imagenet1k`, or the file the vocabulary came from.
    pub source: String,
    pub names: Vec<String>,
}

impl Concepts {
    pub fn new(file: Option<&Path>, keywords: &BTreeMap<String, Vec<String>>) -> Result<Self, SaeError> {
        let (source, mut names) = match file {
            Some(path) => {
                let set =
                    LabelSet::load(path).map_err(|e| SaeError::Input { path: path.into(), message: e.to_string() })?;
                (set.source, set.names)
            }
            None => ("imagenet1k".to_string(), LabelSet::parse(IMAGENET1K)),
        };
        for keyword in keywords.values().flatten() {
            if !names.contains(keyword) {
                names.push(keyword.clone());
            }
        }
        Ok(Self { source, names })
    }
}

/// Writes `latent_labels.parquet` (one row per latent) and returns the number of
/// latents, or the reason there are no labels (a model without a text tower; an
/// earlier run's table is then removed).
pub(crate) fn label_latents(
    target: &Path,
    spec: &ModelSpec,
    lens: &Lens,
    sae: &Sae,
    concepts: &Concepts,
    batch: usize,
    session: &SessionConfig,
) -> Result<Result<usize, String>, SaeError> {
    let encoder = match TextEncoder::new(spec, session)? {
        Some(e) if e.spec().tokenizer.is_some() => Some(e),
        _ => None,
    };
    let Some(mut encoder) = encoder else {
        match std::fs::remove_file(target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SaeError::Io { path: target.into(), source: e });
            }
            _ => {}
        }
        return Ok(Err(format!("model {} has no text tower with a tokenizer to embed concepts", spec.name)));
    };
    let prompts: Vec<&str> = concepts.names.iter().map(String::as_str).collect();
    let embedded = encoder.embed(&prompts, batch.max(1))?;
    let dim = encoder.spec().embedding_dim;
    // [D, C]: unit concept embeddings as columns. The cosines are products of unit
    // vectors, so f32 (twice the GEMM rate of f64) keeps them to about 1e-6.
    let mut concept_t = vec![0f32; dim * prompts.len()];
    for (c, e) in embedded.iter().enumerate() {
        let e: Vec<f64> = e.iter().map(|&v| f64::from(v)).collect();
        let n = norm(&e);
        for (r, v) in e.iter().enumerate() {
            concept_t[r * prompts.len() + c] = (v / n) as f32;
        }
    }
    let mut table = RowTable::create(target, schema::latent_labels(), |rows: &[(u32, String, f64)]| {
        vec![
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ]
    })?;
    for from in (0..sae.m).step_by(CHUNK_LATENTS) {
        let to = (from + CHUNK_LATENTS).min(sae.m);
        let mut units = Vec::with_capacity((to - from) * dim);
        for j in from..to {
            let e = lens.latent_embedding(j);
            let n = norm(&e).max(f64::MIN_POSITIVE);
            units.extend(e.iter().map(|v| (v / n) as f32));
        }
        let cos = matmul_f32(&units, to - from, dim, &concept_t, prompts.len())?;
        table.extend(cos.chunks_exact(prompts.len()).zip(from..to).map(|(row, j)| {
            let (best, score) =
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (c, &v)| if v > b.1 { (c, v) } else { b });
            (j as u32, concepts.names[best].clone(), f64::from(score).clamp(-1.0, 1.0))
        }))?;
    }
    Ok(Ok(table.finish()?))
}
