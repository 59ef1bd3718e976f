//! `cargo xtask bench resume`: what a crash costs. The pipeline runs whole on 16
//! photographs with a random-init full-size ViT-B/32; then, for each kill point (default
//! 30% and 60% of the whole run's time), again: killed with SIGKILL there and started
//! again with the same commands. It prints each rerun's time against the whole run's,
//! and checks every resumed run holds the same tables as the whole one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{bench_vit_b32, build_stages, run_stage, runtime};

const STAGES: [&str; 4] = ["augment", "encode", "metrics", "report"];

pub(crate) fn bench_resume(root: &Path, args: &[String]) -> Result<()> {
    let (images, kill_points) = parse_args(args)?;
    let ort = runtime::ensure(root, false)?;
    let model = bench_vit_b32(root)?;
    let bins = build_stages(root)?;
    let out = root.join("target/bench-resume");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let data = sample_photographs(root, &out.join("data"), images)?;
    let command = |stage: &str, run: &Path| {
        let mut cmd = Command::new(bins.join(format!("clipshift-{stage}")));
        cmd.arg("--run").arg(run).env("ORT_DYLIB_PATH", &ort).env("RUST_LOG", "warn");
        match stage {
            "augment" => cmd.arg("--data").arg(&data),
            "encode" => cmd.arg("--model").arg(&model),
            _ => &mut cmd,
        };
        cmd
    };

    eprintln!("== whole run");
    let whole_dir = out.join("whole");
    let mut times = Vec::new();
    for stage in STAGES {
        let start = Instant::now();
        run_stage(&mut command(stage, &whole_dir))?;
        times.push(start.elapsed());
    }
    let whole: Duration = times.iter().sum();

    let mut reruns = Vec::new();
    for (trial, &at) in kill_points.iter().enumerate() {
        eprintln!("== killed at {:.0}% of {:.1} s", at * 100.0, whole.as_secs_f64());
        let killed_dir = out.join(format!("killed-{trial}"));
        let deadline = Instant::now() + whole.mul_f64(at);
        let mut killed_in = None;
        for stage in STAGES {
            let mut child = command(stage, &killed_dir).spawn()?;
            loop {
                if let Some(status) = child.try_wait()? {
                    if !matches!(status.code(), Some(0 | 3)) {
                        bail!("{stage} failed with {status} before the kill");
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    child.kill()?;
                    child.wait()?;
                    killed_in = Some(stage);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if killed_in.is_some() {
                break;
            }
        }
        let killed_in = killed_in.context("the run finished before the kill; use a smaller --at")?;
        eprintln!("== the same commands again");
        let start = Instant::now();
        for stage in STAGES {
            run_stage(&mut command(stage, &killed_dir))?;
        }
        reruns.push((at, killed_in, start.elapsed()));
        let same =
            Command::new(bins.join("clipshift-tables")).arg("compare").arg(&whole_dir).arg(&killed_dir).status()?;
        if !same.success() {
            bail!("the run resumed after a kill at {:.0}% differs from the whole run", at * 100.0);
        }
    }

    println!("\nresume after SIGKILL, {images} photographs, random-init ViT-B/32 ({}):\n", model.display());
    println!("| | seconds | / whole run |");
    println!("|---|--:|--:|");
    for (stage, t) in STAGES.iter().zip(&times) {
        println!("| whole run: {stage} | {:.2} | |", t.as_secs_f64());
    }
    println!("| whole run | {:.2} | 1.00 |", whole.as_secs_f64());
    for (at, stage, rerun) in reruns {
        let (secs, ratio) = (rerun.as_secs_f64(), rerun.as_secs_f64() / whole.as_secs_f64());
        println!("| killed at {:.0}% (during {stage}), the same commands again | {secs:.2} | {ratio:.2} |", at * 100.0);
    }
    println!("\nevery resumed run's tables equal the whole run's; runs under {}", out.display());
    Ok(())
}

/// `--images N` (16) and `--at FRACTION,...` (0.3,0.6).
fn parse_args(args: &[String]) -> Result<(usize, Vec<f64>)> {
    let (mut images, mut at) = (16, vec![0.3, 0.6]);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--images" => images = value.parse().context("--images needs a count")?,
            "--at" => {
                at = value
                    .split(',')
                    .map(|v| v.trim().parse::<f64>().with_context(|| format!("bad fraction `{v}` in --at")))
                    .collect::<Result<_>>()?
            }
            other => bail!("unknown argument `{other}` (expected --images N, --at F,F,...)"),
        }
    }
    if images == 0 || at.is_empty() || at.iter().any(|a| !(0.0..1.0).contains(a)) {
        bail!("--images must be positive and every --at fraction in [0, 1)");
    }
    Ok((images, at))
}
/// The first `n` photographs of data/samples (by name), copied into `dir`.
fn sample_photographs(root: &Path, dir: &Path, n: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("data/samples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| ["jpg", "jpeg", "png", "webp"].contains(&&*e.to_string_lossy())))
        .collect();
    samples.sort();
    if samples.len() < n {
        bail!("data/samples has {} photographs, fewer than {n}", samples.len());
    }
    for sample in &samples[..n] {
        std::fs::copy(sample, dir.join(sample.file_name().context("a file name")?))?;
    }
    Ok(dir.to_path_buf())
}
