//! A model that does not match the contract, or its own sidecar, is refused when it is
//! loaded, with an error naming the file and the mismatch, before any image is read.

use std::path::{Path, PathBuf};

use clipshift_encode::{Encoder, ModelSpec, SessionConfig, TextEncoder};

use crate::{SERIAL, root};

/// A copy of the tiny model whose sidecar has `edit` applied.
fn tiny_with(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clipshift-contract-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = root().join("models/tiny-clip");
    std::fs::copy(tiny.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let mut sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("model.json")).unwrap()).unwrap();
    edit(&mut sidecar);
    std::fs::write(dir.join("model.json"), sidecar.to_string()).unwrap();
    dir
}

fn refusal(dir: &Path) -> String {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = ModelSpec::load(dir).unwrap();
    let Err(err) = Encoder::new(spec, &SessionConfig::default()) else { panic!("{} must be refused", dir.display()) };
    std::fs::remove_dir_all(dir).unwrap();
    err.to_string()
}

#[test]
fn a_model_at_odds_with_its_sidecar_or_the_contract_is_refused_at_load() {
    let err = refusal(&tiny_with("output", |s| s["outputs"]["last_attention"] = "attn_probs".into()));
    assert!(err.contains("model.onnx") && err.contains("`attn_probs`"), "{err}");
    let err = refusal(&tiny_with("size", |s| s["image_size"] = 192.into()));
    assert!(err.contains("pixel_values") && err.contains("192"), "{err}");
    let err = refusal(&tiny_with("width", |s| {
        s["embedding_dim"] = 16.into();
        s.as_object_mut().unwrap().remove("text");
    }));
    assert!(err.contains("image_embeds") && err.contains("embedding_dim"), "{err}");
}

#[test]
fn a_text_tower_at_odds_with_its_sidecar_is_refused_at_load() {
    let err = ModelSpec::load(&tiny_with("text-width", |s| s["text"]["embedding_dim"] = 16.into())).unwrap_err();
    assert!(err.to_string().contains("model.json") && err.to_string().contains("embedding_dim 16"), "{err}");

    let text_refusal = |name: &str, edit: fn(&mut serde_json::Value)| {
        let dir = tiny_with(name, edit);
        for file in ["text_model.onnx", "tokenizer.json"] {
            std::fs::copy(root().join("models/tiny-clip").join(file), dir.join(file)).unwrap();
        }
        let spec = ModelSpec::load(&dir).unwrap();
        let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Err(err) = TextEncoder::new(&spec, &SessionConfig::default()) else { panic!("{name} must be refused") };
        std::fs::remove_dir_all(&dir).unwrap();
        err.to_string()
    };
    // The graph takes any sequence length; the tokenizer must fit the sidecar's context.
    let err = text_refusal("context", |s| s["text"]["context_length"] = 64.into());
    assert!(err.contains("tokenizer.json") && err.contains("context length 64"), "{err}");
    let err = text_refusal("output", |s| s["text"]["outputs"]["text_embeds"] = "pooled".into());
    assert!(err.contains("text_model.onnx") && err.contains("`pooled`"), "{err}");
    let err = text_refusal("tokenizer", |s| s["text"]["tokenizer_sha256"] = "00".into());
    assert!(err.contains("tokenizer.json") && err.contains("sha256"), "{err}");
}

#[test]
fn a_missing_sidecar_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("clipshift-contract-{}-nosidecar", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("models/tiny-clip/model.onnx"), dir.join("model.onnx")).unwrap();
    let err = ModelSpec::load(&dir).unwrap_err().to_string();
    assert!(err.contains("model.json") && err.contains("cannot read sidecar"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
