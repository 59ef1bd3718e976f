//! `clipshift-fused`: the augment (with `--data`), encode and metrics stages in one
//! process, each source decoded once and each variant computed once. The augment stage
//! hands the canonical image of every source it decodes to the encode stage
//! ([`HeldSources`]), which replays the variants for the model; the same pixels are scored
//! for the metrics stage as they pass (`clipshift_metrics::stage::KnownPixels`), so the
//! metrics stage then reads only the embeddings. The tables, `run.json` and errors are
//! those of `clipshift-augment`, `clipshift-encode` and `clipshift-metrics` run one after
//! the other (each stage keeps its own commits, so each resumes as it does alone).

mod held;

use std::path::PathBuf;

use clap::Parser;
use clipshift_augment::cli::AugmentArgs;
use clipshift_encode::cli::EncodeArgs;
use clipshift_encode::stage::Hooks;
use clipshift_metrics::stage::{KnownPixels, MetricsConfig};

use crate::held::HeldSources;

/// Augment the images of a folder (with --data), encode every variant and compare it with
/// its original: images.parquet and augmentations.parquet, embeddings.parquet, then
/// metrics.parquet, pairwise.parquet and layer_shift.parquet, as `clipshift-augment`,
/// `clipshift-encode` and `clipshift-metrics` write them. Without --data, the run
/// directory must hold a finished augment stage.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run directory (written by the augment stage, or by this process with --data).
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    augment: AugmentArgs,
    /// Memory for the canonical images the augment stage hands to the encode stage, in
    /// MiB (224 x 224 images: about 7,100 per GiB); sources beyond it are decoded again.
    #[arg(long, default_value_t = 2048)]
    hold_mib: usize,
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
    std::process::exit(clipshift_console::exit_status(run(&cli)));
}

/// The three stages; returns how many failures they recorded in errors.parquet.
fn run(cli: &Cli) -> anyhow::Result<usize> {
    let shard = cli.resume.shard_label();
    let mut recorded = 0;
    let held = HeldSources::new(cli.hold_mib.saturating_mul(1 << 20));
    let encode = cli.encode.config(cli.run.clone(), &cli.resume);
    let augment = cli.augment.config(cli.run.clone(), &cli.resume)?;
    let mut encoder = None;
    if let Some(config) = &augment {
        // The model's session opens on another thread once augment decodes its first
        // source (not at all when augment has nothing to do), behind augment's work.
        let (start_opening, opening) = std::sync::mpsc::sync_channel::<()>(1);
        let (summary, opened) = std::thread::scope(|scope| {
            let encode = &encode;
            let opener =
                scope.spawn(move || opening.recv().ok().map(|()| clipshift_encode::stage::open_encoder(encode)));
            let hold = |image_id, canonical| {
                let _ = start_opening.try_send(()); // full or gone after the first: already opening
                held.hold(image_id, canonical)
            };
            let summary = clipshift_augment::stage::run_observed(config, Some(&hold));
            drop(start_opening);
            (summary, opener.join().expect("model opening thread panicked"))
        });
        let summary = summary?;
        println!("augment{shard}: {}", summary.line(&cli.run));
        recorded += summary.errors;
        encoder = opened;
    }

    let known = KnownPixels::default();
    let take = |image_id| held.take(image_id);
    let record = |id: u64, original: &_, variants: &[(&str, &_)]| known.record(id, original, variants);
    let encoded = clipshift_encode::stage::run_with(
        &encode,
        Hooks { held_sources: Some(&take), observer: Some(&record), encoder },
    )?;
    println!("encode{shard}: {}", encoded.line(&cli.run));
    if augment.is_some() {
        println!(
            "sources{shard}: {} decoded once and handed from augment to encode, {} decoded again",
            held.handed_over(),
            encoded.sources_decoded
        );
    }
    drop(held);
    recorded += encoded.errors;

    let metrics = MetricsConfig { run_dir: cli.run.clone(), shard: cli.resume.shard, fresh: cli.resume.fresh };
    let measured = clipshift_metrics::stage::run_with(&metrics, Some(&known))?;
    println!("metrics{shard}: {}", measured.line(&cli.run));
    Ok(recorded + measured.errors)
}
