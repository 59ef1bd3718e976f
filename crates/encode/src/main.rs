//! `clipshift-encode`: the encode stage.

use std::path::PathBuf;

use clap::Parser;
use clipshift_encode::cli::EncodeArgs;
use clipshift_encode::stage::run;

/// Encode every variant of a run with a CLIP-style ONNX model (embeddings.parquet).
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
    clipshift_console::map_large_buffers();
    let config = cli.encode.config(cli.run.clone(), &cli.resume);
    let result = run(&config).map_err(anyhow::Error::from);
    std::process::exit(clipshift_console::exit_status(result.map(|summary| {
        println!("encode{}: {}", cli.resume.shard_label(), summary.line(&config.run_dir));
        summary.errors
    })));
}
