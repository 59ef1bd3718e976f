//! The ONNX graph `models/export_clip.py` builds from a Hugging Face checkpoint computes
//! what transformers computes from it. The checkpoint (`tests/fixtures/hf-tiny-clip`, a
//! tiny random CLIP) and transformers' outputs on the formula input were made by
//! `models/make_hf_fixture.py`; this test needs neither torch nor transformers, only the
//! export environment of `models/requirements.txt`, which `cargo xtask test` provides.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipshift_encode::{Encoder, ModelSpec, SessionConfig, TextEncoder, Tokens};

use crate::formula::formula_input;
use crate::{SERIAL, root};

/// The Python that runs the export: one with `models/requirements.txt` installed.
const EXPORT_PYTHON: &str = "CLIPSHIFT_EXPORT_PYTHON";

/// The same float32 arithmetic in another order (ONNX Runtime's kernels against torch's)
/// differs by a few units in the last place, a few times 1e-7 at the magnitudes here
/// (at most about 5); a wrong operation, parameter or epsilon moves outputs by 1e-4 or more.
const ABSOLUTE: f32 = 1e-5;
const RELATIVE: f32 = 1e-5;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny-clip")
}

/// Runs `export_clip.py --checkpoint <fixture> --output <out> [options]` and loads the
/// sidecar named `sidecar` from `out`.
fn export(out: &Path, options: &[&str], sidecar: &str) -> ModelSpec {
    let python = std::env::var_os(EXPORT_PYTHON).unwrap_or_else(|| {
        panic!(
            "{EXPORT_PYTHON} is not set, so the export cannot be compared with transformers: run the tests through \
             `cargo xtask test`, which creates .cache/venv-export from models/requirements.txt and sets it \
             (or set it to a Python with models/requirements.txt installed)"
        )
    });
    let script = root().join("models/export_clip.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg("--checkpoint")
        .arg(fixture_dir())
        .arg("--output")
        .arg(out)
        .args(options)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({EXPORT_PYTHON}): {e}", Path::new(&python).display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ModelSpec::load(&out.join(sidecar)).unwrap()
}

fn reference() -> serde_json::Value {
    let path = fixture_dir().join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The numbers of a nested JSON array, row-major, with its shape.
fn flatten(value: &serde_json::Value) -> (Vec<usize>, Vec<f32>) {
    fn walk(v: &serde_json::Value, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                }
                assert_eq!(shape[depth], items.len(), "ragged array at depth {depth}");
                items.iter().for_each(|item| walk(item, depth + 1, shape, out));
            }
            number => out.push(number.as_f64().unwrap_or_else(|| panic!("not a number: {number}")) as f32),
        }
    }
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    walk(value, 0, &mut shape, &mut out);
    (shape, out)
}

/// Asserts `actual` is within tolerance of transformers' `expected`; returns the largest
/// absolute difference, for the report.
fn assert_close(name: &str, actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{name}: {} values, transformers gives {}", actual.len(), expected.len());
    let mut max = 0.0f32;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a - e).abs();
        assert!(
            diff <= ABSOLUTE + RELATIVE * e.abs(),
            "{name}[{i}]: export gives {a}, transformers {e} (|diff| {diff:e} > {ABSOLUTE:e} + {RELATIVE:e} * |{e}|)"
        );
        max = max.max(diff);
    }
    max
}

#[test]
fn exported_hf_checkpoint_matches_transformers() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let fx = reference();
    let vision = &fx["vision"];
    let dir = std::env::temp_dir().join(format!("clipshift-hf-export-{}", std::process::id()));
    let spec = export(&dir, &[], "model.json");
    let (batch, size) = (vision["batch"].as_u64().unwrap() as usize, vision["image_size"].as_u64().unwrap() as usize);
    assert_eq!(spec.image_size as usize, size, "the sidecar's image_size is not the checkpoint's");

    let config = SessionConfig { intra_threads: Some(1), ..SessionConfig::default() };
    let text = text_embeds(&spec, &config, &fx["text"]);
    let mut encoder = Encoder::new(spec, &config).unwrap();
    let out = encoder.encode(&formula_input(batch, size), batch).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let (shape, embeds) = flatten(&vision["image_embeds"]);
    assert_eq!(shape, [batch, out.embedding_dim]);
    let (attention_shape, attention) = flatten(&vision["last_attention"]);
    let tokens = out.patches + 1;
    assert_eq!(attention_shape, [batch, attention_shape[1], tokens, tokens]);
    let (shape, cls_attention) = flatten(&vision["cls_attention"]);
    assert_eq!(shape, [batch, out.patches]);
    let (shape, states) = flatten(&vision["layer_cls_states"]);
    assert_eq!(shape, [batch, out.layers, out.hidden]);

    let diffs = [
        ("image_embeds", assert_close("image_embeds", &out.embeddings, &embeds)),
        ("cls_attention", assert_close("cls_attention", out.cls_attention.as_ref().unwrap(), &cls_attention)),
        ("layer_cls_states", assert_close("layer_cls_states", out.layer_cls_states.as_ref().unwrap(), &states)),
        ("text_embeds", text),
    ];
    // A nearly uniform class-token row would make the attention check show little.
    let peak = attention.chunks_exact(tokens * tokens).flat_map(|head| &head[..tokens]).fold(0.0f32, |m, &p| m.max(p));
    assert!(peak > 3.0 / tokens as f32, "the fixture's class-token attention is nearly uniform (peak {peak})");
    for (name, diff) in diffs {
        println!("max |export - transformers| {name}: {diff:e}");
    }
}

/// The exported text tower on transformers' token ids: its embeddings against
/// `get_text_features` (returns the largest difference) and its logit scale.
fn text_embeds(spec: &ModelSpec, config: &SessionConfig, reference: &serde_json::Value) -> f32 {
    let ints = |v: &serde_json::Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
            .collect()
    };
    let count = reference["input_ids"].as_array().unwrap().len();
    let tokens = Tokens { ids: ints(&reference["input_ids"]), mask: ints(&reference["attention_mask"]), count };
    assert_eq!(spec.logit_scale, reference["logit_scale"].as_f64(), "logit_scale");
    let mut text = TextEncoder::new(spec, config).unwrap().expect("the checkpoint has a text tower");
    assert!(text.spec().tokenizer.is_none(), "a 64-token vocabulary cannot take CLIP's tokenizer");
    let embeds = text.embed_tokens(&tokens).unwrap();
    let (shape, expected) = flatten(&reference["text_embeds"]);
    assert_eq!(shape, [count, spec.embedding_dim]);
    assert_close("text_embeds", &embeds, &expected)
}

/// `--fp16`: the float16 copy gives transformers' float32 outputs to float16's precision.
/// Its weights carry 11 significant bits (relative rounding up to 4.9e-4), which moves the
/// fixture's outputs by under 1e-3 of their largest value; a wrong operation or a float32
/// copy shows as far more, or as nothing at all.
#[test]
fn exported_fp16_copy_matches_transformers_to_half_precision() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let vision = &reference()["vision"];
    let dir = std::env::temp_dir().join(format!("clipshift-hf-export-fp16-{}", std::process::id()));
    let spec = export(&dir, &["--fp16", "--no-text"], "model.fp16.json");
    assert!(spec.name.ends_with("-fp16"), "{}", spec.name);
    let full = std::fs::metadata(dir.join("model.onnx")).unwrap().len();
    let half = std::fs::metadata(spec.onnx_path()).unwrap().len();
    assert!(half * 10 < full * 6, "model.fp16.onnx is {half} bytes against model.onnx's {full}");
    let (batch, size) = (vision["batch"].as_u64().unwrap() as usize, vision["image_size"].as_u64().unwrap() as usize);
    let config = SessionConfig { intra_threads: Some(1), ..SessionConfig::default() };
    let out = Encoder::new(spec, &config).unwrap().encode(&formula_input(batch, size), batch).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let embeds = flatten(&vision["image_embeds"]).1;
    let outputs = [
        ("image_embeds", out.embeddings.clone(), embeds.clone()),
        ("cls_attention", out.cls_attention.clone().unwrap(), flatten(&vision["cls_attention"]).1),
        ("layer_cls_states", out.layer_cls_states.clone().unwrap(), flatten(&vision["layer_cls_states"]).1),
    ];
    for (name, actual, expected) in outputs {
        assert_eq!(actual.len(), expected.len(), "{name}");
        let scale = expected.iter().fold(0.0f32, |m, e| m.max(e.abs()));
        let diff = actual.iter().zip(&expected).fold(0.0f32, |m, (a, e)| m.max((a - e).abs()));
        println!("max |fp16 export - transformers| {name}: {diff:e} (largest value {scale:e})");
        assert!(diff <= 5e-3 * scale, "{name}: differs from transformers by {diff:e}, over 5e-3 x {scale:e}");
        // The float32 export agrees to a few 1e-7: float16 arithmetic must show.
        assert!(diff >= 1e-5 * scale, "{name}: within {diff:e} of transformers, as if computed in float32");
    }
    let dim = out.embedding_dim;
    for (i, (a, e)) in out.embeddings.chunks_exact(dim).zip(embeds.chunks_exact(dim)).enumerate() {
        let dot: f32 = a.iter().zip(e).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / norm(a) / norm(e);
        assert!(cosine >= 0.9995, "image {i}: embedding cosine with transformers {cosine}");
    }
}
