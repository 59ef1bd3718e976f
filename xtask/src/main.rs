//! The clipshift orchestrator and developer tasks.
//!
//! Thin on purpose: it changes to the workspace root, builds the stage binaries once and
//! runs them, so the Parquet files of the run directory are all the stages share. It
//! links neither polars nor ONNX Runtime, and compiles in seconds.

mod bench_inside;
mod bench_memory;
mod bench_pipeline;
mod bench_resume;
mod runtime;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "clipshift pipeline and developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run augment, encode and metrics (in one process, `clipshift-fused`), text, sae (with
    /// `--sae`) and report in order and print the report's path.
    Pipeline(PipelineArgs),
    /// Run the augment stage alone (arguments go to clipshift-augment).
    Augment(StageArgs),
    /// Run the encode stage alone (arguments go to clipshift-encode).
    Encode(StageArgs),
    /// Run the metrics stage alone (arguments go to clipshift-metrics).
    Metrics(StageArgs),
    /// Run augment (with --data), encode and metrics in one process, each source decoded
    /// once and each variant computed once (arguments go to clipshift-fused, which takes
    /// clipshift-augment's and clipshift-encode's).
    Fused(StageArgs),
    /// Run the text stage alone (arguments go to clipshift-text).
    Text(StageArgs),
    /// Run the SAE stage alone, or `train` an SAE (arguments go to clipshift-sae).
    Sae(StageArgs),
    /// Run the report stage alone (arguments go to clipshift-report).
    Report(StageArgs),
    /// Train an SAE on a folder of images: augment and encode them (the paper's suite, as
    /// the seed trains on augmented images), then `clipshift-sae train` on every variant's
    /// last class-token state (arguments after `--` go to it).
    TrainSae(TrainSaeArgs),
    /// Whether two run directories hold the same tables (rows as multisets); exit 1 if not.
    Compare { first: PathBuf, second: PathBuf },
    /// Fetch the ONNX Runtime shared library from the official PyPI wheel into .cache/.
    FetchRuntime {
        /// Use the onnxruntime-gpu wheel (CUDA execution provider).
        #[arg(long)]
        gpu: bool,
        /// Fetch again even if the cache has it.
        #[arg(long)]
        force: bool,
    },
    /// Export a CLIP vision tower to ONNX (arguments go to models/export_clip.py).
    ExportModel(StageArgs),
    /// Provision the runtime and run every test of the workspace.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Formatting, clippy, the one-way dependency graph, then `test`: what CI runs.
    Ci,
    /// Benchmarks: augment, encode or metrics against their Python peers; memory (peak
    /// RSS of every stage against the number of images, `--sizes 64,256,1024`); scale (the
    /// same with wall time and rows/s, 1,664 and 13,312 images); resume (a run killed at
    /// 60% and started again, against a whole run); inside (the text and SAE stages
    /// against encode, full-size ViT-B/32 and SAE, `--images 64`); pipeline (the whole
    /// `cargo xtask pipeline` against the paper's pipeline structure in Python,
    /// `--images 16 --large 48`).
    Bench {
        /// Which benchmark: augment, encode, metrics, memory, scale, resume, inside, pipeline.
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args)]
struct StageArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct TrainSaeArgs {
    /// Folder of images (scanned recursively).
    #[arg(long)]
    data: PathBuf,
    /// Run directory for the encoded states (default: runs/sae-train-<unix time>).
    #[arg(long)]
    run: Option<PathBuf>,
    /// `tiny`, or a model directory (default: an exported real model if any, else tiny).
    #[arg(long)]
    model: Option<String>,
    /// auto, cpu or cuda for encoding.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Arguments for `clipshift-sae train` (--latents, --k, --epochs, --out, ...).
    #[arg(last = true)]
    train: Vec<String>,
}

#[derive(Args)]
struct PipelineArgs {
    /// Folder of images (scanned recursively).
    #[arg(long, default_value = "data/samples")]
    data: PathBuf,
    /// Run directory (default: runs/<unix time>).
    #[arg(long)]
    run: Option<PathBuf>,
    /// `tiny`, or a directory with model.onnx + model.json (default: an exported real model if any, else tiny).
    #[arg(long)]
    model: Option<String>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Suite definition (TOML); the paper's nine augmentations by default.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Add the noise floor beside the suite (JPEG q95, a one-pixel shift, a resize round
    /// trip): the report draws it as a band on every cosine figure and says which
    /// augmentations stay inside it.
    #[arg(long)]
    floor: bool,
    /// Also write every variant as PNG.
    #[arg(long)]
    save_images: bool,
    /// Run only shard K of N (from 0) and skip the report; run the report once every shard finished.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Recompute every stage from scratch instead of resuming.
    #[arg(long)]
    fresh: bool,
    /// A sparse autoencoder (safetensors, docs/sae.md): adds the SAE stage (which latents
    /// each augmentation moves) and its report section.
    #[arg(long, value_name = "FILE")]
    sae: Option<PathBuf>,
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.command {
        Task::Pipeline(args) => pipeline(&root, args),
        Task::Augment(a) => stage(&root, "augment", &a.args, None),
        Task::Encode(a) => stage(&root, "encode", &a.args, Some(&runtime::ensure(&root, false)?)),
        Task::Metrics(a) => stage(&root, "metrics", &a.args, None),
        Task::Fused(a) => stage(&root, "fused", &a.args, Some(&runtime::ensure(&root, false)?)),
        Task::Text(a) => stage(&root, "text", &a.args, Some(&runtime::ensure(&root, false)?)),
        Task::Sae(a) => stage(&root, "sae", &a.args, Some(&runtime::ensure(&root, false)?)),
        Task::Report(a) => stage(&root, "report", &a.args, None),
        Task::TrainSae(args) => train_sae(&root, args),
        Task::Compare { first, second } => {
            let bins = build_stages(&root)?;
            let status =
                Command::new(bins.join("clipshift-tables")).arg("compare").arg(&first).arg(&second).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Task::FetchRuntime { gpu, force } => {
            let lib = runtime::fetch(&root, gpu, force)?;
            println!("ONNX Runtime: {}", lib.display());
            Ok(())
        }
        Task::ExportModel(a) => export_model(&root, &a.args),
        Task::Test { args } => test(&root, &args),
        Task::Ci => ci(&root),
        Task::Bench { what, args } => bench(&root, &what, &args),
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest.parent().context("xtask has no parent directory")?.to_path_buf())
}

/// Runs `cmd`, failing with its command line if it does not succeed.
fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // `cargo run` sets it for the xtask; a build script that watches it (ring's) would
    // otherwise rebuild, with everything above it, whenever builds alternate between the
    // xtask and a plain `cargo` in a shell.
    cmd.env_remove("CARGO_MANIFEST_DIR");
    cmd
}

/// Builds every stage binary and returns their folder. All targets are built, so that
/// features resolve exactly as for `cargo test --workspace` and the pipeline and the tests
/// share one build of every dependency (dev profile) instead of compiling polars twice.
/// Cargo's own progress stays visible: a fresh clone spends minutes here.
fn build_stages(root: &Path) -> Result<PathBuf> {
    run(cargo().args(["build", "--workspace", "--all-targets"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug"))
}

/// The exit status of a stage that finished but recorded failures in errors.parquet
/// (`clipshift_console::EXIT_RECORDED_ERRORS`; the xtask does not link the stage crates).
const EXIT_RECORDED_ERRORS: i32 = 3;

/// Runs a stage binary; `Ok(true)` when it finished but recorded failures.
fn run_stage(cmd: &mut Command) -> Result<bool> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    match status.code() {
        Some(0) => Ok(false),
        Some(EXIT_RECORDED_ERRORS) => Ok(true),
        _ => bail!("{cmd:?} failed with {status}"),
    }
}

fn stage(root: &Path, name: &str, args: &[String], runtime: Option<&Path>) -> Result<()> {
    let mut cmd = Command::new(build_stages(root)?.join(format!("clipshift-{name}")));
    if let Some(lib) = runtime {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    if run_stage(cmd.args(args))? {
        std::process::exit(EXIT_RECORDED_ERRORS);
    }
    Ok(())
}

fn pipeline(root: &Path, args: PipelineArgs) -> Result<()> {
    let ort = runtime::ensure(root, false)?;
    let run_dir = args.run.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{}", unix_seconds())));
    let model = resolve_model(root, args.model.as_deref())?;
    let bins = build_stages(root)?;
    let run_arg = run_dir.to_string_lossy().to_string();

    // Augment, encode and metrics in one process: each source decoded once, each variant
    // computed once.
    let mut fused = vec![
        "--run".to_string(),
        run_arg.clone(),
        "--data".into(),
        args.data.to_string_lossy().into(),
        "--seed".into(),
        args.seed.to_string(),
        "--model".into(),
        model.to_string_lossy().into(),
        "--device".into(),
        args.device.clone(),
        "--batch".into(),
        args.batch.to_string(),
    ];
    if let Some(limit) = args.limit {
        fused.extend(["--limit".into(), limit.to_string()]);
    }
    if let Some(suite) = &args.suite {
        fused.extend(["--suite".into(), suite.to_string_lossy().into()]);
    }
    if args.floor {
        fused.push("--floor".into());
    }
    if args.save_images {
        fused.push("--save-images".into());
    }
    if let Some(shard) = &args.shard {
        fused.extend(["--shard".into(), shard.clone()]);
    }
    if args.fresh {
        fused.push("--fresh".into());
    }
    let plain = vec!["--run".to_string(), run_arg.clone()];
    let sharded = args.shard.as_deref().is_some_and(|s| s.trim() != "0/1");
    let text = vec!["--run".to_string(), run_arg.clone(), "--device".into(), args.device.clone()];
    let sae = args.sae.as_ref().map(|file| {
        let mut sae = text.clone();
        sae.extend(["--sae".into(), file.to_string_lossy().into()]);
        sae
    });
    let mut stages = vec![("fused", &fused)];
    // The text and SAE stages and the report read the whole run: after the last shard.
    if !sharded {
        stages.push(("text", &text));
        if let Some(sae) = &sae {
            stages.push(("sae", sae));
        }
        stages.push(("report", &plain));
    }
    let recorded = run_stages(&bins, &ort, &run_arg, &stages)?;
    if sharded {
        let sae = match &args.sae {
            Some(file) => format!(", `cargo xtask sae -- --run {run_arg} --sae {}`", file.display()),
            None => String::new(),
        };
        println!(
            "shard {} finished in {}; once every shard has, run `cargo xtask text -- --run {run_arg}`{sae} and \
             `cargo xtask report -- --run {run_arg}`",
            args.shard.as_deref().unwrap_or_default(),
            root.join(&run_dir).display()
        );
    } else {
        println!("report: {}", root.join(&run_dir).join("report/index.html").display());
    }
    if !recorded.is_empty() {
        eprintln!(
            "some inputs failed ({} recorded errors): one row each in {}",
            recorded.join(", "),
            root.join(&run_dir).join("errors.parquet").display()
        );
        std::process::exit(EXIT_RECORDED_ERRORS);
    }
    Ok(())
}

/// Runs stage binaries in order on the run `run_arg`, naming the one that failed;
/// returns the stages that finished but recorded failed inputs.
fn run_stages<'a>(bins: &Path, ort: &Path, run_arg: &str, stages: &[(&'a str, &Vec<String>)]) -> Result<Vec<&'a str>> {
    let mut recorded = Vec::new();
    for &(name, stage_args) in stages {
        eprintln!("== {name}");
        let mut cmd = Command::new(bins.join(format!("clipshift-{name}")));
        if run_stage(cmd.env("ORT_DYLIB_PATH", ort).args(stage_args)).with_context(|| {
            format!(
                "stage `{name}` failed; fix the cause and re-run it alone with `cargo xtask {name} --run {run_arg} ...`"
            )
        })? {
            recorded.push(name);
        }
    }
    Ok(recorded)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Augment and encode a folder (resuming like the pipeline), then train on its states.
fn train_sae(root: &Path, args: TrainSaeArgs) -> Result<()> {
    let ort = runtime::ensure(root, false)?;
    let run_dir = args.run.unwrap_or_else(|| PathBuf::from(format!("runs/sae-train-{}", unix_seconds())));
    let model = resolve_model(root, args.model.as_deref())?;
    let bins = build_stages(root)?;
    let run_arg = run_dir.to_string_lossy().into_owned();
    let mut augment = vec!["--run".to_string(), run_arg.clone(), "--data".into(), args.data.to_string_lossy().into()];
    if let Some(limit) = args.limit {
        augment.extend(["--limit".into(), limit.to_string()]);
    }
    let encode = ["--run", &run_arg, "--model", &model.to_string_lossy(), "--device", &args.device].map(String::from);
    let mut train = vec!["train".to_string(), "--run".into(), run_arg.clone()];
    train.extend(args.train);
    run_stages(&bins, &ort, &run_arg, &[("augment", &augment), ("encode", &encode.to_vec()), ("sae", &train)])?;
    Ok(())
}

/// `tiny`, a path, or (when absent) the first exported real model under models/, else tiny.
fn resolve_model(root: &Path, model: Option<&str>) -> Result<PathBuf> {
    let tiny = root.join("models/tiny-clip");
    match model {
        Some("tiny") => Ok(tiny),
        Some(path) => Ok(PathBuf::from(path)),
        None => {
            let mut exported: Vec<PathBuf> = std::fs::read_dir(root.join("models"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|dir| is_real_model(dir))
                .collect();
            exported.sort();
            match exported.into_iter().next() {
                Some(dir) => Ok(dir),
                None => {
                    eprintln!(
                        "warning: no real CLIP model in models/ — using the random-weight tiny model; its results are \
                         meaningless. Export one with `cargo xtask export-model` (needs network once)."
                    );
                    Ok(tiny)
                }
            }
        }
    }
}

fn is_real_model(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("model.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("random_init").and_then(|r| r.as_bool()) == Some(false))
}

/// A Python virtual environment under .cache/ with `requirements` installed (created on
/// demand), and `requirements-no-deps.txt` beside it, when there is one, without their
/// dependencies (a wheel wanted for a data file, such as open_clip_torch for CLIP's BPE
/// vocabulary, whose dependencies include PyTorch).
fn python_env(root: &Path, name: &str, requirements: &Path) -> Result<PathBuf> {
    let venv = root.join(".cache").join(name);
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let no_deps = requirements.with_file_name("requirements-no-deps.txt");
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    let mut wanted = read(requirements)?;
    if no_deps.exists() {
        wanted += &read(&no_deps)?;
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    runtime::require_python()?;
    eprintln!("creating Python environment {} from {}", venv.display(), requirements.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    let pip = || {
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
        cmd
    };
    run(pip().arg("-r").arg(requirements))?;
    if no_deps.exists() {
        run(pip().arg("--no-deps").arg("-r").arg(&no_deps))?;
    }
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

fn export_model(root: &Path, args: &[String]) -> Result<()> {
    let python = python_env(root, "venv-export", &root.join("models/requirements.txt"))?;
    let mut args = args.to_vec();
    if !args.iter().any(|a| a == "--output" || a == "-o" || a.starts_with("--output=")) {
        // A random-init export must never land where the real model is expected.
        let output = match args.iter().position(|a| a == "--random-init") {
            Some(i) => format!("models/random-{}", args.get(i + 1).map(String::as_str).unwrap_or("init")),
            None => "models/clip-vit-base-patch32".to_string(),
        };
        args.extend(["--output".into(), output]);
    }
    run(Command::new(python).arg("models/export_clip.py").args(&args))
}

/// Where the report's browser test finds Chromium (Debian's package).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Provisions what the tests need (ONNX Runtime, the export environment), runs them, and
/// names every check that could not run, with the command that makes it run.
fn test(root: &Path, extra: &[String]) -> Result<()> {
    let lib = runtime::ensure(root, false)?;
    eprintln!("ONNX Runtime: {}", lib.display());
    let export_python = python_env(root, "venv-export", &root.join("models/requirements.txt"))?;
    let query_python = python_env(root, "venv-query", &root.join("tests/requirements.txt"))?;
    build_stages(root)?;
    let mut cmd = cargo();
    cmd.env("ORT_DYLIB_PATH", &lib)
        .env("CLIPSHIFT_EXPORT_PYTHON", &export_python)
        .env("CLIPSHIFT_QUERY_PYTHON", &query_python);
    let mut skipped = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        cmd.env("CLIPSHIFT_SKIP_BROWSER", "1");
        skipped.push(format!(
            "the report's headless-browser check ({CHROMIUM} not found; install it with `apt-get install chromium`)"
        ));
    }
    let result = run(cmd.args(["test", "--workspace"]).args(extra));
    for check in &skipped {
        eprintln!("SKIPPED: {check}");
    }
    result
}

fn ci(root: &Path) -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    check_dependency_graph()?;
    test(root, &[])
}

/// Only encode links ONNX Runtime (text and sae reach it through encode's text tower); only
/// report links polars; xtask links neither; clipshift-simd depends on bytemuck alone.
fn check_dependency_graph() -> Result<()> {
    for (package, forbidden) in [
        ("clipshift-tables", "ort"),
        ("clipshift-tables", "polars"),
        ("clipshift-console", "ort"),
        ("clipshift-console", "polars"),
        ("clipshift-augment", "ort"),
        ("clipshift-augment", "polars"),
        ("clipshift-metrics", "ort"),
        ("clipshift-metrics", "polars"),
        ("clipshift-fused", "polars"),
        ("clipshift-report", "ort"),
        ("clipshift-encode", "polars"),
        ("clipshift-text", "polars"),
        ("clipshift-sae", "polars"),
        ("xtask", "ort"),
        ("xtask", "polars"),
    ] {
        let out = cargo()
            .args(["tree", "--quiet", "-e", "normal", "-p", package, "-i", forbidden])
            .output()
            .context("running cargo tree")?;
        if out.status.success() && !out.stdout.is_empty() {
            bail!("{package} must not depend on {forbidden}:\n{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    // The crate that holds the workspace's one `unsafe` stays a leaf.
    let out = cargo()
        .args(["tree", "--quiet", "-e", "normal", "-p", "clipshift-simd", "--depth", "1", "--prefix", "none"])
        .output()
        .context("running cargo tree")?;
    let tree = String::from_utf8_lossy(&out.stdout);
    let extra: Vec<&str> = tree.lines().skip(1).filter(|l| !l.starts_with("bytemuck ")).collect();
    if !out.status.success() || !extra.is_empty() {
        bail!("clipshift-simd must depend on bytemuck alone, found:\n{}", extra.join("\n"));
    }
    eprintln!("dependency graph: ok");
    Ok(())
}

fn bench(root: &Path, what: &str, args: &[String]) -> Result<()> {
    if what == "augment" {
        return bench_augment(root, args);
    }
    if what == "memory" {
        return bench_memory::bench_memory(root, args, &[64, 256, 1024]);
    }
    if what == "scale" {
        // The paper's 13,312 images against an eighth of them.
        return bench_memory::bench_memory(root, args, &[1664, 13312]);
    }
    if what == "resume" {
        return bench_resume::bench_resume(root, args);
    }
    if what == "inside" {
        return bench_inside::bench_inside(root, args);
    }
    if what == "pipeline" {
        return bench_pipeline::bench_pipeline(root, args);
    }
    let package = match what {
        "augment" | "encode" | "metrics" => format!("clipshift-{what}"),
        other => {
            bail!(
                "unknown benchmark `{other}` (expected augment, encode, metrics, memory, scale, resume, inside or pipeline)"
            )
        }
    };
    let lib = runtime::ensure(root, false)?;
    // The Python peer each benchmark is compared with, run in its own environment.
    let peer = match what {
        "encode" | "metrics" => Some(root.join(format!("crates/{what}/reference/bench_peers.py"))),
        _ => None,
    };
    let mut peer_args = args.to_vec();
    if what == "encode" {
        peer_args.extend(encode_bench_model(root)?);
    }
    if let Some(peer) = peer {
        let requirements = root.join(format!("crates/{what}/reference/requirements.txt"));
        let python = python_env(root, &format!("venv-bench-{what}"), &requirements)?;
        run(Command::new(python).env("ORT_DYLIB_PATH", &lib).arg(&peer).args(&peer_args))?;
    }
    // The dev profile is the one the pipeline runs (dependencies and hot crates at
    // opt-level 3), so the figures describe what users get and no release build is needed.
    run(cargo().env("ORT_DYLIB_PATH", &lib).args(["bench", "--profile", "dev", "-p", &package]))
}

/// albumentations against clipshift on the same 224 x 224 images, one thread each: the
/// Python peer writes the images and its timings into `target/bench-augment/`, then the
/// `vs_albumentations` bench times clipshift the same way and prints one table with both
/// sides and the ratio, and the suite's throughput on 1 and 2 threads. `--quick` runs
/// fewer iterations on both sides.
fn bench_augment(root: &Path, args: &[String]) -> Result<()> {
    let out = root.join("target/bench-augment");
    let requirements = root.join("crates/augment/reference/requirements.txt");
    let python = python_env(root, "venv-bench-augment", &requirements)?;
    run(Command::new(python)
        .arg(root.join("crates/augment/reference/bench_albumentations.py"))
        .arg("--out")
        .arg(&out)
        .args(args))?;
    let mut bench = cargo();
    bench.env("CLIPSHIFT_BENCH_DIR", &out);
    if args.iter().any(|a| a == "--quick") {
        bench.env("CLIPSHIFT_BENCH_QUICK", "1");
    }
    // The dev profile is the one the pipeline runs (the augment crate at opt-level 3).
    run(bench.args(["bench", "--profile", "dev", "-p", "clipshift-augment", "--bench", "vs_albumentations"]))
}

/// The random-init full-size ViT-B/32 (fp32 and int8) the benchmarks time, exported once.
pub(crate) fn bench_vit_b32(root: &Path) -> Result<PathBuf> {
    let model = root.join(".cache/bench-encode/random-vit-b-32");
    // Exported again when the export script changed since (the graph it builds may have).
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stale = match (modified(&model.join("model.int8.json")), modified(&root.join("models/export_clip.py"))) {
        (Some(exported), Some(script)) => exported < script,
        _ => true,
    };
    if stale {
        let output = model.to_string_lossy().into_owned();
        let export = ["--random-init", "vit-b-32", "--seed", "0", "--quantize", "int8", "--output", &output];
        export_model(root, &export.map(String::from))?;
    }
    Ok(model)
}

/// The encode benchmark's model, exported once, as the peer script's arguments. `crates/encode/benches/encode.rs` reads the same paths.
fn encode_bench_model(root: &Path) -> Result<Vec<String>> {
    let model = bench_vit_b32(root)?;
    let out = root.join(".cache/bench-encode/peers.json").to_string_lossy().into_owned();
    Ok(vec!["--model".into(), model.to_string_lossy().into_owned(), "--out".into(), out])
}
