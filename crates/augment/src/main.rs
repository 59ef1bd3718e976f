//! `clipshift-augment`: the augment stage, and one-off application of an augmentation.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use clipshift_augment::stage::{AugmentConfig, run};
use clipshift_augment::{Params, Rng, Suite, load_canonical};

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
    /// Folder scanned recursively for jpg, jpeg, png, webp and gif files (any case; links followed, each folder once).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Suite definition (TOML); the paper's nine augmentations by default.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Add the noise floor to the suite: JPEG at quality 95, a one-pixel shift and a
    /// resize round trip (floor_jpeg95, floor_shift1, floor_resize75), the changes that
    /// should not matter, against which the report measures every augmentation.
    #[arg(long)]
    floor: bool,
    /// Run seed: parameters are sampled per (seed, image, augmentation).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side of the square image every augmentation starts from.
    #[arg(long, default_value_t = 224)]
    image_size: u32,
    /// Refuse sources with more pixels than this (decompression bombs), as PIL does.
    #[arg(long, default_value_t = clipshift_augment::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Also write every variant as DIR/images/<image_id>/<augmentation>.png.
    #[arg(long)]
    save_images: bool,
    /// Only the first N images (in path order, before sharding).
    #[arg(long)]
    limit: Option<usize>,
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

fn load_suite(path: Option<&PathBuf>) -> Result<Suite> {
    match path {
        Some(p) => Suite::load(p).with_context(|| format!("loading suite {}", p.display())),
        None => Ok(Suite::paper()),
    }
}

/// Runs the command; returns how many failures it recorded in errors.parquet.
fn real_main(cli: Cli) -> Result<usize> {
    match cli.command {
        Some(Command::Apply { input, aug, params, seed, suite, image_size, output }) => {
            let suite = load_suite(suite.as_ref())?;
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
            let (Some(run_dir), Some(data_dir)) = (args.run, args.data) else {
                bail!("--run DIR and --data DIR are required (see --help)");
            };
            let suite = load_suite(args.suite.as_ref())?;
            let config = AugmentConfig {
                suite: if args.floor { suite.with_floor()? } else { suite },
                run_dir,
                data_dir,
                seed: args.seed,
                image_size: args.image_size,
                max_pixels: args.max_pixels,
                save_images: args.save_images,
                limit: args.limit,
                shard: args.resume.shard,
                fresh: args.resume.fresh,
            };
            let summary = run(&config)?;
            println!(
                "augment{}: {} images, {} variants, {} errors{} -> {}",
                args.resume.shard_label(),
                summary.images,
                summary.variants,
                summary.errors,
                clipshift_console::start_note(summary.start),
                config.run_dir.display()
            );
            Ok(summary.errors)
        }
    }
}
