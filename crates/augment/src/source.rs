//! Finding, identifying and decoding source images.
//!
//! Decoding follows PIL's `Image.open(..).convert("RGB")`, which the reference code and
//! Hugging Face processors use: grayscale is replicated to three channels, alpha is
//! dropped without compositing, and EXIF orientation is not applied.

use std::path::{Path, PathBuf};

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::{AugmentError, resize_linear};

/// File extensions the augment stage picks up (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// Every image file under `root`, recursively, sorted by path so runs are reproducible.
pub fn scan_images(root: &Path) -> Result<Vec<PathBuf>, AugmentError> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| AugmentError::Io { path: dir.clone(), source })?;
        for entry in entries {
            let path = entry.map_err(|source| AugmentError::Io { path: dir.clone(), source })?.path();
            if path.is_dir() {
                pending.push(path);
            } else if has_image_extension(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Stable image id: the first 8 bytes (big-endian) of the SHA-256 of the file's bytes,
/// so the id survives renames and moves and identical files share it.
pub fn image_id(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

/// A decoded source image with what `images.parquet` records about it.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub image_id: u64,
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
    pub rgb: RgbImage,
}

/// Decodes `bytes` (read from `path`, named in errors) to RGB8.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<SourceImage, AugmentError> {
    let format =
        image::guess_format(bytes).map_err(|source| AugmentError::Decode { path: path.to_path_buf(), source })?;
    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|source| AugmentError::Decode { path: path.to_path_buf(), source })?;
    let (width, height) = (decoded.width(), decoded.height());
    if width == 0 || height == 0 {
        return Err(AugmentError::Empty { path: path.to_path_buf(), width, height });
    }
    Ok(SourceImage {
        image_id: image_id(bytes),
        width,
        height,
        format: format.extensions_str().first().copied().unwrap_or("unknown"),
        rgb: decoded.into_rgb8(),
    })
}

/// Reads and decodes the file at `path`.
pub fn read_source(path: &Path) -> Result<SourceImage, AugmentError> {
    let bytes = std::fs::read(path).map_err(|source| AugmentError::Read { path: path.to_path_buf(), source })?;
    decode(path, &bytes)
}

/// The canonical image every augmentation starts from: the source squash-resized to
/// `size` x `size` ignoring aspect ratio, with cv2.resize INTER_LINEAR semantics (as the paper).
pub fn load_canonical(path: &Path, size: u32) -> Result<RgbImage, AugmentError> {
    Ok(canonical(&read_source(path)?.rgb, size))
}

/// Squash-resizes a decoded image to `size` x `size` (a no-op copy when already that size).
pub fn canonical(rgb: &RgbImage, size: u32) -> RgbImage {
    if rgb.width() == size && rgb.height() == size { rgb.clone() } else { resize_linear(rgb, size, size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_depends_on_content_only() {
        assert_eq!(image_id(b"abc"), image_id(b"abc"));
        assert_ne!(image_id(b"abc"), image_id(b"abd"));
    }

    #[test]
    fn decode_errors_name_the_file() {
        let err = decode(Path::new("photos/broken.jpg"), b"definitely not an image").unwrap_err();
        assert!(err.to_string().contains("photos/broken.jpg"), "{err}");
    }

    #[test]
    fn grayscale_png_decodes_to_rgb() {
        let gray = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]));
        let mut bytes = Vec::new();
        gray.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let src = decode(Path::new("g.png"), &bytes).unwrap();
        assert_eq!((src.width, src.height, src.format), (5, 3, "png"));
        assert_eq!(src.rgb.get_pixel(2, 1).0, [81, 81, 81]);
    }
}
