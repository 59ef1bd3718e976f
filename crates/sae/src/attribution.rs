//! The shift of one variant explained by SAE latents, in closed form (docs/sae.md).
//!
//! With h' = h_a + s Σ_j (z_j - z_a,j) w_j (the variant's state with its SAE error ε_a
//! held fixed, w_j latent j's decoder row, s the SAE's output scale) and
//! y(z) = cos(e(h'), e_o), the gradient ∂y/∂z_j = s w_j · ∇_h y at z_a goes through the
//! head e(h) = P (γ ⊙ (h - μ)/σ + β) by the LayerNorm Jacobian. Products with P are
//! precomputed once per SAE (`Lens`): Q_j = P (γ ⊙ w_j), c = P γ, Pβ, so each latent
//! costs O(d + D) per variant.

use crate::linalg::{dot, matmul_f64, norm};
use crate::weights::{Head, Sae};
use crate::{Code, SaeError};

/// The head composed with the SAE's decoder, precomputed.
#[derive(Debug, Clone)]
pub struct Lens {
    d: usize,
    dim: usize,
    eps: f64,
    /// [d, D]: diag(γ) Pᵀ.
    gamma_proj_t: Vec<f64>,
    /// [m, D]: row j is P (γ ⊙ w_j).
    q: Vec<f64>,
    /// P γ and P β.
    c: Vec<f64>,
    pb: Vec<f64>,
    /// Σ_i w_j,i per latent.
    row_sum: Vec<f64>,
    /// ||w_j|| per latent.
    row_norm: Vec<f64>,
}

/// A class-token state h and what the head makes of it.
#[derive(Debug, Clone)]
pub struct State {
    pub h: Vec<f64>,
    /// P (γ ⊙ h).
    pgh: Vec<f64>,
    mu: f64,
    sigma: f64,
    /// e(h).
    pub e: Vec<f64>,
}

/// One latent's part in the shift of one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatentAttribution {
    pub latent: u32,
    pub z_original: f32,
    pub z_augmented: f32,
    /// ∂y/∂z_j at z_a.
    pub gradient: f64,
    /// (z_o,j - z_a,j) ∂y/∂z_j: the first-order cosine recovered by restoring latent j.
    pub patch: f64,
    /// z_a,j ∂y/∂z_j (Act×Grad).
    pub act_x_grad: f64,
    /// (z_o,j - z_a,j) cos(e(w_j), e_o): the LogitLens baseline's score.
    pub logit_lens: f64,
    /// |z_o,j - z_a,j| ||w_j||: how much of the state the latent's change moves.
    pub energy: f64,
}

/// The orders in which the faithfulness test restores latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    PatchAttribution,
    ActXGrad,
    LogitLens,
    Energy,
    Random,
}

impl Order {
    pub const ALL: [Order; 5] = [Self::PatchAttribution, Self::ActXGrad, Self::LogitLens, Self::Energy, Self::Random];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PatchAttribution => "patch_attribution",
            Self::ActXGrad => "act_x_grad",
            Self::LogitLens => "logit_lens",
            Self::Energy => "energy",
            Self::Random => "random",
        }
    }

    /// The latent's score in this order (restored first: highest); random ranks by a
    /// shuffle instead.
    fn score(self, a: &LatentAttribution) -> f64 {
        match self {
            Self::PatchAttribution => a.patch,
            // -G_j: the first-order gain in y of removing latent j from the variant.
            Self::ActXGrad => -a.act_x_grad,
            Self::LogitLens => a.logit_lens,
            Self::Energy => a.energy,
            Self::Random => 0.0,
        }
    }
}

/// The counts of restored latents: 0, 1, 2, 4, … below 2k, then 2k.
pub fn restore_counts(k: usize) -> Vec<usize> {
    let mut counts = vec![0];
    let mut n = 1;
    while n < 2 * k {
        counts.push(n);
        n *= 2;
    }
    counts.push(2 * k);
    counts
}

impl Lens {
    pub fn new(head: &Head, sae: &Sae) -> Result<Self, SaeError> {
        if head.d != sae.d {
            return Err(SaeError::Config(format!(
                "the SAE reads {}-dimensional states; the model's class token has {}",
                sae.d, head.d
            )));
        }
        let (d, dim, m) = (head.d, head.dim, sae.m);
        let mut gamma_proj_t = vec![0.0; d * dim];
        for r in 0..dim {
            for i in 0..d {
                gamma_proj_t[i * dim + r] = head.gamma[i] * head.proj[r * d + i];
            }
        }
        let w_dec: Vec<f64> = sae.w_dec.iter().map(|&v| f64::from(v)).collect();
        let q = matmul_f64(&w_dec, m, d, &gamma_proj_t, dim)?;
        let project = |v: &[f64]| -> Vec<f64> { (0..dim).map(|r| dot(&head.proj[r * d..(r + 1) * d], v)).collect() };
        let rows = || w_dec.chunks_exact(d);
        Ok(Self {
            d,
            dim,
            eps: head.eps,
            c: project(&head.gamma),
            pb: project(&head.beta),
            gamma_proj_t,
            q,
            row_sum: rows().map(|w| w.iter().sum()).collect(),
            row_norm: rows().map(norm).collect(),
        })
    }

    fn q_row(&self, j: usize) -> &[f64] {
        &self.q[j * self.dim..(j + 1) * self.dim]
    }

    /// e(h) from P (γ ⊙ h) and h's mean and LayerNorm σ.
    fn embed(&self, pgh: &[f64], mu: f64, sigma: f64) -> Vec<f64> {
        pgh.iter().zip(&self.c).zip(&self.pb).map(|((p, c), b)| (p - mu * c) / sigma + b).collect()
    }

    fn moments(&self, h: &[f64]) -> (f64, f64) {
        let mu = h.iter().sum::<f64>() / self.d as f64;
        let var = h.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / self.d as f64;
        (mu, (var + self.eps).sqrt())
    }

    /// The states of `n` rows of `h` ([n, d], row-major).
    pub fn states(&self, h: &[f32], n: usize) -> Result<Vec<State>, SaeError> {
        let h: Vec<f64> = h.iter().map(|&v| f64::from(v)).collect();
        let pgh = matmul_f64(&h, n, self.d, &self.gamma_proj_t, self.dim)?;
        Ok(h.chunks_exact(self.d)
            .zip(pgh.chunks_exact(self.dim))
            .map(|(h, pgh)| {
                let (mu, sigma) = self.moments(h);
                State { e: self.embed(pgh, mu, sigma), h: h.to_vec(), pgh: pgh.to_vec(), mu, sigma }
            })
            .collect())
    }

    /// Latent j's decoder direction through the head, e(w_j) (the seed's LogitLens).
    pub fn latent_embedding(&self, j: usize) -> Vec<f64> {
        let mu = self.row_sum[j] / self.d as f64;
        let var = (self.row_norm[j] * self.row_norm[j] / self.d as f64 - mu * mu).max(0.0);
        self.embed(self.q_row(j), mu, (var + self.eps).sqrt())
    }

    /// Every latent active in the original or the variant, with its attribution.
    pub fn attribute(&self, sae: &Sae, o: &State, zo: &Code, a: &State, za: &Code) -> Vec<LatentAttribution> {
        let (ne_a, ne_o) = (norm(&a.e), norm(&o.e));
        let unit_o: Vec<f64> = o.e.iter().map(|v| v / ne_o).collect();
        let y = dot(&a.e, &unit_o) / ne_a;
        // g = ∂y/∂e at e_a.
        let g: Vec<f64> = a.e.iter().zip(&unit_o).map(|(ea, uo)| (uo - y * ea / ne_a) / ne_a).collect();
        let c_g = dot(&self.c, &g) / self.d as f64; // mean of γ ⊙ Pᵀg
        let xhat_v = a.e.iter().zip(&self.pb).zip(&g).map(|((e, b), g)| (e - b) * g).sum::<f64>(); // x̂ · (γ ⊙ Pᵀg)
        let union = union(zo, za);
        union
            .into_iter()
            .map(|(j, z_o, z_a)| {
                let w = sae.decoder_row(j as usize);
                let w_h: f64 = w.iter().zip(&a.h).map(|(w, h)| f64::from(*w) * h).sum();
                let xhat_w = (w_h - a.mu * self.row_sum[j as usize]) / a.sigma;
                let q = self.q_row(j as usize);
                let grad = za.scale / a.sigma
                    * (dot(q, &g) - c_g * self.row_sum[j as usize] - xhat_v * xhat_w / self.d as f64);
                let delta = f64::from(z_o) - f64::from(z_a);
                let lens = self.latent_embedding(j as usize);
                LatentAttribution {
                    latent: j,
                    z_original: z_o,
                    z_augmented: z_a,
                    gradient: grad,
                    patch: delta * grad,
                    act_x_grad: f64::from(z_a) * grad,
                    logit_lens: delta * dot(&lens, &unit_o) / norm(&lens),
                    energy: delta.abs() * self.row_norm[j as usize],
                }
            })
            .collect()
    }
}

/// y after restoring the first n latents of each order, for each n of `counts`
/// (latents beyond the union restore nothing more): `(order, n, cosine)` rows.
#[allow(clippy::too_many_arguments)]
pub fn faithfulness(
    lens: &Lens,
    sae: &Sae,
    o: &State,
    a: &State,
    za: &Code,
    latents: &[LatentAttribution],
    counts: &[usize],
    rng: &mut clipshift_augment::Rng,
) -> Vec<(Order, usize, f64)> {
    let unit_o: Vec<f64> = o.e.iter().map(|v| v / norm(&o.e)).collect();
    let mut rows = Vec::with_capacity(Order::ALL.len() * counts.len());
    for order in Order::ALL {
        let mut ranked: Vec<&LatentAttribution> = latents.iter().collect();
        if order == Order::Random {
            rng.shuffle(&mut ranked);
        } else {
            // partial_cmp: -0.0 and 0.0 (Act×Grad of an inactive latent) tie, broken by latent.
            ranked.sort_by(|x, y| {
                let by_score = order.score(y).partial_cmp(&order.score(x)).unwrap_or(std::cmp::Ordering::Equal);
                by_score.then(x.latent.cmp(&y.latent))
            });
        }
        let (mut h, mut pgh) = (a.h.clone(), a.pgh.clone());
        let mut restored = 0;
        for &n in counts {
            while restored < n.min(ranked.len()) {
                let l = ranked[restored];
                let step = za.scale * (f64::from(l.z_original) - f64::from(l.z_augmented));
                for (h, w) in h.iter_mut().zip(sae.decoder_row(l.latent as usize)) {
                    *h += step * f64::from(*w);
                }
                for (p, q) in pgh.iter_mut().zip(lens.q_row(l.latent as usize)) {
                    *p += step * q;
                }
                restored += 1;
            }
            let (mu, sigma) = lens.moments(&h);
            let e = lens.embed(&pgh, mu, sigma);
            rows.push((order, n, dot(&e, &unit_o) / norm(&e)));
        }
    }
    rows
}

/// (latent, z_o, z_a) for every latent active in either code, by latent.
fn union(zo: &Code, za: &Code) -> Vec<(u32, f32, f32)> {
    let (mut i, mut k) = (0, 0);
    let mut out = Vec::with_capacity(zo.latents.len() + za.latents.len());
    while i < zo.latents.len() || k < za.latents.len() {
        let lo = zo.latents.get(i).copied().unwrap_or(u32::MAX);
        let la = za.latents.get(k).copied().unwrap_or(u32::MAX);
        if lo == la {
            out.push((lo, zo.values[i], za.values[k]));
            i += 1;
            k += 1;
        } else if lo < la {
            out.push((lo, zo.values[i], 0.0));
            i += 1;
        } else {
            out.push((la, 0.0, za.values[k]));
            k += 1;
        }
    }
    out
}
