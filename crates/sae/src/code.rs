//! Encoding class-token states into sparse SAE codes.

use rayon::prelude::*;

use crate::SaeError;
use crate::linalg::matmul_f32;
use crate::weights::{Activation, InputNorm, Sae};

/// ViT-Prisma's epsilon, added to the unbiased std of its `layer_norm` input scaling.
const INPUT_NORM_EPS: f32 = 1e-5;

/// One state's SAE code: the active latents (ascending) and their activations.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub latents: Vec<u32>,
    pub values: Vec<f32>,
    /// The factor the decoder's output is scaled by (the input's std for
    /// `InputNorm::LayerNorm`, else 1): ∂h/∂z_j = scale · w_j.
    pub scale: f64,
}

impl Code {
    /// z_j, zero when inactive.
    pub fn get(&self, latent: u32) -> f32 {
        self.latents.binary_search(&latent).map_or(0.0, |i| self.values[i])
    }
}

impl Sae {
    /// The codes of `n` states ([n, d], row-major): pre = W_encᵀ (x - b_dec) + b_enc,
    /// then the k largest entries of pre (ReLU'd for `TopKRelu`, where zeros drop out).
    pub fn encode(&self, h: &[f32], n: usize) -> Result<Vec<Code>, SaeError> {
        assert_eq!(h.len(), n * self.d, "states are [n, d]");
        let mut x = Vec::with_capacity(h.len());
        let mut scales = Vec::with_capacity(n);
        for row in h.chunks_exact(self.d) {
            let (shift, scale) = match self.input_norm {
                InputNorm::None => (0.0, 1.0),
                InputNorm::LayerNorm => {
                    let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / self.d as f64;
                    let ss: f64 = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
                    (mean, (ss / (self.d as f64 - 1.0)).sqrt())
                }
            };
            let divisor = if self.input_norm == InputNorm::None { 1.0 } else { scale as f32 + INPUT_NORM_EPS };
            x.extend(row.iter().zip(&self.b_dec).map(|(v, b)| (v - shift as f32) / divisor - b));
            scales.push(scale);
        }
        let pre = matmul_f32(&x, n, self.d, &self.w_enc, self.m)?;
        Ok(pre.par_chunks_exact(self.m).zip(scales).map(|(row, scale)| self.top_k(row, scale)).collect())
    }

    fn top_k(&self, pre: &[f32], scale: f64) -> Code {
        let mut order: Vec<u32> = (0..self.m as u32).collect();
        let value = |j: u32| pre[j as usize] + self.b_enc[j as usize];
        // Largest first; ties to the lower latent, as a stable descending sort would.
        let cmp = |a: &u32, b: &u32| value(*b).total_cmp(&value(*a)).then(a.cmp(b));
        if self.k < self.m {
            order.select_nth_unstable_by(self.k - 1, cmp);
        }
        let mut top: Vec<u32> = order[..self.k].to_vec();
        top.sort_unstable();
        let keep = |j: &u32| self.activation == Activation::TopK || value(*j) > 0.0;
        let latents: Vec<u32> = top.into_iter().filter(keep).collect();
        let values = latents.iter().map(|&j| value(j)).collect();
        Code { latents, values, scale }
    }
}
