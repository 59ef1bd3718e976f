//! `cargo xtask bench pipeline`: the whole of `cargo xtask pipeline` against the paper's
//! pipeline structure in Python (`bench/paper_pipeline.py`: albumentations, the Hugging
//! Face processor, PyTorch, attention by extra forward passes), on the same photographs
//! and the same architecture (the full-size random-init ViT-B/32), in one run on one
//! machine, with the fp32 GEMM rate measured in that run.
//!
//! Images: the first `--images` (default 16) of the JPEG photographs in `data/samples`;
//! the marginal cost of one more image comes from a second clipshift run on
//! `--large` (default 48) images, the photographs repeated with a few bytes appended after
//! the end of the JPEG data, so each copy is a distinct image (its own `image_id`) that
//! costs what the photograph costs to decode; clipshift runs at both sizes alternate
//! `--repeat` times (default 2) and their means are compared. It prints wall time, source images per
//! second and peak resident memory of both, their ratio, clipshift's per-stage times (and
//! augment, encode and metrics as three processes against `clipshift-fused`), the marginal cost
//! against ten ViT-B/32 forward passes at the measured GEMM rate and at ONNX Runtime's own
//! rate for the model (`bench/ort_rate.py`), and writes `target/bench-pipeline/results.csv`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{bench_vit_b32, build_stages, python_env, run, runtime};

/// The stage binaries `cargo xtask pipeline` runs for a model with a text tower, in order
/// (`fused`: augment, encode and metrics in one process).
const STAGES: [&str; 3] = ["fused", "text", "report"];
/// The same work stage by stage, for the fused process's saving in the same run.
const SEPARATE: [&str; 3] = ["augment", "encode", "metrics"];

/// Multiply-adds of one ViT-B/32 forward pass at 224 x 224: the patch embedding
/// (49 x 3072 x 768), 12 blocks of 50 tokens (QKV, output and MLP: 12 n d^2; scores and
/// mixing: 2 n^2 d), and the projection (768 x 512).
fn vit_b32_macs() -> f64 {
    let (n, d) = (50.0, 768.0);
    49.0 * 3072.0 * d + 12.0 * (12.0 * n * d * d + 2.0 * n * n * d) + d * 512.0
}

/// One measured run: seconds per part, total, peak RSS in MiB.
struct Measured {
    parts: Vec<(String, f64)>,
    seconds: f64,
    peak_mib: f64,
}

/// The mean of repeated runs of the same work: seconds per part and in total; the
/// highest peak.
fn mean(runs: &[Measured]) -> Measured {
    let n = runs.len() as f64;
    let parts = runs[0]
        .parts
        .iter()
        .enumerate()
        .map(|(i, (stage, _))| (stage.clone(), runs.iter().map(|r| r.parts[i].1).sum::<f64>() / n))
        .collect();
    Measured {
        parts,
        seconds: runs.iter().map(|r| r.seconds).sum::<f64>() / n,
        peak_mib: runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max),
    }
}

/// `--images`, `--large` and `--repeat`.
fn parse_args(args: &[String]) -> Result<(usize, usize, usize)> {
    let (mut small, mut large, mut repeat) = (16, 48, 2);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n: usize = value.parse().ok().filter(|&n| n > 0).with_context(|| format!("{flag} {value}: not a count"))?;
        match flag.as_str() {
            "--images" => small = n,
            "--large" => large = n,
            "--repeat" => repeat = n,
            _ => bail!("usage: cargo xtask bench pipeline [--images 16] [--large 48] [--repeat 2]"),
        }
    }
    if large <= small {
        bail!("--large ({large}) must exceed --images ({small})");
    }
    Ok((small, large, repeat))
}

/// `count` distinct JPEGs from the sample photographs (copies carry trailing bytes).
fn photographs(root: &Path, dir: &Path, count: usize) -> Result<PathBuf> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(root.join("data/samples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    if photos.is_empty() {
        bail!("no JPEG photographs in data/samples");
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for j in 0..count {
        let source = &photos[j % photos.len()];
        let mut bytes = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        if j >= photos.len() {
            // After the end-of-image marker: decoders stop before it, the file's hash changes.
            bytes.extend_from_slice(format!("clipshift-bench-copy-{j}").as_bytes());
        }
        std::fs::write(dir.join(format!("photo_{j:03}.jpg")), bytes)?;
    }
    Ok(dir.to_path_buf())
}

/// Runs `cmd` under GNU time; wall seconds and peak RSS in MiB.
fn timed(cmd: &mut Command, report: &Path) -> Result<(f64, f64)> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    let seconds = start.elapsed().as_secs_f64();
    // Exit status 3: finished, with inputs recorded in errors.parquet.
    if !(status.success() || status.code() == Some(3)) {
        bail!("{cmd:?} failed with {status}");
    }
    let text = std::fs::read_to_string(report)?;
    let kib: f64 = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no peak RSS in {}: {text}", report.display()))?;
    Ok((seconds, kib / 1024.0))
}

fn clipshift(
    bins: &Path,
    ort: &Path,
    model: &Path,
    data: &Path,
    out: &Path,
    images: usize,
    stages: &[&str],
) -> Result<Measured> {
    // Named after the last stage: run-16-report (the pipeline), run-16-metrics (separate).
    let run_dir = out.join(format!("run-{images}-{}", stages.last().unwrap_or(&"none")));
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    let run_arg = run_dir.to_string_lossy().into_owned();
    let mut measured = Measured { parts: Vec::new(), seconds: 0.0, peak_mib: 0.0 };
    for &stage in stages {
        let mut args = vec!["--run".to_string(), run_arg.clone()];
        if matches!(stage, "augment" | "fused") {
            args.extend(["--data".into(), data.to_string_lossy().into()]);
        }
        if matches!(stage, "fused" | "encode") {
            args.extend(["--model".into(), model.to_string_lossy().into()]);
        }
        if matches!(stage, "fused" | "encode" | "text") {
            args.extend(["--device".into(), "cpu".into()]);
        }
        eprintln!("== clipshift {stage}, {images} images");
        let report = out.join(format!("peak-{stage}-{images}.txt"));
        let (seconds, peak) = timed(
            Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&report)
                .arg(bins.join(format!("clipshift-{stage}")))
                .args(&args)
                .env("ORT_DYLIB_PATH", ort)
                .env("RUST_LOG", "warn"),
            &report,
        )?;
        measured.parts.push((stage.to_string(), seconds));
        measured.seconds += seconds;
        measured.peak_mib = measured.peak_mib.max(peak);
    }
    Ok(measured)
}

pub(crate) fn bench_pipeline(root: &Path, args: &[String]) -> Result<()> {
    let (small, large, repeat) = parse_args(args)?;
    if !Path::new("/usr/bin/time").exists() {
        bail!("the pipeline benchmark needs GNU time at /usr/bin/time (Debian: apt install time)");
    }
    let ort = runtime::ensure(root, false)?;
    let bins = build_stages(root)?;
    let model = bench_vit_b32(root)?;
    let python = python_env(root, "venv-bench-pipeline", &root.join("bench/requirements.txt"))?;
    let out = root.join("target/bench-pipeline");
    std::fs::create_dir_all(&out)?;
    let data_small = photographs(root, &out.join(format!("data-{small}")), small)?;
    let data_large = photographs(root, &out.join(format!("data-{large}")), large)?;

    let gemm_json = out.join("gemm.json");
    eprintln!("== fp32 GEMM rate");
    run(Command::new(&python).arg(root.join("bench/gemm.py")).arg("--out").arg(&gemm_json))?;
    let gemm: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&gemm_json)?)?;
    let gflops = gemm["gflops"].as_f64().context("gemm.json has no gflops")?;
    let ort_json = out.join("ort_rate.json");
    eprintln!("== ONNX Runtime's inference rate for the model alone");
    run(Command::new(&python)
        .arg(root.join("bench/ort_rate.py"))
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&ort_json))?;
    let ort_rate: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ort_json)?)?;
    let ort_seconds = ort_rate["seconds_per_image"].as_f64().context("ort_rate.json has no seconds_per_image")?;

    eprintln!("== Python peer (the paper's pipeline structure), {small} images");
    let peer_json = out.join("peer.json");
    let report = out.join("peak-peer.txt");
    let (peer_seconds, peer_peak) = timed(
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&report)
            .arg(&python)
            .arg(root.join("bench/paper_pipeline.py"))
            .arg("--data")
            .arg(&data_small)
            .args(["--images", &small.to_string(), "--out"])
            .arg(&peer_json),
        &report,
    )?;
    let peer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&peer_json)?)?;

    // The marginal cost is a difference of two runs, and the VM's speed drifts by more
    // than the pipeline's overhead within minutes: the two sizes alternate, `repeat`
    // times, and their means are compared.
    let (mut small_runs, mut large_runs) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        small_runs.push(clipshift(&bins, &ort, &model, &data_small, &out, small, &STAGES)?);
        large_runs.push(clipshift(&bins, &ort, &model, &data_large, &out, large, &STAGES)?);
    }
    let (ours, ours_large) = (mean(&small_runs), mean(&large_runs));
    let separate = clipshift(&bins, &ort, &model, &data_small, &out, small, &SEPARATE)?;

    let pass_seconds = 2.0 * vit_b32_macs() / (gflops * 1e9);
    let marginal = (ours_large.seconds - ours.seconds) / (large - small) as f64;
    let limit = 10.0 * pass_seconds;
    println!(
        "\n{small} JPEG photographs, random-init ViT-B/32 (fp32, CPU), paper suite (10 variants per image); \
         clipshift: the mean of {repeat} alternating runs at {small} and {large} images:\n"
    );
    println!("| | seconds | source images/s | peak RSS (MiB) |");
    println!("|---|--:|--:|--:|");
    println!(
        "| paper's pipeline structure (Python, {} forward passes) | {peer_seconds:.1} | {:.3} | {peer_peak:.0} |",
        peer["forward_passes"],
        small as f64 / peer_seconds
    );
    println!(
        "| `cargo xtask pipeline` | {:.1} | {:.3} | {:.0} |",
        ours.seconds,
        small as f64 / ours.seconds,
        ours.peak_mib
    );
    for (stage, s) in &ours.parts {
        println!("| of which {stage} | {s:.1} | | |");
    }
    let part = |m: &Measured, stage: &str| m.parts.iter().find(|p| p.0 == stage).map_or(f64::NAN, |p| p.1);
    let fused = part(&ours, "fused");
    let split = part(&separate, "augment") + part(&separate, "encode") + part(&separate, "metrics");
    println!("| augment, encode, metrics as three processes (for comparison) | {split:.1} | | |");
    println!("\nclipshift / peer: {:.2}x faster", peer_seconds / ours.seconds);
    println!("fused augment + encode + metrics {fused:.2} s, as three processes {split:.2} s ({:.2}x)", split / fused);
    println!(
        "fp32 GEMM rate {gflops:.0} GFLOP/s ({}): one ViT-B/32 forward pass {:.1} ms at that rate",
        gemm["source"].as_str().unwrap_or("?"),
        pass_seconds * 1e3
    );
    println!(
        "marginal cost of one more image ({large} vs {small} images): {:.3} s = {:.2}x its 10 forward passes at the GEMM rate ({limit:.3} s)",
        marginal,
        marginal / limit
    );
    println!(
        "ONNX Runtime alone: {:.1} ms per image ({:.2} of the GEMM rate); the marginal cost is {:.2}x ten such passes",
        ort_seconds * 1e3,
        pass_seconds / ort_seconds,
        marginal / (10.0 * ort_seconds)
    );
    let (report_small, report_large) = (part(&ours, "report"), part(&ours_large, "report"));
    println!("report stage: {report_small:.2} s at {small} images, {report_large:.2} s at {large}");

    let mut csv = String::from("run,images,part,seconds\n");
    csv.push_str(&format!("peer,{small},total,{peer_seconds:.4}\n"));
    if let Some(parts) = peer["parts"].as_object() {
        for (part, s) in parts {
            csv.push_str(&format!("peer,{small},{part},{:.4}\n", s.as_f64().unwrap_or(f64::NAN)));
        }
    }
    for (name, m, n) in [("clipshift", &ours, small), ("clipshift", &ours_large, large), ("separate", &separate, small)]
    {
        csv.push_str(&format!("{name},{n},total,{:.4}\n", m.seconds));
        for (stage, s) in &m.parts {
            csv.push_str(&format!("{name},{n},{stage},{s:.4}\n"));
        }
    }
    csv.push_str(&format!("clipshift,,repeats,{repeat}\n"));
    csv.push_str(&format!("machine,,gemm_gflops,{gflops:.2}\nmachine,,forward_pass_at_gemm_rate,{pass_seconds:.5}\n"));
    csv.push_str(&format!("machine,,forward_pass_onnxruntime,{ort_seconds:.5}\n"));
    csv.push_str(&format!(
        "peak_rss_mib,{small},peer,{peer_peak:.1}\npeak_rss_mib,{small},clipshift,{:.1}\n",
        ours.peak_mib
    ));
    let results = out.join("results.csv");
    std::fs::write(&results, csv)?;
    println!("\nresults: {}", results.display());
    Ok(())
}
