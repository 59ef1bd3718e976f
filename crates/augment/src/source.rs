//! Finding, identifying and decoding source images.
//!
//! Decoding follows PIL's `Image.open(..).convert("RGB")`, which the reference code and
//! Hugging Face processors use: grayscale is replicated to three channels, alpha is
//! dropped without compositing, EXIF orientation is not applied, and an animated GIF or
//! WebP gives its first frame. Like PIL, an image with more pixels than a limit
//! ([`DEFAULT_MAX_PIXELS`], PIL's `DecompressionBombError` threshold) is refused from its
//! header, before any pixel memory is allocated.
//!
//! JPEG is decoded with libjpeg-turbo's algorithms ([`crate::jpeg`]), as PIL does, so its
//! pixels equal PIL's exactly, and a truncated JPEG is an error as in PIL; the other
//! formats are decoded by the `image` crate, which also identifies every format from the
//! file's first bytes.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader, Limits, RgbImage};
use sha2::{Digest, Sha256};

use crate::jpeg::decode_jpeg;
use crate::{AugmentError, resize_linear};

/// File extensions the augment stage picks up (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "gif"];

/// The most pixels a source may have: PIL's `DecompressionBombError` threshold
/// (twice `Image.MAX_IMAGE_PIXELS`), so the same files are refused as in the paper's code.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * 89_478_485;

/// Every image file under `root`, recursively, sorted by path so runs are reproducible.
///
/// Symbolic links are followed, but each directory is read once (by its canonical path),
/// so a link loop neither hangs the scan nor repeats work.
pub fn scan_images(root: &Path) -> Result<Vec<PathBuf>, AugmentError> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let real = std::fs::canonicalize(&dir).map_err(|source| AugmentError::Io { path: dir.clone(), source })?;
        if !seen.insert(real) {
            continue;
        }
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

/// Decodes `bytes` (read from `path`, named in errors) to RGB8, refusing images of more
/// than `max_pixels` pixels before decoding them.
pub fn decode(path: &Path, bytes: &[u8], max_pixels: u64) -> Result<SourceImage, AugmentError> {
    let error = |source| AugmentError::Decode { path: path.to_path_buf(), source };
    let format = image::guess_format(bytes).map_err(error)?;
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        // Room for the largest accepted image at 16 bits per RGBA channel; the pixel
        // limit below is the one that decides.
        let mut limits = Limits::default();
        limits.max_alloc = Some(max_pixels.saturating_mul(8).max(512 << 20));
        reader.limits(limits);
        reader
    };
    let rgb = if format == ImageFormat::Jpeg {
        decode_jpeg(path, bytes, max_pixels)?
    } else {
        let (width, height) = reader().into_dimensions().map_err(error)?;
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(AugmentError::TooManyPixels { path: path.to_path_buf(), width, height, max_pixels });
        }
        reader().decode().map_err(error)?.into_rgb8()
    };
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(AugmentError::Empty { path: path.to_path_buf(), width, height });
    }
    Ok(SourceImage {
        image_id: image_id(bytes),
        width,
        height,
        format: format.extensions_str().first().copied().unwrap_or("unknown"),
        rgb,
    })
}

/// Reads and decodes the file at `path` (at most `max_pixels` pixels).
pub fn read_source(path: &Path, max_pixels: u64) -> Result<SourceImage, AugmentError> {
    let bytes = std::fs::read(path).map_err(|source| AugmentError::Read { path: path.to_path_buf(), source })?;
    decode(path, &bytes, max_pixels)
}

/// The canonical image every augmentation starts from: the source squash-resized to
/// `size` x `size` ignoring aspect ratio, with cv2.resize INTER_LINEAR semantics (as the
/// paper). Sources over [`DEFAULT_MAX_PIXELS`] are refused.
pub fn load_canonical(path: &Path, size: u32) -> Result<RgbImage, AugmentError> {
    canonical_of(path, size, DEFAULT_MAX_PIXELS)
}

/// The canonical image of the file at `path` (at most `max_pixels` pixels); the decoded
/// pixels are handed to this thread's next decode.
pub(crate) fn canonical_of(path: &Path, size: u32, max_pixels: u64) -> Result<RgbImage, AugmentError> {
    let source = read_source(path, max_pixels)?;
    let original = canonical(&source.rgb, size);
    crate::jpeg::reuse_pixels(source.rgb);
    Ok(original)
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
        let err = decode(Path::new("photos/broken.jpg"), b"definitely not an image", DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.to_string().contains("photos/broken.jpg"), "{err}");
    }

    #[test]
    fn the_pixel_limit_is_the_callers() {
        let mut bytes = Vec::new();
        image::RgbImage::new(10, 10).write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        assert!(decode(Path::new("a.png"), &bytes, 100).is_ok());
        let err = decode(Path::new("a.png"), &bytes, 99).unwrap_err();
        assert!(matches!(err, AugmentError::TooManyPixels { width: 10, height: 10, max_pixels: 99, .. }), "{err}");
        assert_eq!(err.kind(), clipshift_tables::ErrorKind::Decode);
    }

    #[test]
    fn grayscale_png_decodes_to_rgb() {
        let gray = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]));
        let mut bytes = Vec::new();
        gray.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let src = decode(Path::new("g.png"), &bytes, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((src.width, src.height, src.format), (5, 3, "png"));
        assert_eq!(src.rgb.get_pixel(2, 1).0, [81, 81, 81]);
    }
}
