//! `attention_similarity_aligned` against `reference/aligned_reference.py`: the original's
//! map moved by albumentations / OpenCV on float32 with the variant's parameters, compared
//! over the pixels the moved map covers. Flip, shift-scale-rotate (constant and reflected
//! border), perspective, a one-pixel shift and a given displacement field.

use clipshift_augment::{BorderMode, Params, Warp};
use clipshift_metrics::{aligned_attention_similarity, attention_similarity, upsample_attention};
use serde_json::Value;

use crate::fixtures;

fn f32_file(name: &Value) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join("aligned").join(name.as_str().unwrap())).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn warp_of(case: &Value) -> Warp {
    let (w, h) = (case["width"].as_u64().unwrap() as u32, case["height"].as_u64().unwrap() as u32);
    let params = &case["params"];
    if params["transform"] == "displaced" {
        let field = f32_file(&case["field"]);
        let n = (w * h) as usize;
        return Warp::displaced(field[..n].to_vec(), field[n..].to_vec(), BorderMode::Constant);
    }
    let params = Params::from_json("case", &params.to_string()).unwrap();
    params.warp(w, h).unwrap().expect("a geometric augmentation")
}

#[test]
fn aligned_attention_equals_the_reference() {
    let text = std::fs::read_to_string(fixtures().join("aligned.json")).unwrap();
    let reference: Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (w, h) = (case["width"].as_u64().unwrap() as u32, case["height"].as_u64().unwrap() as u32);
        let (original, variant) = (f32_file(&case["original"]), f32_file(&case["variant"]));
        let warp = warp_of(case);
        let moved = warp.apply_f32(&upsample_attention(&original, w, h).unwrap(), w, h).unwrap();
        let covered = moved.covered.iter().filter(|c| **c).count();
        assert_eq!(covered as u64, case["covered"].as_u64().unwrap(), "{name}: covered pixels");
        if let Some(file) = case.get("moved") {
            let want = f32_file(file);
            let mask = f32_file(&case["covered_mask"]);
            let range = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, ((ours, theirs), m)) in moved.values.iter().zip(&want).zip(&mask).enumerate() {
                assert_eq!(moved.covered[i], *m == 1.0, "{name}: pixel {i} covered");
                // OpenCV's float arithmetic is not ours operation for operation.
                assert!((ours - theirs).abs() <= 1e-5 * range, "{name}: pixel {i}: {ours} vs {theirs}");
            }
        }
        let got = aligned_attention_similarity(&original, &variant, &warp, w, h).unwrap();
        let want = case["similarity"].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-7 * want, "{name}: {got} vs {want}");
    }
}

#[test]
fn attention_that_flips_with_the_image_scores_one_aligned() {
    let g = 7;
    let original: Vec<f32> = (0..g * g).map(|i| ((i * 37 % 11) as f32 + 1.0) / 100.0).collect();
    let flipped: Vec<f32> = (0..g * g).map(|i| original[(i / g) * g + (g - 1 - i % g)]).collect();
    let warp = Params::HorizontalFlip.warp(224, 224).unwrap().unwrap();
    let aligned = aligned_attention_similarity(&original, &flipped, &warp, 224, 224).unwrap();
    let paper = attention_similarity(&original, &flipped, 224, 224).unwrap();
    assert!(aligned > 1.0 - 1e-9, "{aligned}");
    assert!(paper < 0.99, "the paper's frame sees a different map: {paper}");
}

#[test]
fn augmentations_that_move_no_pixel_have_no_warp() {
    for params in [Params::Identity, Params::Jpeg { quality: 95 }, Params::GaussianBlur { ksize: 3, sigma: 1.0 }] {
        assert!(params.warp(224, 224).unwrap().is_none(), "{params:?}");
    }
}
