//! From a variant image (RGB8) to the model's normalised CHW float input.

use clipshift_augment::{RgbImage, resize_linear};

use crate::bicubic::resize_bicubic;
use crate::{ModelSpec, ResizePolicy};

/// Turns images into normalised `[3, S, S]` tensors per the model sidecar and a policy.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    size: u32,
    policy: ResizePolicy,
    mean: [f32; 3],
    std: [f32; 3],
}

impl Preprocessor {
    pub fn new(spec: &ModelSpec, policy: ResizePolicy) -> Self {
        Self { size: spec.image_size, policy, mean: spec.mean, std: spec.std }
    }

    /// Floats per image: 3 x S x S.
    pub fn tensor_len(&self) -> usize {
        3 * (self.size as usize).pow(2)
    }

    /// The exact uint8 pixels the model sees, before rescaling and normalisation.
    pub fn model_pixels(&self, image: &RgbImage) -> RgbImage {
        let s = self.size;
        match self.policy {
            ResizePolicy::Paper if image.dimensions() == (s, s) => image.clone(),
            ResizePolicy::Paper => resize_linear(image, s, s),
            ResizePolicy::Clip => clip_resize_crop(image, s),
        }
    }

    /// Writes the normalised CHW tensor of `image` into `out` (length [`Self::tensor_len`]).
    pub fn write_tensor(&self, image: &RgbImage, out: &mut [f32]) {
        let pixels = self.model_pixels(image);
        let plane = (self.size as usize).pow(2);
        assert_eq!(out.len(), 3 * plane, "output slice has the wrong length");
        // As the Hugging Face processor: rescale in f64 then cast, normalise in f32.
        let scale = 1.0f64 / 255.0;
        let lut: Vec<[f32; 3]> = (0..=255u8)
            .map(|v| {
                let x = (f64::from(v) * scale) as f32;
                std::array::from_fn(|c| (x - self.mean[c]) / self.std[c])
            })
            .collect();
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in pixels.as_raw().chunks_exact(3).enumerate() {
            r[i] = lut[px[0] as usize][0];
            g[i] = lut[px[1] as usize][1];
            b[i] = lut[px[2] as usize][2];
        }
    }
}

/// Hugging Face CLIPImageProcessor geometry: resize the shortest edge to `size` with PIL
/// `BICUBIC` (bit for bit, on the whole image, as `reducing_gap=None`), the long edge to
/// `int(size * long / short)`, then a centre crop of `size` x `size` at `(dim - size) // 2`.
pub fn clip_resize_crop(image: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (short, long) = (w.min(h), w.max(h));
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    let (nw, nh) = if w <= h { (size, new_long) } else { (new_long, size) };
    let resized = resize_bicubic(image, nw, nh);
    let top = (nh.saturating_sub(size)) / 2;
    let left = (nw.saturating_sub(size)) / 2;
    image::imageops::crop_imm(&resized, left, top, size.min(nw), size.min(nh)).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: ResizePolicy) -> ModelSpec {
        serde_json::from_value(serde_json::json!({
            "name": "t", "source": "random-init:tiny", "onnx": "model.onnx", "sha256": "",
            "image_size": 4, "patch_size": 2, "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0],
            "resize_policy": policy, "embedding_dim": 2, "outputs": {"image_embeds": "image_embeds"}
        }))
        .unwrap()
    }

    #[test]
    fn normalises_into_chw_planes() {
        let p = Preprocessor::new(&spec(ResizePolicy::Paper), ResizePolicy::Paper);
        let img = RgbImage::from_fn(4, 4, |x, y| image::Rgb([255, 0, (x + 4 * y) as u8]));
        let mut out = vec![0.0; p.tensor_len()];
        p.write_tensor(&img, &mut out);
        assert!(out[..16].iter().all(|v| (v - 1.0).abs() < 1e-6)); // (1 - 0.5) / 0.5
        assert!(out[16..32].iter().all(|v| (v + 1.0).abs() < 1e-6)); // (0 - 0.25) / 0.25
        assert!((out[32 + 5] - 5.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn clip_policy_resizes_shortest_edge_and_centre_crops() {
        let img = RgbImage::from_fn(40, 20, |x, _| image::Rgb([(x * 6) as u8, 0, 0]));
        let out = clip_resize_crop(&img, 10);
        assert_eq!(out.dimensions(), (10, 10));
        // 40x20 -> 20x10, crop columns 5..15: a left-to-right ramp stays increasing.
        let row: Vec<u8> = (0..10).map(|x| out.get_pixel(x, 5).0[0]).collect();
        assert!(row.windows(2).all(|w| w[0] < w[1]), "{row:?}");
        assert!(row[0] > 40 && row[9] < 200, "{row:?}");
    }
}
