//! Counter-based random numbers keyed by (run seed, image id, augmentation name), and
//! the workspace's one SplitMix64 (FNV-1a comes from clipshift-tables).
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

pub use clipshift_tables::Fnv1a;

/// FNV-1a over the bytes of a name, so a suite member's name becomes part of the key.
fn name_hash(name: &str) -> u64 {
    Fnv1a::new().bytes(name.as_bytes()).finish()
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

    /// The SplitMix64 sequence from this state: draw `i` is `mix64(state + (i + 1) *
    /// GOLDEN)`, Vigna's `splitmix64.c` seeded with `state` (the seed is not mixed first,
    /// unlike [`Rng::from_seed`]).
    pub fn from_state(state: u64) -> Self {
        Self { key: state, counter: 0 }
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

    /// Uniform index in `0..n` by Lemire's multiply-shift (no division; the bias, at
    /// most `n / 2^64`, is negligible for any `n` this workspace uses).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Shuffles `items` in place (Fisher–Yates, from the end).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
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

    /// The SplitMix64 generator as written out in full (Vigna's `splitmix64.c`).
    struct ReferenceSplitMix64(u64);

    impl ReferenceSplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            ((self.next_u64() as u128 * n as u128) >> 64) as usize
        }
    }

    #[test]
    fn from_state_is_the_splitmix64_sequence() {
        for seed in [0, 1, 0x9a11, 42 ^ 0x9a11, u64::MAX] {
            let (mut ours, mut reference) = (Rng::from_state(seed), ReferenceSplitMix64(seed));
            for _ in 0..100 {
                assert_eq!(ours.next_u64(), reference.next_u64(), "seed {seed}");
            }
            for n in [1, 2, 3, 10, 1000, usize::MAX] {
                assert_eq!(ours.below(n), reference.below(n), "seed {seed}, n {n}");
            }
        }
        // splitmix64.c seeded with 0 starts with these (the published test vector).
        let mut zero = Rng::from_state(0);
        assert_eq!(
            [zero.next_u64(), zero.next_u64(), zero.next_u64()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
    }

    #[test]
    fn below_stays_below() {
        let mut r = Rng::from_state(5);
        for n in [1usize, 2, 7, 100] {
            let draws: Vec<usize> = (0..2000).map(|_| r.below(n)).collect();
            assert!(draws.iter().all(|&k| k < n), "n {n}");
            assert!((0..n).all(|k| draws.contains(&k)), "n {n}: every index drawn");
        }
    }

    /// FNV-1a written out: `h = (h ^ byte) * prime` from the offset basis.
    fn reference_fnv(basis: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
        let mut h = basis;
        for byte in bytes {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        h
    }

    #[test]
    fn fnv1a_matches_the_definition() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(Fnv1a::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv1a::new().bytes(b"foobar").finish(), 0x8594_4171_f739_67e8);
        assert_eq!(name_hash("foobar"), 0x8594_4171_f739_67e8);
        // Bytes in pieces equal bytes at once.
        assert_eq!(Fnv1a::new().bytes(b"foo").bytes(b"bar"), Fnv1a::new().bytes(b"foobar"));
        // Seeded, over `a`, a zero byte, then `b`: a pair of names under a seed.
        for (seed, a, b) in [(0u64, "noise", "cosine"), (42, "blur", "l2"), (u64::MAX, "", "")] {
            let want = reference_fnv(0xcbf2_9ce4_8422_2325 ^ seed, a.bytes().chain([0u8]).chain(b.bytes()));
            let got = Fnv1a::with_seed(seed).bytes(a.as_bytes()).bytes(&[0]).bytes(b.as_bytes()).finish();
            assert_eq!(got, want, "{seed} {a} {b}");
        }
        // Whole words, as a fingerprint of sorted ids folds them.
        let ids = [3u64, 17, 0xdead_beef_0000_0001];
        let want = ids.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, id| (h ^ id).wrapping_mul(0x100_0000_01b3));
        assert_eq!(ids.iter().fold(Fnv1a::new(), |h, &id| h.word(id)).finish(), want);
        assert_ne!(Fnv1a::new().word(1), Fnv1a::new().bytes(&1u64.to_le_bytes()));
    }
}
