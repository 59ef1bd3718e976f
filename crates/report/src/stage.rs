//! The report stage: read the run directory, write the aggregate tables,
//! the figures and `report/index.html`.

use std::path::{Path, PathBuf};

use clipshift_tables::{RunDir, SourceImages};

use crate::analysis::{self, Clustering, DistanceMatrix, MetricData};
use crate::figures::{self, Ctx, Figure};
use crate::html;
use crate::io::{scan, write_bytes, write_parquet};
use crate::raster::Rasterizer;
use crate::run_info::RunInfo;
use crate::{ReportConfig, ReportError};

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
}

fn count_errors(dir: &Path) -> usize {
    if !dir.join("errors.parquet").is_file() {
        return 0;
    }
    scan(dir, "errors.parquet").ok().and_then(|lf| lf.collect().ok()).map(|df| df.height()).unwrap_or(0)
}

pub fn run(config: &ReportConfig) -> Result<ReportSummary, ReportError> {
    let dir = config.run_dir.as_path();
    let run = RunInfo::load(dir)?;
    if run.random_init {
        tracing::warn!("model is random-init: the report's numbers are meaningless");
    }
    let data = MetricData::load(dir, &run.members)?;
    if data.augs.is_empty() {
        return Err(ReportError::table("metrics.parquet", "no augmentation rows"));
    }
    tracing::info!(images = data.image_ids.len(), augmentations = data.augs.len(), "loaded metrics");

    let mut tables = Vec::new();
    let summary = analysis::summarize(dir, &data, config.bootstrap_resamples, config.seed)?;
    let p = dir.join("summary.parquet");
    write_parquet(&p, &mut analysis::summary_frame(&summary)?)?;
    tables.push(p);

    let mut order = vec!["original".to_owned()];
    order.extend(data.augs.iter().cloned());
    let dm = DistanceMatrix::load(dir, &order)?;
    let p = dir.join("distance_matrix.parquet");
    write_parquet(&p, &mut dm.frame()?)?;
    tables.push(p);

    let augs: Vec<String> = data.augs.iter().filter(|a| dm.variants.contains(a)).cloned().collect();
    let variants: Vec<String> = order.iter().filter(|a| dm.variants.contains(a)).cloned().collect();
    let c_augs =
        Clustering::new("augmentations", augs.clone(), &dm.select(&augs), config.linkage, config.threshold_ratio);
    let c_vars =
        Clustering::new("variants", variants.clone(), &dm.select(&variants), config.linkage, config.threshold_ratio);
    let cs = [&c_augs, &c_vars];
    let p = dir.join("linkage.parquet");
    write_parquet(&p, &mut analysis::linkage_frame(&cs)?)?;
    tables.push(p);
    let p = dir.join("clusters.parquet");
    write_parquet(&p, &mut analysis::clusters_frame(&cs)?)?;
    tables.push(p);

    let tests = analysis::pair_tests(&data);
    let report_dir = dir.join("report");
    std::fs::create_dir_all(&report_dir).map_err(|e| ReportError::io(&report_dir, e))?;
    let p = report_dir.join("wilcoxon.parquet");
    write_parquet(&p, &mut analysis::pair_tests_frame(&tests)?)?;
    tables.push(p);

    let ctx = Ctx { data: &data, summary: &summary, random_init: run.random_init };
    let mut figs: Vec<Figure> = Vec::new();
    // Most disruptive (lowest overall score) first, as everywhere in the report.
    let scores: Vec<String> = ctx.overall_scores().into_iter().rev().map(|(a, _)| a).collect();
    let leaf: Vec<String> = c_augs.leaf_order.iter().map(|&i| c_augs.labels[i].clone()).collect();
    // Where to find source images for replayed pixels: read once for both pixel figures.
    let sources = config
        .replay_images
        .then(|| SourceImages::load(&RunDir::new(dir)))
        .and_then(|loaded| loaded.map_err(|e| tracing::warn!("pixel figures cannot replay images: {e}")).ok());
    let built = [
        figures::gallery(&ctx, &run, dir, sources.as_ref(), config)?,
        figures::attention_overlays(&ctx, dir, sources.as_ref(), config)?,
        figures::cosine_distribution(&ctx)?,
        figures::l2_kde(&ctx)?,
        figures::l2_bars(&ctx)?,
        figures::dendrogram(&ctx, &c_augs, "dendrogram")?,
        figures::dendrogram(&ctx, &c_vars, "dendrogram_variants")?,
        figures::radar_grid(&ctx)?,
        figures::heatmap(
            &ctx,
            &scores,
            "heatmap_sorted",
            "Metric means by augmentation, sorted by overall score",
            "Columns sorted by the overall score (the mean over the radar metrics of the normalised means), most shift on the left.",
            None,
        )?,
        figures::heatmap(
            &ctx,
            &leaf,
            "heatmap_clustered",
            "Metric means by augmentation, in dendrogram order",
            "Columns in the leaf order of the augmentation dendrogram drawn above them (its data: dendrogram.parquet), with its 0.7 \u{00d7} cut.",
            Some(&c_augs),
        )?,
        figures::ranked_profiles(&ctx)?,
        figures::sample_heatmap(&ctx, config.seed)?,
    ];
    figs.extend(built.into_iter().flatten());

    let raster = Rasterizer::new(1.5);
    for f in &mut figs {
        write_bytes(&report_dir.join(format!("{}.svg", f.stem)), f.svg.as_bytes())?;
        let png = raster.figure(f).map_err(|message| ReportError::Render { figure: f.stem.clone(), message })?;
        write_bytes(&report_dir.join(format!("{}.png", f.stem)), &png)?;
        let p = report_dir.join(format!("{}.parquet", f.stem));
        write_parquet(&p, &mut f.table)?;
        tracing::debug!(figure = %f.stem, "wrote figure");
    }

    let mut links: Vec<(String, String)> = vec![
        ("../summary.parquet".into(), "per augmentation and metric: n, mean, std, median, p05, p95, bootstrap 95% CI of the mean, rank (1 = most disruptive)".into()),
        ("../distance_matrix.parquet".into(), "cosine and euclidean distances between variants, averaged over images (full square, long format)".into()),
        ("../linkage.parquet".into(), format!("{} linkage steps in scipy layout, for the augmentations and for all variants", config.linkage)),
        ("../clusters.parquet".into(), "flat cluster of each augmentation at 0.7 x the largest merge distance".into()),
        ("wilcoxon.parquet".into(), "paired Wilcoxon signed-rank tests, Holm-corrected per metric".into()),
    ];
    for f in &figs {
        links.push((format!("{}.parquet", f.stem), format!("data behind the figure \"{}\"", f.title)));
    }
    for (file, desc) in [
        ("images.parquet", "input: one row per source image (augment stage)"),
        ("augmentations.parquet", "input: sampled parameters of every variant (augment stage)"),
        ("embeddings.parquet", "input: embedding and class-token attention of every variant (encode stage)"),
        ("metrics.parquet", "input: per-image metrics of every augmentation (metrics stage)"),
        ("pairwise.parquet", "input: distances between the variants of each image (metrics stage)"),
        ("errors.parquet", "failures recorded by any stage"),
    ] {
        if dir.join(file).is_file() {
            links.push((format!("../{file}"), desc.to_owned()));
        }
    }
    let n_errors = count_errors(dir);
    let page = html::Page {
        run: &run,
        data: &data,
        summary: &summary,
        tests: &tests,
        clusterings: &cs,
        figures: &figs,
        tables: &links,
        n_errors,
        config,
    };
    let index = report_dir.join("index.html");
    write_bytes(&index, html::render(&page).as_bytes())?;

    Ok(ReportSummary {
        index_html: index,
        tables,
        figures: figs.iter().map(|f| f.stem.clone()).collect(),
        n_images: data.image_ids.len(),
        n_augmentations: data.augs.len(),
        n_clusters: c_augs.n_clusters(),
        random_init: run.random_init,
    })
}
