//! `cargo xtask bench memory`: peak resident memory of each stage against the number of
//! images, to show that the streaming stages stay flat as a run grows.
//!
//! The images are distinct (each a sample image under its own Gaussian noise draw, made
//! with `clipshift-augment apply`), so nothing is deduplicated; every size is a fresh
//! run directory processed by the stage binaries with the tiny model, each stage under
//! GNU time (`/usr/bin/time -f %M`, the child's peak RSS).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{build_stages, run, runtime};

const STAGES: [&str; 4] = ["augment", "encode", "metrics", "report"];

pub(crate) fn bench_memory(root: &Path, args: &[String]) -> Result<()> {
    let sizes = parse_sizes(args)?;
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
    for &n in &sizes {
        let run_dir = out.join(format!("run-{n}"));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
        }
        let run_arg = run_dir.to_string_lossy().to_string();
        let mut row = [0.0; STAGES.len()];
        for (slot, stage) in row.iter_mut().zip(STAGES) {
            let mut stage_args = vec!["--run".to_string(), run_arg.clone()];
            if stage == "augment" {
                stage_args.extend(["--data".into(), data.to_string_lossy().into(), "--limit".into(), n.to_string()]);
            }
            let report = out.join(format!("peak-{stage}-{n}.txt"));
            eprintln!("== {stage}, {n} images");
            run(Command::new(time)
                .args(["-f", "%M", "-o"])
                .arg(&report)
                .arg(bins.join(format!("clipshift-{stage}")))
                .args(&stage_args)
                .env("ORT_DYLIB_PATH", &ort)
                .env("RUST_LOG", "warn"))?;
            let text = std::fs::read_to_string(&report)?;
            let kib: f64 = text
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .with_context(|| format!("no peak RSS in {}: {text}", report.display()))?;
            *slot = kib / 1024.0;
        }
        peaks.push(row);
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
    println!("\nruns under {}", out.display());
    Ok(())
}

/// `--sizes 64,256,1024` (the default).
fn parse_sizes(args: &[String]) -> Result<Vec<usize>> {
    let mut sizes = vec![64, 256, 1024];
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

/// `count` distinct 224 x 224 PNGs in `dir` (kept between runs).
fn make_images(root: &Path, bins: &Path, dir: &Path, count: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("data/samples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg"))
        .collect();
    samples.sort();
    if samples.is_empty() {
        bail!("no sample images in data/samples");
    }
    for i in 0..count {
        let path = dir.join(format!("img_{i:05}.png"));
        if path.exists() {
            continue;
        }
        if i % 100 == 0 {
            eprintln!("making benchmark images: {i}/{count}");
        }
        run(Command::new(bins.join("clipshift-augment"))
            .args(["apply", "--aug", "noise", "--seed", &i.to_string(), "--input"])
            .arg(&samples[i % samples.len()])
            .arg("--output")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()))?;
    }
    Ok(dir.to_path_buf())
}
