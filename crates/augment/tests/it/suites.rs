//! The paper suite and TOML suites.

use clipshift_augment::{AugmentError, Suite, Transform};

#[test]
fn paper_suite_members_in_order() {
    let s = Suite::paper();
    let names: Vec<&str> = s.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "noise",
            "blur",
            "color_jitter",
            "shift_scale_rotate",
            "horizontal_flip",
            "elastic",
            "perspective",
            "brightness_contrast",
            "coarse_dropout"
        ]
    );
    assert_eq!(s.name(), "paper");
    let j = s.to_json();
    assert_eq!(j["members"][0]["transform"], "gauss_noise");
    assert_eq!(j["members"][0]["std_range"], serde_json::json!([0.44, 0.88]));
    assert_eq!(j["members"][8]["fill"], "random");
    assert_eq!(j["members"][5]["alpha"], 30.0);
}

#[test]
fn paper_suite_equals_its_toml_spelling() {
    let text = r#"
name = "paper"
[[member]]
name = "noise"
keywords = ["a noisy photo"]
transform = "gauss_noise"
std_range = [0.44, 0.88]
[[member]]
name = "blur"
keywords = ["a blurry photo"]
transform = "gaussian_blur"
blur_limit = [3, 7]
[[member]]
name = "color_jitter"
keywords = ["a photo with shifted colours"]
transform = "color_jitter"
hue = [-0.2, 0.2]
[[member]]
name = "shift_scale_rotate"
keywords = ["a rotated and shifted photo"]
transform = "shift_scale_rotate"
rotate_limit = [-15, 15]
[[member]]
name = "horizontal_flip"
keywords = ["a mirrored photo"]
transform = "horizontal_flip"
[[member]]
name = "elastic"
keywords = ["a warped photo"]
transform = "elastic_transform"
alpha = 30
sigma = 60
[[member]]
name = "perspective"
keywords = ["a photo seen in perspective"]
transform = "perspective"
[[member]]
name = "brightness_contrast"
keywords = ["a brighter photo"]
transform = "random_brightness_contrast"
[[member]]
name = "coarse_dropout"
keywords = ["a photo with black squares"]
transform = "coarse_dropout"
num_holes_range = [6, 8]
hole_height_range = [16, 16]
hole_width_range = [16, 16]
fill = "random"
"#;
    let s = Suite::from_toml_str("inline", text).unwrap();
    assert_eq!(s, Suite::paper());
}

#[test]
fn severity_sweep_expands() {
    let text = r#"
name = "noise-sweep"
[[member]]
name = "flip"
transform = "horizontal_flip"

[[sweep]]
prefix = "noise"
transform = "gauss_noise"
vary = "std_range"
values = [0.05, 0.1, 0.9]

[[sweep]]
transform = "gaussian_blur"
vary = "sigma_limit"
values = [[0.5, 1.0], [2.0, 3.0]]
names = ["blur_low", "blur_high"]
blur_limit = [5, 5]
"#;
    let s = Suite::from_toml_str("sweep.toml", text).unwrap();
    let names: Vec<&str> = s.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["flip", "noise_0.05", "noise_0.1", "noise_0.9", "blur_low", "blur_high"]);
    match &s.members()[3].transform {
        Transform::GaussNoise(t) => assert_eq!(t.std_range, [0.9, 0.9]),
        other => panic!("{other:?}"),
    }
    match &s.members()[5].transform {
        Transform::GaussianBlur(t) => {
            assert_eq!(t.sigma_limit, [2.0, 3.0]);
            assert_eq!(t.blur_limit, [5, 5]);
        }
        other => panic!("{other:?}"),
    }
}

fn err(text: &str) -> String {
    match Suite::from_toml_str("bad.toml", text) {
        Err(e @ AugmentError::Suite { .. }) => e.to_string(),
        other => panic!("expected a suite error, got {other:?}"),
    }
}

#[test]
fn clear_errors() {
    let dup = err(
        "[[member]]\nname = \"a\"\ntransform = \"horizontal_flip\"\n[[member]]\nname = \"a\"\ntransform = \"horizontal_flip\"\n",
    );
    assert!(dup.contains("bad.toml") && dup.contains("more than once"), "{dup}");
    let typo = err("[[member]]\nname = \"n\"\ntransform = \"gauss_noise\"\nstd_rnge = [0.1, 0.2]\n");
    assert!(typo.contains("std_rnge"), "{typo}");
    let unknown = err("[[member]]\nname = \"n\"\ntransform = \"fancy\"\n");
    assert!(unknown.contains("fancy"), "{unknown}");
    let range = err("[[member]]\nname = \"n\"\ntransform = \"gauss_noise\"\nstd_range = [0.5, 0.1]\n");
    assert!(range.contains("std_range"), "{range}");
    let reserved = err("[[member]]\nname = \"original\"\ntransform = \"horizontal_flip\"\n");
    assert!(reserved.contains("reserved"), "{reserved}");
    let empty = err("name = \"x\"\n");
    assert!(empty.contains("at least one member"), "{empty}");
    let top = err("memebr = 1\n");
    assert!(top.contains("memebr"), "{top}");
    let missing = err("[[member]]\nname = \"n\"\n");
    assert!(missing.contains("transform"), "{missing}");
    let sweep = err("[[sweep]]\nprefix = \"n\"\ntransform = \"gauss_noise\"\nvary = \"std_range\"\nvalues = [2.0]\n");
    assert!(sweep.contains("std_range"), "{sweep}");
}

#[test]
fn load_uses_file_stem_as_default_name() {
    let dir = std::env::temp_dir().join(format!("clipshift-suite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flips.toml");
    std::fs::write(&path, "[[member]]\nname = \"flip\"\ntransform = \"horizontal_flip\"\n").unwrap();
    let s = Suite::load(&path).unwrap();
    assert_eq!(s.name(), "flips");
    assert!(matches!(Suite::load(&dir.join("missing.toml")), Err(AugmentError::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn keywords_are_read_from_members_and_sweeps_and_checked() {
    let text = r#"
[[member]]
name = "flip"
transform = "horizontal_flip"
keywords = ["a mirrored photo", "a flipped photo"]

[[sweep]]
prefix = "noise"
transform = "gauss_noise"
vary = "std_range"
values = [0.1, 0.2]
keywords = ["a noisy photo"]
"#;
    let suite = Suite::from_toml_str("inline", text).unwrap();
    let keywords = suite.keywords();
    assert_eq!(keywords["flip"], ["a mirrored photo", "a flipped photo"]);
    assert_eq!(keywords["noise_0.1"], ["a noisy photo"]);
    assert_eq!(keywords["noise_0.2"], ["a noisy photo"]);
    let bad = text.replace(r#"keywords = ["a noisy photo"]"#, r#"keywords = ["  "]"#);
    let err = Suite::from_toml_str("inline", &bad).unwrap_err().to_string();
    assert!(err.contains("keywords") && err.contains("sweep #1"), "{err}");
    let bad = text.replace(r#"keywords = ["a mirrored photo", "a flipped photo"]"#, "keywords = 3");
    let err = Suite::from_toml_str("inline", &bad).unwrap_err().to_string();
    assert!(err.contains("keywords") && err.contains("flip"), "{err}");
}
