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

/// `suites/severity.toml`: five paired levels of each family with a magnitude, level 3
/// equal to the paper's member, the flip once.
#[test]
fn the_severity_suite_has_the_paper_at_level_three() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../suites/severity.toml");
    let suite = Suite::load(&path).unwrap();
    assert_eq!(suite.members().len(), 1 + 8 * 5);
    let paper = Suite::paper();
    for member in paper.members() {
        let family: Vec<_> =
            suite.members().iter().filter(|m| m.level.as_ref().is_some_and(|l| l.family == member.name)).collect();
        if member.name == "horizontal_flip" {
            assert!(family.is_empty());
            assert_eq!(suite.member("horizontal_flip").unwrap().transform, member.transform);
            continue;
        }
        let severities: Vec<u32> = family.iter().map(|m| m.level.as_ref().unwrap().severity).collect();
        assert_eq!(severities, [1, 2, 3, 4, 5], "{}", member.name);
        assert_eq!(family[2].transform, member.transform, "{}: level 3 is the paper's setting", member.name);
        assert_eq!(family[2].name, format!("{}_3", member.name));
        assert_eq!(family[0].keywords, member.keywords);
        assert!(family.iter().all(|m| m.rng_key() == member.name), "{}: keyed by the family", member.name);
    }
}

/// The levels of a family draw the same randomness for one image: noise levels 1 and 2
/// (std ranges [0.11, 0.22] and [0.22, 0.44]) add the same field, twice as strong.
#[test]
fn severity_levels_are_paired() {
    use clipshift_augment::Params;
    use clipshift_augment::stage::sample_variants;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../suites/severity.toml");
    let suite = Suite::load(&path).unwrap();
    let variants = sample_variants(&suite, 11, 42, 64);
    let params = |name: &str| variants.iter().find(|v| v.0 == name).unwrap().2.clone();
    let (Params::GaussNoise { std: s1, seed: seed1, .. }, Params::GaussNoise { std: s2, seed: seed2, .. }) =
        (params("noise_1"), params("noise_2"))
    else {
        panic!("noise levels sample noise parameters")
    };
    assert_eq!(seed1, seed2, "one noise field for every level");
    assert!((s2 - 2.0 * s1).abs() < 1e-12, "std {s2} is twice {s1}");
    let grey = clipshift_augment::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
    let one = params("noise_1").apply(&grey).unwrap();
    let two = params("noise_2").apply(&grey).unwrap();
    let mut compared = 0;
    for (a, b) in one.as_raw().iter().zip(two.as_raw()) {
        let (a, b) = (i32::from(*a) - 128, i32::from(*b) - 128);
        // Before clipping: both inside (0, 255); each was rounded once.
        if (-127..127).contains(&a) && (-127..127).contains(&b) {
            assert!((b - 2 * a).abs() <= 2, "level 2 {b} vs twice level 1 {a}");
            compared += 1;
        }
    }
    assert!(compared > 64 * 64 * 3 / 2, "only {compared} values unclipped");
    // Every other family: the same draws, so the same seed for every level.
    for family in ["blur", "color_jitter", "shift_scale_rotate", "elastic", "perspective", "coarse_dropout"] {
        let seeds: Vec<u64> = variants.iter().filter(|v| v.0.starts_with(&format!("{family}_"))).map(|v| v.1).collect();
        assert_eq!(seeds.len(), 5, "{family}");
        assert!(seeds.iter().all(|s| *s == seeds[0]), "{family}: {seeds:?}");
    }
    // A member outside a sweep keeps its own draws.
    assert_ne!(variants.iter().find(|v| v.0 == "horizontal_flip").unwrap().1, seed1);
}

#[test]
fn sweep_levels_and_their_errors() {
    let text = r#"
[[sweep]]
family = "jitter"
transform = "color_jitter"
hue = [-0.1, 0.1]
levels = [{ brightness = [0.9, 1.1] }, { brightness = [0.8, 1.2], contrast = [0.7, 1.3] }]
"#;
    let s = Suite::from_toml_str("levels.toml", text).unwrap();
    let names: Vec<&str> = s.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["jitter_1", "jitter_2"]);
    match &s.members()[1].transform {
        Transform::ColorJitter(t) => {
            assert_eq!((t.brightness, t.contrast, t.hue), ([0.8, 1.2], [0.7, 1.3], [-0.1, 0.1]))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.members()[1].level.as_ref().map(|l| (l.family.as_str(), l.severity)), Some(("jitter", 2)));
    let json = s.to_json();
    assert_eq!(json["members"][1]["family"], "jitter");
    assert_eq!(json["members"][1]["severity"], 2);
    let both = err(
        "[[sweep]]\nfamily = \"n\"\ntransform = \"gauss_noise\"\nvary = \"std_range\"\nvalues = [0.1]\nlevels = [{ std_range = [0.1, 0.2] }]\n",
    );
    assert!(both.contains("not both"), "{both}");
    let twice = err(
        "[[sweep]]\nfamily = \"n\"\ntransform = \"gauss_noise\"\nlevels = [{ std_range = [0.1, 0.2] }]\n[[sweep]]\nfamily = \"n\"\ntransform = \"gaussian_blur\"\nlevels = [{ sigma_limit = [1.0, 2.0] }]\n",
    );
    assert!(twice.contains("family \"n\""), "{twice}");
    let set = err(
        "[[sweep]]\nfamily = \"n\"\ntransform = \"gauss_noise\"\nstd_range = [0.1, 0.2]\nlevels = [{ std_range = [0.1, 0.2] }]\n",
    );
    assert!(set.contains("must not also be set"), "{set}");
    let level = err("[[sweep]]\nfamily = \"n\"\ntransform = \"gauss_noise\"\nlevels = [{ std_range = [0.5, 0.1] }]\n");
    assert!(level.contains("level 1") && level.contains("std_range"), "{level}");
}
