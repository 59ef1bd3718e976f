//! `clipshift-encode`: the encode stage.

use std::path::PathBuf;

use clap::Parser;
use clipshift_encode::stage::{EncodeConfig, run};
use clipshift_encode::{Device, ResizePolicy, SessionConfig};

/// Encode every variant of a run with a CLIP-style ONNX model (embeddings.parquet).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory written by the augment stage.
    #[arg(long)]
    run: PathBuf,
    /// Model directory (model.onnx + model.json) or a sidecar such as DIR/model.int8.json;
    /// `tiny` names the committed test model.
    #[arg(long, default_value = "tiny")]
    model: String,
    /// auto, cpu or cuda (cuda falls back to CPU with a message saying why).
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Images per inference call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Override the sidecar's preprocessing: paper or clip.
    #[arg(long, value_parser = parse_policy)]
    policy: Option<ResizePolicy>,
    /// ONNX Runtime intra-op threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Graph optimisation level, 0 (none) to 3 (all).
    #[arg(long)]
    optimization: Option<u8>,
    /// Write every model input tensor as DIR/<image_id>/<augmentation>.npy.
    #[arg(long)]
    dump_pixels: Option<PathBuf>,
    #[command(flatten)]
    resume: clipshift_console::ResumeArgs,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn parse_policy(s: &str) -> Result<ResizePolicy, String> {
    match s {
        "paper" => Ok(ResizePolicy::Paper),
        "clip" => Ok(ResizePolicy::Clip),
        other => Err(format!("unknown policy `{other}` (expected paper or clip)")),
    }
}

/// `tiny` means the committed test model, found from the current directory upwards.
fn resolve_model(name: &str) -> PathBuf {
    if name != "tiny" {
        return PathBuf::from(name);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .map(|dir| dir.join("models/tiny-clip"))
        .find(|dir| dir.join("model.json").exists())
        .unwrap_or_else(|| PathBuf::from("models/tiny-clip"))
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let config = EncodeConfig {
        run_dir: cli.run,
        model_dir: resolve_model(&cli.model),
        policy: cli.policy,
        session: SessionConfig { device: cli.device, intra_threads: cli.threads, optimization_level: cli.optimization },
        batch: cli.batch,
        dump_pixels: cli.dump_pixels,
        shard: cli.resume.shard,
        fresh: cli.resume.fresh,
    };
    let result = run(&config).map_err(anyhow::Error::from);
    std::process::exit(clipshift_console::exit_status(result.map(|summary| {
        println!(
            "encode{}: {} rows with {}{}, {} errors{} -> {}",
            cli.resume.shard_label(),
            summary.rows,
            summary.model,
            summary.provider.map(|p| format!(" on {p}")).unwrap_or_default(),
            summary.errors,
            clipshift_console::start_note(summary.start),
            config.run_dir.join("embeddings.parquet").display()
        );
        summary.errors
    })));
}
