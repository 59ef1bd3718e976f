//! Standard normal fields (Box-Muller on the counter-based [`Rng`]) and `GaussNoise`.
//!
//! The values are defined by the straightforward f64 formula with the platform's `ln`,
//! `sqrt` and `sin_cos` ([`normal_pair_libm`]). Calling libm for every pair dominated the
//! noise and elastic transforms, so batches of draws are evaluated with tables and short
//! series accurate to a few f64 ulps, and a value is kept only when everything within a
//! bound well above that error rounds to the same f32; the rare value near an f32
//! rounding boundary (and the rare draw with tiny `r`) is recomputed with libm. The
//! output is therefore the libm one, bit for bit (the tests compare millions of draws).

use crate::Rng;

/// Adds Gaussian noise `N(mean, std) * 255` per value as albucore adds a float array to
/// uint8: the noise is truncated toward zero, added, and the sum saturated to [0, 255].
/// The field is drawn from `Rng::from_seed(seed)`.
pub(crate) fn add_gauss_noise(buf: &mut [u8], mean: f64, std: f64, per_channel: bool, seed: u64) {
    let mut rng = Rng::from_seed(seed);
    let (m, s) = ((mean * 255.0) as f32, (std * 255.0) as f32);
    if per_channel {
        // Value i gets z0 (even i) or z1 (odd i) of draw i / 2; an odd tail uses a z0.
        let mut chunks = buf.chunks_exact_mut(2 * BATCH);
        for chunk in &mut chunks {
            for (v, z) in chunk.iter_mut().zip(normal_batch(&mut rng)) {
                *v = add_trunc(*v, m + s * z);
            }
        }
        let mut rest = chunks.into_remainder().chunks_exact_mut(2);
        for pair in &mut rest {
            let (z0, z1) = normal_pair(&mut rng);
            pair[0] = add_trunc(pair[0], m + s * z0);
            pair[1] = add_trunc(pair[1], m + s * z1);
        }
        for v in rest.into_remainder() {
            let (z0, _) = normal_pair(&mut rng);
            *v = add_trunc(*v, m + s * z0);
        }
    } else {
        // One draw per pixel; its z0 goes to all three channels.
        let mut chunks = buf.chunks_exact_mut(3 * BATCH);
        for chunk in &mut chunks {
            let z = normal_batch(&mut rng);
            for (p, z) in chunk.chunks_exact_mut(3).zip(z.iter().step_by(2)) {
                let n = m + s * z;
                p.iter_mut().for_each(|v| *v = add_trunc(*v, n));
            }
        }
        for p in chunks.into_remainder().chunks_exact_mut(3) {
            let (z, _) = normal_pair(&mut rng);
            let n = m + s * z;
            p.iter_mut().for_each(|v| *v = add_trunc(*v, n));
        }
    }
}

/// Fills `out` with `z0, z1` of successive draws, as repeated [`normal_pair`] calls
/// would; an odd length ends with the `z0` of one more draw.
pub(crate) fn fill_normals(rng: &mut Rng, out: &mut [f32]) {
    let mut chunks = out.chunks_exact_mut(2 * BATCH);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&normal_batch(rng));
    }
    for pair in chunks.into_remainder().chunks_mut(2) {
        let (z0, z1) = normal_pair(rng);
        pair[0] = z0;
        if let Some(v) = pair.get_mut(1) {
            *v = z1;
        }
    }
}

/// Draws per batch: independent draws side by side keep the f64 dependency chains of
/// `ln`, `sqrt` and `sin_cos` overlapping.
const BATCH: usize = 4;

/// `z0, z1` of the next [`BATCH`] draws, equal to [`normal_pair`] called that often.
#[inline]
fn normal_batch(rng: &mut Rng) -> [f32; 2 * BATCH] {
    let t = tables();
    let mut bits = [0u64; BATCH];
    for b in &mut bits {
        *b = rng.next_u64();
    }
    let mut out = [0f32; 2 * BATCH];
    for (pair, &bits) in out.chunks_exact_mut(2).zip(&bits) {
        let (z0, z1, tol) = approx_pair(t, bits);
        (pair[0], pair[1]) = match (certain_f32(z0, tol), certain_f32(z1, tol)) {
            (Some(a), Some(b)) => (a, b),
            _ => normal_pair_libm(bits),
        };
    }
    out
}

/// Two independent standard normals from one Box-Muller draw (f32 precision is plenty
/// for a field that is truncated to uint8).
#[inline]
pub(crate) fn normal_pair(rng: &mut Rng) -> (f32, f32) {
    normal_pair_libm(rng.next_u64())
}

/// `(v + noise.trunc()).clamp(0, 255)`; `trunc` by an integer cast where it is exact
/// (x86-64's baseline has no rounding instruction, so `f32::trunc` is a libm call).
#[inline]
fn add_trunc(v: u8, noise: f32) -> u8 {
    let t = if noise.abs() < 8_388_608.0 { (noise as i32) as f32 } else { noise };
    (f32::from(v) + t).clamp(0.0, 255.0) as u8
}

/// The definition: Box-Muller in f64 with libm. 32 bits each; u1 in (0, 1], u2 in [0, 1).
pub(crate) fn normal_pair_libm(bits: u64) -> (f32, f32) {
    let (u1, u2) = uniforms(bits);
    let r = (-2.0 * u1.ln()).sqrt();
    let (sn, cs) = (std::f64::consts::TAU * u2).sin_cos();
    ((r * cs) as f32, (r * sn) as f32)
}

#[inline(always)]
fn uniforms(bits: u64) -> (f64, f64) {
    let u1 = ((bits >> 32) as f64 + 1.0) * (1.0 / 4_294_967_296.0);
    let u2 = (bits & 0xffff_ffff) as f64 * (1.0 / 4_294_967_296.0);
    (u1, u2)
}

/// How far [`approx_pair`]'s products may be from the libm ones, given `r` and
/// `l2 = r^2 = -2 ln(u1)`. `ln(u1)`, `sin` and `cos` are within 2^-48 of libm's, so for
/// `l2 >= 2^-8` (all but 0.2% of draws) `r` differs by at most 2^-40 r and the products
/// by 2^-39 r; 2^-36 r leaves a wide margin. Smaller `l2` gets an infinite tolerance,
/// which sends the draw to libm.
#[inline(always)]
fn tolerance(l2: f64, r: f64) -> f64 {
    if l2 >= 1.0 / 256.0 { r * (1.0 / 68_719_476_736.0) } else { f64::INFINITY }
}

/// `z as f32` when every value within `tol` of `z` rounds to the same f32 (bits, so
/// that -0.0 and 0.0 differ), else `None`.
#[inline(always)]
fn certain_f32(z: f64, tol: f64) -> Option<f32> {
    let (lo, hi) = ((z - tol) as f32, (z + tol) as f32);
    (lo.to_bits() == hi.to_bits()).then_some(lo)
}

/// Table steps per octave of `ln` and per turn of `sin_cos`.
const STEPS: usize = 256;

/// `ln(1 + i / 256)`, `256 / (256 + i)`, `sin(2 pi i / 256)` and `cos(2 pi i / 256)`,
/// computed once with libm.
struct Tables {
    ln_c: [f64; STEPS],
    inv_c: [f64; STEPS],
    sin: [f64; STEPS],
    cos: [f64; STEPS],
}

fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Tables { ln_c: [0.0; STEPS], inv_c: [0.0; STEPS], sin: [0.0; STEPS], cos: [0.0; STEPS] };
        for i in 0..STEPS {
            let c = 1.0 + i as f64 / STEPS as f64;
            t.ln_c[i] = c.ln();
            t.inv_c[i] = 1.0 / c;
            (t.sin[i], t.cos[i]) = (std::f64::consts::TAU * i as f64 / STEPS as f64).sin_cos();
        }
        t
    })
}

/// `r * cos`, `r * sin` and their [`tolerance`], from [`ln_u1`] and [`sin_cos_u2`].
#[inline(always)]
fn approx_pair(t: &Tables, bits: u64) -> (f64, f64, f64) {
    let l2 = -2.0 * ln_u1(t, bits);
    let r = l2.sqrt();
    let (sin, cos) = sin_cos_u2(t, bits);
    (r * cos, r * sin, tolerance(l2, r))
}

/// `ln(u1)` within 2^-48 of libm's (absolute): `ln(v) - 32 ln 2` with `v = hi + 1 = 2^e * m` and
/// `m = c_i * (1 + d)` in [1, 2), `ln(1 + d)` by its series (`|d| < 2^-8`).
#[inline(always)]
fn ln_u1(t: &Tables, bits: u64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Signed conversions: x86-64 has no single instruction for u64 -> f64.
    let v = ((bits >> 32) as i64 + 1) as f64;
    let vb = v.to_bits();
    let k = f64::from((vb >> 52) as i32 - 1023 - 32);
    let i = ((vb >> 44) & 0xff) as usize;
    let m = f64::from_bits((vb & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let d = (m - (1.0 + i as f64 * (1.0 / 256.0))) * t.inv_c[i];
    let ln1p = d * (1.0 + d * (-0.5 + d * (1.0 / 3.0 + d * (-0.25 + d * 0.2))));
    k * LN2_HI + (t.ln_c[i] + ln1p + k * LN2_LO)
}

/// `(sin, cos)` of `2 pi u2` within 2^-48 of libm's `sin_cos(TAU * u2)`: `2 pi j / 256` from the tables plus a
/// remainder `a < 2 pi / 256` by Taylor series.
#[inline(always)]
fn sin_cos_u2(t: &Tables, bits: u64) -> (f64, f64) {
    let j = ((bits >> 24) & 0xff) as usize;
    let a = (bits & 0xff_ffff) as i64 as f64 * (std::f64::consts::TAU / 4_294_967_296.0);
    let a2 = a * a;
    let sin_a = a * (1.0 - a2 * (1.0 / 6.0) * (1.0 - a2 * (1.0 / 20.0)));
    let cos_a = 1.0 - a2 * 0.5 * (1.0 - a2 * (1.0 / 12.0) * (1.0 - a2 * (1.0 / 30.0)));
    (t.sin[j] * cos_a + t.cos[j] * sin_a, t.cos[j] * cos_a - t.sin[j] * sin_a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch path against the definition for the same draws.
    fn check_batches(seed: u64, batches: usize) {
        let mut fast = Rng::from_seed(seed);
        let mut slow = Rng::from_seed(seed);
        for _ in 0..batches {
            let z = normal_batch(&mut fast);
            for pair in z.chunks_exact(2) {
                let (a, b) = normal_pair_libm(slow.next_u64());
                assert_eq!((pair[0].to_bits(), pair[1].to_bits()), (a.to_bits(), b.to_bits()), "seed {seed}");
            }
        }
    }

    #[test]
    fn batches_equal_libm_pairs() {
        for seed in 0..4 {
            check_batches(seed, 250_000);
        }
    }

    #[test]
    fn edge_draws_equal_libm() {
        let halves = [0u64, 1, 2, 0x40_0000, 0x4000_0000, 0x8000_0000, 0xc000_0000, 0xffff_fffe, 0xffff_ffff];
        let t = tables();
        for &hi in &halves {
            for &lo in &halves {
                let bits = (hi << 32) | lo;
                let (z0, z1, tol) = approx_pair(t, bits);
                let (a, b) = normal_pair_libm(bits);
                for (z, want) in [(z0, a), (z1, b)] {
                    if let Some(z) = certain_f32(z, tol) {
                        assert_eq!(z.to_bits(), want.to_bits(), "bits {bits:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn approximations_are_within_their_bounds() {
        let t = tables();
        let mut rng = Rng::from_seed(7);
        let (mut worst_ln, mut worst_sc) = (0f64, 0f64);
        let draws = (0..1_000_000).map(|_| rng.next_u64()).chain([0, u64::MAX, 0xffff_fffe_0000_0001]);
        for bits in draws {
            let (u1, u2) = uniforms(bits);
            worst_ln = worst_ln.max((ln_u1(t, bits) - u1.ln()).abs());
            let (s, c) = sin_cos_u2(t, bits);
            let (sn, cs) = (std::f64::consts::TAU * u2).sin_cos();
            worst_sc = worst_sc.max((s - sn).abs()).max((c - cs).abs());
        }
        // The bounds `tolerance` is built on (2^-48 each).
        let bound = 1.0 / 281_474_976_710_656.0;
        assert!(worst_ln < bound && worst_sc < bound, "errors {worst_ln:e} {worst_sc:e}");
    }

    #[test]
    fn fill_follows_the_stream() {
        let mut field = vec![0f32; 2 * 37 + 1];
        fill_normals(&mut Rng::from_seed(3), &mut field);
        let mut rng = Rng::from_seed(3);
        for pair in field.chunks(2) {
            let (a, b) = normal_pair(&mut rng);
            assert_eq!(pair[0].to_bits(), a.to_bits());
            if pair.len() == 2 {
                assert_eq!(pair[1].to_bits(), b.to_bits());
            }
        }
    }
}
