//! The arithmetic of the text stage, in f64 on unit vectors: CLIP's zero-shot label
//! distribution, its change under an augmentation, and caption retrieval ranks.

/// `v / |v|` in f64 (a zero vector stays zero).
pub(crate) fn unit(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    v.iter().map(|x| f64::from(*x) * scale).collect()
}

/// In eight interleaved partial sums, added in a fixed order: the same value on every
/// machine, and independent chains the compiler turns into vector operations (caption
/// retrieval takes one dot product per variant and caption, the square of the run).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    const LANES: usize = 8;
    let (a_lanes, b_lanes) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a_lanes.remainder().iter().zip(b_lanes.remainder()).map(|(x, y)| x * y).sum();
    let mut sums = [0.0f64; LANES];
    for (x, y) in a_lanes.zip(b_lanes) {
        for ((sum, x), y) in sums.iter_mut().zip(x).zip(y) {
            *sum += x * y;
        }
    }
    let [s0, s1, s2, s3, s4, s5, s6, s7] = sums;
    ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)) + tail
}

/// One class embedding per label from its template prompts, as CLIP's prompt
/// ensembling does: the mean of the prompts' unit embeddings, made unit again.
pub(crate) fn class_embedding(prompts: &[&[f32]]) -> Vec<f64> {
    let dim = prompts.first().map_or(0, |p| p.len());
    let mut mean = vec![0.0; dim];
    for prompt in prompts {
        for (m, x) in mean.iter_mut().zip(unit(prompt)) {
            *m += x;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
    mean.iter().map(|x| if norm > 0.0 { x / norm } else { 0.0 }).collect()
}

/// The zero-shot view of one image embedding: log-probabilities over the labels,
/// `log_softmax(scale x cos(image, class))`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabelDistribution {
    pub(crate) log_probs: Vec<f64>,
}

impl LabelDistribution {
    /// `image` a unit vector, `classes` unit class embeddings, `scale` = exp(logit_scale).
    pub(crate) fn new(image: &[f64], classes: &[Vec<f64>], scale: f64) -> Self {
        let logits: Vec<f64> = classes.iter().map(|c| scale * dot(image, c)).collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        Self { log_probs: logits.iter().map(|l| l - log_sum).collect() }
    }

    /// The most probable label (the first of equals, as numpy's argmax) and its probability.
    pub(crate) fn top(&self) -> (usize, f64) {
        let mut best = 0;
        for (i, lp) in self.log_probs.iter().enumerate() {
            if *lp > self.log_probs[best] {
                best = i;
            }
        }
        (best, self.log_probs[best].exp())
    }

    /// KL(self ‖ other) in nats; never below 0 (rounding).
    pub(crate) fn kl_to(&self, other: &Self) -> f64 {
        let kl: f64 = self.log_probs.iter().zip(&other.log_probs).map(|(p, q)| p.exp() * (p - q)).sum();
        kl.max(0.0)
    }
}

/// The rank of `own` among `captions` for the unit image embedding `image`: 1 + how
/// many captions are strictly more similar to it than its own.
pub(crate) fn caption_rank(image: &[f64], captions: &[Vec<f64>], own: usize) -> u32 {
    let own_cosine = dot(image, &captions[own]);
    let better = captions.iter().enumerate().filter(|(j, c)| *j != own && dot(image, c) > own_cosine).count();
    1 + better as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_distribution_is_a_softmax_of_scaled_cosines() {
        let classes = vec![unit(&[1.0, 0.0]), unit(&[0.0, 1.0]), unit(&[1.0, 1.0])];
        let image = unit(&[2.0, 1.0]);
        let d = LabelDistribution::new(&image, &classes, 10.0);
        let cos = [2.0 / 5f64.sqrt(), 1.0 / 5f64.sqrt(), 3.0 / 10f64.sqrt()];
        let z: f64 = cos.iter().map(|c| (10.0 * c).exp()).sum();
        for (lp, c) in d.log_probs.iter().zip(cos) {
            assert!((lp.exp() - (10.0 * c).exp() / z).abs() < 1e-12);
        }
        assert_eq!(d.top().0, 2);
        assert_eq!(d.kl_to(&d), 0.0);
        let other = LabelDistribution::new(&unit(&[0.0, 1.0]), &classes, 10.0);
        assert!(d.kl_to(&other) > 0.0);
    }

    #[test]
    fn ties_pick_the_first_label_and_the_first_rank() {
        let classes = vec![unit(&[1.0, 0.0]), unit(&[1.0, 0.0])];
        let d = LabelDistribution::new(&unit(&[1.0, 0.0]), &classes, 100.0);
        let (top, probability) = d.top();
        assert!(top == 0 && (probability - 0.5).abs() < 1e-12, "{top} {probability}");
        assert_eq!(caption_rank(&unit(&[1.0, 0.0]), &classes, 1), 1);
        let captions = vec![unit(&[0.0, 1.0]), unit(&[1.0, 0.1]), unit(&[1.0, 0.0])];
        assert_eq!(caption_rank(&unit(&[1.0, 0.0]), &captions, 1), 2);
        assert_eq!(caption_rank(&unit(&[1.0, 0.0]), &captions, 0), 3);
    }

    #[test]
    fn dot_sums_every_product_whatever_the_length() {
        for n in [0usize, 1, 7, 8, 9, 17, 512, 515] {
            let a: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
            let b: Vec<f64> = (0..n).map(|i| ((i * 13 % 7) as f64 - 3.0) / 7.0).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() <= 1e-12 * (1.0 + plain.abs()), "n = {n}");
        }
    }

    #[test]
    fn ensembles_average_unit_prompt_embeddings() {
        let a = [3.0f32, 0.0];
        let b = [0.0f32, 0.5];
        let c = class_embedding(&[&a, &b]);
        let s = 0.5f64.sqrt();
        assert!((c[0] - s).abs() < 1e-12 && (c[1] - s).abs() < 1e-12);
    }
}
