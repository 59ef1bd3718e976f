//! `clipshift-report --run DIR`: aggregate a run into tables, figures and an HTML report.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use clipshift_report::{Linkage, ReportConfig};

#[derive(Parser, Debug)]
#[command(
    name = "clipshift-report",
    version,
    about = "Aggregate a clipshift run into tables, figures and report/index.html"
)]
struct Args {
    /// Run directory (holds run.json, metrics.parquet, pairwise.parquet, ...).
    #[arg(long = "run", value_name = "DIR")]
    run: PathBuf,
    /// Linkage criterion for the dendrograms.
    #[arg(long, default_value = "ward", value_parser = ["ward", "average", "complete", "single"])]
    linkage: String,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .init();
    let mut config = ReportConfig::new(&args.run);
    config.linkage = args.linkage.parse::<Linkage>()?;
    let summary = clipshift_report::run(&config)
        .with_context(|| format!("report stage failed for run {}", args.run.display()))?;
    if summary.random_init {
        eprintln!("warning: random-init model; the report's numbers are meaningless");
    }
    println!("{}", summary.index_html.display());
    Ok(())
}
