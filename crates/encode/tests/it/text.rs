//! The text tower of the committed tiny model: its tokenizer gives transformers'
//! CLIPTokenizer ids (fixture from `models/make_tokenizer_fixture.py`, built from
//! open_clip's BPE merges), and prompts embed the same alone or in a batch.

use std::path::PathBuf;

use clipshift_encode::{ModelSpec, SessionConfig, TextEncoder};

use crate::{SERIAL, root};

fn tiny_text() -> TextEncoder {
    let spec = ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    TextEncoder::new(&spec, &SessionConfig { intra_threads: Some(1), ..SessionConfig::default() })
        .unwrap()
        .expect("tiny-clip has a text tower")
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_i64().unwrap())).collect()
}

#[test]
fn tokens_equal_transformers_clip_tokenizer() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer_reference.json");
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let prompts: Vec<&str> = fx["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let text = tiny_text();
    let context = fx["context_length"].as_u64().unwrap() as usize;
    assert_eq!(text.spec().context_length, context);
    let tokens = text.tokenize(&prompts).unwrap();
    let (ids, mask) = (ints(&fx["input_ids"]), ints(&fx["attention_mask"]));
    for (i, prompt) in prompts.iter().enumerate() {
        let row = i * context..(i + 1) * context;
        assert_eq!(tokens.ids[row.clone()], ids[row.clone()], "ids of {prompt:?}");
        assert_eq!(tokens.mask[row.clone()], mask[row], "attention mask of {prompt:?}");
    }
    // The fixture exercises truncation: some prompt fills the whole context.
    assert!(mask.chunks(context).any(|m| m.iter().all(|&v| v == 1)), "no prompt reaches the context length");
}

#[test]
fn a_prompt_embeds_the_same_alone_and_in_a_batch() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut text = tiny_text();
    let prompts = ["a photo of a cat.", "a blurry photo", "", "a mirrored photo of a very large dog"];
    let batch = text.embed(&prompts, 4).unwrap();
    let single = text.embed(&prompts, 1).unwrap();
    assert_eq!(batch.len(), 4);
    for (a, b) in batch.iter().zip(&single) {
        assert_eq!(a.len(), 32);
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "batch and single differ by {diff}");
    }
    assert_ne!(batch[0], batch[1], "different prompts give different embeddings");
}
