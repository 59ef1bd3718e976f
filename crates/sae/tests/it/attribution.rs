//! The closed-form attribution against PyTorch autograd (`reference/make_fixtures.py`) on
//! three SAEs: the tiny model's random one (the contract's layout), and converted
//! ViT-Prisma-style and attributing-clip-style checkpoints, each computed by its source's
//! own forward pass.

use clipshift_sae::{Head, Lens, Order, Sae, faithfulness, restore_counts};
use serde_json::Value;

use crate::root;

fn fixture() -> Value {
    let path = root().join("crates/sae/tests/fixtures/attribution.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Every value within 1e-5 of the reference, relative to the largest reference value.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs PyTorch {w} (scale {scale})");
    }
}

fn head() -> Head {
    let spec = clipshift_encode::ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    Head::of_model(&spec).unwrap()
}

#[test]
fn codes_gradients_and_curves_equal_pytorch_autograd() {
    let fixture = fixture();
    let head = head();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let sae = Sae::load(&root().join(case["sae"].as_str().unwrap())).unwrap();
        let lens = Lens::new(&head, &sae).unwrap();
        let counts = restore_counts(sae.k);
        assert_eq!(
            counts,
            case["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as usize).collect::<Vec<_>>()
        );
        for (p, pair) in case["pairs"].as_array().unwrap().iter().enumerate() {
            let what = |s: &str| format!("{name} pair {p}: {s}");
            let h: Vec<f32> = [floats(&pair["h_original"]), floats(&pair["h_augmented"])]
                .concat()
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let codes = sae.encode(&h, 2).unwrap();
            let states = lens.states(&h, 2).unwrap();
            for (code, key) in codes.iter().zip(["z_original", "z_augmented"]) {
                let latents: Vec<u32> =
                    pair[key]["latents"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
                assert_eq!(code.latents, latents, "{}", what(key));
                let values: Vec<f64> = code.values.iter().map(|&v| f64::from(v)).collect();
                assert_close(&what(key), &values, &floats(&pair[key]["values"]));
            }
            let attribution = lens.attribute(&sae, &states[0], &codes[0], &states[1], &codes[1]);
            let want = pair["latents"].as_array().unwrap();
            let got_latents: Vec<u32> = attribution.iter().map(|a| a.latent).collect();
            let want_latents: Vec<u32> = want.iter().map(|l| l["latent"].as_u64().unwrap() as u32).collect();
            assert_eq!(got_latents, want_latents, "{}", what("union of active latents"));
            let column = |key: &str| want.iter().map(|l| l[key].as_f64().unwrap()).collect::<Vec<_>>();
            assert_close(
                &what("gradient"),
                &attribution.iter().map(|a| a.gradient).collect::<Vec<_>>(),
                &column("gradient"),
            );
            assert_close(
                &what("patch"),
                &attribution.iter().map(|a| a.patch).collect::<Vec<_>>(),
                &column("patch_attribution"),
            );
            assert_close(
                &what("act_x_grad"),
                &attribution.iter().map(|a| a.act_x_grad).collect::<Vec<_>>(),
                &column("act_x_grad"),
            );
            assert_close(
                &what("logit_lens"),
                &attribution.iter().map(|a| a.logit_lens).collect::<Vec<_>>(),
                &column("logit_lens"),
            );
            assert_close(&what("energy"), &attribution.iter().map(|a| a.energy).collect::<Vec<_>>(), &column("energy"));

            let mut rng = clipshift_augment::Rng::keyed(0, p as u64, name);
            let rows = faithfulness(&lens, &sae, &states[0], &states[1], &codes[1], &attribution, &counts, &mut rng);
            for order in Order::ALL {
                let curve: Vec<f64> = rows.iter().filter(|r| r.0 == order).map(|r| r.2).collect();
                // Restoring nothing is the variant's own cosine; restoring everything does
                // not depend on the order.
                assert_close(&what("y(z_a)"), &curve[..1], &[pair["cosine"].as_f64().unwrap()]);
                let all_first = rows.iter().find(|r| r.0 == Order::PatchAttribution && r.1 == 2 * sae.k).unwrap().2;
                assert_close(&what("all restored"), &curve[curve.len() - 1..], &[all_first]);
                if order != Order::Random {
                    assert_close(&what(order.as_str()), &curve, &floats(&pair["curves"][order.as_str()]));
                }
            }
        }
    }
}

#[test]
fn head_maps_the_last_state_to_the_embedding() {
    // The exported head applied to the graph's last class-token state is its image_embeds.
    let spec = clipshift_encode::ModelSpec::load(&root().join("models/tiny-clip")).unwrap();
    let head = head();
    let sae = Sae::load(&root().join("models/tiny-clip/sae-random.safetensors")).unwrap();
    let lens = Lens::new(&head, &sae).unwrap();
    let mut encoder = clipshift_encode::Encoder::new(spec.clone(), &Default::default()).unwrap();
    let pixels: Vec<f32> = (0..3 * 224 * 224).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let out = encoder.encode(&pixels, 1).unwrap();
    let layers = spec.num_layers.unwrap() + 1;
    let d = spec.hidden_size.unwrap();
    let states = out.layer_cls_states.expect("the tiny model exports layer states");
    let last = &states[(layers - 1) * d..layers * d];
    let state = &lens.states(last, 1).unwrap()[0];
    let want: Vec<f64> = out.embeddings[..spec.embedding_dim].iter().map(|&v| f64::from(v)).collect();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (g, w) in state.e.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4 * scale, "{g} vs {w}");
    }
}

/// An int8 or float16 copy's sidecar (another `onnx` and sha256) shares the float32
/// model's head when its `head` section names that model, and only then.
#[test]
fn a_copy_of_the_model_shares_its_head_only_when_its_sidecar_names_the_source() {
    let tiny = root().join("models/tiny-clip");
    let mut sidecar: Value = serde_json::from_str(&std::fs::read_to_string(tiny.join("model.json")).unwrap()).unwrap();
    let source = sidecar["sha256"].as_str().unwrap().to_string();
    sidecar["onnx"] = "model.fp16.onnx".into();
    sidecar["sha256"] = "0".repeat(64).into();
    let dir = std::env::temp_dir().join(format!("clipshift-head-of-a-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(tiny.join("head.safetensors"), dir.join("head.safetensors")).unwrap();
    let load = |sidecar: &Value| {
        std::fs::write(dir.join("model.fp16.json"), sidecar.to_string()).unwrap();
        Head::of_model(&clipshift_encode::ModelSpec::load(&dir.join("model.fp16.json")).unwrap())
    };
    let err = load(&sidecar).expect_err("a head that names another model was accepted").to_string();
    assert!(err.contains("belongs to model") && err.contains(&source), "{err}");
    sidecar["head"]["model_sha256"] = source.into();
    let shared = load(&sidecar).expect("the copy's sidecar names the head's model");
    let own = head();
    assert_eq!((shared.gamma, shared.beta, shared.proj), (own.gamma, own.beta, own.proj), "the same file");
    std::fs::remove_dir_all(&dir).unwrap();
}
