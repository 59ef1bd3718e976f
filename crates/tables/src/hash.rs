//! The workspace's one FNV-1a.

/// FNV-1a (64-bit) over bytes and whole words: a fixed, platform-independent hash for
/// seeds and fingerprints (std's hashers may change between releases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Fnv1a(u64);

impl Fnv1a {
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The standard offset basis.
    pub fn new() -> Self {
        Self(Self::BASIS)
    }

    /// The offset basis xor `seed`, so one name gives a different hash per seed.
    pub fn with_seed(seed: u64) -> Self {
        Self(Self::BASIS ^ seed)
    }

    /// Folds in each byte.
    pub fn bytes(self, bytes: &[u8]) -> Self {
        Self(bytes.iter().fold(self.0, |h, &b| (h ^ u64::from(b)).wrapping_mul(Self::PRIME)))
    }

    /// Folds in a whole 64-bit word as one step (xor, then multiply), as for a list of ids.
    pub fn word(self, word: u64) -> Self {
        Self((self.0 ^ word).wrapping_mul(Self::PRIME))
    }

    /// The hash.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}
