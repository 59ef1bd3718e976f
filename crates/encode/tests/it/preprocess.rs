//! Preprocessing against its references: the `clip` policy against the Hugging Face
//! CLIP processor (PIL backend) and the `paper` policy against cv2.resize INTER_LINEAR,
//! on committed images. Fixtures from `crates/encode/reference/preprocess_reference.py`.

use std::path::PathBuf;

use clipshift_augment::{DEFAULT_MAX_PIXELS, RgbImage, read_source};
use clipshift_encode::{ModelSpec, Preprocessor, ResizePolicy};

/// At least 99% of the uint8 values equal the processor's, and none is more than one level
/// apart (on the committed fixtures all are equal; see crates/encode/README.md).
const MIN_EQUAL: f64 = 0.99;
const MAX_LEVELS: u8 = 1;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Case {
    name: String,
    input: RgbImage,
    paper: bool,
}

struct Fixture {
    cases: Vec<Case>,
    /// The processor's output for each channel value, `[channel][value]`.
    lut: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let rgb = read_source(&root().join(c["source"].as_str().unwrap()), DEFAULT_MAX_PIXELS).unwrap().rgb;
            let input = tile(&rgb, c["tiles"][0].as_u64().unwrap() as u32, c["tiles"][1].as_u64().unwrap() as u32);
            let size = [c["size"][0].as_u64().unwrap() as u32, c["size"][1].as_u64().unwrap() as u32];
            assert_eq!(input.dimensions(), (size[0], size[1]), "{c}");
            Case { name: c["case"].as_str().unwrap().to_string(), input, paper: c["paper"].as_bool().unwrap() }
        })
        .collect();
    let lut = json["normalise_lut"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    Fixture { cases, lut }
}

/// `image` repeated `across` x `down` times.
fn tile(image: &RgbImage, across: u32, down: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    RgbImage::from_fn(w * across, h * down, |x, y| *image.get_pixel(x % w, y % h))
}

fn reference(name: &str) -> RgbImage {
    image::open(fixtures().join(name)).unwrap().to_rgb8()
}

fn preprocessor(policy: ResizePolicy) -> Preprocessor {
    // The committed tiny model has CLIP's mean, std and input size.
    let spec = ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    assert_eq!(spec.image_size, 224);
    Preprocessor::new(&spec, policy)
}

/// (fraction of equal uint8 values, largest difference in levels)
fn agreement(ours: &RgbImage, reference: &RgbImage) -> (f64, u8) {
    assert_eq!(ours.dimensions(), reference.dimensions());
    let (a, b) = (ours.as_raw(), reference.as_raw());
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let max = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
    (equal as f64 / a.len() as f64, max)
}

fn check(policy: ResizePolicy, prefix: &str, cases: &[Case]) {
    let pre = preprocessor(policy);
    let mut failures = Vec::new();
    for case in cases {
        let name = format!("{prefix}_{}.png", case.name);
        let (equal, max) = agreement(&pre.model_pixels(&case.input), &reference(&name));
        eprintln!("{name}: {:.4}% equal, max {max} level(s)", 100.0 * equal);
        if equal < MIN_EQUAL || max > MAX_LEVELS {
            failures.push(format!("{name}: {:.4}% equal, max diff {max}", 100.0 * equal));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn clip_policy_pixels_match_the_hugging_face_processor() {
    check(ResizePolicy::Clip, "clip", &fixture().cases);
}

#[test]
fn paper_policy_pixels_match_opencv_inter_linear() {
    let cases: Vec<Case> = fixture().cases.into_iter().filter(|c| c.paper).collect();
    assert!(cases.len() >= 3);
    check(ResizePolicy::Paper, "paper", &cases);
}

/// `lut[c][pixels]` as a CHW tensor: exactly the processor's output for these pixels
/// (the generating script checks that on the processor's own tensor).
fn processor_tensor(lut: &[Vec<f32>], pixels: &RgbImage) -> Vec<f32> {
    (0..3).flat_map(|c| pixels.pixels().map(move |p| lut[c][p.0[c] as usize])).collect()
}

#[test]
fn clip_policy_tensor_matches_the_hugging_face_processor() {
    let fx = fixture();
    let pre = preprocessor(ResizePolicy::Clip);
    // One uint8 level is 1 / 255 / std, at most 0.0146 for CLIP's std.
    let level = fx.lut.iter().flat_map(|row| row.windows(2).map(|w| w[1] - w[0])).fold(0.0f32, f32::max);
    for case in &fx.cases {
        let reference = reference(&format!("clip_{}.png", case.name));
        let expected = processor_tensor(&fx.lut, &reference);
        let mut ours = vec![0.0f32; pre.tensor_len()];

        // Rescale and normalise alone: the processor's pixels give the processor's floats.
        pre.write_tensor(&reference, &mut ours);
        let diff = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "{}: normalisation differs from the processor by {diff}", case.name);

        // The whole policy: within one level everywhere, exact where the pixels agree.
        pre.write_tensor(&case.input, &mut ours);
        let close = ours.iter().zip(&expected).filter(|(a, b)| (*a - *b).abs() <= 1e-6).count();
        let diff = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let close = close as f64 / ours.len() as f64;
        assert!(close >= MIN_EQUAL && diff <= level + 1e-6, "{}: {close} exact, max diff {diff}", case.name);
    }
}

#[test]
fn fixtures_cover_portrait_and_landscape_inputs() {
    let fx = fixture();
    assert!(fx.cases.len() >= 4);
    assert!(fx.cases.iter().any(|c| c.input.height() > c.input.width()), "no portrait input");
    assert!(fx.cases.iter().any(|c| c.input.width() > c.input.height()), "no landscape input");
}
