//! Replay: decode a source image once, make its canonical image, and rebuild any variant
//! from the parameters recorded in `augmentations.parquet`. The later stages (encode,
//! metrics, the report's figures) see exactly the pixels the augment stage made, without
//! the pixels ever being stored.

use std::borrow::Cow;
use std::path::Path;

use clipshift_tables::schema::ORIGINAL;
use image::RgbImage;

use crate::source::canonical_of;
use crate::{AugmentError, Params};

/// One source image's canonical pixels, from which its variants are replayed.
#[derive(Debug, Clone)]
pub struct Replay {
    original: RgbImage,
}

impl Replay {
    /// Reads and decodes `file` (at most `max_pixels` pixels) and squash-resizes it to
    /// `size` x `size`, as the augment stage does.
    pub fn load(file: &Path, size: u32, max_pixels: u64) -> Result<Self, AugmentError> {
        Ok(Self::from_canonical(canonical_of(file, size, max_pixels)?))
    }

    /// Replays from a canonical image already at hand.
    pub fn from_canonical(original: RgbImage) -> Self {
        Self { original }
    }

    /// The canonical image (the `original` variant).
    pub fn original(&self) -> &RgbImage {
        &self.original
    }

    /// The pixels of the variant named `augmentation` whose `params` column holds
    /// `params_json`. `original` is the canonical image itself, borrowed (its recorded
    /// parameters, the identity, are not read); any other variant is `Params::apply` of
    /// the parsed parameters. Errors name the augmentation.
    pub fn variant(&self, augmentation: &str, params_json: &str) -> Result<Cow<'_, RgbImage>, AugmentError> {
        if augmentation == ORIGINAL {
            return Ok(Cow::Borrowed(&self.original));
        }
        Ok(Cow::Owned(Params::from_json(augmentation, params_json)?.apply(&self.original)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rng, Suite};

    fn image() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x * y) % 256) as u8]))
    }

    #[test]
    fn a_variant_is_its_params_applied_to_the_original() {
        let replay = Replay::from_canonical(image());
        for member in Suite::paper().members() {
            let params = member.transform.sample(&mut Rng::keyed(3, 11, &member.name), 40, 30);
            let replayed = replay.variant(&member.name, &params.to_json()).unwrap();
            assert!(matches!(replayed, Cow::Owned(_)), "{}", member.name);
            assert_eq!(*replayed, params.apply(&image()).unwrap(), "{}", member.name);
        }
    }

    #[test]
    fn the_original_is_the_canonical_image_borrowed() {
        let replay = Replay::from_canonical(image());
        assert_eq!(replay.original(), &image());
        let original = replay.variant(ORIGINAL, r#"{"transform":"identity"}"#).unwrap();
        assert!(matches!(original, Cow::Borrowed(_)));
        assert_eq!(*original, image());
        // The identity's recorded JSON is not needed to show the original.
        assert_eq!(*replay.variant(ORIGINAL, "").unwrap(), image());
    }

    #[test]
    fn errors_name_the_augmentation_and_the_file() {
        let replay = Replay::from_canonical(image());
        let err = replay.variant("my_blur", "{not json").unwrap_err();
        assert!(err.to_string().contains("my_blur") && err.to_string().contains("JSON"), "{err}");
        let err = replay.variant("my_blur", r#"{"transform":"gaussian_blur","ksize":4,"sigma":1.0}"#).unwrap_err();
        assert!(err.to_string().contains("gaussian_blur") && err.to_string().contains("odd ksize"), "{err}");
        let missing = Path::new("no/such/photo.jpg");
        let err = Replay::load(missing, 32, crate::DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.to_string().contains("no/such/photo.jpg"), "{err}");
    }

    #[test]
    fn load_makes_the_canonical_image() {
        let dir = std::env::temp_dir().join(format!("clipshift-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("source.png");
        image().save(&file).unwrap();
        let replay = Replay::load(&file, 16, crate::DEFAULT_MAX_PIXELS).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(replay.original(), &crate::canonical(&image(), 16));
        assert_eq!(replay.original().dimensions(), (16, 16));
    }
}
