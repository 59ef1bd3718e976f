use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::ReportError;

/// Linkage criterion for hierarchical clustering (scipy names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Linkage {
    #[default]
    Ward,
    Average,
    Complete,
    Single,
}

impl Linkage {
    pub const ALL: [Linkage; 4] = [Linkage::Ward, Linkage::Average, Linkage::Complete, Linkage::Single];

    pub fn as_str(self) -> &'static str {
        match self {
            Linkage::Ward => "ward",
            Linkage::Average => "average",
            Linkage::Complete => "complete",
            Linkage::Single => "single",
        }
    }

    /// The name as a sentence starts with it ("Ward").
    pub fn title(self) -> &'static str {
        match self {
            Linkage::Ward => "Ward",
            Linkage::Average => "Average",
            Linkage::Complete => "Complete",
            Linkage::Single => "Single",
        }
    }

    pub(crate) fn kodama(self) -> kodama::Method {
        match self {
            Linkage::Ward => kodama::Method::Ward,
            Linkage::Average => kodama::Method::Average,
            Linkage::Complete => kodama::Method::Complete,
            Linkage::Single => kodama::Method::Single,
        }
    }
}

impl fmt::Display for Linkage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Linkage {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ward" => Ok(Linkage::Ward),
            "average" => Ok(Linkage::Average),
            "complete" => Ok(Linkage::Complete),
            "single" => Ok(Linkage::Single),
            _ => Err(ReportError::UnknownLinkage(s.to_owned())),
        }
    }
}

/// Configuration of the report stage.
#[derive(Clone, Debug)]
pub struct ReportConfig {
    /// The run directory (holds `run.json` and the stage tables).
    pub run_dir: PathBuf,
    /// Linkage criterion for the dendrograms (the paper uses Ward).
    pub linkage: Linkage,
    /// Flat clusters are cut at this fraction of the largest merge distance.
    pub threshold_ratio: f64,
    /// Bootstrap resamples for the confidence interval of each mean.
    pub bootstrap_resamples: usize,
    /// Seed of the bootstrap and of the 50-image sample, so reports are reproducible.
    pub seed: u64,
    /// Render figures that replay pixels (gallery, attention overlays).
    pub replay_images: bool,
}

impl ReportConfig {
    /// A bootstrap seed of its own for each named quantity (FNV-1a of the names under
    /// the report's seed), independent of the order quantities are computed in.
    pub(crate) fn named_seed(&self, parts: &[&str]) -> u64 {
        parts.iter().fold(clipshift_tables::Fnv1a::with_seed(self.seed), |h, p| h.bytes(p.as_bytes()).word(0)).finish()
    }

    /// The percentile bootstrap 95% interval of the mean of `values`, seeded by `parts`.
    pub(crate) fn mean_ci(&self, values: &[f64], parts: &[&str]) -> (f64, f64) {
        crate::stats::bootstrap_mean_ci(values, self.bootstrap_resamples, self.named_seed(parts))
    }

    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: run_dir.into(),
            linkage: Linkage::Ward,
            threshold_ratio: 0.7,
            bootstrap_resamples: 2000,
            seed: 0x5eed_c11b,
            replay_images: true,
        }
    }
}
