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
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn main() {
    let args = Args::parse();
    args.verbosity.init_logging();
    std::process::exit(clipshift_console::exit_status(report(&args)));
}

fn report(args: &Args) -> anyhow::Result<usize> {
    let mut config = ReportConfig::new(&args.run);
    config.linkage = args.linkage.parse::<Linkage>()?;
    let summary = clipshift_report::run(&config)
        .with_context(|| format!("report stage failed for run {}", args.run.display()))?;
    println!("{}", summary.index_html.display());
    Ok(summary.n_errors)
}
