//! `clipshift-augment`: the augment stage, and one-off application of an augmentation.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use clipshift_augment::cli::{AugmentArgs, load_suite};
use clipshift_augment::stage::run;
use clipshift_augment::{Params, Rng, load_canonical};

/// Scan a folder of images and record every augmented variant of each (the augment stage).
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    stage: StageArgs,
    #[command(flatten)]
    verbosity: clipshift_console::Verbosity,
}

#[derive(clap::Args)]
struct StageArgs {
    /// Run directory to write the tables into.
    #[arg(long)]
    run: Option<PathBuf>,
    #[command(flatten)]
    augment: AugmentArgs,
    #[command(flatten)]
    resume: clipshift_console::ResumeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Apply one augmentation to one image, with given or sampled parameters.
    Apply {
        #[arg(long)]
        input: PathBuf,
        /// Suite member name, e.g. `blur`.
        #[arg(long)]
        aug: String,
        /// Parameters as JSON (as in augmentations.parquet); sampled from --seed if absent.
        #[arg(long)]
        params: Option<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        suite: Option<PathBuf>,
        #[arg(long, default_value_t = 224)]
        image_size: u32,
        #[arg(long)]
        output: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    std::process::exit(clipshift_console::exit_status(real_main(cli)));
}

/// Runs the command; returns how many failures it recorded in errors.parquet.
fn real_main(cli: Cli) -> Result<usize> {
    match cli.command {
        Some(Command::Apply { input, aug, params, seed, suite, image_size, output }) => {
            let suite = load_suite(suite.as_deref())?;
            let image = load_canonical(&input, image_size)?;
            let params = match params {
                Some(json) => Params::from_json(&aug, &json)?,
                None if aug == "original" => Params::Identity,
                None => {
                    let member = suite
                        .members()
                        .iter()
                        .find(|m| m.name == aug)
                        .with_context(|| format!("no augmentation named `{aug}` in suite `{}`", suite.name()))?;
                    member.transform.sample(&mut Rng::from_seed(seed), image_size, image_size)
                }
            };
            params.apply(&image)?.save(&output).with_context(|| format!("writing {}", output.display()))?;
            println!("{}", params.to_json());
            Ok(0)
        }
        None => {
            let args = cli.stage;
            let run_dir = args.run.context("--run DIR and --data DIR are required (see --help)")?;
            let Some(config) = args.augment.config(run_dir, &args.resume)? else {
                bail!("--run DIR and --data DIR are required (see --help)");
            };
            let summary = run(&config)?;
            println!("augment{}: {}", args.resume.shard_label(), summary.line(&config.run_dir));
            Ok(summary.errors)
        }
    }
}
