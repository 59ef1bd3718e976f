//! `clipshift-fused`: the encode and metrics stages in one process, each variant
//! computed once. The encode stage decodes every source and replays its variants for
//! the model; the same pixels are scored for the metrics stage as they pass
//! (`clipshift_metrics::stage::KnownPixels`), so the metrics stage then reads only the
//! embeddings: no source is decoded and no variant replayed a second time. The tables,
//! `run.json` and errors are those of `clipshift-encode` followed by `clipshift-metrics`
//! (both stages keep their own commits, so either resumes as it does alone).

use std::path::PathBuf;

use clap::Parser;
use clipshift_encode::cli::EncodeArgs;
use clipshift_metrics::stage::{KnownPixels, MetricsConfig};

/// Encode every variant of a run and compare it with its original: embeddings.parquet,
/// then metrics.parquet, pairwise.parquet and layer_shift.parquet, as `clipshift-encode`
/// followed by `clipshift-metrics` write them.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory written by the augment stage.
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    encode: EncodeArgs,
    #[command(flatten)]
    resume: clipshift_console::ResumeArgs,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let encode = cli.encode.config(cli.run.clone(), &cli.resume);
    let metrics = MetricsConfig { run_dir: cli.run.clone(), shard: cli.resume.shard, fresh: cli.resume.fresh };
    let shard = cli.resume.shard_label();
    let known = KnownPixels::default();
    let record = |id: u64, original: &_, variants: &[(&str, &_)]| known.record(id, original, variants);
    let result = clipshift_encode::stage::run_observed(&encode, Some(&record)).map_err(anyhow::Error::from).and_then(
        |encoded| {
            println!("encode{shard}: {}", encoded.line(&cli.run));
            let measured = clipshift_metrics::stage::run_with(&metrics, Some(&known))?;
            println!("metrics{shard}: {}", measured.line(&cli.run));
            Ok(encoded.errors + measured.errors)
        },
    );
    std::process::exit(clipshift_console::exit_status(result));
}
