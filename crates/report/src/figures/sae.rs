//! Which SAE latents each augmentation moves (the SAE stage's tables): the latents it
//! switches off and on, the overlap of the active sets, the faithfulness curves, and the
//! augmentations clustered by their latent-shift profiles beside the embedding dendrogram.

use std::collections::{BTreeSet, HashMap};

use clipshift_tables::{RunDir, schema};
use polars::prelude::*;

use super::dendrogram::tree;
use super::text::{Bar, panels};
use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::analysis::Clustering;
use crate::chart::{self, Axis, Rect, Scale, Svg, TextStyle, header, nice_domain};
use crate::config::ReportConfig;
use crate::io::{col_f64, col_str, col_u64, frame, scan, table_name};
use crate::stats;

/// Latents listed per augmentation and direction.
const TOP: usize = 3;
const OFF_COLOUR: &str = "#0072B2";
const ON_COLOUR: &str = "#D55E00";
/// The faithfulness orders, as the stage names them, with their colours.
const ORDERS: [(&str, &str); 5] = [
    ("patch_attribution", "#D55E00"),
    ("act_x_grad", "#0072B2"),
    ("logit_lens", "#009E73"),
    ("energy", "#CC79A7"),
    ("random", "#777777"),
];

/// One latent's totals over an augmentation's images.
#[derive(Default, Clone, Copy)]
struct Totals {
    patch: f64,
    delta_z: f64,
    images: u64,
}

/// A latent an augmentation moves, with its means over the augmentation's images.
#[derive(Clone, Copy)]
struct Moved {
    latent: u32,
    patch: f64,
    delta_z: f64,
    images: u64,
}

/// The SAE tables, aggregated per augmentation.
struct Shift {
    /// Images with an active latent in the original or the variant, per augmentation.
    images: HashMap<String, u64>,
    latents: HashMap<String, HashMap<u32, Totals>>,
    jaccard: HashMap<String, Vec<f64>>,
    labels: HashMap<u32, String>,
}

impl Shift {
    fn load(run: &RunDir) -> Result<Self, ReportError> {
        let path = run.component_attribution();
        let name = table_name(&path);
        let f64_col = |c: &str| col(c).cast(DataType::Float64);
        let per_latent = scan(&path)?
            .group_by([col(schema::AUGMENTATION), col("latent")])
            .agg([
                f64_col("patch_attribution").sum().alias("patch"),
                (f64_col("z_augmented") - f64_col("z_original")).sum().alias("delta_z"),
                col("latent").count().alias("images"),
            ])
            .collect()
            .map_err(ReportError::polars(&name))?;
        let mut latents: HashMap<String, HashMap<u32, Totals>> = HashMap::new();
        let rows = col_str(&per_latent, &name, schema::AUGMENTATION)?
            .into_iter()
            .zip(col_u64(&per_latent, &name, "latent")?)
            .zip(col_f64(&per_latent, &name, "patch")?)
            .zip(col_f64(&per_latent, &name, "delta_z")?)
            .zip(col_u64(&per_latent, &name, "images")?);
        for ((((aug, latent), patch), delta_z), images) in rows {
            let totals = Totals { patch: patch.unwrap_or(0.0), delta_z: delta_z.unwrap_or(0.0), images };
            latents.entry(aug).or_default().insert(latent as u32, totals);
        }
        // The rows of one variant are the union of the two active sets; the intersection
        // is where both codes are non-zero.
        let active = |c: &str| col(c).neq(lit(0.0f32));
        let per_image = scan(&path)?
            .group_by([col(schema::IMAGE_ID), col(schema::AUGMENTATION)])
            .agg([
                col("latent").count().cast(DataType::Float64).alias("union"),
                active("z_original").and(active("z_augmented")).cast(DataType::Float64).sum().alias("intersection"),
            ])
            .collect()
            .map_err(ReportError::polars(&name))?;
        let mut jaccard: HashMap<String, Vec<f64>> = HashMap::new();
        let rows = col_str(&per_image, &name, schema::AUGMENTATION)?
            .into_iter()
            .zip(col_f64(&per_image, &name, "union")?)
            .zip(col_f64(&per_image, &name, "intersection")?);
        for ((aug, union), intersection) in rows {
            if let (Some(u), Some(i)) = (union, intersection) {
                jaccard.entry(aug).or_default().push(i / u);
            }
        }
        let images = jaccard.iter().map(|(a, v)| (a.clone(), v.len() as u64)).collect();
        let mut labels = HashMap::new();
        let labels_path = run.latent_labels();
        if labels_path.exists() {
            let name = table_name(&labels_path);
            let df = scan(&labels_path)?
                .select([col("latent"), col("label")])
                .collect()
                .map_err(ReportError::polars(&name))?;
            for (latent, label) in col_u64(&df, &name, "latent")?.into_iter().zip(col_str(&df, &name, "label")?) {
                labels.insert(latent as u32, label);
            }
        }
        Ok(Self { images, latents, jaccard, labels })
    }

    /// The augmentations of the suite that the SAE stage attributed, in suite order.
    fn augs<'a>(&self, ctx: &'a Ctx<'_>) -> Vec<&'a String> {
        ctx.data.augs.iter().filter(|a| self.images.contains_key(*a)).collect()
    }

    /// Mean over the augmentation's images of z_augmented − z_original, per latent.
    fn profile(&self, aug: &str) -> HashMap<u32, f64> {
        let n = self.images.get(aug).copied().unwrap_or(1).max(1) as f64;
        self.latents.get(aug).into_iter().flatten().map(|(&j, t)| (j, t.delta_z / n)).collect()
    }

    /// The `TOP` latents with the largest mean patch attribution whose mean shift is
    /// negative (`off`) or positive (on).
    fn top(&self, aug: &str, off: bool) -> Vec<Moved> {
        let n = self.images.get(aug).copied().unwrap_or(1).max(1) as f64;
        let mut v: Vec<Moved> = self
            .latents
            .get(aug)
            .into_iter()
            .flatten()
            .filter(|(_, t)| if off { t.delta_z < 0.0 } else { t.delta_z > 0.0 })
            .map(|(&latent, t)| Moved { latent, patch: t.patch / n, delta_z: t.delta_z / n, images: t.images })
            .collect();
        v.sort_by(|a, b| b.patch.total_cmp(&a.patch).then(a.latent.cmp(&b.latent)));
        v.truncate(TOP);
        v
    }
}

/// The SAE section's figures, when the run has the SAE stage's tables.
pub(crate) fn sae_figures(
    ctx: &Ctx<'_>,
    run: &RunDir,
    embedding: &Clustering,
    config: &ReportConfig,
) -> Vec<(&'static str, Result<Option<Figure>, ReportError>)> {
    let shift = match Shift::load(run) {
        Ok(shift) => shift,
        Err(e) => return vec![("sae_top_latents", Err(e))],
    };
    vec![
        ("sae_top_latents", top_latents(ctx, &shift)),
        ("sae_jaccard", jaccard(ctx, &shift, config)),
        ("sae_faithfulness", faithfulness(ctx, run)),
        ("sae_dendrogram", dendrograms(ctx, &shift, embedding, config)),
    ]
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}\u{2026}", s.chars().take(max - 1).collect::<String>())
    }
}

/// Per augmentation, the latents it switches off and on that explain most of its drop.
fn top_latents(ctx: &Ctx<'_>, shift: &Shift) -> Result<Option<Figure>, ReportError> {
    let augs = shift.augs(ctx);
    if augs.is_empty() {
        return Ok(None);
    }
    let rows: Vec<(&String, Vec<Moved>, Vec<Moved>)> =
        augs.iter().map(|a| (*a, shift.top(a, true), shift.top(a, false))).collect();
    let largest =
        rows.iter().flat_map(|(_, off, on)| off.iter().chain(on).map(|t| t.patch)).fold(0.0f64, f64::max).max(1e-12);
    let (cols, panel_w, panel_h) = (3usize, 306.0, 30.0 + 18.0 * (2 * TOP) as f64 + 12.0);
    let title = "Latents each augmentation switches off and on, by mean patch attribution";
    let height = chart::header_height(ctx.random_init) + 30.0 + panel_h * rows.len().div_ceil(cols) as f64 + 20.0;
    let mut svg = Svg::new(960.0, height);
    let top = header(&mut svg, title, ctx.random_init) + 8.0;
    chart::legend(&mut svg, 20.0, top, &[("switched off (z falls)".into(), OFF_COLOUR.into())]);
    chart::legend(&mut svg, 220.0, top, &[("switched on (z rises)".into(), ON_COLOUR.into())]);
    let mut table: [Vec<String>; 3] = Default::default();
    let (mut rank, mut latent, mut attribution, mut delta, mut active) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, (aug, off, on)) in rows.iter().enumerate() {
        let (x, y) = (20.0 + panel_w * (i % cols) as f64, top + 30.0 + panel_h * (i / cols) as f64);
        svg.rect(x, y, 10.0, 10.0, &ctx.colour_of(aug), None);
        svg.text(x + 14.0, y + 10.0, aug, TextStyle::size(12.0).bold());
        let bar_x = x + 170.0;
        let scale = Scale::new(0.0, largest, bar_x, bar_x + 90.0);
        for (j, (direction, entry)) in off.iter().map(|e| ("off", e)).chain(on.iter().map(|e| ("on", e))).enumerate() {
            let Moved { latent: id, patch: mean_a, delta_z: mean_dz, images } = *entry;
            let yy = y + 18.0 + 18.0 * j as f64;
            let label = shift.labels.get(&id);
            let text = format!("#{id} {}", label.map(|l| short(l, 20)).unwrap_or_default());
            svg.text(x + 4.0, yy + 11.0, &text, TextStyle::size(11.0));
            let colour = if direction == "off" { OFF_COLOUR } else { ON_COLOUR };
            let tip = format!(
                "latent {id} ({}): mean patch attribution {mean_a:.4}, mean \u{0394}z {mean_dz:.4}, active in {images} images",
                label.map(String::as_str).unwrap_or("no label")
            );
            svg.rect_title(bar_x, yy + 2.0, (scale.map(mean_a.max(0.0)) - bar_x).max(0.5), 11.0, colour, &tip);
            svg.text(scale.map(mean_a.max(0.0)) + 4.0, yy + 11.0, &format!("{mean_a:.3}"), TextStyle::size(10.0));
            table[0].push((*aug).clone());
            table[1].push(direction.to_owned());
            table[2].push(label.cloned().unwrap_or_default());
            rank.push((if direction == "off" { j } else { j - off.len() }) as u32 + 1);
            latent.push(id);
            attribution.push(mean_a);
            delta.push(mean_dz);
            active.push(images);
        }
    }
    let [augmentation, direction, label] = table;
    let label: Vec<Option<String>> = label.into_iter().map(|l| (!l.is_empty()).then_some(l)).collect();
    let table = frame(
        "sae_top_latents",
        &schema::sae_top_latents(),
        vec![
            Column::new(schema::AUGMENTATION.into(), augmentation),
            Column::new("direction".into(), direction),
            Column::new("rank".into(), rank),
            Column::new("latent".into(), latent),
            Column::new("label".into(), label),
            Column::new("mean_patch_attribution".into(), attribution),
            Column::new("mean_delta_z".into(), delta),
            Column::new("images_active".into(), active),
        ],
    )?;
    let cap = ctx.caption(format!(
        "For each augmentation, the {TOP} SAE latents whose activation falls (off) and rises (on) on average over its images and that explain most of its cosine drop: mean patch attribution A_j = (z_original \u{2212} z_augmented) \u{00b7} \u{2202}y/\u{2202}z_j (the cosine recovered by restoring latent j, to first order; zero where the latent is inactive in both), from component_attribution.parquet. Labels: each latent's decoder direction through the head against the concept vocabulary (latent_labels.parquet){}.",
        if shift.labels.is_empty() { "; none here: the model has no text tower" } else { "" }
    ));
    Ok(Some(fig("sae_top_latents", title, cap, svg.finish(), table)))
}

/// Mean Jaccard overlap of the active latent sets of original and variant.
fn jaccard(ctx: &Ctx<'_>, shift: &Shift, config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    let augs = shift.augs(ctx);
    if augs.is_empty() {
        return Ok(None);
    }
    let mut rows: Vec<(String, u64, f64, f64, f64)> = augs
        .iter()
        .map(|a| {
            let v = &shift.jaccard[*a];
            let (lo, hi) = config.mean_ci(v, &["sae-jaccard", a]);
            ((*a).clone(), v.len() as u64, stats::mean(v), lo, hi)
        })
        .collect();
    // Least overlap (most latents changed) first.
    rows.sort_by(|x, y| x.2.total_cmp(&y.2).then(x.0.cmp(&y.0)));
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar { label: r.0.clone(), colour: ctx.colour_of(&r.0), value: r.2, lo: r.3, hi: r.4 })
        .collect();
    let title = "Overlap of the active SAE latents of original and variant";
    let svg = panels(ctx, title, &[("Mean Jaccard index of the active sets", bars)]);
    let table = frame(
        "sae_jaccard",
        &schema::sae_jaccard(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("mean_jaccard".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("jaccard_ci_low".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("jaccard_ci_high".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
        ],
    )?;
    let cap = ctx.caption(format!(
        "|S_original \u{2229} S_variant| / |S_original \u{222a} S_variant| of the sets of active SAE latents, averaged over images, with its percentile bootstrap 95% interval ({} resamples); 1 = the augmentation keeps exactly the same latents. Least overlap first.",
        config.bootstrap_resamples
    ));
    Ok(Some(fig("sae_jaccard", title, cap, svg, table)))
}

/// Mean cosine to the original after restoring the top-n latents of each order.
fn faithfulness(ctx: &Ctx<'_>, run: &RunDir) -> Result<Option<Figure>, ReportError> {
    let path = run.faithfulness();
    let name = table_name(&path);
    let keys = [col(schema::IMAGE_ID), col(schema::AUGMENTATION), col("order")];
    let start = scan(&path)?.filter(col("n").eq(lit(0u32))).select([
        col(schema::IMAGE_ID),
        col(schema::AUGMENTATION),
        col("order"),
        col("cosine").alias("start"),
    ]);
    let gap = lit(1.0) - col("start");
    let df = scan(&path)?
        .join(start, keys.clone(), keys, JoinArgs::new(JoinType::Inner))
        .with_column(
            when(gap.clone().gt(lit(1e-9)))
                .then((col("cosine") - col("start")) / gap)
                .otherwise(lit(f64::NAN))
                .alias("gap_closed"),
        )
        .group_by([col("order"), col("n")])
        .agg([
            col("cosine").count().alias("pairs"),
            col("cosine").mean().alias("mean_cosine"),
            col("gap_closed").filter(col("gap_closed").is_not_nan()).mean().alias("mean_gap_closed"),
        ])
        .sort(["order", "n"], Default::default())
        .collect()
        .map_err(ReportError::polars(&name))?;
    let orders = col_str(&df, &name, "order")?;
    let ns = col_u64(&df, &name, "n")?;
    let pairs = col_u64(&df, &name, "pairs")?;
    let cosine = col_f64(&df, &name, "mean_cosine")?;
    let gap_closed = col_f64(&df, &name, "mean_gap_closed")?;
    if orders.is_empty() {
        return Ok(None);
    }
    let counts: Vec<u64> = ns.iter().copied().collect::<BTreeSet<u64>>().into_iter().collect();
    let title = "Faithfulness: cosine to the original after restoring the top-n latents";
    let mut svg = Svg::new(960.0, 560.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 640.0, h: 560.0 - top - 70.0 };
    let band = ctx.floor.map(|f| f.band);
    let values: Vec<f64> = cosine.iter().flatten().copied().chain(band.iter().flat_map(|b| [b.lo, b.hi])).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1, yt) = nice_domain(lo, if hi > lo { hi } else { lo + 1e-6 }, 5);
    let xs = Scale::new(0.0, (counts.len().max(2) - 1) as f64, r.x, r.right());
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    chart::draw_axes(
        &mut svg,
        r,
        &Axis { scale: xs, ticks: &[], label: "latents restored, n (positions evenly spaced)" },
        &Axis { scale: ys, ticks: &yt, label: "mean cosine to the original" },
    );
    if let Some(band) = band {
        band.draw_across(&mut svg, r, ys);
    }
    for (i, n) in counts.iter().enumerate() {
        let px = xs.map(i as f64);
        svg.line(px, r.bottom(), px, r.bottom() + 5.0, "#333333", 1.0, None);
        svg.text(px, r.bottom() + 18.0, &n.to_string(), TextStyle::size(11.0).middle().fill("#333333"));
    }
    let mut legend = Vec::new();
    for (order, colour) in ORDERS {
        let points: Vec<(f64, f64)> = orders
            .iter()
            .zip(&ns)
            .zip(&cosine)
            .filter(|((o, _), c)| o.as_str() == order && c.is_some())
            .map(|((_, n), c)| {
                (xs.map(counts.iter().position(|x| x == n).unwrap_or(0) as f64), ys.map(c.unwrap_or(0.0)))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        svg.polyline(&points, colour, if order == "random" { 1.5 } else { 2.2 });
        for &(x, y) in &points {
            svg.circle(x, y, 2.5, colour, None);
        }
        legend.push((order.to_owned(), colour.to_owned()));
    }
    chart::legend(&mut svg, r.right() + 24.0, r.y, &legend);
    let table = frame(
        "sae_faithfulness",
        &schema::sae_faithfulness_summary(),
        vec![
            Column::new("order".into(), orders),
            Column::new("n".into(), ns.iter().map(|&n| n as u32).collect::<Vec<_>>()),
            Column::new("pairs".into(), pairs),
            Column::new("mean_cosine".into(), cosine.iter().map(|c| c.unwrap_or(f64::NAN)).collect::<Vec<_>>()),
            Column::new("mean_gap_closed".into(), gap_closed),
        ],
    )?;
    let cap = ctx.caption(
        "The seed paper's faithfulness test turned on the shift (faithfulness.parquet): y = cos(e(h\u{0302}), e_original) after restoring the variant's top-n latents to their original values, in the order of each score, averaged over every variant of every augmentation (n = 0 is the variant's own cosine). An attribution that explains the drop climbs faster than random; LogitLens and energy are the seed's baselines. The table also gives the mean share of the gap 1 \u{2212} y(0) closed.".to_owned()
            + &super::floor_caption(ctx),
    );
    Ok(Some(fig("sae_faithfulness", title, cap, svg.finish(), table)))
}

/// Ward (the report's linkage) of the augmentations' mean latent shifts, beside the
/// embedding dendrogram.
fn dendrograms(
    ctx: &Ctx<'_>,
    shift: &Shift,
    embedding: &Clustering,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    let augs: Vec<String> = shift.augs(ctx).into_iter().cloned().collect();
    if augs.len() < 2 || embedding.labels.len() < 2 {
        return Ok(None);
    }
    let profiles: Vec<HashMap<u32, f64>> = augs.iter().map(|a| shift.profile(a)).collect();
    let distance = |a: &HashMap<u32, f64>, b: &HashMap<u32, f64>| -> f64 {
        let keys: BTreeSet<u32> = a.keys().chain(b.keys()).copied().collect();
        keys.iter().map(|j| (a.get(j).unwrap_or(&0.0) - b.get(j).unwrap_or(&0.0)).powi(2)).sum::<f64>().sqrt()
    };
    let square: Vec<Vec<f64>> = profiles.iter().map(|a| profiles.iter().map(|b| distance(a, b)).collect()).collect();
    let latent = Clustering::new("augmentations", augs, &square, config.linkage, config.threshold_ratio);
    let title = "Augmentations clustered by embedding shift and by SAE latent shift";
    let mut svg = Svg::new(960.0, 600.0);
    let top = header(&mut svg, title, ctx.random_init) + 30.0;
    let method = latent.method.title();
    let panels = [
        (
            embedding,
            90.0,
            "Embeddings (the paper's dendrogram)",
            format!("{method} merge distance (of mean cosine distances)"),
        ),
        (&latent, 570.0, "SAE latents", format!("{method} merge distance (of mean latent shifts)")),
    ];
    let mut cols = Vec::new();
    for (c, x, heading, axis) in panels {
        let r = Rect { x, y: top, w: 350.0, h: 600.0 - top - 120.0 };
        svg.text(r.x + r.w / 2.0, top - 10.0, heading, TextStyle::size(13.0).middle().bold());
        cols = tree(&mut svg, ctx, c, r, &axis);
    }
    let table = frame("sae_dendrogram", &schema::dendrogram(), cols)?;
    let cap = ctx.caption(format!(
        "Left: the paper's dendrogram of the augmentations (cosine distance between variant embeddings, averaged over images). Right: the same linkage ({method}) of each augmentation's latent-shift profile, the mean over its images of z_augmented \u{2212} z_original for every SAE latent, with Euclidean distances between profiles; cut at 0.7 \u{00d7} the largest merge. The table holds the right tree. Augmentations that cluster differently move the embedding alike through different components, or the reverse."
    ));
    Ok(Some(fig("sae_dendrogram", title, cap, svg.finish(), table)))
}
