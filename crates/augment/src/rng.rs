//! Counter-based random numbers keyed by (run seed, image id, augmentation name).
//!
//! Every draw is a pure function of the key and a counter, so sampled parameters
//! do not depend on thread count or processing order, and any variant can be
//! replayed from the parameters recorded in `augmentations.parquet`.

/// SplitMix64 finaliser: a bijective 64-bit mixer with good avalanche.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over the bytes of a name, so a suite member's name becomes part of the key.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A counter-based generator: draw `i` of key `k` is `mix64(k + (i + 1) * GOLDEN)`.
#[derive(Debug, Clone)]
pub struct Rng {
    key: u64,
    counter: u64,
}

impl Rng {
    /// A generator for one (run seed, image, augmentation) triple.
    pub fn keyed(run_seed: u64, image_id: u64, augmentation: &str) -> Self {
        let key = mix64(mix64(run_seed ^ GOLDEN) ^ image_id.rotate_left(17) ^ name_hash(augmentation));
        Self::from_seed(key)
    }

    /// A generator from a single seed, e.g. the `field_seed` recorded with a random field.
    pub fn from_seed(seed: u64) -> Self {
        Self { key: mix64(seed), counter: 0 }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        mix64(self.key.wrapping_add(self.counter.wrapping_mul(GOLDEN)))
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high) (numpy `uniform(low, high)` semantics).
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in [low, high] inclusive (Python `random.randint` semantics).
    pub fn int_inclusive(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(low <= high);
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as i64
    }

    /// Standard normal deviate (Box-Muller; one value per call for simplicity of replay).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_different_key_different_stream() {
        let mut a = Rng::keyed(7, 42, "noise");
        let mut b = Rng::keyed(7, 42, "noise");
        let mut c = Rng::keyed(7, 42, "blur");
        let mut d = Rng::keyed(8, 42, "noise");
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        let xd: Vec<u64> = (0..8).map(|_| d.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_ne!(xa, xd);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::from_seed(1);
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|_| r.uniform()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "uniform mean {mean}");
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let z: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let zm = z.iter().sum::<f64>() / n as f64;
        let zv = z.iter().map(|x| (x - zm) * (x - zm)).sum::<f64>() / n as f64;
        assert!(zm.abs() < 0.01 && (zv - 1.0).abs() < 0.02, "normal mean {zm} var {zv}");
        let ints: Vec<i64> = (0..10_000).map(|_| r.int_inclusive(3, 7)).collect();
        assert!(ints.iter().all(|&k| (3..=7).contains(&k)));
        for k in 3..=7 {
            assert!(ints.contains(&k));
        }
    }
}
