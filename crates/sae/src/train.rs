//! Training a TopK SAE the way the seed does (maxdreyer/attributing-clip,
//! `model_training/sae.py` and `base_pl.py`), with candle's autograd and AdamW:
//!
//! - encoder: weight-normalised linear map, W = g · v / ‖v‖ per latent, with bias;
//! - code: the k largest pre-activations, signed (`topk`, the seed) or ReLU'd
//!   (`topk_relu`, the contract's default);
//! - decoder: weight norm with g fixed at 1 (unit-norm latent directions), no bias;
//! - loss: 100 · MSE(normalize(ĥ), normalize(h));
//! - AdamW (eps 1e-7, weight decay 0.01), gradients clipped to total norm 1 first
//!   (Lightning's `gradient_clip_val = 1.0`), the learning rate divided by 10 at 80% and
//!   again at 93% of the epochs (the seed's milestones 24 and 28 of 30);
//! - dead latents are monitored as the seed does (running activation sum per sample
//!   below 10 / 50,000, halved every 10,000 samples), not resampled.
//!
//! The parameters use PyTorch's layouts (`Linear.weight` is [out, in]) so that a
//! PyTorch step can be compared value for value (tests/fixtures/train_step.safetensors).

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use clipshift_augment::Rng;

use crate::SaeError;
use crate::weights::{Activation, InputNorm, Sae};

fn candle(e: candle_core::Error) -> SaeError {
    SaeError::Tensor(e.to_string())
}

/// The seed's dead-latent threshold: activation sum per sample below 10 / 50,000.
const DEAD_RATE: f64 = 10.0 / 50_000.0;
/// The seed halves its running counts once they cover more samples than this.
const DEAD_WINDOW: f64 = 10_000.0;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Latents m.
    pub latents: usize,
    pub k: usize,
    pub activation: Activation,
    pub lr: f64,
    pub batch: usize,
    pub epochs: usize,
    /// Shuffling, the hold-out split and the initial weights.
    pub seed: u64,
    /// Fraction of the states held out to measure the result.
    pub holdout: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub max_grad_norm: f64,
}

impl TrainConfig {
    /// The seed's settings (configs/train_sae/.../topk-cls-64-30000...yaml).
    pub fn seed_defaults() -> Self {
        Self {
            latents: 30_000,
            k: 64,
            activation: Activation::TopK,
            lr: 2e-4,
            batch: 32,
            epochs: 30,
            seed: 0,
            holdout: 0.1,
            weight_decay: 0.01,
            eps: 1e-7,
            max_grad_norm: 1.0,
        }
    }
}

/// The trainable parameters in PyTorch's layouts, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Encoder direction v, [m, d].
    pub enc_v: Vec<f32>,
    /// Encoder gain g, [m].
    pub enc_g: Vec<f32>,
    /// Encoder bias, [m].
    pub enc_b: Vec<f32>,
    /// Decoder direction v, [d, m]; its columns are normalised (gain fixed at 1).
    pub dec_v: Vec<f32>,
}

impl Params {
    /// `nn.Linear`'s default initialisation (weights and bias uniform in ±1/√fan_in)
    /// wrapped in weight norm, whose gain starts at ‖v‖, so W starts equal to v.
    pub fn initial(d: usize, m: usize, rng: &mut Rng) -> Self {
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..n).map(|_| rng.uniform_range(-bound, bound) as f32).collect()
        };
        let enc_v = uniform(m * d, d);
        let enc_b = uniform(m, d);
        let dec_v = uniform(d * m, m);
        let enc_g = enc_v.chunks_exact(d).map(|row| row.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        Self { enc_v, enc_g, enc_b, dec_v }
    }
}

/// One optimisation step's loss (before the update) and gradient norm (before clipping).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub loss: f64,
    pub grad_norm: f64,
}

/// An SAE being trained.
pub struct Trainer {
    d: usize,
    m: usize,
    k: usize,
    activation: Activation,
    enc_v: Var,
    enc_g: Var,
    enc_b: Var,
    dec_v: Var,
    optimizer: AdamW,
    max_grad_norm: f64,
    activation_sums: Vec<f64>,
    samples: f64,
}

fn var(values: &[f32], shape: (usize, usize)) -> Result<Var, SaeError> {
    Var::from_slice(values, shape, &Device::Cpu).map_err(candle)
}

fn values(t: &Tensor) -> Result<Vec<f32>, SaeError> {
    t.flatten_all().and_then(|t| t.to_vec1()).map_err(candle)
}

/// Rows of `x` divided by their L2 norm (at least 1e-12, as `F.normalize`).
fn normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?)
}

impl Trainer {
    pub fn new(d: usize, params: &Params, config: &TrainConfig) -> Result<Self, SaeError> {
        let m = config.latents;
        if config.k == 0 || config.k > m {
            return Err(SaeError::Config(format!("k = {} must be between 1 and the latents ({m})", config.k)));
        }
        let enc_v = var(&params.enc_v, (m, d))?;
        let enc_g = var(&params.enc_g, (m, 1))?;
        let enc_b = var(&params.enc_b, (1, m))?;
        let dec_v = var(&params.dec_v, (d, m))?;
        let adamw =
            ParamsAdamW { lr: config.lr, beta1: 0.9, beta2: 0.999, eps: config.eps, weight_decay: config.weight_decay };
        let vars = vec![enc_v.clone(), enc_g.clone(), enc_b.clone(), dec_v.clone()];
        Ok(Self {
            d,
            m,
            k: config.k,
            activation: config.activation,
            enc_v,
            enc_g,
            enc_b,
            dec_v,
            optimizer: AdamW::new(vars, adamw).map_err(candle)?,
            max_grad_norm: config.max_grad_norm,
            activation_sums: vec![0.0; m],
            samples: 0.0,
        })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// The encoder's effective weight [m, d] and the decoder's [d, m].
    fn weights(&self) -> candle_core::Result<(Tensor, Tensor)> {
        let v = self.enc_v.as_tensor();
        let w_enc = v.broadcast_mul(&self.enc_g.as_tensor().broadcast_div(&v.sqr()?.sum_keepdim(1)?.sqrt()?)?)?;
        let u = self.dec_v.as_tensor();
        let w_dec = u.broadcast_div(&u.sqr()?.sum_keepdim(0)?.sqrt()?)?;
        Ok((w_enc, w_dec))
    }

    /// The masked code z̄ [n, m] and the reconstruction ĥ [n, d] of `x` [n, d].
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor), SaeError> {
        let (w_enc, w_dec) = self.weights().map_err(candle)?;
        let pre = x.matmul(&w_enc.t().map_err(candle)?).and_then(|p| p.broadcast_add(self.enc_b.as_tensor()));
        let pre = pre.map_err(candle)?;
        // The top-k selection is a constant mask: the gradient flows through the kept entries.
        let mask = Tensor::from_vec(self.top_k_mask(&values(&pre)?), pre.shape(), &Device::Cpu).map_err(candle)?;
        let mut z = (&pre * &mask).map_err(candle)?;
        if self.activation == Activation::TopKRelu {
            z = z.relu().map_err(candle)?;
        }
        let rec = z.matmul(&w_dec.t().map_err(candle)?).map_err(candle)?;
        Ok((z, rec))
    }

    fn top_k_mask(&self, pre: &[f32]) -> Vec<f32> {
        let mut mask = vec![0f32; pre.len()];
        let mut order: Vec<usize> = Vec::with_capacity(self.m);
        for (row, out) in pre.chunks_exact(self.m).zip(mask.chunks_exact_mut(self.m)) {
            order.clear();
            order.extend(0..self.m);
            if self.k < self.m {
                order.select_nth_unstable_by(self.k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            }
            for &j in &order[..self.k] {
                out[j] = 1.0;
            }
        }
        mask
    }

    /// One AdamW step on the batch `x` ([n, d], row-major).
    pub fn step(&mut self, x: &[f32]) -> Result<Step, SaeError> {
        let n = x.len() / self.d;
        let x = Tensor::from_slice(x, (n, self.d), &Device::Cpu).map_err(candle)?;
        let (z, rec) = self.forward(&x)?;
        let loss = (|| (normalize_rows(&rec)? - normalize_rows(&x)?)?.sqr()?.mean_all()? * 100.0)().map_err(candle)?;
        let mut grads = loss.backward().map_err(candle)?;
        let vars = [&self.enc_v, &self.enc_g, &self.enc_b, &self.dec_v];
        let mut squares = 0f64;
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                squares += g
                    .sqr()
                    .and_then(|s| s.sum_all())
                    .and_then(|s| s.to_dtype(DType::F64)?.to_scalar::<f64>())
                    .map_err(candle)?;
            }
        }
        let grad_norm = squares.sqrt();
        // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1.
        let scale = self.max_grad_norm / (grad_norm + 1e-6);
        if scale < 1.0 {
            for v in vars {
                if let Some(g) = grads.remove(v.as_tensor()) {
                    grads.insert(v.as_tensor(), (g * scale).map_err(candle)?);
                }
            }
        }
        self.optimizer.step(&grads).map_err(candle)?;
        self.monitor(&values(&z.sum(0).map_err(candle)?)?, n);
        Ok(Step { loss: loss.to_dtype(DType::F64).and_then(|l| l.to_scalar()).map_err(candle)?, grad_norm })
    }

    fn monitor(&mut self, batch_sums: &[f32], n: usize) {
        for (sum, b) in self.activation_sums.iter_mut().zip(batch_sums) {
            *sum += f64::from(*b);
        }
        self.samples += n as f64;
        if self.samples > DEAD_WINDOW {
            self.activation_sums.iter_mut().for_each(|s| *s /= 2.0);
            self.samples /= 2.0;
        }
    }

    /// Latents the seed would call dead now.
    pub fn dead_latents(&self) -> usize {
        if self.samples == 0.0 {
            return 0;
        }
        self.activation_sums.iter().filter(|s| **s / self.samples < DEAD_RATE).count()
    }

    /// The current parameters.
    pub fn params(&self) -> Result<Params, SaeError> {
        Ok(Params {
            enc_v: values(self.enc_v.as_tensor())?,
            enc_g: values(self.enc_g.as_tensor())?,
            enc_b: values(self.enc_b.as_tensor())?,
            dec_v: values(self.dec_v.as_tensor())?,
        })
    }

    /// The masked codes and reconstructions of `x` ([n, d]) as row-major vectors.
    pub fn reconstruct(&self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), SaeError> {
        let x = Tensor::from_slice(x, (x.len() / self.d, self.d), &Device::Cpu).map_err(candle)?;
        let (z, rec) = self.forward(&x)?;
        Ok((values(&z)?, values(&rec)?))
    }

    /// The trained SAE in the contract's layout (no input shift: b_dec = 0).
    pub fn sae(&self, metadata: HashMap<String, String>) -> Result<Sae, SaeError> {
        let (w_enc, w_dec) = self.weights().map_err(candle)?;
        let t = |w: Tensor| w.t().and_then(|t| t.contiguous()).map_err(candle).and_then(|t| values(&t));
        Ok(Sae {
            d: self.d,
            m: self.m,
            k: self.k,
            activation: self.activation,
            input_norm: InputNorm::None,
            w_enc: t(w_enc)?,
            b_enc: values(self.enc_b.as_tensor())?,
            w_dec: t(w_dec)?,
            b_dec: vec![0.0; self.d],
            metadata,
        })
    }
}

/// What training reached, measured on the held-out states (on the training states when
/// nothing is held out).
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub train_samples: usize,
    pub holdout_samples: usize,
    pub steps: usize,
    pub final_loss: f64,
    /// 1 − Σ‖h − ĥ‖² / Σ‖h − h̄‖².
    pub explained_variance: f64,
    /// Mean cos(h, ĥ).
    pub cosine: f64,
    /// Dead latents (the seed's monitor) over m.
    pub dead_fraction: f64,
}

/// Trains an SAE on `states` ([n, d], row-major); `progress` sees every epoch's mean loss.
pub fn train(
    states: &[f32],
    d: usize,
    config: &TrainConfig,
    mut progress: impl FnMut(usize, f64),
) -> Result<(Trainer, TrainSummary), SaeError> {
    let n = states.len() / d;
    if n < 2 || config.batch == 0 || config.epochs == 0 {
        return Err(SaeError::Config(format!(
            "training needs at least 2 states, a batch and an epoch (got {n} states, batch {}, {} epochs)",
            config.batch, config.epochs
        )));
    }
    let mut rng = Rng::from_seed(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let holdout = ((n as f64 * config.holdout).round() as usize).min(n - 1);
    let (held, train_rows) = order.split_at_mut(holdout);
    let held = held.to_vec();
    let mut trainer = Trainer::new(d, &Params::initial(d, config.latents, &mut rng), config)?;
    let milestones =
        [(config.epochs as f64 * 0.8).round() as usize, (config.epochs as f64 * 14.0 / 15.0).round() as usize];
    let (mut steps, mut final_loss) = (0, f64::NAN);
    let mut batch = Vec::with_capacity(config.batch * d);
    for epoch in 0..config.epochs {
        let decay = milestones.iter().filter(|&&e| epoch >= e).count() as i32;
        trainer.set_learning_rate(config.lr * 0.1f64.powi(decay));
        rng.shuffle(train_rows);
        let (mut sum, mut batches) = (0.0, 0);
        for rows in train_rows.chunks(config.batch) {
            batch.clear();
            for &r in rows {
                batch.extend_from_slice(&states[r * d..(r + 1) * d]);
            }
            sum += trainer.step(&batch)?.loss;
            batches += 1;
        }
        steps += batches;
        final_loss = sum / batches as f64;
        progress(epoch, final_loss);
    }
    let eval: Vec<usize> = if held.is_empty() { train_rows.to_vec() } else { held.clone() };
    let (explained_variance, cosine) = evaluate(&trainer, states, d, &eval)?;
    let summary = TrainSummary {
        train_samples: n - held.len(),
        holdout_samples: held.len(),
        steps,
        final_loss,
        explained_variance,
        cosine,
        dead_fraction: trainer.dead_latents() as f64 / config.latents as f64,
    };
    Ok((trainer, summary))
}

/// Explained variance and mean cosine of the reconstructions of `rows`.
fn evaluate(trainer: &Trainer, states: &[f32], d: usize, rows: &[usize]) -> Result<(f64, f64), SaeError> {
    let mut mean = vec![0f64; d];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(&states[r * d..(r + 1) * d]) {
            *m += f64::from(*v) / rows.len() as f64;
        }
    }
    let (mut residual, mut total, mut cosines) = (0.0, 0.0, 0.0);
    for chunk in rows.chunks(1024) {
        let x: Vec<f32> = chunk.iter().flat_map(|&r| states[r * d..(r + 1) * d].iter().copied()).collect();
        let (_, rec) = trainer.reconstruct(&x)?;
        for (h, hat) in x.chunks_exact(d).zip(rec.chunks_exact(d)) {
            let (mut dot, mut hh, mut rr) = (0.0, 0.0, 0.0);
            for ((a, b), m) in h.iter().zip(hat).zip(&mean) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                residual += (a - b).powi(2);
                total += (a - m).powi(2);
                dot += a * b;
                hh += a * a;
                rr += b * b;
            }
            cosines += if hh > 0.0 && rr > 0.0 { dot / (hh * rr).sqrt() } else { 0.0 };
        }
    }
    Ok((1.0 - residual / total, cosines / rows.len() as f64))
}
