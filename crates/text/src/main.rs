//! `clipshift-text`: the text stage.

use std::path::PathBuf;

use clap::Parser;
use clipshift_encode::{Device, SessionConfig};
use clipshift_text::DEFAULT_TEMPLATE;
use clipshift_text::stage::{TextConfig, run};

/// Compare every image embedding of a run with text: zero-shot labels, keyword prompts,
/// captions (needs a model exported with its text tower).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory written by the encode stage (every shard of it).
    #[arg(long)]
    run: PathBuf,
    /// Model directory; by default the one that encoded the run (from run.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Zero-shot labels, one class name per line (default: CIFAR-100's 100 classes).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Prompt template with `{}` for the label; repeat to ensemble several.
    #[arg(long = "template", default_values_t = [DEFAULT_TEMPLATE.to_string()])]
    templates: Vec<String>,
    /// Captions file with columns `path` and `caption` (CSV or Parquet); by default
    /// captions.parquet or captions.csv in the data folder, when there is one.
    #[arg(long)]
    captions: Option<PathBuf>,
    /// Prompts per text-tower call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// auto, cpu or cuda (cuda falls back to CPU with a message saying why).
    #[arg(long, default_value = "auto")]
    device: Device,
    /// ONNX Runtime intra-op threads (default, or 0: one per CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    let config = TextConfig {
        run_dir: cli.run.clone(),
        model: cli.model,
        labels: cli.labels,
        templates: cli.templates,
        captions: cli.captions,
        batch: cli.batch,
        session: SessionConfig { device: cli.device, intra_threads: cli.threads, optimization_level: None },
    };
    let result = run(&config).map_err(anyhow::Error::from);
    std::process::exit(clipshift_console::exit_status(result.map(|s| {
        match &s.skipped {
            Some(reason) => println!("text: skipped: {reason}"),
            None => println!(
                "text: {} prompts embedded in {:.2} s; {} zero-shot rows, {} keyword rows, {} caption rows \
                 ({} captioned images), {} errors -> {}",
                s.prompts,
                s.embedding_seconds,
                s.zero_shot_rows,
                s.keyword_rows,
                s.caption_rows,
                s.captioned_images,
                s.errors,
                cli.run.join("zero_shot.parquet").display()
            ),
        }
        s.errors
    })));
}
