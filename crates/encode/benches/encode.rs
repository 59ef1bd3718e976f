//! clipshift-encode against its Python peers on a random-init ViT-B/32 (method and results: docs/benchmarks.md).
//!
//! `cargo xtask bench encode` exports the model with `models/export_clip.py --random-init
//! vit-b-32 --quantize int8` into `.cache/bench-encode/random-vit-b-32/`, runs
//! `crates/encode/reference/bench_peers.py` (Python onnxruntime, PyTorch, the machine's
//! fp32 GEMM rate) into `.cache/bench-encode/peers.json`, then runs this, which times the
//! Rust encoder on the same batch of the same input and prints the joint table. It also
//! times the int8 export, measures how far its embeddings drift from fp32 on real images
//! (and what that does to the study's headline metric), and times the whole encode stage.
//! Results go to `.cache/bench-encode/encode.json` as well.
//!
//! Run alone (after the xtask has prepared the model):
//! `cargo bench --profile dev -p clipshift-encode --bench encode`.
//! `CLIPSHIFT_BENCH_SECONDS` sets the least timed seconds per measurement (default 20).

#[path = "../tests/it/formula.rs"]
mod formula;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clipshift_augment::stage::{AugmentConfig, sample_variants};
use clipshift_augment::{Suite, image_id, load_canonical};
use clipshift_encode::stage::EncodeConfig;
use clipshift_encode::{Device, Encoder, ModelSpec, Preprocessor, SessionConfig};
use formula::formula_input;
use serde_json::{Value, json};

/// Forward-pass cost of ViT-B/32 at 224 x 224: 2 x 4.4 G
/// multiply-accumulates (the patch embedding, 12 layers of attention and MLP over 50
/// tokens, and the projection), in GFLOP per image.
const VIT_B32_GFLOP: f64 = 8.8;
/// Where `cargo xtask bench encode` puts its model and results, under the workspace root.
const BENCH_DIR: &str = ".cache/bench-encode";
/// Real images for the int8 drift and the stage timing.
const DRIFT_IMAGES: usize = 8;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Seconds per call: two untimed calls, then at least five calls and `min_seconds`.
fn time_calls(mut f: impl FnMut(), min_seconds: f64) -> Vec<f64> {
    f();
    f();
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || start.elapsed().as_secs_f64() < min_seconds {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times
}

fn median(times: &[f64]) -> f64 {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n % 2 == 1 { t[n / 2] } else { 0.5 * (t[n / 2 - 1] + t[n / 2]) }
}

fn cpu_config() -> SessionConfig {
    SessionConfig { device: Device::Cpu, ..SessionConfig::default() }
}

/// Images per second of the encoder on `batch` formula images, and the embeddings.
fn time_encoder(spec: &ModelSpec, batch: usize, seconds: f64) -> (f64, Vec<f32>) {
    let mut encoder = Encoder::new(spec.clone(), &cpu_config()).expect("loading the model");
    let input = formula_input(batch, spec.image_size as usize);
    let embeddings = encoder.encode(&input, batch).expect("inference").embeddings;
    let times = time_calls(
        || {
            encoder.encode(&input, batch).expect("inference");
        },
        seconds,
    );
    (batch as f64 / median(&times), embeddings)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn sample_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = clipshift_augment::scan_images(&root.join("data/samples")).expect("data/samples");
    paths.truncate(DRIFT_IMAGES);
    paths
}

/// Embeddings of every paper-suite variant of a few real images, per model: the int8
/// model's drift from fp32, and the change it makes to cos(original, variant).
fn int8_drift(fp32: &ModelSpec, int8: &ModelSpec, root: &Path) -> Value {
    let suite = Suite::paper();
    let pre = Preprocessor::new(fp32, fp32.resize_policy);
    let mut tensors = Vec::new();
    let mut per_image = Vec::new();
    for path in sample_paths(root) {
        let base = load_canonical(&path, fp32.image_size).expect("decoding a sample");
        let id = image_id(&std::fs::read(&path).expect("reading a sample"));
        let variants = sample_variants(&suite, 0, id, fp32.image_size);
        per_image.push(variants.len());
        for (_, _, params) in variants {
            let mut t = vec![0.0f32; pre.tensor_len()];
            pre.write_tensor(&params.apply(&base).expect("replaying a variant"), &mut t);
            tensors.push(t);
        }
    }
    let embed = |spec: &ModelSpec| -> Vec<Vec<f32>> {
        let mut encoder = Encoder::new(spec.clone(), &cpu_config()).expect("loading the model");
        tensors
            .chunks(16)
            .flat_map(|chunk| {
                let out = encoder.encode(&chunk.concat(), chunk.len()).expect("inference");
                out.embeddings.chunks(out.embedding_dim).map(<[f32]>::to_vec).collect::<Vec<_>>()
            })
            .collect()
    };
    let (a, b) = (embed(fp32), embed(int8));
    let drift: Vec<f64> = a.iter().zip(&b).map(|(x, y)| cosine(x, y)).collect();
    // The headline metric, cos(original, variant), under each model.
    let mut metric_delta = Vec::new();
    let mut start = 0;
    for n in per_image {
        for v in 1..n {
            let (i, j) = (start, start + v);
            metric_delta.push((cosine(&a[i], &a[j]) - cosine(&b[i], &b[j])).abs());
        }
        start += n;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "images": DRIFT_IMAGES,
        "embeddings": drift.len(),
        "cosine_to_fp32_mean": mean(&drift),
        "cosine_to_fp32_min": drift.iter().copied().fold(f64::INFINITY, f64::min),
        "metric_cosine_abs_change_mean": mean(&metric_delta),
        "metric_cosine_abs_change_max": metric_delta.iter().copied().fold(0.0, f64::max),
    })
}

/// The whole encode stage (decode, replay, preprocess, infer, write) on a few real images.
fn time_stage(model_dir: &Path, root: &Path, batch: usize) -> Value {
    let dir = std::env::temp_dir().join(format!("clipshift-bench-encode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("temp dir");
    for path in sample_paths(root) {
        std::fs::copy(&path, data.join(path.file_name().expect("file name"))).expect("copying a sample");
    }
    let run_dir = dir.join("run");
    let augmented = clipshift_augment::stage::run(&AugmentConfig {
        run_dir: run_dir.clone(),
        data_dir: data,
        suite: Suite::paper(),
        seed: 0,
        image_size: 224,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        save_images: false,
        limit: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .expect("augment stage");
    let config = EncodeConfig {
        run_dir,
        model_dir: model_dir.to_path_buf(),
        policy: None,
        session: cpu_config(),
        batch,
        dump_pixels: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    };
    let start = Instant::now();
    let summary = clipshift_encode::stage::run(&config).expect("encode stage");
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(summary.rows, augmented.variants);
    json!({ "variants": summary.rows, "seconds": seconds, "images_per_s": summary.rows as f64 / seconds })
}

/// The 1-minute load average: other work on the machine skews every figure here.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

fn rate(peers: &Value, name: &str) -> Option<f64> {
    peers["peers"][name]["images_per_s"].as_f64()
}

fn main() {
    let root = workspace_root();
    let bench = root.join(BENCH_DIR);
    let model_dir = bench.join("random-vit-b-32");
    if !model_dir.join("model.json").exists() {
        eprintln!("no model in {}: run `cargo xtask bench encode`, which exports it first", model_dir.display());
        return;
    }
    let seconds = std::env::var("CLIPSHIFT_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let peers: Value = std::fs::read_to_string(bench.join("peers.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let spec = ModelSpec::load(&model_dir).expect("loading the model sidecar");
    if peers.is_object() && peers["model_sha256"].as_str() != Some(spec.sha256.as_str()) {
        eprintln!("warning: peers.json was measured on another model file");
    }
    let batch = peers["batch"].as_u64().unwrap_or(32) as usize;
    let load_start = load_average();
    eprintln!("clipshift: timing {} at batch {batch} ...", spec.name);
    let (fp32, fp32_embeds) = time_encoder(&spec, batch, seconds);

    let int8_sidecar = model_dir.join("model.int8.json");
    let int8 = int8_sidecar.exists().then(|| {
        let q = ModelSpec::load(&int8_sidecar).expect("loading the int8 sidecar");
        eprintln!("clipshift: timing {} ...", q.name);
        let (rate, embeds) = time_encoder(&q, batch, seconds);
        let formula_cos = fp32_embeds
            .chunks(spec.embedding_dim)
            .zip(embeds.chunks(spec.embedding_dim))
            .map(|(a, b)| cosine(a, b))
            .fold(f64::INFINITY, f64::min);
        eprintln!("clipshift: int8 drift on {DRIFT_IMAGES} real images x the paper suite ...");
        (rate, formula_cos, int8_drift(&spec, &q, &root))
    });
    eprintln!("clipshift: the encode stage end to end ...");
    let stage = time_stage(&model_dir, &root, batch);

    let load_end = load_average();
    let gemm = peers["gemm_gflops"]["best"].as_f64();
    let efficiency = |ips: f64| gemm.map(|g| ips * VIT_B32_GFLOP / g);
    let torch = rate(&peers, "pytorch");
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    // (name, images/s, fp32?): efficiency is against the fp32 GEMM rate, so fp32 rows only.
    let mut rows: Vec<(&str, Option<f64>, bool)> = vec![
        ("clipshift (Rust, ort)", Some(fp32), true),
        ("Python onnxruntime", rate(&peers, "onnxruntime"), true),
        ("PyTorch (eager)", torch, true),
    ];
    if let Some((q, ..)) = &int8 {
        rows.push(("clipshift int8", Some(*q), false));
        rows.push(("Python onnxruntime int8", rate(&peers, "onnxruntime_int8"), false));
    }
    println!();
    println!(
        "encode: {} at batch {batch}, {} threads, fp32 GEMM {} GFLOP/s ({VIT_B32_GFLOP} GFLOP per image)",
        spec.name,
        peers["threads"].as_u64().map_or("default".to_string(), |t| t.to_string()),
        fmt(gemm, 1)
    );
    println!("| {:<24} | {:>9} | {:>10} | {:>10} |", "", "images/s", "efficiency", "vs PyTorch");
    println!("|{:-<26}|{:->11}|{:->12}|{:->12}|", "", "", "", "");
    for (name, ips, is_fp32) in &rows {
        let ratio = ips.zip(torch).map(|(a, b)| a / b);
        println!(
            "| {name:<24} | {:>9} | {:>10} | {:>10} |",
            fmt(*ips, 2),
            fmt(ips.filter(|_| *is_fp32).and_then(efficiency), 3),
            ratio.map_or("-".into(), |r| format!("{r:.2}x"))
        );
    }
    println!(
        "encode stage end to end ({} variants of {DRIFT_IMAGES} samples, decode + replay + preprocess + infer + write): {:.2} images/s",
        stage["variants"],
        stage["images_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "1-minute load average: peers {} -> {}, clipshift {} -> {} (the figures assume an idle machine)",
        fmt(peers["machine"]["loadavg_start"][0].as_f64(), 2),
        fmt(peers["machine"]["loadavg_end"][0].as_f64(), 2),
        fmt(load_start, 2),
        fmt(load_end, 2)
    );
    if let Some((_, formula_cos, drift)) = &int8 {
        println!(
            "int8 drift: cosine to fp32 mean {:.5}, min {:.5} over {} real variants (min {formula_cos:.5} on the bench batch); \
             |change| of cos(original, variant): mean {:.5}, max {:.5}",
            drift["cosine_to_fp32_mean"].as_f64().unwrap_or(f64::NAN),
            drift["cosine_to_fp32_min"].as_f64().unwrap_or(f64::NAN),
            drift["embeddings"],
            drift["metric_cosine_abs_change_mean"].as_f64().unwrap_or(f64::NAN),
            drift["metric_cosine_abs_change_max"].as_f64().unwrap_or(f64::NAN),
        );
    }
    if !peers.is_object() {
        println!("(no {BENCH_DIR}/peers.json: run `cargo xtask bench encode` for the Python peers and the GEMM rate)");
    }
    let result = json!({
        "model": spec.name,
        "batch": batch,
        "gflop_per_image": VIT_B32_GFLOP,
        "clipshift_images_per_s": fp32,
        "clipshift_efficiency": efficiency(fp32),
        "clipshift_vs_pytorch": torch.map(|t| fp32 / t),
        "int8": int8.as_ref().map(|(q, c, d)| json!({
            "images_per_s": q, "bench_batch_cosine_min": c, "drift": d,
        })),
        "stage": stage,
        "loadavg": [load_start, load_end],
        "peers": peers,
    });
    let out = bench.join("encode.json");
    if let Err(e) = std::fs::write(&out, serde_json::to_string_pretty(&result).expect("json") + "\n") {
        eprintln!("warning: could not write {}: {e}", out.display());
    }
}
