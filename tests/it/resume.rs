//! Fault injection and shards, through the stage binaries: a stage killed with SIGKILL at
//! a random moment and started again ends with the tables of an uninterrupted run
//! (embeddings bit-identical), without redoing committed work; N shards and one report
//! give the tables of one unsharded run, and the report refuses missing shards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clipshift_tables::{COMMIT_SECONDS_ENV, RunDir, compare_runs, part_files};

use crate::support::{stage_binary, temp_dir, tiny_model};

/// Images in the generated data set: several commits of every stage.
const IMAGES: usize = 150;
const STAGES: [&str; 3] = ["augment", "encode", "metrics"];

/// `IMAGES` small distinct pictures in two folders, plus a file that is not an image.
fn generated_data(dir: &Path) {
    for i in 0..IMAGES {
        let folder = dir.join(if i % 3 == 0 { "a" } else { "b/c" });
        std::fs::create_dir_all(&folder).unwrap();
        let img = image::RgbImage::from_fn(40 + (i % 5) as u32 * 8, 32 + (i % 7) as u32 * 4, |x, y| {
            let v = (x * 31 + y * 17 + i as u32 * 101) ^ (x * y + i as u32);
            image::Rgb([v as u8, (v >> 3) as u8 ^ i as u8, (x * 7 + i as u32) as u8])
        });
        img.save(folder.join(format!("img_{i:03}.png"))).unwrap();
    }
    std::fs::write(dir.join("a/broken.jpg"), b"not a JPEG at all").unwrap();
}

/// The arguments of `stage` on `run` (plus `extra`).
fn stage_command(stage: &str, run: &Path, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = stage_binary(stage);
    cmd.arg("--run").arg(run);
    if matches!(stage, "augment" | "fused") {
        cmd.arg("--data").arg(data).args(["--seed", "3"]);
    }
    if matches!(stage, "encode" | "fused") {
        cmd.arg("--model").arg(tiny_model()).args(["--batch", "8"]);
    }
    cmd.args(extra).env(COMMIT_SECONDS_ENV, "0").stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs a stage to the end; exit 3 (recorded errors) is a success. Returns its stdout.
fn finish(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every stage and the report, uninterrupted; returns each stage's wall time.
fn full_run(run: &Path, data: &Path) -> Vec<Duration> {
    let mut times = Vec::new();
    for stage in STAGES {
        let start = Instant::now();
        finish(stage_command(stage, run, data, &[]));
        times.push(start.elapsed());
    }
    finish(stage_command("report", run, data, &[]));
    times
}

/// A scratch folder with the generated data and an uninterrupted run of it: `(folder,
/// data, run, each stage's time)`.
fn reference_run(name: &str) -> (PathBuf, PathBuf, PathBuf, Vec<Duration>) {
    let root = temp_dir(name);
    let data = root.join("data");
    generated_data(&data);
    let reference = root.join("reference");
    let times = full_run(&reference, &data);
    (root, data, reference, times)
}

fn assert_same_tables(a: &Path, b: &Path, context: &str) {
    let differences = compare_runs(&RunDir::new(a), &RunDir::new(b)).unwrap();
    assert!(
        differences.is_empty(),
        "{context}: the tables differ from the uninterrupted run:\n{}",
        differences.join("\n")
    );
}

/// Kills every stage with SIGKILL at a random moment of its run, starts it again, and
/// checks the finished run equals the uninterrupted one, in five trials.
#[test]
fn a_stage_killed_at_any_moment_resumes_to_the_uninterrupted_tables() {
    let (root, data, reference, times) = reference_run("resume");

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill times drawn with seed {seed}");
    let mut draws = clipshift_augment::Rng::from_state(seed);
    for trial in 0..5 {
        let run = root.join(format!("trial-{trial}"));
        for (stage, time) in STAGES.iter().zip(&times) {
            // Anywhere from before the first commit to after the last one.
            let delay = time.mul_f64(1.2 * draws.uniform());
            let mut child = stage_command(stage, &run, &data, &[]).spawn().unwrap();
            std::thread::sleep(delay);
            child.kill().unwrap();
            child.wait().unwrap();
            finish(stage_command(stage, &run, &data, &[]));
        }
        finish(stage_command("report", &run, &data, &[]));
        assert_same_tables(&reference, &run, &format!("trial {trial} (seed {seed})"));
        std::fs::remove_dir_all(&run).unwrap();
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// `clipshift-fused` (augment, encode and metrics in one process: each source decoded
/// once, its canonical image handed from augment to encode, the metrics' pixels scored as
/// the encode stage computes them) writes the tables and errors of the three stages run
/// one after the other, and, killed at a random moment, resumes to them too.
#[test]
fn the_fused_stages_write_the_stage_by_stage_tables_and_resume() {
    let (root, data, reference, times) = reference_run("fused");
    let fused_time: Duration = times.iter().sum();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill times drawn with seed {seed}");
    let mut draws = clipshift_augment::Rng::from_state(seed);
    for trial in 0..3 {
        let run = root.join(format!("fused-{trial}"));
        if trial > 0 {
            let mut child = stage_command("fused", &run, &data, &[]).spawn().unwrap();
            std::thread::sleep(fused_time.mul_f64(1.2 * draws.uniform()));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let printed = finish(stage_command("fused", &run, &data, &[]));
        assert!(printed.contains("encode: ") && printed.contains("metrics: "), "{printed}");
        if trial == 0 {
            let once = format!("sources: {IMAGES} decoded once and handed from augment to encode, 0 decoded again");
            assert!(printed.contains(&once), "{printed}");
        }
        finish(stage_command("report", &run, &data, &[]));
        let context = if trial == 0 { "whole".to_string() } else { format!("trial {trial} (seed {seed})") };
        assert_same_tables(&reference, &run, &format!("fused, {context}"));
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// pyarrow.dataset reads each table directory, as the README shows, with every row.
fn pyarrow_reads_every_table(run: &Path) {
    let python = std::env::var_os("CLIPSHIFT_QUERY_PYTHON")
        .expect("CLIPSHIFT_QUERY_PYTHON (a Python with pyarrow) is unset: run the tests through `cargo xtask test`");
    let dirs = RunDir::new(run);
    for table in
        [dirs.images(), dirs.augmentations(), dirs.embeddings(), dirs.metrics(), dirs.pairwise(), dirs.layer_shift()]
            .into_iter()
            .chain([dirs.errors()])
    {
        let script = "import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1]).to_table().num_rows)";
        let out = Command::new(&python).args(["-c", script]).arg(&table).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(rows, clipshift_tables::read_table(&table).unwrap().num_rows(), "{}", table.display());
        assert!(rows > 0, "{}", table.display());
    }
}

/// The parts a stage committed, with their modification times.
fn committed(table: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    part_files(table).unwrap().into_iter().map(|p| (p.clone(), p.metadata().unwrap().modified().unwrap())).collect()
}

/// Killed right after its first commits, a stage started again keeps those parts as they
/// are (no committed work is redone) and says it resumed.
#[test]
fn a_resumed_stage_keeps_what_it_committed() {
    let (root, data, reference, _) = reference_run("resume-keep");
    let run = root.join("run");
    let dirs = RunDir::new(&run);
    for (stage, table) in STAGES.iter().zip([dirs.images(), dirs.embeddings(), dirs.metrics()]) {
        let mut child = stage_command(stage, &run, &data, &[]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while part_files(&table).map_or(0, |p| p.len()) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let before = committed(&table);
        assert!(before.len() >= 2, "{stage} committed nothing within a minute");
        let out = finish(stage_command(stage, &run, &data, &[]));
        if before.len() < part_files(&table).unwrap().len() {
            assert!(out.contains("(resumed)"), "{stage}: {out}");
        }
        let after = committed(&table);
        for part in &before {
            assert!(after.contains(part), "{stage} rewrote {}", part.0.display());
        }
        // Started again once finished: nothing to do, nothing rewritten.
        let out = finish(stage_command(stage, &run, &data, &[]));
        assert!(out.contains("nothing to do"), "{stage}: {out}");
        assert_eq!(committed(&table), after);
    }
    finish(stage_command("report", &run, &data, &[]));
    assert_same_tables(&reference, &run, "killed after the first commits");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Three shards written into one run directory and one report give the tables of the
/// unsharded run; the report refuses while a shard is missing, naming it.
#[test]
fn shards_and_one_report_equal_one_unsharded_run() {
    let (root, data, reference, _) = reference_run("shards");
    let run = root.join("run");
    for k in [2, 0, 1] {
        let shard = format!("{k}/3");
        for stage in STAGES {
            let out = finish(stage_command(stage, &run, &data, &["--shard", &shard]));
            assert!(out.contains(&format!("(shard {shard})")), "{out}");
        }
        if k == 0 {
            let out = stage_command("report", &run, &data, &[]).output().unwrap();
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("1 of 3 shards") && err.contains("1/3 (not run)"), "{err}");
        }
    }
    finish(stage_command("report", &run, &data, &[]));
    assert_same_tables(&reference, &run, "3 shards");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let unsharded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["inputs"], unsharded["inputs"], "the merged run.json counts every shard's images");
    pyarrow_reads_every_table(&run);

    // Another shard count replaces the old parts: one unsharded run in the same directory.
    finish(stage_command("augment", &run, &data, &[]));
    let err = stage_command("report", &run, &data, &[]).output().unwrap();
    assert_eq!(err.status.code(), Some(1), "encode and metrics still hold 3-shard parts");
    for stage in ["encode", "metrics", "report"] {
        finish(stage_command(stage, &run, &data, &[]));
    }
    assert_same_tables(&reference, &run, "unsharded over a sharded run");
    std::fs::remove_dir_all(&root).unwrap();
}
