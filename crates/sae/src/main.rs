//! `clipshift-sae`: which SAE latents each augmentation moves; `clipshift-sae train` fits
//! an SAE on a run's states.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clipshift_encode::{Device, SessionConfig};
use clipshift_sae::stage::{SaeConfig, run, run_states};
use clipshift_sae::train::{TrainConfig, train};
use clipshift_sae::{Activation, SaeError};

/// Encode every variant's last class-token state with a sparse autoencoder, attribute
/// its cosine drop to the latents, test the attribution by restoring latents, and label
/// the latents with text (docs/sae.md). `train` fits an SAE on a run's states.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    stage: StageArgs,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

#[derive(Subcommand)]
enum Command {
    /// Train a TopK SAE on a run's last class-token states as the seed paper's code does
    /// (candle autograd, AdamW, unit-norm decoder; docs/sae.md) and write it in the
    /// layout the stage reads.
    Train(TrainArgs),
}

#[derive(Args)]
struct StageArgs {
    /// Run directory written by the encode stage (every shard of it).
    #[arg(long, required = true)]
    run: Option<PathBuf>,
    /// The SAE: safetensors with W_enc, b_enc, W_dec, b_dec and metadata k
    /// (models/convert_sae.py converts ViT-Prisma's and attributing-clip's).
    #[arg(long, required = true)]
    sae: Option<PathBuf>,
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
    /// ONNX Runtime intra-op threads (default, or 0: one per CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct TrainArgs {
    /// Run directory whose last class-token states to train on (every variant).
    #[arg(long)]
    run: PathBuf,
    /// Where to write the SAE (default: RUN/sae-m<M>-k<K>.safetensors).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Latents m (the seed: 30,000).
    #[arg(long, default_value_t = 30_000)]
    latents: usize,
    /// Active latents k (the seed: 64).
    #[arg(long, default_value_t = 64)]
    k: usize,
    /// `topk` (signed, the seed's) or `topk_relu`.
    #[arg(long, default_value = "topk")]
    activation: String,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of the states held out to measure explained variance.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Train on the originals only, not on every variant.
    #[arg(long)]
    originals_only: bool,
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let result = match cli.command {
        Some(Command::Train(args)) => train_command(args),
        None => stage_command(cli.stage),
    };
    std::process::exit(clipshift_console::exit_status(result));
}

fn stage_command(args: StageArgs) -> anyhow::Result<usize> {
    let run_dir = args.run.expect("required");
    let config = SaeConfig {
        run_dir: run_dir.clone(),
        sae: args.sae.expect("required"),
        model: args.model,
        concepts: args.concepts,
        batch: args.batch,
        session: SessionConfig { device: args.device, intra_threads: args.threads, optimization_level: None },
    };
    let s = run(&config)?;
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
        run_dir.join("component_attribution.parquet").display()
    );
    Ok(0)
}

fn train_command(args: TrainArgs) -> anyhow::Result<usize> {
    let activation = Activation::parse(&args.activation)
        .ok_or_else(|| SaeError::Config(format!("--activation {}: expected topk or topk_relu", args.activation)))?;
    let config = TrainConfig {
        latents: args.latents,
        k: args.k,
        activation,
        lr: args.lr,
        batch: args.batch,
        epochs: args.epochs,
        seed: args.seed,
        holdout: args.holdout,
        ..TrainConfig::seed_defaults()
    };
    let started = std::time::Instant::now();
    let data = run_states(&args.run, args.originals_only)?;
    let n = data.states.len() / data.d;
    tracing::info!(states = n, d = data.d, m = config.latents, k = config.k, "training an SAE");
    let (trainer, summary) = train(&data.states, data.d, &config, |epoch, loss| {
        tracing::info!(epoch = epoch + 1, of = config.epochs, loss, "epoch done");
    })?;
    let model = data.manifest.model.as_ref().expect("checked with the encode section");
    let metadata: HashMap<String, String> = [
        ("trained_by", "clipshift-sae train".to_string()),
        ("source", "last class-token state (layer_cls_states[-1])".into()),
        ("run", args.run.display().to_string()),
        ("model", model.name.clone()),
        ("model_sha256", model.sha256.clone()),
        ("originals_only", args.originals_only.to_string()),
        ("lr", config.lr.to_string()),
        ("batch", config.batch.to_string()),
        ("epochs", config.epochs.to_string()),
        ("seed", config.seed.to_string()),
        ("train_samples", summary.train_samples.to_string()),
        ("holdout_samples", summary.holdout_samples.to_string()),
        ("explained_variance", summary.explained_variance.to_string()),
        ("cosine", summary.cosine.to_string()),
        ("dead_fraction", summary.dead_fraction.to_string()),
        ("final_loss", summary.final_loss.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let out = args.out.unwrap_or_else(|| args.run.join(format!("sae-m{}-k{}.safetensors", config.latents, config.k)));
    trainer.sae(metadata)?.save(&out)?;
    println!(
        "sae train: {} states ({} held out), {} steps in {:.1} s; held-out explained variance {:.4}, cosine {:.4}, \
         dead latents {:.2}% -> {}",
        summary.train_samples + summary.holdout_samples,
        summary.holdout_samples,
        summary.steps,
        started.elapsed().as_secs_f64(),
        summary.explained_variance,
        summary.cosine,
        100.0 * summary.dead_fraction,
        out.display()
    );
    Ok(0)
}
