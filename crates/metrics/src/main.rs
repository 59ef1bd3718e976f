//! `clipshift-metrics`: the metrics stage.

use std::path::PathBuf;

use clap::Parser;
use clipshift_metrics::stage::{MetricsConfig, run};

/// Compare every variant with its original: metrics.parquet and pairwise.parquet.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory written by the augment and encode stages.
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    resume: clipshift_console::ResumeArgs,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let config = MetricsConfig { run_dir: cli.run.clone(), shard: cli.resume.shard, fresh: cli.resume.fresh };
    let result = run(&config).map_err(anyhow::Error::from);
    std::process::exit(clipshift_console::exit_status(result.map(|s| {
        println!("metrics{}: {}", cli.resume.shard_label(), s.line(&cli.run));
        s.errors
    })));
}
