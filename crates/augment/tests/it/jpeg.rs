//! JPEG decoding against PIL's `Image.open(p).convert("RGB")` (libjpeg-turbo), digests
//! from `reference/jpeg_reference.py`: every JPEG sample, a progressive and a CMYK file
//! must give PIL's bytes exactly, and a file PIL refuses as truncated is an error. An
//! animated WebP and GIF give PIL's first frame.

use std::path::{Path, PathBuf};

use clipshift_augment::{DEFAULT_MAX_PIXELS, decode, read_source};
use clipshift_tables::ErrorKind;
use sha2::{Digest, Sha256};

use crate::fixtures;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

#[test]
fn jpeg_pixels_equal_pils() {
    let reference = fixtures::json("jpeg_pil.json");
    let images = reference["images"].as_object().expect("images object");
    assert!(images.len() >= 3, "the fixture lists the samples and the two small files");
    let mut wrong = Vec::new();
    for (name, want) in images {
        let src = read_source(&repo_root().join(name), DEFAULT_MAX_PIXELS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(u64::from(src.width), want["width"].as_u64().unwrap(), "{name} width");
        assert_eq!(u64::from(src.height), want["height"].as_u64().unwrap(), "{name} height");
        assert_eq!(src.format, "jpg", "{name}");
        let digest = format!("{:x}", Sha256::digest(src.rgb.as_raw()));
        if digest != want["sha256"].as_str().unwrap() {
            wrong.push(name.clone());
        }
    }
    assert!(wrong.is_empty(), "decoded pixels differ from PIL's for {wrong:?}");
}

#[test]
fn an_animation_gives_pils_first_frame() {
    let reference = fixtures::json("first_frame_pil.json");
    let images = reference["images"].as_object().expect("images object");
    assert_eq!(images.len(), 2, "an animated WebP and an animated GIF");
    for (name, want) in images {
        let src = read_source(&repo_root().join(name), DEFAULT_MAX_PIXELS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((u64::from(src.width), u64::from(src.height)), (48, 32), "{name}");
        let digest = format!("{:x}", Sha256::digest(src.rgb.as_raw()));
        assert_eq!(digest, want["sha256"].as_str().unwrap(), "{name}: not PIL's first frame");
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(repo_root().join("data/samples/dahlia_flower.jpg")).expect("sample exists")
}

fn assert_decode_error(path: &str, bytes: &[u8]) {
    let err = decode(Path::new(path), bytes, DEFAULT_MAX_PIXELS).expect_err("PIL refuses this file");
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains(path), "{err}");
}

#[test]
fn a_truncated_jpeg_is_an_error() {
    let bytes = sample();
    assert_decode_error("photos/half.jpg", &bytes[..bytes.len() / 2]);
}

#[test]
fn a_jpeg_without_its_end_marker_is_an_error() {
    let bytes = sample();
    assert_eq!(&bytes[bytes.len() - 2..], b"\xff\xd9", "the sample ends with EOI");
    assert_decode_error("photos/no_eoi.jpg", &bytes[..bytes.len() - 2]);
}

#[test]
fn a_corrupt_jpeg_header_is_an_error() {
    assert_decode_error("photos/garbage.jpg", b"\xff\xd8\xff\xc0garbage");
}

#[test]
fn the_pixel_limit_applies_to_jpegs() {
    let bytes = sample();
    let err = decode(Path::new("big.jpg"), &bytes, 1000).expect_err("over the limit");
    assert!(matches!(err, clipshift_augment::AugmentError::TooManyPixels { max_pixels: 1000, .. }), "{err}");
}
