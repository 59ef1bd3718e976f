//! clipshift-report: the report stage. It reads the tables of a run directory
//! (`metrics.parquet`, `pairwise.parquet`, `embeddings.parquet`,
//! `augmentations.parquet`, `run.json`) with polars and writes the aggregate
//! tables (`summary`, `distance_matrix`, `linkage`, `clusters`), the paired
//! tests, one SVG + PNG + Parquet per figure and a self-contained
//! `report/index.html`. Every table it writes has its schema in
//! `clipshift_tables::schema`; a figure it cannot draw is a row of
//! `errors.parquet`.
//!
//! It owns aggregation, clustering (kodama, laid out like scipy), statistics
//! pinned to numpy/scipy semantics, a small hand-written SVG chart module and
//! rasterisation with resvg and an embedded font. It must not compute
//! per-image metrics, run models or change any input table; a run made with a
//! random-init model is flagged in every figure and in the page.

mod analysis;
mod chart;
mod cluster;
mod config;
mod drift;
mod error;
mod figures;
mod floor;
mod html;
mod io;
mod raster;
mod replay;
mod run_info;
mod stage;
mod stats;

pub use analysis::SummaryRow;
pub use cluster::{Link, Merge, condensed, dendrogram_links, fcluster_distance, leaf_order, linkage, threshold};
pub use config::{Linkage, ReportConfig};
pub use drift::{DRIFT_MAX_IMAGES, DRIFT_PERMUTATIONS, mmd_test, paired_shift_test};
pub use error::ReportError;
pub use stage::{ReportSummary, run};
pub use stats::{
    Wilcoxon, bootstrap_mean_ci, bootstrap_pearson_ci, gaussian_kde, histogram_auto, holm, linspace, pearson, quantile,
    wilcoxon,
};
