//! Agreement with `reference/metrics_reference.py` (numpy, scipy, OpenCV,
//! scikit-image) on the committed fixtures, and the edge cases of the metric definitions
//! (docs/tables.md).

mod aligned;

use std::path::PathBuf;

use clipshift_metrics::{
    AttentionMap, MetricsError, OriginalFeatures, attention_similarity, condensed_index, cosine_similarity,
    detail_preservation, edge_preservation, l2_distance, patch_similarity, pdist_cosine, pdist_euclidean, ssim,
    upsample_attention,
};
use image::{Rgb, RgbImage};
use serde_json::Value;

const REL: f64 = 1e-9;
/// Values the reference itself only gets to within rounding of 0 (numpy's std of a
/// flat patch is a few ulps, not 0) are compared absolutely.
const ABS: f64 = 1e-12;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference/fixtures")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(name: &str, tag: &str) -> RgbImage {
    image::open(fixtures().join(format!("{name}.{tag}.png"))).unwrap().to_rgb8()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[track_caller]
fn close(what: &str, got: f64, want: f64) -> f64 {
    let err = (got - want).abs();
    let rel = if want == 0.0 { err } else { err / want.abs() };
    assert!(err <= ABS || rel <= REL, "{what}: got {got:e}, reference {want:e} (rel {rel:e})");
    assert!(got.is_finite(), "{what}: not finite");
    // Values within 1e-6 of 0 (cosine distances of near-copies, where `1 - cos`
    // cancels in both implementations) are reported by their absolute error.
    if want.abs() > 1e-6 {
        rel
    } else {
        eprintln!("{what}: reference {want:e}, absolute error {err:e}");
        0.0
    }
}

#[test]
fn pixel_metrics_match_reference() {
    let exp = expected();
    let mut worst = 0.0f64;
    for case in exp["pixel"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (x, y) = (load(name, "x"), load(name, "y"));
        let want = |k: &str| case[k].as_f64().unwrap();
        let free = [
            ("patch_similarity", patch_similarity(&x, &y).unwrap()),
            ("edge_preservation", edge_preservation(&x, &y).unwrap()),
            ("detail_preservation", detail_preservation(&x, &y).unwrap()),
            ("ssim", ssim(&x, &y).unwrap()),
        ];
        for (k, got) in free {
            worst = worst.max(close(&format!("{name} {k}"), got, want(k)));
        }
        // The precomputed path gives the very same numbers.
        let orig = OriginalFeatures::new(&x);
        let all = orig.compare(&y).unwrap();
        assert_eq!(all.patch_similarity, Some(free[0].1), "{name}");
        assert_eq!(all.edge_preservation, Some(free[1].1), "{name}");
        assert_eq!(all.detail_preservation, Some(free[2].1), "{name}");
        assert_eq!(all.ssim, Some(free[3].1), "{name}");
        assert_eq!(orig.edge_preservation(&y), Ok(free[1].1));
        assert_eq!(orig.detail_preservation(&y), Ok(free[2].1));
        assert_eq!(orig.ssim(&y), Ok(free[3].1));
        assert_eq!(orig.patch_similarity(&y), Ok(free[0].1));
    }
    eprintln!("pixel metrics: worst relative error {worst:e}");
}

/// The paper's code subtracts uint8 arrays, so differences wrap modulo 256; we
/// implement the stated formula on true differences, and the two clearly differ.
#[test]
fn patch_similarity_uses_true_differences_not_wrapped_uint8() {
    let exp = expected();
    let case = exp["pixel"].as_array().unwrap().iter().find(|c| c["name"] == "noise_224").unwrap();
    let got = patch_similarity(&load("noise_224", "x"), &load("noise_224", "y")).unwrap();
    let true_value = case["patch_similarity"].as_f64().unwrap();
    let wrapped = case["patch_similarity_wrapped"].as_f64().unwrap();
    close("true patch similarity", got, true_value);
    assert!((got - wrapped).abs() > 0.03, "ours {got} vs wrapped {wrapped}");
    // A mid-gray against a black image: wrapped, 0 - 128 squared is 0 modulo 256 and the
    // score says "identical"; the true MSE is 128^2.
    let gray = RgbImage::from_pixel(16, 16, Rgb([128; 3]));
    let black = RgbImage::new(16, 16);
    let s = patch_similarity(&gray, &black).unwrap();
    close("gray vs black", s, 1.0 / (1.0 + 128.0f64.powi(2) / 255.0f64.powi(2)));
    let case = exp["pixel"].as_array().unwrap().iter().find(|c| c["name"] == "gray_vs_black_16").unwrap();
    assert_eq!(case["patch_similarity_wrapped"].as_f64(), Some(1.0));
}

#[test]
fn embeddings_match_reference() {
    let exp = expected();
    let e = &exp["embeddings"];
    let vecs: Vec<Vec<f32>> = e["vectors"].as_array().unwrap().iter().map(f32s).collect();
    let refs: Vec<&[f32]> = vecs.iter().map(Vec::as_slice).collect();
    let mut worst = 0.0f64;
    for (i, v) in vecs.iter().enumerate() {
        let cos = cosine_similarity(&vecs[0], v).unwrap();
        worst = worst.max(close("cosine", cos, e["cosine_to_first"][i].as_f64().unwrap()));
        worst = worst.max(close("l2", l2_distance(&vecs[0], v), e["l2_to_first"][i].as_f64().unwrap()));
    }
    let (pc, pe) = (pdist_cosine(&refs), pdist_euclidean(&refs));
    let (wc, we) = (f64s(&e["pdist_cosine"]), f64s(&e["pdist_euclidean"]));
    assert_eq!((pc.len(), pe.len()), (wc.len(), we.len()));
    for k in 0..wc.len() {
        worst = worst.max(close("pdist cosine", pc[k], wc[k]));
        worst = worst.max(close("pdist euclidean", pe[k], we[k]));
    }
    // Identical vectors (0 and 1 are copies) are exactly 0 apart.
    assert_eq!(pc[0], 0.0);
    assert_eq!(cosine_similarity(&vecs[0], &vecs[1]), Some(1.0));
    let n = vecs.len();
    assert_eq!(pe[condensed_index(n, 3, 1)], l2_distance(&vecs[1], &vecs[3]));
    eprintln!("embedding metrics: worst relative error {worst:e}");
}

#[test]
fn attention_matches_opencv_bit_for_bit() {
    let exp = expected();
    let mut worst = 0.0f64;
    for case in exp["attention"].as_array().unwrap() {
        let (a, b) = (f32s(&case["a"]), f32s(&case["b"]));
        let (w, h) = (case["width"].as_u64().unwrap() as u32, case["height"].as_u64().unwrap() as u32);
        let what = format!("{}-grid to {w}x{h}", a.len());
        let got = attention_similarity(&a, &b, w, h).unwrap();
        // The original's map built once gives the same number, and so does the
        // comparison the other way round.
        assert_eq!(AttentionMap::new(&a, w, h).unwrap().similarity(&b), Some(got), "{what}");
        close(&format!("{what} swapped"), attention_similarity(&b, &a, w, h).unwrap(), got);
        worst = worst.max(close(&what, got, case["attention_similarity"].as_f64().unwrap()));
        let up = upsample_attention(&a, w, h).unwrap();
        let sum: f64 = up.iter().map(|&v| f64::from(v)).sum();
        close(&format!("{what} upsampled sum"), sum, case["upsampled_a_sum"].as_f64().unwrap());
        if let Some(want) = case.get("upsampled_a") {
            assert_eq!(up, f32s(want), "{what}: cv2.resize output differs");
        }
    }
    eprintln!("attention similarity: worst relative error {worst:e}");
}

#[test]
fn constant_black_and_identical_images() {
    let gray = RgbImage::from_pixel(32, 24, Rgb([90, 90, 90]));
    let black = RgbImage::new(32, 24);
    for (x, y) in [(&gray, &gray), (&black, &black)] {
        assert_eq!(patch_similarity(x, y), Ok(1.0));
        assert_eq!(edge_preservation(x, y), Ok(1.0)); // both edge maps are all zero
        assert_eq!(detail_preservation(x, y), Ok(0.0)); // no patch with detail
        assert_eq!(ssim(x, y), Ok(1.0));
    }
    assert_eq!(edge_preservation(&gray, &black), Ok(1.0));
    assert_eq!(detail_preservation(&gray, &black), Ok(0.0));
    let s = ssim(&gray, &black).unwrap();
    assert!(s > 0.0 && s < 0.01, "{s}");

    let scene = load("identical_20", "x");
    assert_eq!(patch_similarity(&scene, &scene), Ok(1.0));
    assert_eq!(edge_preservation(&scene, &scene), Ok(1.0));
    assert_eq!(detail_preservation(&scene, &scene), Ok(1.0));
    assert_eq!(ssim(&scene, &scene), Ok(1.0));
    // A textured original against a flat variant keeps no detail.
    let flat = RgbImage::from_pixel(20, 20, Rgb([10, 200, 30]));
    assert_eq!(detail_preservation(&scene, &flat), Ok(0.0));
}

#[test]
fn variant_flat_in_every_patch_has_zero_detail() {
    let x = load("flat_patches_32x24", "x");
    let y = load("flat_patches_32x24", "y");
    let d = detail_preservation(&x, &y).unwrap();
    assert!(d.abs() < 1e-12, "{d}");
}

#[test]
fn size_mismatch_and_too_small() {
    let a = RgbImage::new(224, 224);
    let b = RgbImage::new(224, 223);
    let mismatch = MetricsError::SizeMismatch { original: (224, 224), variant: (224, 223) };
    assert_eq!(patch_similarity(&a, &b), Err(mismatch.clone()));
    assert_eq!(edge_preservation(&a, &b), Err(mismatch.clone()));
    assert_eq!(detail_preservation(&a, &b), Err(mismatch.clone()));
    assert_eq!(ssim(&a, &b), Err(mismatch.clone()));
    assert_eq!(OriginalFeatures::new(&a).compare(&b), Err(mismatch.clone()));
    assert!(!mismatch.is_undefined());

    let tiny = RgbImage::from_pixel(9, 5, Rgb([1, 2, 3]));
    let err = ssim(&tiny, &tiny).unwrap_err();
    assert!(err.is_undefined(), "{err}");
    assert!(detail_preservation(&tiny, &tiny).unwrap_err().is_undefined());
    assert_eq!(patch_similarity(&tiny, &tiny), Ok(1.0));
    let all = OriginalFeatures::new(&tiny).compare(&tiny).unwrap();
    assert_eq!((all.patch_similarity, all.edge_preservation), (Some(1.0), Some(1.0)));
    assert_eq!((all.detail_preservation, all.ssim), (None, None));
    let line = RgbImage::new(1, 7);
    assert!(edge_preservation(&line, &line).unwrap_err().is_undefined());
    assert!(patch_similarity(&RgbImage::new(0, 0), &RgbImage::new(0, 0)).unwrap_err().is_undefined());
}

#[test]
fn no_nan_on_extreme_inputs() {
    let white = RgbImage::from_pixel(12, 12, Rgb([255; 3]));
    let black = RgbImage::new(12, 12);
    let mut checker = RgbImage::new(12, 12);
    for (x, y, p) in checker.enumerate_pixels_mut() {
        *p = if (x + y) % 2 == 0 { Rgb([255; 3]) } else { Rgb([0; 3]) };
    }
    let imgs = [&white, &black, &checker];
    for x in imgs {
        for y in imgs {
            let s = OriginalFeatures::new(x).compare(y).unwrap();
            for v in [s.patch_similarity, s.edge_preservation, s.detail_preservation, s.ssim] {
                let v = v.unwrap();
                assert!(v.is_finite() && (-1.0..=1.0).contains(&v), "{v}");
            }
        }
    }
    // Models without attention output: the stage writes null and never calls this; a
    // malformed vector is None, never NaN.
    assert_eq!(attention_similarity(&[], &[], 224, 224), None);
    assert_eq!(attention_similarity(&[0.0; 49], &[0.0; 49], 224, 224), Some(1.0));
}
