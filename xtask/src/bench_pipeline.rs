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
//!
//! It also runs `clipshift-fused` with the committed tiny model on the `--large` images
//! (one ONNX Runtime thread, so none spins): its CPU time per variant is what decoding,
//! augmenting, preprocessing, the pixel metrics and the tables cost, plus the tiny
//! model's own inference, which ONNX Runtime's rate for the tiny model on one thread
//! tells apart; without it, the variants per second one core can feed an accelerator.

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

/// One measured run: seconds per part, total, CPU seconds (user + system), peak RSS in MiB.
struct Measured {
    parts: Vec<(String, f64)>,
    seconds: f64,
    cpu_seconds: f64,
    peak_mib: f64,
}

impl Measured {
    fn part(&self, stage: &str) -> f64 {
        self.parts.iter().find(|p| p.0 == stage).map_or(f64::NAN, |p| p.1)
    }
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
        cpu_seconds: runs.iter().map(|r| r.cpu_seconds).sum::<f64>() / n,
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

/// Runs `cmd` under GNU time: wall seconds, CPU seconds (user + system) and peak RSS in MiB.
fn timed(cmd: &mut Command, report: &Path) -> Result<(f64, f64, f64)> {
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%U %S %M", "-o"])
        .arg(report)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let seconds = start.elapsed().as_secs_f64();
    // Exit status 3: finished, with inputs recorded in errors.parquet.
    if !(status.success() || status.code() == Some(3)) {
        bail!("{cmd:?} failed with {status}");
    }
    let text = std::fs::read_to_string(report)?;
    let numbers: Vec<f64> =
        text.lines().last().map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect()).unwrap_or_default();
    let [user, system, kib] = numbers[..] else {
        bail!("no CPU times and peak RSS in {}: {text}", report.display());
    };
    Ok((seconds, user + system, kib / 1024.0))
}

/// The stage binaries and the ONNX Runtime library they load.
struct Binaries<'a> {
    dir: &'a Path,
    ort: &'a Path,
}

/// The clipshift stages `stages` on the images of `data`, timed one by one, in a run
/// directory under `out`; `threads`: ONNX Runtime's intra-op threads (its default: one
/// per core).
fn clipshift(
    bins: &Binaries<'_>,
    model: &Path,
    (data, images): (&Path, usize),
    out: &Path,
    stages: &[&str],
    threads: Option<usize>,
) -> Result<Measured> {
    // Named after the last stage: run-16-report (the pipeline), run-16-metrics (separate).
    let run_dir = out.join(format!("run-{images}-{}", stages.last().unwrap_or(&"none")));
    std::fs::create_dir_all(out)?;
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    let run_arg = run_dir.to_string_lossy().into_owned();
    let mut measured = Measured { parts: Vec::new(), seconds: 0.0, cpu_seconds: 0.0, peak_mib: 0.0 };
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
        if let (Some(threads), "fused" | "encode") = (threads, stage) {
            args.extend(["--threads".into(), threads.to_string()]);
        }
        eprintln!("== clipshift {stage}, {images} images, model {}", model.display());
        let report = out.join(format!("peak-{stage}-{images}.txt"));
        let (seconds, cpu, peak) = timed(
            Command::new(bins.dir.join(format!("clipshift-{stage}")))
                .args(&args)
                .env("ORT_DYLIB_PATH", bins.ort)
                .env("RUST_LOG", "warn"),
            &report,
        )?;
        measured.parts.push((stage.to_string(), seconds));
        measured.seconds += seconds;
        measured.cpu_seconds += cpu;
        measured.peak_mib = measured.peak_mib.max(peak);
    }
    Ok(measured)
}

/// Everything one run of the benchmark measured.
struct Results {
    small: usize,
    large: usize,
    repeat: usize,
    peer: serde_json::Value,
    peer_run: Measured,
    /// The means of the alternating runs at `small` and `large` images.
    ours: Measured,
    ours_large: Measured,
    /// Augment, encode and metrics as three processes, at `small` images.
    separate: Measured,
    /// `clipshift-fused` with the tiny model at `large` images: the CPU side alone.
    feed: Measured,
    /// ONNX Runtime alone on one thread, seconds per image of the tiny model.
    tiny_ort_seconds: f64,
    gflops: f64,
    gemm_source: String,
    /// ONNX Runtime alone, seconds per image.
    ort_seconds: f64,
}

pub(crate) fn bench_pipeline(root: &Path, args: &[String]) -> Result<()> {
    let results = measure(root, args)?;
    results.print();
    let path = root.join("target/bench-pipeline/results.csv");
    std::fs::write(&path, results.csv())?;
    println!("\nresults: {}", path.display());
    Ok(())
}

fn measure(root: &Path, args: &[String]) -> Result<Results> {
    let (small, large, repeat) = parse_args(args)?;
    if !Path::new("/usr/bin/time").exists() {
        bail!("the pipeline benchmark needs GNU time at /usr/bin/time (Debian: apt install time)");
    }
    let ort = runtime::ensure(root, false)?;
    let bin_dir = build_stages(root)?;
    let bins = Binaries { dir: &bin_dir, ort: &ort };
    let model = bench_vit_b32(root)?;
    let python = python_env(root, "venv-bench-pipeline", &root.join("bench/requirements.txt"))?;
    let out = root.join("target/bench-pipeline");
    std::fs::create_dir_all(&out)?;
    let data_small = photographs(root, &out.join(format!("data-{small}")), small)?;
    let data_large = photographs(root, &out.join(format!("data-{large}")), large)?;
    let read_json = |path: &Path| -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    };

    let gemm_json = out.join("gemm.json");
    eprintln!("== fp32 GEMM rate");
    run(Command::new(&python).arg(root.join("bench/gemm.py")).arg("--out").arg(&gemm_json))?;
    let gemm = read_json(&gemm_json)?;
    let gflops = gemm["gflops"].as_f64().context("gemm.json has no gflops")?;
    // ONNX Runtime's seconds per image for a model alone (batch 32), from Python.
    let ort_rate = |model: &Path, name: &str, threads: Option<usize>| -> Result<f64> {
        let json = out.join(name);
        eprintln!("== ONNX Runtime's inference rate for {} alone", model.display());
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("bench/ort_rate.py")).arg("--model").arg(model).arg("--out").arg(&json);
        if let Some(threads) = threads {
            cmd.args(["--threads", &threads.to_string()]);
        }
        run(&mut cmd)?;
        read_json(&json)?["seconds_per_image"].as_f64().with_context(|| format!("{name} has no seconds_per_image"))
    };
    let ort_seconds = ort_rate(&model, "ort_rate.json", None)?;

    eprintln!("== Python peer (the paper's pipeline structure), {small} images");
    let peer_json = out.join("peer.json");
    let (seconds, cpu_seconds, peak_mib) = timed(
        Command::new(&python)
            .arg(root.join("bench/paper_pipeline.py"))
            .arg("--data")
            .arg(&data_small)
            .args(["--images", &small.to_string(), "--out"])
            .arg(&peer_json),
        &out.join("peak-peer.txt"),
    )?;
    let peer_run = Measured { parts: Vec::new(), seconds, cpu_seconds, peak_mib };

    // The marginal cost is a difference of two runs, and the VM's speed drifts by more
    // than the pipeline's overhead within minutes: the two sizes alternate, `repeat`
    // times, and their means are compared.
    let (mut small_runs, mut large_runs) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        small_runs.push(clipshift(&bins, &model, (&data_small, small), &out, &STAGES, None)?);
        large_runs.push(clipshift(&bins, &model, (&data_large, large), &out, &STAGES, None)?);
    }
    let separate = clipshift(&bins, &model, (&data_small, small), &out, &SEPARATE, None)?;
    // One intra-op thread: with more, ONNX Runtime's threads spin between the tiny
    // model's short runs, CPU time that is not the CPU side's.
    let tiny = root.join("models/tiny-clip");
    let feed = clipshift(&bins, &tiny, (&data_large, large), &out.join("tiny"), &["fused"], Some(1))?;
    let tiny_ort_seconds = ort_rate(&tiny, "ort_rate_tiny.json", Some(1))?;
    Ok(Results {
        small,
        large,
        repeat,
        peer: read_json(&peer_json)?,
        peer_run,
        ours: mean(&small_runs),
        ours_large: mean(&large_runs),
        separate,
        feed,
        tiny_ort_seconds,
        gflops,
        gemm_source: gemm["source"].as_str().unwrap_or("?").to_string(),
        ort_seconds,
    })
}

impl Results {
    /// One ViT-B/32 forward pass at the measured GEMM rate, in seconds.
    fn pass_seconds(&self) -> f64 {
        2.0 * vit_b32_macs() / (self.gflops * 1e9)
    }

    /// Seconds one more source image costs (the two sizes' difference per image).
    fn marginal(&self) -> f64 {
        (self.ours_large.seconds - self.ours.seconds) / (self.large - self.small) as f64
    }

    /// Augment, encode and metrics as three processes, in seconds.
    fn split(&self) -> f64 {
        SEPARATE.iter().map(|stage| self.separate.part(stage)).sum()
    }

    /// CPU seconds per variant of the CPU side alone (the tiny model's run), with and
    /// without the tiny model's own inference.
    fn feed_cpu_per_variant(&self) -> (f64, f64) {
        let with = self.feed.cpu_seconds / (self.large * 10) as f64;
        (with, with - self.tiny_ort_seconds)
    }

    fn print(&self) {
        let (small, large, peer) = (self.small, self.large, &self.peer_run);
        let (ours, pass_seconds, marginal) = (&self.ours, self.pass_seconds(), self.marginal());
        let limit = 10.0 * pass_seconds;
        println!(
            "\n{small} JPEG photographs, random-init ViT-B/32 (fp32, CPU), paper suite (10 variants per image); \
             clipshift: the mean of {} alternating runs at {small} and {large} images:\n",
            self.repeat
        );
        println!("| | seconds | source images/s | peak RSS (MiB) |");
        println!("|---|--:|--:|--:|");
        println!(
            "| paper's pipeline structure (Python, {} forward passes) | {:.1} | {:.3} | {:.0} |",
            self.peer["forward_passes"],
            peer.seconds,
            small as f64 / peer.seconds,
            peer.peak_mib
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
        let (fused, split) = (ours.part("fused"), self.split());
        println!("| augment, encode, metrics as three processes (for comparison) | {split:.1} | | |");
        println!("\nclipshift / peer: {:.2}x faster", peer.seconds / ours.seconds);
        println!(
            "fused augment + encode + metrics {fused:.2} s, as three processes {split:.2} s ({:.2}x)",
            split / fused
        );
        println!(
            "fp32 GEMM rate {:.0} GFLOP/s ({}): one ViT-B/32 forward pass {:.1} ms at that rate",
            self.gflops,
            self.gemm_source,
            pass_seconds * 1e3
        );
        println!(
            "marginal cost of one more image ({large} vs {small} images): {marginal:.3} s = {:.2}x its 10 forward passes at the GEMM rate ({limit:.3} s)",
            marginal / limit
        );
        println!(
            "ONNX Runtime alone: {:.1} ms per image ({:.2} of the GEMM rate); the marginal cost is {:.2}x ten such passes",
            self.ort_seconds * 1e3,
            pass_seconds / self.ort_seconds,
            marginal / (10.0 * self.ort_seconds)
        );
        println!(
            "report stage: {:.2} s at {small} images, {:.2} s at {large}",
            ours.part("report"),
            self.ours_large.part("report")
        );
        let (with, without) = self.feed_cpu_per_variant();
        println!(
            "CPU side alone (clipshift-fused, tiny model, one ONNX Runtime thread, {large} images): {:.2} s, {:.2} CPU s = {:.2} ms of CPU per variant, \
             {:.0} variants per second per core; less the tiny model's inference ({:.2} ms per image, ONNX Runtime alone on one thread): \
             {:.2} ms, {:.0} variants per second per core",
            self.feed.seconds,
            self.feed.cpu_seconds,
            with * 1e3,
            1.0 / with,
            self.tiny_ort_seconds * 1e3,
            without * 1e3,
            1.0 / without
        );
    }

    fn csv(&self) -> String {
        let (small, large) = (self.small, self.large);
        let mut csv = String::from("run,images,part,seconds\n");
        csv.push_str(&format!("peer,{small},total,{:.4}\n", self.peer_run.seconds));
        if let Some(parts) = self.peer["parts"].as_object() {
            for (part, s) in parts {
                csv.push_str(&format!("peer,{small},{part},{:.4}\n", s.as_f64().unwrap_or(f64::NAN)));
            }
        }
        let runs = [
            ("clipshift", &self.ours, small),
            ("clipshift", &self.ours_large, large),
            ("separate", &self.separate, small),
            ("tiny", &self.feed, large),
        ];
        for (name, m, n) in runs {
            csv.push_str(&format!("{name},{n},total,{:.4}\n{name},{n},cpu,{:.4}\n", m.seconds, m.cpu_seconds));
            for (stage, s) in &m.parts {
                csv.push_str(&format!("{name},{n},{stage},{s:.4}\n"));
            }
        }
        csv.push_str(&format!("clipshift,,repeats,{}\n", self.repeat));
        csv.push_str(&format!(
            "machine,,gemm_gflops,{:.2}\nmachine,,forward_pass_at_gemm_rate,{:.5}\n",
            self.gflops,
            self.pass_seconds()
        ));
        csv.push_str(&format!("machine,,forward_pass_onnxruntime,{:.5}\n", self.ort_seconds));
        csv.push_str(&format!("machine,,tiny_forward_pass_onnxruntime_one_thread,{:.6}\n", self.tiny_ort_seconds));
        csv.push_str(&format!(
            "peak_rss_mib,{small},peer,{:.1}\npeak_rss_mib,{small},clipshift,{:.1}\n",
            self.peer_run.peak_mib, self.ours.peak_mib
        ));
        csv
    }
}
