//! The report stage: read the run directory, write the aggregate tables,
//! the figures and `report/index.html`. A figure that cannot be drawn is a
//! row of `errors.parquet` (stage `report`); the rest of the report is written.

use std::path::PathBuf;

use clipshift_tables::{ErrorKind, ErrorLog, RunDir, Shard, SourceImages, read_errors};

use crate::analysis::{self, Clustering, DistanceMatrix, MetricData, PairTest, SummaryRow};
use crate::figures::{self, Ctx, Figure};
use crate::floor::NoiseFloor;
use crate::html;
use crate::io::{figure_path, table_name, write_bytes, write_parquet};
use crate::raster::Rasterizer;
use crate::replay::Pixels;
use crate::run_info::RunInfo;
use crate::{ReportConfig, ReportError};

/// The stage's name in `errors.parquet`.
const STAGE: &str = "report";

/// What the stage produced.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    pub index_html: PathBuf,
    pub tables: Vec<PathBuf>,
    pub figures: Vec<String>,
    pub n_images: usize,
    pub n_augmentations: usize,
    /// Flat clusters of the augmentations at the threshold.
    pub n_clusters: usize,
    pub random_init: bool,
    /// Parts of the report that could not be drawn (rows of `errors.parquet`).
    pub n_errors: usize,
}

pub fn run(config: &ReportConfig) -> Result<ReportSummary, ReportError> {
    let run = RunDir::new(&config.run_dir);
    run.check_contained()?;
    // A run written in shards: every shard must be there and finished; run.json becomes their merge.
    clipshift_tables::merge_shards(&run)?;
    let info = RunInfo::load(&run)?;
    // Every table's schema and values, and that they agree on their images.
    clipshift_tables::validate_run(&run)?;
    if info.model.random_init {
        tracing::warn!("model is random-init: the report's numbers are meaningless");
    }
    let input_errors = count_input_errors(&run);
    let data = MetricData::load(&run, &info.members())?;
    if data.augs.is_empty() {
        return Err(ReportError::table(table_name(&run.metrics()), "no augmentation rows"));
    }
    tracing::info!(images = data.image_ids.len(), augmentations = data.augs.len(), "loaded metrics");

    let agg = Aggregates::compute(&run, &data, &info.floor_members(), config)?;
    let tables = agg.write(&run)?;

    let errors = ErrorLog::new(STAGE);
    let ctx =
        Ctx { data: &data, summary: &agg.summary, random_init: info.model.random_init, floor: agg.floor.as_ref() };
    let figs = draw_and_write_figures(&run, &ctx, &agg, &info, config, &errors)?;
    let mut records = errors.take();
    // Figures are drawn in parallel: rows in a fixed order, whatever finished first.
    records.sort_by(|a, b| {
        (&a.path, a.image_id, &a.augmentation, &a.message).cmp(&(&b.path, b.image_id, &b.augmentation, &b.message))
    });
    let n_errors = records.len();
    clipshift_tables::replace_stage_errors(&run, STAGE, &records)?;

    let links = table_links(&run, &figs, config);
    let cs = [&agg.augmentations, &agg.variants];
    let page = html::Page {
        run: &info,
        data: &data,
        summary: &agg.summary,
        tests: &agg.tests,
        floor: agg.floor.as_ref(),
        clusterings: &cs,
        figures: &figs,
        tables: &links,
        input_errors,
        report_errors: n_errors,
        config,
    };
    let index = run.report_dir().join("index.html");
    write_bytes(&index, html::render(&page).as_bytes())?;

    Ok(ReportSummary {
        index_html: index,
        tables,
        figures: figs.iter().map(|f| f.stem.clone()).collect(),
        n_images: data.image_ids.len(),
        n_augmentations: data.augs.len(),
        n_clusters: agg.augmentations.n_clusters(),
        random_init: info.model.random_init,
        n_errors,
    })
}

/// Rows of `errors.parquet` written by the stages before this one.
fn count_input_errors(run: &RunDir) -> usize {
    match read_errors(&run.errors()) {
        Ok(rows) => rows.iter().filter(|r| r.stage != STAGE).count(),
        Err(e) => {
            tracing::warn!("cannot count the recorded failures: {e}");
            0
        }
    }
}

/// The tables the report computes from the run's.
struct Aggregates {
    summary: Vec<SummaryRow>,
    distances: DistanceMatrix,
    /// Clustering of the suite's augmentations.
    augmentations: Clustering,
    /// Clustering of the augmentations and the original.
    variants: Clustering,
    tests: Vec<PairTest>,
    drift: Vec<crate::drift::DriftRow>,
    /// Present when the suite has floor members.
    floor: Option<NoiseFloor>,
}

impl Aggregates {
    fn compute(
        run: &RunDir,
        data: &MetricData,
        floor_members: &[String],
        config: &ReportConfig,
    ) -> Result<Self, ReportError> {
        let summary = analysis::summarize(run, data, config.bootstrap_resamples, config.seed)?;
        let mut order = vec![clipshift_tables::schema::ORIGINAL.to_owned()];
        order.extend(data.augs.iter().cloned());
        let distances = DistanceMatrix::load(run, &order)?;
        let present = |names: &[String]| -> Vec<String> {
            names.iter().filter(|a| distances.variants.contains(a)).cloned().collect()
        };
        let cluster = |set, labels: Vec<String>| {
            let square = distances.select(&labels);
            Clustering::new(set, labels, &square, config.linkage, config.threshold_ratio)
        };
        let augmentations = cluster("augmentations", present(&data.augs));
        let variants = cluster("variants", present(&order));
        let tests = analysis::pair_tests(data);
        let drift = crate::drift::drift(run, &data.augs, config.seed)?;
        let floor = NoiseFloor::compute(data, floor_members, config);
        Ok(Self { summary, distances, augmentations, variants, tests, drift, floor })
    }

    /// Writes `summary`, `distance_matrix`, `linkage`, `clusters`, `report/wilcoxon`,
    /// `drift` and (with floor members) `noise_floor`, returning their paths.
    fn write(&self, run: &RunDir) -> Result<Vec<PathBuf>, ReportError> {
        let report_dir = run.report_dir();
        std::fs::create_dir_all(&report_dir).map_err(|e| ReportError::io(&report_dir, e))?;
        let cs = [&self.augmentations, &self.variants];
        let mut tables = vec![
            (run.summary(), analysis::summary_frame(&self.summary)?),
            (run.distance_matrix(), self.distances.frame()?),
            (run.linkage(), analysis::linkage_frame(&cs)?),
            (run.clusters(), analysis::clusters_frame(&cs)?),
            (run.wilcoxon(), analysis::pair_tests_frame(&self.tests)?),
            (run.drift(), crate::drift::drift_frame(&self.drift)?),
        ];
        match &self.floor {
            Some(floor) => tables.push((run.noise_floor(), floor.frame()?)),
            // A report of an earlier suite with a floor must not leave its table behind.
            None => match std::fs::remove_file(run.noise_floor()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ReportError::io(run.noise_floor(), e));
                }
                _ => {}
            },
        }
        let mut paths = Vec::new();
        for (path, mut df) in tables {
            write_parquet(&path, &mut df)?;
            paths.push(path);
        }
        Ok(paths)
    }
}

/// One figure (or a family of figures) to draw; run on rayon's pool.
type DrawJob<'a> = Box<dyn FnOnce() -> Vec<(&'static str, Result<Option<Figure>, ReportError>)> + Send + 'a>;

/// Draws every figure and writes each as SVG, PNG and Parquet, in page order. The
/// figures are independent, so they are drawn and rasterised in parallel (the
/// rasterising is most of the report's time). A figure that fails, or cannot be
/// rasterised, is recorded in `errors` and left out; one with nothing to show
/// (`None`) is left out silently.
fn draw_and_write_figures(
    run: &RunDir,
    ctx: &Ctx<'_>,
    agg: &Aggregates,
    info: &RunInfo,
    config: &ReportConfig,
    errors: &ErrorLog,
) -> Result<Vec<Figure>, ReportError> {
    use rayon::prelude::*;

    let c_augs = &agg.augmentations;
    // Most disruptive (lowest overall score) first, as everywhere in the report.
    let scores: Vec<String> = ctx.overall_scores().into_iter().rev().map(|(a, _)| a).collect();
    let leaf: Vec<String> = c_augs.leaf_order.iter().map(|&i| c_augs.labels[i].clone()).collect();
    // Where to find source images for replayed pixels: read once for both pixel figures.
    let sources = config.replay_images.then(|| SourceImages::load(run, Shard::WHOLE)).and_then(|loaded| {
        loaded
            .map_err(|e| {
                let path = table_name(&run.images());
                errors.record(
                    Some(&path),
                    None,
                    None,
                    ErrorKind::Read,
                    format!("pixel figures cannot replay images: {e}"),
                );
            })
            .ok()
    });
    let pixels = Pixels { run, sources: sources.as_ref(), errors };
    let (pixels, scores, leaf) = (&pixels, &scores, &leaf);
    fn one<'a>(
        stem: &'static str,
        draw: impl FnOnce() -> Result<Option<Figure>, ReportError> + Send + 'a,
    ) -> DrawJob<'a> {
        Box::new(move || vec![(stem, draw())])
    }
    let mut jobs: Vec<DrawJob<'_>> = vec![
        one("gallery", move || figures::gallery(ctx, pixels, info.augment.image_size, config)),
        one("attention_overlays", move || figures::attention_overlays(ctx, pixels, config)),
        one("attention_alignment", move || figures::attention_alignment(ctx)),
        one("cosine_distribution", move || figures::cosine_distribution(ctx)),
        one("l2_kde", move || figures::l2_kde(ctx)),
        one("l2_bars", move || figures::l2_bars(ctx)),
        one("dendrogram", move || figures::dendrogram(ctx, c_augs, "dendrogram")),
        one("dendrogram_variants", move || figures::dendrogram(ctx, &agg.variants, "dendrogram_variants")),
        one("radar", move || figures::radar_grid(ctx)),
        one("heatmap_sorted", move || {
            figures::heatmap(
                ctx,
                scores,
                "heatmap_sorted",
                "Metric means by augmentation, sorted by overall score",
                "Columns sorted by the overall score (the mean over the radar metrics of the normalised means), most shift on the left.",
                None,
            )
        }),
        one("heatmap_clustered", move || {
            figures::heatmap(
                ctx,
                leaf,
                "heatmap_clustered",
                "Metric means by augmentation, in dendrogram order",
                "Columns in the leaf order of the augmentation dendrogram drawn above them (its data: dendrogram.parquet), with its 0.7 \u{00d7} cut.",
                Some(c_augs),
            )
        }),
        one("ranked_profiles", move || figures::ranked_profiles(ctx)),
        one("layer_profile", move || figures::layer_shift(ctx, run, config)),
        one("sensitivity", move || figures::sensitivity(ctx)),
        one("dose_response", move || figures::dose_response(ctx, run, info.text.is_some(), config)),
        one("sample_heatmap", move || figures::sample_heatmap(ctx, config.seed)),
    ];
    if let Some(text) = &info.text {
        let keywords = &text.keywords;
        jobs.extend([
            one("zero_shot_flips", move || figures::zero_shot(ctx, run, config)),
            one("keyword_heatmap", move || figures::keyword_alignment(ctx, run, keywords, config)),
            one("keyword_shift_correlation", move || figures::keyword_shift_correlation(ctx, run, keywords, config)),
            one("caption_retrieval", move || figures::captions(ctx, run, config)),
        ]);
    }
    if info.sae.is_some() {
        jobs.push(Box::new(move || figures::sae_figures(ctx, run, c_augs, config)));
    }
    let raster = Rasterizer::new(1.5);
    let written: Vec<Vec<Figure>> = jobs
        .into_par_iter()
        .map(|job| {
            let mut written = Vec::new();
            for (stem, drawn) in job() {
                let figure = drawn.unwrap_or_else(|e| record_figure(run, errors, stem, &e));
                if let Some(figure) = figure {
                    written.extend(write_figure(run, &raster, figure, errors)?);
                }
            }
            Ok(written)
        })
        .collect::<Result<_, ReportError>>()?;
    Ok(written.into_iter().flatten().collect())
}

fn record_figure(run: &RunDir, errors: &ErrorLog, stem: &str, e: &dyn std::error::Error) -> Option<Figure> {
    let path = figure_path(run, stem);
    errors.record(Some(&path), None, None, ErrorKind::Figure, format!("figure {stem} cannot be drawn: {e}"));
    None
}

/// Writes a figure as SVG, PNG and Parquet; one that cannot be rasterised is
/// recorded in `errors` and left out (`None`).
fn write_figure(
    run: &RunDir,
    raster: &Rasterizer,
    mut f: Figure,
    errors: &ErrorLog,
) -> Result<Option<Figure>, ReportError> {
    let png = match raster.figure(&f) {
        Ok(png) => png,
        Err(message) => {
            let e = ReportError::Render { figure: f.stem.clone(), message };
            record_figure(run, errors, &f.stem, &e);
            return Ok(None);
        }
    };
    let report_dir = run.report_dir();
    write_bytes(&report_dir.join(format!("{}.svg", f.stem)), f.svg.as_bytes())?;
    write_bytes(&report_dir.join(format!("{}.png", f.stem)), &png)?;
    write_parquet(&report_dir.join(format!("{}.parquet", f.stem)), &mut f.table)?;
    tracing::debug!(figure = %f.stem, "wrote figure");
    Ok(Some(f))
}

/// The page's list of tables: (link relative to `report/`, description).
fn table_links(run: &RunDir, figs: &[Figure], config: &ReportConfig) -> Vec<(String, String)> {
    let up = |path: PathBuf| format!("../{}", table_name(&path));
    let mut links: Vec<(String, String)> = vec![
        (up(run.summary()), "per augmentation and metric: n, mean, std, median, p05, p95, bootstrap 95% CI of the mean, rank (1 = most disruptive)".into()),
        (up(run.distance_matrix()), "cosine and euclidean distances between variants, averaged over images (full square, long format)".into()),
        (up(run.linkage()), format!("{} linkage steps in scipy layout, for the augmentations and for all variants", config.linkage)),
        (up(run.clusters()), "flat cluster of each augmentation at 0.7 x the largest merge distance".into()),
        (table_name(&run.wilcoxon()), "paired Wilcoxon signed-rank tests, Holm-corrected per metric".into()),
        (up(run.noise_floor()), "per augmentation: mean cosine against the noise floor (per image the smallest cosine of a floor member), paired difference with its bootstrap 95% interval, inside or not".into()),
        (up(run.drift()), "per augmentation: paired sign-flip test of the embedding shift and MMD two-sample test (Gaussian kernel, median heuristic), effect sizes and permutation p-values".into()),
    ];
    for f in figs {
        links.push((format!("{}.parquet", f.stem), format!("data behind the figure \"{}\"", f.title)));
    }
    for (path, desc) in [
        (run.images(), "input: one row per source image (augment stage)"),
        (run.augmentations(), "input: sampled parameters of every variant (augment stage)"),
        (run.embeddings(), "input: embedding and class-token attention of every variant (encode stage)"),
        (run.metrics(), "input: per-image metrics of every augmentation (metrics stage)"),
        (run.pairwise(), "input: distances between the variants of each image (metrics stage)"),
        (run.layer_shift(), "input: the class token's shift at every layer state (metrics stage)"),
        (run.text_embeddings(), "input: the embedding of every prompt (text stage)"),
        (run.zero_shot(), "input: top-1 zero-shot label, its probability, flip and KL of every variant (text stage)"),
        (run.keyword_alignment(), "input: change of similarity to every keyword prompt (text stage)"),
        (run.caption_alignment(), "input: similarity to and retrieval rank of the own caption (text stage)"),
        (run.sae_latents(), "input: the active SAE latents of every variant (SAE stage)"),
        (
            run.component_attribution(),
            "input: patch attribution and Act\u{00d7}Grad of every latent active in an original or its variant (SAE stage)",
        ),
        (run.faithfulness(), "input: cosine after restoring the top-n latents in each attribution order (SAE stage)"),
        (run.latent_labels(), "input: each latent's best concept by LogitLens (SAE stage)"),
        (run.errors(), "failures recorded by any stage"),
    ] {
        if path.exists() {
            links.push((up(path), desc.to_owned()));
        }
    }
    links
}
