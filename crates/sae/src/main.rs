//! `clipshift-sae`: which SAE latents each augmentation moves.

use std::path::PathBuf;

use clap::Parser;
use clipshift_encode::{Device, SessionConfig};
use clipshift_sae::stage::{SaeConfig, run};

/// Encode every variant's last class-token state with a sparse autoencoder, attribute
/// its cosine drop to the latents, test the attribution by restoring latents, and label
/// the latents with text (docs/sae.md).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory written by the encode stage (every shard of it).
    #[arg(long)]
    run: PathBuf,
    /// The SAE: safetensors with W_enc, b_enc, W_dec, b_dec and metadata k
    /// (models/convert_sae.py converts ViT-Prisma's and attributing-clip's).
    #[arg(long)]
    sae: PathBuf,
    /// Model directory; by default the one that encoded the run (from run.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Concepts to label latents with, one per line (default: ImageNet-1k's 1,000 class
    /// names); the suite's keyword prompts are added.
    #[arg(long)]
    concepts: Option<PathBuf>,
    /// Prompts per text-tower call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// auto, cpu or cuda for the text tower (cuda falls back to CPU with a message saying why).
    #[arg(long, default_value = "auto")]
    device: Device,
    /// ONNX Runtime intra-op threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let config = SaeConfig {
        run_dir: cli.run.clone(),
        sae: cli.sae,
        model: cli.model,
        concepts: cli.concepts,
        batch: cli.batch,
        session: SessionConfig { device: cli.device, intra_threads: cli.threads, optimization_level: None },
    };
    let result = run(&config).map_err(anyhow::Error::from);
    std::process::exit(clipshift_console::exit_status(result.map(|s| {
        let labels = match &s.labelled {
            Ok(n) => format!("{n} latents labelled"),
            Err(reason) => format!("no latent labels: {reason}"),
        };
        println!(
            "sae: {} variants in {:.2} s; {} latent rows, {} attribution rows, {} faithfulness rows; {labels} -> {}",
            s.variants,
            s.seconds,
            s.latent_rows,
            s.attribution_rows,
            s.faithfulness_rows,
            cli.run.join("component_attribution.parquet").display()
        );
        0
    })));
}
