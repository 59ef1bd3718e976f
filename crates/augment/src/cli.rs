//! The augment stage's command-line options, shared by `clipshift-augment` and
//! `clipshift-fused` (augment, encode and metrics in one process).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clipshift_console::ResumeArgs;

use crate::Suite;
use crate::stage::AugmentConfig;

/// The images, the suite and how to sample it.
#[derive(clap::Args, Debug, Clone)]
pub struct AugmentArgs {
    /// Folder scanned recursively for jpg, jpeg, png, webp and gif files (any case; links followed, each folder once).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Suite definition (TOML); the paper's nine augmentations by default.
    #[arg(long)]
    pub suite: Option<PathBuf>,
    /// Add the noise floor to the suite: JPEG at quality 95, a one-pixel shift and a
    /// resize round trip (floor_jpeg95, floor_shift1, floor_resize75), the changes that
    /// should not matter, against which the report measures every augmentation.
    #[arg(long)]
    pub floor: bool,
    /// Run seed: parameters are sampled per (seed, image, augmentation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the square image every augmentation starts from.
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
    /// Refuse sources with more pixels than this (decompression bombs), as PIL does.
    #[arg(long, default_value_t = crate::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Also write every variant as DIR/images/<image_id>/<augmentation>.png.
    #[arg(long)]
    pub save_images: bool,
    /// Only the first N images (in path order, before sharding).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl AugmentArgs {
    /// The stage's configuration, or `None` without `--data`.
    pub fn config(&self, run_dir: PathBuf, resume: &ResumeArgs) -> Result<Option<AugmentConfig>> {
        let Some(data_dir) = self.data.clone() else { return Ok(None) };
        let suite = load_suite(self.suite.as_deref())?;
        Ok(Some(AugmentConfig {
            suite: if self.floor { suite.with_floor()? } else { suite },
            run_dir,
            data_dir,
            seed: self.seed,
            image_size: self.image_size,
            max_pixels: self.max_pixels,
            save_images: self.save_images,
            limit: self.limit,
            shard: resume.shard,
            fresh: resume.fresh,
        }))
    }
}

/// The suite in `path`, or the paper's.
pub fn load_suite(path: Option<&Path>) -> Result<Suite> {
    match path {
        Some(p) => Suite::load(p).with_context(|| format!("loading suite {}", p.display())),
        None => Ok(Suite::paper()),
    }
}
