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
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(&MetricsConfig { run_dir: cli.run.clone() }) {
        Ok(s) => println!(
            "metrics: {} images, {} metric rows, {} pairwise rows, {} errors -> {}",
            s.images,
            s.metric_rows,
            s.pairwise_rows,
            s.errors,
            cli.run.join("metrics.parquet").display()
        ),
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            std::process::exit(1);
        }
    }
}
