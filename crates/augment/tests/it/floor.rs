//! The noise floor's transforms against PIL and OpenCV (`reference/floor_reference.py`):
//! JPEG re-encoding equals PIL's save + open, the pixel shift `cv2.warpAffine` with a
//! whole-pixel translation, the resize round trip two `cv2.resize` calls, byte for byte.

use clipshift_augment::{Params, Suite, Transform};

use crate::fixtures::{agreement, json, png};

#[test]
fn floor_transforms_equal_pil_and_opencv() {
    let reference = json("floor_cases.json");
    let cases = reference["cases"].as_array().expect("cases array");
    let mut kinds = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let params = Params::from_json(name, &case["params"].to_string()).unwrap();
        kinds.insert(params.kind());
        let ours = params.apply(&png(case["source"].as_str().unwrap())).unwrap();
        let want = png(case["output"].as_str().unwrap());
        if ours != want {
            wrong.push(format!("{name}: {:?}", agreement(&ours, &want)));
        }
    }
    assert_eq!(kinds.len(), 3, "JPEG, shift and resize cases: {kinds:?}");
    assert!(cases.len() >= 15, "{} cases", cases.len());
    assert!(wrong.is_empty(), "differ from the reference (share within one level, largest difference): {wrong:?}");
}

#[test]
fn jpeg_at_quality_95_changes_the_pixels_a_little() {
    // Not a copy: the floor must move the pixels, slightly.
    let src = png("src_photo.png");
    let out = Params::Jpeg { quality: 95 }.apply(&src).unwrap();
    let (within_one, worst) = agreement(&src, &out);
    assert!(out != src && within_one > 0.5 && worst < 64, "{within_one} {worst}");
}

#[test]
fn the_floor_suite_draws_one_of_four_directions() {
    let floor = Suite::floor();
    assert!(floor.members().iter().all(|m| m.floor), "every member is marked");
    let shift = floor.member("floor_shift1").expect("one-pixel shift");
    let mut seen = std::collections::BTreeSet::new();
    for key in 0..64u64 {
        match shift.transform.sample(&mut clipshift_augment::Rng::keyed(0, key, "floor_shift1"), 224, 224) {
            Params::PixelShift { dx, dy, .. } => {
                assert_eq!(dx.abs() + dy.abs(), 1, "one pixel along one axis");
                seen.insert((dx, dy));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(matches!(floor.member("floor_jpeg95").unwrap().transform, Transform::Jpeg(_)));
}

#[test]
fn with_floor_appends_and_refuses_a_clash() {
    let suite = Suite::paper().with_floor().unwrap();
    assert_eq!(suite.members().len(), 12);
    assert_eq!(suite.members().iter().filter(|m| m.floor).count(), 3);
    assert!(suite.clone().with_floor().is_err(), "the floor's names are already taken");
}

#[test]
fn a_toml_member_can_be_part_of_the_floor() {
    let text = "[[member]]\nname = \"j90\"\ntransform = \"jpeg\"\nquality_range = [90, 90]\nfloor = true\n\n\
                [[member]]\nname = \"s2\"\ntransform = \"pixel_shift\"\npixels = 2\n";
    let suite = Suite::from_toml_str("t", text).unwrap();
    assert!(suite.member("j90").unwrap().floor);
    assert!(!suite.member("s2").unwrap().floor);
    let bad = text.replace("floor = true", "floor = 1");
    let err = Suite::from_toml_str("t", &bad).unwrap_err().to_string();
    assert!(err.contains("`floor` must be true or false"), "{err}");
    let bad = text.replace("[90, 90]", "[0, 90]");
    let err = Suite::from_toml_str("t", &bad).unwrap_err().to_string();
    assert!(err.contains("quality_range"), "{err}");
}
