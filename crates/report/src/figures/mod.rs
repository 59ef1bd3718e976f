//! Every figure of the report: an SVG drawn with `chart`, and the table of
//! exactly what it plots. One module per family of figures; this one holds
//! what they share (the figure itself and the inputs they read).

mod attention;
mod cosine;
mod dendrogram;
mod depth;
mod dose;
mod gallery;
mod heatmaps;
mod l2;
mod profiles;
mod sae;
mod sensitivity;
mod text;

use polars::prelude::*;

use crate::analysis::{MetricData, RADAR, SummaryRow};
use crate::chart::{self, colour};
use crate::stats;

pub(crate) use attention::{attention_alignment, attention_overlays};
pub(crate) use cosine::cosine_distribution;
pub(crate) use dendrogram::dendrogram;
pub(crate) use depth::layer_shift;
pub(crate) use dose::dose_response;
pub(crate) use gallery::gallery;
pub(crate) use heatmaps::{heatmap, sample_heatmap};
pub(crate) use l2::{l2_bars, l2_kde};
pub(crate) use profiles::{radar_grid, ranked_profiles};
pub(crate) use sae::sae_figures;
pub(crate) use sensitivity::sensitivity;
pub(crate) use text::{captions, keyword_alignment, keyword_shift_correlation, zero_shot};

/// A raster image placed in a figure; resvg is built without raster-image
/// support, so these are composited onto the PNG after rendering the SVG.
pub(crate) struct Raster {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
    pub(crate) image: clipshift_augment::RgbImage,
}

/// One rendered figure.
pub(crate) struct Figure {
    pub(crate) stem: String,
    pub(crate) title: String,
    pub(crate) caption: String,
    pub(crate) svg: String,
    pub(crate) table: DataFrame,
    pub(crate) rasters: Vec<Raster>,
}

impl Figure {
    pub(crate) fn new(stem: &str, title: &str, caption: String, svg: String, table: DataFrame) -> Self {
        Self { stem: stem.into(), title: title.into(), caption, svg, table, rasters: Vec::new() }
    }
}

/// Inputs shared by the figures.
pub(crate) struct Ctx<'a> {
    pub(crate) data: &'a MetricData,
    pub(crate) summary: &'a [SummaryRow],
    pub(crate) random_init: bool,
    /// The noise floor, when the suite has floor members: a band on every cosine figure.
    pub(crate) floor: Option<&'a crate::floor::NoiseFloor>,
}

impl Ctx<'_> {
    pub(crate) fn colour_of(&self, aug: &str) -> String {
        match self.data.augs.iter().position(|a| a == aug) {
            Some(i) => colour(i),
            None => chart::ORIGINAL_COLOUR.to_owned(),
        }
    }
    fn row(&self, aug: &str, metric: &str) -> Option<&SummaryRow> {
        self.summary.iter().find(|r| r.augmentation == aug && r.metric == metric)
    }
    pub(crate) fn caption(&self, text: String) -> String {
        if self.random_init { format!("RANDOM-INIT MODEL: meaningless numbers. {text}") } else { text }
    }
    /// Augmentations by mean of `metric`, descending when `higher_first`.
    fn sorted_by(&self, metric: &str, higher_first: bool) -> Vec<String> {
        let mut v: Vec<(String, f64)> =
            self.data.augs.iter().filter_map(|a| self.row(a, metric).map(|r| (a.clone(), r.mean))).collect();
        v.sort_by(|x, y| if higher_first { y.1.total_cmp(&x.1) } else { x.1.total_cmp(&y.1) });
        v.into_iter().map(|(a, _)| a).collect()
    }

    /// Overall similarity score per augmentation: mean over the radar metrics
    /// of the min-max normalised mean (1 = least shift among augmentations).
    pub(crate) fn overall_scores(&self) -> Vec<(String, f64)> {
        let metrics: Vec<&str> = RADAR.iter().copied().filter(|m| self.data.metric_index(m).is_some()).collect();
        let mut out: Vec<(String, f64)> = self
            .data
            .augs
            .iter()
            .map(|a| {
                let s: Vec<f64> = metrics.iter().filter_map(|m| self.normalised(a, m)).collect();
                (a.clone(), if s.is_empty() { f64::NAN } else { stats::mean(&s) })
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        out
    }

    /// Mean of `metric` for `aug`, min-max normalised across augmentations and
    /// oriented so that 1 = closest to the original.
    pub(crate) fn normalised(&self, aug: &str, metric: &str) -> Option<f64> {
        let def = self.data.metrics.iter().find(|m| m.name == metric)?;
        let means: Vec<f64> =
            self.summary.iter().filter(|r| r.metric == metric && r.mean.is_finite()).map(|r| r.mean).collect();
        let v = self.row(aug, metric)?.mean;
        if !v.is_finite() {
            return None;
        }
        let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
        Some(if def.higher_is_similar { t } else { 1.0 - t })
    }
}

/// The caption's sentence on the noise-floor band, when the run has a floor.
fn floor_caption(ctx: &Ctx<'_>) -> String {
    match ctx.floor {
        Some(f) => format!(
            " Grey band: the noise floor, the mean over images of the smallest cosine similarity any floor member ({}) gives, with its bootstrap 95% interval: {:.4} [{:.4}, {:.4}].",
            f.members.join(", "),
            f.band.mean,
            f.band.lo,
            f.band.hi
        ),
        None => String::new(),
    }
}

fn label_of(metric: &str) -> &'static str {
    clipshift_tables::schema::METRICS.iter().find(|m| m.name == metric).map(|m| m.label).unwrap_or("metric")
}

fn fig(stem: &str, title: &str, caption: String, svg: String, table: DataFrame) -> Figure {
    Figure::new(stem, title, caption, svg, table)
}
