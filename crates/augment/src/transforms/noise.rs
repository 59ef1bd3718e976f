//! Standard normal fields and `GaussNoise`.
//!
//! Normals come from Marsaglia and Tsang's ziggurat (J. Stat. Softw. 5(8), 2000; 128
//! layers, the variant numpy's `Generator.standard_normal` also uses) on 32-bit halves of
//! the counter-based [`Rng`]: 99% of draws cost a table lookup, a multiply and a compare.
//! Box-Muller would need libm's `ln`, `sqrt` and `sin_cos` for every pair of draws, which
//! would dominate the noise and elastic transforms. The tails beyond the base layer use
//! Marsaglia's exact exponential method, so the distribution is the standard normal, not
//! an approximation of it (the tests check moments and tail masses on millions of draws).

use clipshift_simd::dispatch;
use std::sync::OnceLock;

use crate::Rng;

dispatch!(
    /// Adds Gaussian noise `N(mean, std) * 255` per value as albucore adds a float array to
    /// uint8: the noise is truncated toward zero, added, and the sum saturated to [0, 255].
    /// The field is drawn from `Rng::from_seed(seed)`. Under AVX2 the same code runs
    /// wider (the draws' table arithmetic and the add; same stream, same bytes).
    pub(crate) fn add_gauss_noise(buf: &mut [u8], mean: f64, std: f64, per_channel: bool, seed: u64) {
        avx2_fma() => recompiled(add_gauss_noise_body),
        _ => add_gauss_noise_body,
    }
);

#[inline(always)]
fn add_gauss_noise_body(buf: &mut [u8], mean: f64, std: f64, per_channel: bool, seed: u64) {
    let mut normals = Normals::new(Rng::from_seed(seed));
    let (m, s) = ((mean * 255.0) as f32, (std * 255.0) as f32);
    if per_channel {
        // Draws first, then the additions, so the latter vectorise.
        let mut z = [0f32; 64];
        for chunk in buf.chunks_mut(z.len()) {
            let z = &mut z[..chunk.len()];
            normals.fill(z);
            for (v, &z) in chunk.iter_mut().zip(z.iter()) {
                *v = add_trunc(*v, m + s * z);
            }
        }
    } else {
        // One draw per pixel, added to all three channels.
        for p in buf.chunks_exact_mut(3) {
            let n = m + s * normals.next();
            p.iter_mut().for_each(|v| *v = add_trunc(*v, n));
        }
    }
}

/// Fills `out` with successive standard normals from `rng`.
pub(crate) fn fill_normals(rng: Rng, out: &mut [f32]) {
    Normals::new(rng).fill(out);
}

/// `(v + noise.trunc()).clamp(0, 255)`; `trunc` by an integer cast where it is exact
/// (x86-64's baseline has no rounding instruction, so `f32::trunc` is a libm call), and
/// the clamped sum, a whole number, read from the low mantissa bits after adding 2^23
/// rather than cast (the saturating `as u8` keeps the loop scalar, and integer clamps of
/// i16 or i32 sums are slower).
#[inline]
fn add_trunc(v: u8, noise: f32) -> u8 {
    let t = if noise.abs() < 8_388_608.0 { (noise as i32) as f32 } else { noise };
    let r = (f32::from(v) + t).clamp(0.0, 255.0);
    ((r + 8_388_608.0).to_bits() & 0xff) as u8
}

/// A stream of standard normals: the ziggurat on the 32-bit halves of `rng`'s draws.
struct Normals {
    rng: Rng,
    spare: Option<u32>,
    tables: &'static Ziggurat,
}

/// Start of the tail: the right edge of the base layer.
const R: f64 = 3.442_619_855_899;

/// Marsaglia and Tsang's `kn`, `wn`, `fn` tables for 128 layers.
struct Ziggurat {
    k: [u32; 128],
    w: [f64; 128],
    f: [f64; 128],
}

impl Ziggurat {
    /// The layer a 32-bit draw picks: its low 7 bits.
    #[inline(always)]
    fn layer(hz: i32) -> usize {
        (hz & 127) as usize
    }

    /// The normal of draw `hz` when it falls inside its layer's rectangle (99% of draws).
    #[inline(always)]
    fn accept(&self, hz: i32) -> Option<f32> {
        let iz = Self::layer(hz);
        // Computed before the test, so the common case has no branch to mispredict.
        let v = (f64::from(hz) * self.w[iz]) as f32;
        (hz.unsigned_abs() < self.k[iz]).then_some(v)
    }

    fn get() -> &'static Self {
        static TABLES: OnceLock<Ziggurat> = OnceLock::new();
        TABLES.get_or_init(|| {
            let (m1, vn) = (2_147_483_648.0, 9.912_563_035_262_17e-3);
            let (mut dn, mut tn) = (R, R);
            let q = vn / (-0.5 * dn * dn).exp();
            let mut t = Ziggurat { k: [0; 128], w: [0.0; 128], f: [0.0; 128] };
            t.k[0] = ((dn / q) * m1) as u32;
            t.w[0] = q / m1;
            t.w[127] = dn / m1;
            t.f[0] = 1.0;
            t.f[127] = (-0.5 * dn * dn).exp();
            for i in (1..=126).rev() {
                dn = (-2.0 * (vn / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
                t.k[i + 1] = ((dn / tn) * m1) as u32;
                tn = dn;
                t.f[i] = (-0.5 * dn * dn).exp();
                t.w[i] = dn / m1;
            }
            t
        })
    }
}

impl Normals {
    fn new(rng: Rng) -> Self {
        Self { rng, spare: None, tables: Ziggurat::get() }
    }

    #[inline]
    fn next_u32(&mut self) -> u32 {
        match self.spare.take() {
            Some(v) => v,
            None => {
                let bits = self.rng.next_u64();
                self.spare = Some((bits >> 32) as u32);
                bits as u32
            }
        }
    }

    /// A uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        (f64::from(self.next_u32()) + 0.5) * (1.0 / 4_294_967_296.0)
    }

    /// The next standard normal (`RNOR` with `nfix`).
    #[inline]
    fn next(&mut self) -> f32 {
        let hz = self.next_u32() as i32;
        self.tables.accept(hz).unwrap_or_else(|| self.fix(hz))
    }

    /// `out.len()` successive normals, as that many [`Normals::next`] calls give, taking
    /// both halves of a draw at once on the fast path.
    #[inline(always)]
    fn fill(&mut self, out: &mut [f32]) {
        let t = self.tables;
        let mut i = 0;
        while i < out.len() {
            if self.spare.is_some() || i + 1 == out.len() {
                out[i] = self.next();
                i += 1;
                continue;
            }
            let bits = self.rng.next_u64();
            let (a, b) = (bits as u32 as i32, (bits >> 32) as u32 as i32);
            match (t.accept(a), t.accept(b)) {
                (Some(x), Some(y)) => {
                    (out[i], out[i + 1]) = (x, y);
                    i += 2;
                }
                (x, _) => {
                    // The slow path, keeping the stream's order: `b` is the half after `a`.
                    self.spare = Some(b as u32);
                    out[i] = x.unwrap_or_else(|| self.fix(a));
                    i += 1;
                }
            }
        }
    }

    /// The draw `hz` missed its layer's rectangle: the wedge or tail test, then new draws.
    #[cold]
    fn fix(&mut self, mut hz: i32) -> f32 {
        let t = self.tables;
        loop {
            let iz = Ziggurat::layer(hz);
            let x = f64::from(hz) * t.w[iz];
            if iz == 0 {
                // The tail beyond R, by Marsaglia's exponential rejection.
                loop {
                    let x = -self.uniform().ln() / R;
                    let y = -self.uniform().ln();
                    if y + y >= x * x {
                        return (if hz > 0 { R + x } else { -R - x }) as f32;
                    }
                }
            }
            if t.f[iz] + self.uniform() * (t.f[iz - 1] - t.f[iz]) < (-0.5 * x * x).exp() {
                return x as f32;
            }
            hz = self.next_u32() as i32;
            if let Some(v) = t.accept(hz) {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moments and tail masses of 4M draws against the standard normal, each within 5
    /// standard errors.
    #[test]
    fn draws_are_standard_normal() {
        let n = 4_000_000usize;
        let mut z = vec![0f32; n];
        fill_normals(Rng::from_seed(11), &mut z);
        let nf = n as f64;
        let moment = |p: i32| z.iter().map(|&v| f64::from(v).powi(p)).sum::<f64>() / nf;
        // Standard errors of the sample moments: sqrt(E[z^2p] - E[z^p]^2) / sqrt(n).
        for (p, expected, sd) in [(1, 0.0, 1.0), (2, 1.0, 2f64.sqrt()), (3, 0.0, 15f64.sqrt()), (4, 3.0, 96f64.sqrt())]
        {
            let m = moment(p);
            assert!((m - expected).abs() < 5.0 * sd / nf.sqrt(), "moment {p}: {m} vs {expected}");
        }
        // Two-sided tail masses, including beyond the base layer's edge R = 3.44.
        for (c, mass) in [
            (0.5, 0.617_075_077),
            (1.0, 0.317_310_508),
            (2.0, 0.045_500_264),
            (3.0, 0.002_699_796),
            (3.5, 0.000_465_258),
            (4.5, 6.795_346e-6),
        ] {
            let got = z.iter().filter(|v| v.abs() > c).count() as f64 / nf;
            let se = (mass * (1.0 - mass) / nf).sqrt();
            assert!((got - mass).abs() < 5.0 * se, "P(|z| > {c}) = {got} vs {mass}");
        }
        // Symmetry of the tail path.
        let above = z.iter().filter(|&&v| v > 3.5).count() as f64;
        let below = z.iter().filter(|&&v| v < -3.5).count() as f64;
        assert!((above - below).abs() < 5.0 * (above + below).sqrt(), "tails {above} / {below}");
    }

    #[test]
    fn dispatched_noise_equals_the_portable_build() {
        let src: Vec<u8> = (0..97 * 13 * 3).map(|i| (i * 7 % 256) as u8).collect();
        for per_channel in [true, false] {
            let (mut fast, mut portable) = (src.clone(), src.clone());
            add_gauss_noise(&mut fast, 0.02, 0.3, per_channel, 99);
            add_gauss_noise_body(&mut portable, 0.02, 0.3, per_channel, 99);
            assert_eq!(fast, portable, "per_channel {per_channel}");
            assert_ne!(fast, src);
        }
    }

    #[test]
    fn fill_is_the_stream() {
        // Long enough to pass through the slow paths many times (about 1% of draws).
        let mut field = vec![0f32; 100_001];
        fill_normals(Rng::from_seed(3), &mut field);
        let mut normals = Normals::new(Rng::from_seed(3));
        assert!(field.iter().all(|&v| v.to_bits() == normals.next().to_bits()));
        // Odd chunk sizes resume mid-draw.
        let mut normals = Normals::new(Rng::from_seed(3));
        let mut chunked = vec![0f32; field.len()];
        for chunk in chunked.chunks_mut(7) {
            normals.fill(chunk);
        }
        assert_eq!(chunked, field);
        let mut other = vec![0f32; 75];
        fill_normals(Rng::from_seed(4), &mut other);
        assert_ne!(field, other);
    }
}
