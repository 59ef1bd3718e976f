//! SSIM as scikit-image computes it with a Gaussian window, restricted to the pixels
//! whose window lies inside the image (the only ones its mean keeps).

/// Window side: `2 * int(3.5 * 1.5 + 0.5) + 1`.
pub(crate) const WIN: usize = 11;
const RADIUS: usize = WIN / 2;
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// The original's filtered mean and filtered square, on the valid region.
#[derive(Debug, Clone)]
pub(crate) struct SsimSide {
    mu: Vec<f64>,
    mu_sq: Vec<f64>,
}

impl SsimSide {
    pub(crate) fn new(gray: &[f64], w: usize, h: usize) -> Self {
        let sq: Vec<f64> = gray.iter().map(|v| v * v).collect();
        Self { mu: filter_valid(gray, w, h), mu_sq: filter_valid(&sq, w, h) }
    }
}

pub(crate) fn score(x: &SsimSide, gx: &[f64], gy: &[f64], w: usize, h: usize) -> f64 {
    let sq: Vec<f64> = gy.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = gx.iter().zip(gy).map(|(a, b)| a * b).collect();
    let uy_map = filter_valid(gy, w, h);
    let uyy = filter_valid(&sq, w, h);
    let uxy = filter_valid(&xy, w, h);
    let mut sum = 0.0;
    for i in 0..uy_map.len() {
        let (ux, uy) = (x.mu[i], uy_map[i]);
        let vx = x.mu_sq[i] - ux * ux;
        let vy = uyy[i] - uy * uy;
        let vxy = uxy[i] - ux * uy;
        let a1 = 2.0 * ux * uy + C1;
        let a2 = 2.0 * vxy + C2;
        let b1 = ux * ux + uy * uy + C1;
        let b2 = vx + vy + C2;
        sum += (a1 * a2) / (b1 * b2);
    }
    sum / uy_map.len() as f64
}

/// scipy's `_gaussian_kernel1d(1.5, 0, 5)`, normalised in numpy's summation order.
fn kernel() -> [f64; RADIUS + 1] {
    let sigma2 = 1.5f64 * 1.5;
    let phi: Vec<f64> = (-(RADIUS as i32)..=RADIUS as i32).map(|x| (-0.5 / sigma2 * f64::from(x * x)).exp()).collect();
    // numpy's pairwise sum of 11 values: eight unrolled accumulators, then the rest.
    let r = &phi[..8];
    let mut total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    total += phi[8..].iter().sum::<f64>();
    let mut k = [0.0; RADIUS + 1];
    for (j, kj) in k.iter_mut().enumerate() {
        *kj = phi[RADIUS + j] / total;
    }
    k
}

/// `gaussian_filter(img, 1.5, truncate=3.5)` on the `(w - 10) x (h - 10)` interior,
/// axis 0 first, each pass summed as scipy's symmetric `correlate1d` does.
fn filter_valid(img: &[f64], w: usize, h: usize) -> Vec<f64> {
    let k = kernel();
    let (vh, vw) = (h - 2 * RADIUS, w - 2 * RADIUS);
    let mut cols = vec![0.0; vh * w];
    for r in 0..vh {
        let c0 = r + RADIUS;
        for c in 0..w {
            let at = |row: usize| img[row * w + c];
            let mut acc = at(c0) * k[0];
            for j in (1..=RADIUS).rev() {
                acc += (at(c0 - j) + at(c0 + j)) * k[j];
            }
            cols[r * w + c] = acc;
        }
    }
    let mut out = vec![0.0; vh * vw];
    for r in 0..vh {
        let line = &cols[r * w..(r + 1) * w];
        for c in 0..vw {
            let c0 = c + RADIUS;
            let mut acc = line[c0] * k[0];
            for j in (1..=RADIUS).rev() {
                acc += (line[c0 - j] + line[c0 + j]) * k[j];
            }
            out[r * vw + c] = acc;
        }
    }
    out
}
