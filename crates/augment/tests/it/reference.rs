//! Outputs for fixed parameters against albumentations 2.0.8 / OpenCV 5 (the fixtures of
//! `reference/generate.py`). Each case declares its check there: "exact" wherever
//! clipshift reproduces OpenCV's arithmetic (resize, flip, brightness/contrast, blur,
//! colour jitter, dropout with fixed fills), "within_one_level" (every value within one
//! grey level) for the warps, whose float arithmetic is not OpenCV's operation for
//! operation, and "dropout_geometry" for random fills. Each test names the check its
//! cases must declare, so a test's name cannot promise more than its check.

use clipshift_augment::{BorderMode, Params, RgbImage, elastic_field_from_noise, remap_displaced, resize_linear};

use crate::fixtures::{agreement, cases, f32s, png};

fn check(name: &str, kind: &str, ours: &RgbImage, reference: &RgbImage) -> (f64, u8) {
    let (frac, worst) = agreement(ours, reference);
    eprintln!("{name:24} {kind:16} within1={:.5} exact={} max_diff={worst}", frac, ours == reference);
    (frac, worst)
}

/// Runs every case whose name starts with `prefix`; each must declare one of `checks`.
fn run_group(prefix: &str, checks: &[&str]) {
    let mut n = 0;
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with(prefix) {
            continue;
        }
        n += 1;
        let src = png(case["source"].as_str().unwrap());
        let reference = png(case["output"].as_str().unwrap());
        let kind = case["check"].as_str().unwrap();
        assert!(checks.contains(&kind), "{name} declares check {kind}, this test runs {checks:?}");
        let ours = if let Some(size) = case.get("resize") {
            resize_linear(&src, size[0].as_u64().unwrap() as u32, size[1].as_u64().unwrap() as u32)
        } else if name.starts_with("elastic") {
            let p = &case["params"];
            let (w, h) = src.dimensions();
            let n = (w * h) as usize;
            let field = f32s(case["field"].as_str().unwrap());
            if let Some(noise) = case.get("noise") {
                let noise = f32s(noise.as_str().unwrap());
                let (dx, dy) =
                    elastic_field_from_noise(noise, w, h, p["alpha"].as_f64().unwrap(), p["sigma"].as_f64().unwrap());
                let scale = field.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = dx.iter().chain(&dy).zip(&field).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                eprintln!("{name:24} field            max_abs={scale:.4} max_err={worst:.2e}");
                if worst > 1e-3 * scale + 1e-6 {
                    failures.push(format!("{name}: displacement field differs by {worst} (scale {scale})"));
                }
            }
            remap_displaced(&src, &field[..n], &field[n..], BorderMode::Constant, 0).unwrap()
        } else {
            let params = Params::from_json(name, &case["params"].to_string()).unwrap();
            params.apply(&src).unwrap()
        };
        match kind {
            "exact" => {
                let (frac, worst) = check(name, kind, &ours, &reference);
                if ours != reference {
                    failures.push(format!("{name}: not identical (within1 {frac}, max diff {worst})"));
                }
            }
            "within_one_level" => {
                let (frac, worst) = check(name, kind, &ours, &reference);
                if worst > 1 {
                    failures.push(format!("{name}: differs by {worst} (within one level: {frac})"));
                }
            }
            "dropout_geometry" => check_dropout(name, &case["params"], &src, &ours, &reference, &mut failures),
            other => panic!("unknown check {other}"),
        }
    }
    assert!(n > 0, "no cases for {prefix}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random fills: identical outside the holes; inside, uniform bytes (mean 127.5, sd 73.9).
fn check_dropout(
    name: &str,
    params: &serde_json::Value,
    src: &RgbImage,
    ours: &RgbImage,
    reference: &RgbImage,
    failures: &mut Vec<String>,
) {
    let holes: Vec<[u32; 4]> = serde_json::from_value(params["holes"].clone()).unwrap();
    let inside = |x: u32, y: u32| holes.iter().any(|h| x >= h[0] && x < h[2] && y >= h[1] && y < h[3]);
    let mut fill = Vec::new();
    let mut ref_fill = Vec::new();
    for (x, y, p) in ours.enumerate_pixels() {
        if inside(x, y) {
            fill.extend_from_slice(&p.0);
            ref_fill.extend_from_slice(&reference.get_pixel(x, y).0);
        } else if p != src.get_pixel(x, y) || reference.get_pixel(x, y) != src.get_pixel(x, y) {
            failures.push(format!("{name}: pixel ({x}, {y}) outside the holes changed"));
            return;
        }
    }
    let stats = |v: &[u8]| {
        let n = v.len() as f64;
        let m = v.iter().map(|&b| f64::from(b)).sum::<f64>() / n;
        let sd = (v.iter().map(|&b| (f64::from(b) - m).powi(2)).sum::<f64>() / n).sqrt();
        (m, sd)
    };
    let (m, sd) = stats(&fill);
    let (rm, rsd) = stats(&ref_fill);
    eprintln!("{name:24} dropout_geometry fill mean {m:.1} sd {sd:.1}; reference mean {rm:.1} sd {rsd:.1}");
    if (m - 127.5).abs() > 8.0 || (sd - 73.9).abs() > 6.0 || (rm - 127.5).abs() > 8.0 {
        failures.push(format!("{name}: fill statistics off: ours {m:.1}/{sd:.1}, reference {rm:.1}/{rsd:.1}"));
    }
}

#[test]
fn resize_matches_cv2_inter_linear_exactly() {
    run_group("resize_", &["exact"]);
}

#[test]
fn horizontal_flip_is_identical() {
    run_group("hflip_", &["exact"]);
}

#[test]
fn brightness_contrast_is_identical() {
    run_group("rbc", &["exact"]);
}

/// Fixed fills identical; random fills in the same holes with uniform statistics.
#[test]
fn coarse_dropout_holes_are_identical() {
    run_group("dropout", &["exact", "dropout_geometry"]);
}

#[test]
fn gaussian_blur_is_identical() {
    run_group("blur", &["exact"]);
}

#[test]
fn color_jitter_is_identical() {
    run_group("jitter", &["exact"]);
}

#[test]
fn shift_scale_rotate_within_one_level() {
    run_group("ssr", &["within_one_level"]);
}

#[test]
fn perspective_within_one_level() {
    run_group("persp", &["within_one_level"]);
}

#[test]
fn elastic_with_given_field_within_one_level() {
    run_group("elastic", &["within_one_level"]);
}
