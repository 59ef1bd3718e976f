//! Encoder equivalence: clipshift's embeddings and attention equal Python onnxruntime's
//! on the tiny model (fixture from `models/reference_outputs.py`), and do not depend on
//! batch size or thread count. Needs ONNX Runtime (`cargo xtask test` provides it).

mod contract;
mod dump_pixels;
mod formula;
mod hf_export;
mod preprocess;
mod text;

use std::path::PathBuf;
use std::sync::Mutex;

use clipshift_encode::{BatchOutput, Encoder, ModelSpec, SessionConfig};
use formula::formula_input;

const TOLERANCE: f32 = 1e-5;

/// ONNX Runtime sessions are heavy; keep the tests of this binary from running them all at once.
/// A test that fails while holding it poisons it; the others still run (`into_inner`).
pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> serde_json::Value {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_reference.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn encoder(threads: Option<usize>) -> Encoder {
    let spec = ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    Encoder::new(spec, &SessionConfig { intra_threads: threads, ..SessionConfig::default() }).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn rows(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32))
        .collect()
}

#[test]
fn matches_python_onnxruntime_on_the_tiny_model() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let fx = fixture();
    let mut enc = encoder(None);
    assert_eq!(fx["model_sha256"].as_str().unwrap(), enc.spec().sha256, "fixture made from another model");
    let batch = fx["batch"].as_u64().unwrap() as usize;
    let out = enc.encode(&formula_input(batch, 224), batch).unwrap();
    assert_eq!((out.batch, out.embedding_dim, out.patches), (3, 32, 49));
    let embeds = rows(&fx["image_embeds"]);
    let diff = max_abs_diff(&out.embeddings, &embeds);
    assert!(diff < TOLERANCE, "embeddings differ from onnxruntime by {diff}");
    let diff = max_abs_diff(out.cls_attention.as_ref().unwrap(), &rows(&fx["last_attention_cls"]));
    assert!(diff < TOLERANCE, "class-token attention differs by {diff}");
    let (layers, hidden) = (out.layers, out.hidden);
    assert_eq!((layers, hidden), (3, 64));
    let states = out.layer_cls_states.as_ref().unwrap();
    let last: Vec<f32> = (0..batch)
        .flat_map(|n| states[(n * layers + layers - 1) * hidden..(n * layers + layers) * hidden].to_vec())
        .collect();
    let diff = max_abs_diff(&last, &rows(&fx["layer_cls_states_last"]));
    assert!(diff < TOLERANCE, "last-layer class-token states differ by {diff}");
}

#[test]
fn results_do_not_depend_on_batch_size_or_threads() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let input = formula_input(5, 224);
    let plane = 3 * 224 * 224;
    let mut one = encoder(Some(1));
    let full: BatchOutput = one.encode(&input, 5).unwrap();
    let mut two = encoder(Some(2));
    let mut pieces = Vec::new();
    for (start, len) in [(0, 2), (2, 1), (3, 2)] {
        pieces.extend(two.encode(&input[start * plane..(start + len) * plane], len).unwrap().embeddings);
    }
    let diff = max_abs_diff(&full.embeddings, &pieces);
    assert!(diff < TOLERANCE, "batches 5 vs 2+1+2 on 1 vs 2 threads differ by {diff}");
}

#[test]
fn rejects_a_model_whose_file_does_not_match_its_sidecar() {
    let dir = std::env::temp_dir().join(format!("clipshift-bad-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = root().join("models/tiny-clip");
    std::fs::copy(tiny.join("model.json"), dir.join("model.json")).unwrap();
    std::fs::write(dir.join("model.onnx"), b"not the model").unwrap();
    // The sidecar alone reads; the file is checked when it is opened.
    let spec = ModelSpec::load(&dir).unwrap();
    let Err(err) = Encoder::new(spec, &SessionConfig::default()) else { panic!("opened a file that is not the model") };
    let err = err.to_string();
    assert!(err.contains("sha256") && err.contains("model.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loads_a_model_from_a_named_sidecar() {
    // As `export_clip.py --quantize int8` writes model.int8.json beside model.json.
    let dir = std::env::temp_dir().join(format!("clipshift-named-sidecar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = root().join("models/tiny-clip");
    let mut sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("model.json")).unwrap()).unwrap();
    sidecar["name"] = "tiny-alt".into();
    std::fs::write(dir.join("model.alt.json"), sidecar.to_string()).unwrap();
    std::fs::copy(tiny.join(sidecar["onnx"].as_str().unwrap()), dir.join(sidecar["onnx"].as_str().unwrap())).unwrap();
    let spec = ModelSpec::load(&dir.join("model.alt.json")).unwrap();
    assert_eq!((spec.name.as_str(), spec.dir.as_path()), ("tiny-alt", dir.as_path()));
    assert!(ModelSpec::load(&dir).is_err(), "the directory alone names model.json, which is absent");
    std::fs::remove_dir_all(&dir).unwrap();
}
