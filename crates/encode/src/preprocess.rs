//! From a variant image (RGB8) to the model's normalised CHW float input.

use std::borrow::Cow;

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

    /// The exact uint8 pixels the model sees, before rescaling and normalisation
    /// (`image` itself when it already has the model's size under the paper's policy).
    pub fn model_pixels<'a>(&self, image: &'a RgbImage) -> Cow<'a, RgbImage> {
        let s = self.size;
        match self.policy {
            ResizePolicy::Paper if image.dimensions() == (s, s) => Cow::Borrowed(image),
            ResizePolicy::Paper => Cow::Owned(resize_linear(image, s, s)),
            ResizePolicy::Clip => Cow::Owned(clip_resize_crop(image, s)),
        }
    }

    /// Writes the normalised CHW tensor of `image` into `out` (length [`Self::tensor_len`]).
    pub fn write_tensor(&self, image: &RgbImage, out: &mut [f32]) {
        let pixels = self.model_pixels(image);
        let plane = (self.size as usize).pow(2);
        assert_eq!(out.len(), 3 * plane, "output slice has the wrong length");
        // As the Hugging Face processor: rescale in f64 then cast, normalise in f32.
        let scale = 1.0f64 / 255.0;
        // One table per channel, indexed by a byte: no bounds checks in the loop.
        let lut: [[f32; 256]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|v| ((v as f64 * scale) as f32 - self.mean[c]) / self.std[c]));
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (((px, r), g), b) in pixels.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
            (*r, *g, *b) = (lut[0][usize::from(px[0])], lut[1][usize::from(px[1])], lut[2][usize::from(px[2])]);
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
