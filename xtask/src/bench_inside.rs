//! `cargo xtask bench inside`: what the text and SAE stages cost against the encode
//! stage, with the full-size random-init ViT-B/32 (vision and text towers) and a random
//! SAE of the seed's size (d 768, m 30,000, k 64), on `--images 64,512` distinct images
//! (each count a fresh run) under the paper's suite. Each stage runs as its own process
//! and is timed whole (start-up, model loading and writing included); the text stage's
//! own prompt-embedding time is reported too (labels, keywords and one caption per image,
//! the sample photographs' captions). Both stages have a fixed cost per run
//! (loading, the SAE through the head, embedding the prompts and concepts) and a cost
//! per variant; the difference between the two sizes gives the cost per variant against
//! encode's. Writes `target/bench-inside/results.csv`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{bench_memory::make_images, bench_vit_b32, build_stages, python_env, run, runtime};

/// `captions.csv` for the benchmark images: image j is made from sample photograph
/// j mod n (`make_images`), so it gets that photograph's caption from
/// `data/samples/captions.csv` with its number appended, so that every caption is
/// distinct and the text stage embeds one per image, as on Conceptual Captions.
fn write_captions(root: &Path, data: &Path, count: usize) -> Result<()> {
    let samples = std::fs::read_to_string(root.join("data/samples/captions.csv"))?;
    let captions: std::collections::HashMap<&str, &str> =
        samples.lines().skip(1).filter_map(|line| line.split_once(',')).collect();
    let mut names: Vec<String> = std::fs::read_dir(root.join("data/samples"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| [".png", ".jpg", ".jpeg"].iter().any(|x| n.ends_with(x)))
        .collect();
    names.sort();
    let mut csv = String::from("path,caption\n");
    for j in 0..count {
        let caption = captions.get(names[j % names.len()].as_str()).context("a sample photograph has no caption")?;
        csv.push_str(&format!("img_{j:05}.png,\"{} Photo {j}.\"\n", caption.trim_matches('"')));
    }
    std::fs::write(data.join("captions.csv"), csv)?;
    Ok(())
}

/// The seed's SAE size on CLIP ViT-B/32's last class-token state.
const SAE_SHAPE: (usize, usize, usize) = (768, 30_000, 64);

pub(crate) fn bench_inside(root: &Path, args: &[String]) -> Result<()> {
    let sizes: Vec<usize> = match args {
        [] => vec![64, 512],
        [flag, list] if flag == "--images" => list
            .split(',')
            .map(|n| n.trim().parse().ok().filter(|&n: &usize| n > 0))
            .collect::<Option<_>>()
            .with_context(|| format!("--images {list}: expected counts such as 64,512"))?,
        _ => bail!("usage: cargo xtask bench inside [--images 64,512]"),
    };
    let ort = runtime::ensure(root, false)?;
    let bins = build_stages(root)?;
    let model = bench_vit_b32(root)?;
    let out = root.join("target/bench-inside");
    let largest = *sizes.iter().max().expect("at least one size");
    let data = make_images(root, &bins, &out.join("data"), largest)?;
    write_captions(root, &data, largest)?;
    let (d, m, k) = SAE_SHAPE;
    let sae = root.join(format!(".cache/bench-inside/sae-random-d{d}-m{m}-k{k}.safetensors"));
    if !sae.exists() {
        std::fs::create_dir_all(sae.parent().expect("has a parent"))?;
        let python = python_env(root, "venv-export", &root.join("models/requirements.txt"))?;
        run(Command::new(python)
            .arg(root.join("models/convert_sae.py"))
            .args(["random", "--d", &d.to_string(), "--m", &m.to_string(), "--k", &k.to_string(), "--output"])
            .arg(&sae))?;
    }
    let mut csv = String::from("images,variants,part,seconds,ratio_to_encode\n");
    let mut measured = Vec::new();
    for &images in &sizes {
        let run_dir = out.join(format!("run-{images}"));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
        }
        let run_arg = run_dir.to_string_lossy().into_owned();
        let stages: [(&str, Vec<String>); 4] = [
            ("augment", vec!["--data".into(), data.to_string_lossy().into(), "--limit".into(), images.to_string()]),
            ("encode", vec!["--model".into(), model.to_string_lossy().into(), "--device".into(), "cpu".into()]),
            ("text", vec!["--device".into(), "cpu".into()]),
            ("sae", vec!["--sae".into(), sae.to_string_lossy().into(), "--device".into(), "cpu".into()]),
        ];
        let mut seconds = Vec::new();
        for (stage, extra) in &stages {
            eprintln!("== {stage}, {images} images");
            let start = Instant::now();
            run(Command::new(bins.join(format!("clipshift-{stage}")))
                .args(["--run", &run_arg])
                .args(extra)
                .env("ORT_DYLIB_PATH", &ort)
                .env("RUST_LOG", "warn"))?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json"))?)?;
        let prompt_seconds = manifest["text"]["embedding_seconds"].as_f64().context("run.json has no text section")?;
        let prompts = manifest["text"]["prompts"].as_u64().unwrap_or(0);
        // The paper's suite: the original and nine augmentations.
        let variants = images as u64 * 10;
        let encode = seconds[1];
        println!(
            "\n{images} images, {variants} variants, random-init ViT-B/32 (fp32, CPU), {prompts} prompts, SAE d {d} m {m} k {k}:\n"
        );
        println!("| | seconds | / encode |");
        println!("|---|--:|--:|");
        let rows = [
            ("encode stage", encode),
            ("text stage (whole)", seconds[2]),
            ("text: embedding the prompts", prompt_seconds),
            ("sae stage (whole)", seconds[3]),
        ];
        for (part, s) in rows {
            println!("| {part} | {s:.2} | {:.1}% |", 100.0 * s / encode);
            csv.push_str(&format!("{images},{variants},{part},{s:.4},{:.5}\n", s / encode));
        }
        measured.push((variants as f64, encode, seconds[2], seconds[3]));
    }
    if let [(v0, e0, t0, s0), .., (v1, e1, t1, s1)] = measured[..]
        && v1 > v0
    {
        let per = |a: f64, b: f64| (b - a) / (v1 - v0) * 1e3;
        let (encode, text, sae) = (per(e0, e1), per(t0, t1), per(s0, s1));
        println!("\nper variant, from the difference between {v0} and {v1} variants (fixed costs cancel):\n");
        println!("| | ms per variant | / encode |");
        println!("|---|--:|--:|");
        for (part, ms) in [("encode stage", encode), ("text stage", text), ("sae stage", sae)] {
            println!("| {part} | {ms:.3} | {:.1}% |", 100.0 * ms / encode);
            csv.push_str(&format!("per-variant,,{part},{:.6},{:.5}\n", ms / 1e3, ms / encode));
        }
    }
    let results = out.join("results.csv");
    std::fs::write(&results, csv)?;
    println!("\nresults: {}", results.display());
    Ok(())
}
