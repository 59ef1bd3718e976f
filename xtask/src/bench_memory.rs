//! `cargo xtask bench memory` and `cargo xtask bench scale`: peak resident memory, wall
//! time and rows per second of each stage against the number of images, to show that
//! the streaming stages stay flat as a run grows. `scale` is the paper's 13,312 images
//! against 1,664 (an eighth).
//!
//! The images are distinct (each a sample image, or an earlier generated one, under its
//! own Gaussian noise draw, made with `clipshift-augment apply`), so nothing is
//! deduplicated; every size is a fresh run directory processed by the stage binaries
//! with the tiny model, each stage under GNU time (`/usr/bin/time -f %M`, the child's
//! peak RSS).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{build_stages, run, runtime};

const STAGES: [&str; 4] = ["augment", "encode", "metrics", "report"];

pub(crate) fn bench_memory(root: &Path, args: &[String], default_sizes: &[usize]) -> Result<()> {
    let sizes = parse_sizes(args, default_sizes)?;
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("the memory benchmark needs GNU time at /usr/bin/time (Debian: apt install time)");
    }
    let ort = runtime::ensure(root, false)?;
    let bins = build_stages(root)?;
    let out = root.join("target/bench-memory");
    let largest = *sizes.iter().max().context("no sizes")?;
    let data = make_images(root, &bins, &out.join("data"), largest)?;

    let mut peaks: Vec<[f64; STAGES.len()]> = Vec::new();
    let mut seconds: Vec<[f64; STAGES.len()]> = Vec::new();
    let mut rows: Vec<[usize; STAGES.len()]> = Vec::new();
    for &n in &sizes {
        let run_dir = out.join(format!("run-{n}"));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
        }
        let run_arg = run_dir.to_string_lossy().to_string();
        let mut row = [0.0; STAGES.len()];
        let mut time_row = [0.0; STAGES.len()];
        for (s, stage) in STAGES.into_iter().enumerate() {
            let mut stage_args = vec!["--run".to_string(), run_arg.clone()];
            if stage == "augment" {
                stage_args.extend(["--data".into(), data.to_string_lossy().into(), "--limit".into(), n.to_string()]);
            }
            let report = out.join(format!("peak-{stage}-{n}.txt"));
            eprintln!("== {stage}, {n} images");
            let start = std::time::Instant::now();
            run(Command::new(time)
                .args(["-f", "%M", "-o"])
                .arg(&report)
                .arg(bins.join(format!("clipshift-{stage}")))
                .args(&stage_args)
                .env("ORT_DYLIB_PATH", &ort)
                .env("RUST_LOG", "warn"))?;
            time_row[s] = start.elapsed().as_secs_f64();
            let text = std::fs::read_to_string(&report)?;
            let kib: f64 = text
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .with_context(|| format!("no peak RSS in {}: {text}", report.display()))?;
            row[s] = kib / 1024.0;
        }
        peaks.push(row);
        seconds.push(time_row);
        rows.push(table_rows(&bins, &run_dir)?);
    }

    println!("\npeak resident memory (MiB) per stage, tiny model, paper suite, batch 32:\n");
    print!("| stage |");
    sizes.iter().for_each(|n| print!(" {n} images |"));
    println!(" largest / smallest |");
    println!("|---|{}--:|", "--:|".repeat(sizes.len()));
    for (s, stage) in STAGES.iter().enumerate() {
        print!("| {stage} |");
        peaks.iter().for_each(|row| print!(" {:.1} |", row[s]));
        println!(" {:.2}x |", peaks.last().expect("sizes")[s] / peaks[0][s]);
    }
    println!("\nwall time (s) per stage, and the rows it wrote per second:\n");
    print!("| stage |");
    sizes.iter().for_each(|n| print!(" {n} images |"));
    println!();
    println!("|---|{}", "--:|".repeat(sizes.len()));
    for (s, stage) in STAGES.iter().enumerate() {
        print!("| {stage} |");
        for (t, r) in seconds.iter().zip(&rows) {
            print!(" {:.1} s, {:.0} rows/s |", t[s], r[s] as f64 / t[s]);
        }
        println!();
    }
    println!("\nruns under {}", out.display());
    Ok(())
}

/// The rows each stage wrote: images + variants (augment), embeddings, metrics +
/// pairwise, and the report's per-image inputs it read (metrics rows).
fn table_rows(bins: &Path, run: &Path) -> Result<[usize; STAGES.len()]> {
    let count = |table: &str| -> Result<usize> {
        let out = Command::new(bins.join("clipshift-tables")).arg("rows").arg(run.join(table)).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().with_context(|| format!("no row count for {table}: {text}"))
    };
    let (images, variants, embeddings) =
        (count("images.parquet")?, count("augmentations.parquet")?, count("embeddings.parquet")?);
    let (metrics, pairwise) = (count("metrics.parquet")?, count("pairwise.parquet")?);
    Ok([images + variants, embeddings, metrics + pairwise, metrics])
}

/// `--sizes 64,256,1024` (default: `default_sizes`).
fn parse_sizes(args: &[String], default_sizes: &[usize]) -> Result<Vec<usize>> {
    let mut sizes = default_sizes.to_vec();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                let list = it.next().context("--sizes needs a list such as 64,256,1024")?;
                sizes = list
                    .split(',')
                    .map(|s| s.trim().parse().with_context(|| format!("bad size `{s}` in --sizes")))
                    .collect::<Result<_>>()?;
            }
            other => bail!("unknown argument `{other}` (expected --sizes N,N,...)"),
        }
    }
    if sizes.is_empty() || sizes.contains(&0) {
        bail!("--sizes needs positive image counts");
    }
    Ok(sizes)
}

/// `count` distinct 224 x 224 PNGs in `dir` (kept between runs): the first from the
/// sample photographs, the rest from earlier generated ones (small, so fast to decode),
/// each under its own noise draw; one process per core at a time.
pub(crate) fn make_images(root: &Path, bins: &Path, dir: &Path, count: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("data/samples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg"))
        .collect();
    samples.sort();
    if samples.is_empty() {
        bail!("no sample images in data/samples");
    }
    let path = |i: usize| dir.join(format!("img_{i:05}.png"));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut i = 0;
    while i < count {
        // The first round reads the photographs; later ones only images already made.
        let end = if i < samples.len() { samples.len().min(count) } else { (i + workers).min(count) };
        let mut children = Vec::new();
        for j in i..end {
            if path(j).exists() {
                continue;
            }
            let input = if j < samples.len() { samples[j].clone() } else { path(j % samples.len()) };
            children.push(
                Command::new(bins.join("clipshift-augment"))
                    .args(["apply", "--aug", "noise", "--seed", &j.to_string(), "--input"])
                    .arg(input)
                    .arg("--output")
                    .arg(path(j))
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .spawn()?,
            );
        }
        for mut child in children {
            if !child.wait()?.success() {
                bail!("clipshift-augment apply failed while making benchmark images");
            }
        }
        if i / 500 != end / 500 {
            eprintln!("making benchmark images: {end}/{count}");
        }
        i = end;
    }
    Ok(dir.to_path_buf())
}
