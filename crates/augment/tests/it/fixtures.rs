//! Loading the committed reference fixtures.

use std::path::PathBuf;

use clipshift_augment::RgbImage;

pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference").join("fixtures")
}

pub(crate) fn png(name: &str) -> RgbImage {
    let path = dir().join(name);
    image::open(&path).unwrap_or_else(|e| panic!("cannot open fixture {}: {e}", path.display())).to_rgb8()
}

pub(crate) fn json(name: &str) -> serde_json::Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON parses")
}

pub(crate) fn f32s(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir().join(name)).expect("fixture exists");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Fraction of values within one grey level, and the largest difference.
pub(crate) fn agreement(a: &RgbImage, b: &RgbImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut close = 0usize;
    let mut worst = 0u8;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        worst = worst.max(d);
        close += usize::from(d <= 1);
    }
    (close as f64 / a.as_raw().len() as f64, worst)
}

pub(crate) fn cases() -> Vec<serde_json::Value> {
    json("cases.json")["cases"].as_array().expect("cases array").clone()
}
