//! Dose–response: the metrics against the severity level of each sweep family
//! (`family` and `severity` of `augmentations.parquet`), with 95% bands.

use std::collections::BTreeMap;

use clipshift_tables::{RunDir, schema};
use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::chart::{self, Axis, Rect, Scale, Svg, TextStyle, colour, header, nice_domain};
use crate::config::ReportConfig;
use crate::io::{col_f64, col_str, col_u64, frame, scan, table_name};
use crate::stats;

/// One point of a family's curve.
struct Point {
    family: String,
    severity: u32,
    augmentation: String,
    quantity: &'static str,
    n: u64,
    mean: f64,
    lo: f64,
    hi: f64,
}

/// Severity per augmentation of each sweep family, in severity order.
fn families(run: &RunDir) -> Result<BTreeMap<String, Vec<(u32, String)>>, ReportError> {
    let path = run.augmentations();
    let name = table_name(&path);
    let df = scan(&path)?
        .filter(col("family").is_not_null())
        .select([col(schema::AUGMENTATION), col("family"), col("severity")])
        .unique(None, UniqueKeepStrategy::First)
        .collect()
        .map_err(ReportError::polars(&name))?;
    let mut out: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    let rows = col_str(&df, &name, "family")?.into_iter().zip(col_u64(&df, &name, "severity")?).zip(col_str(
        &df,
        &name,
        schema::AUGMENTATION,
    )?);
    for ((family, severity), aug) in rows {
        out.entry(family).or_default().push((severity as u32, aug));
    }
    for levels in out.values_mut() {
        levels.sort();
    }
    Ok(out)
}

/// Top-1 label flips per augmentation (0/1 per image), when the text stage ran.
fn flips(run: &RunDir) -> Result<BTreeMap<String, Vec<f64>>, ReportError> {
    let path = run.zero_shot();
    let name = table_name(&path);
    let df = scan(&path)?
        .select([col(schema::AUGMENTATION), col("flipped").cast(DataType::Float64)])
        .collect()
        .map_err(ReportError::polars(&name))?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (aug, f) in col_str(&df, &name, schema::AUGMENTATION)?.into_iter().zip(col_f64(&df, &name, "flipped")?) {
        out.entry(aug).or_default().extend(f);
    }
    Ok(out)
}

/// Cosine similarity, attention similarity and (with the text stage) the label flip rate
/// against severity, one line per family.
pub(crate) fn dose_response(
    ctx: &Ctx<'_>,
    run: &RunDir,
    text: bool,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    let families = families(run)?;
    if families.is_empty() {
        return Ok(None);
    }
    let flips = if text { Some(flips(run)?) } else { None };
    let mut quantities: Vec<(&'static str, &'static str)> = [
        (schema::COSINE_SIMILARITY, "Cosine similarity to the original"),
        ("attention_similarity", "Attention similarity"),
    ]
    .into_iter()
    .filter(|(m, _)| ctx.data.metric_index(m).is_some())
    .collect();
    if flips.is_some() {
        quantities.push(("flip_rate", "Top-1 zero-shot label flip rate"));
    }
    let points = points(ctx, &families, flips.as_ref(), &quantities, config);
    let title = "Dose\u{2013}response: each family's shift against its severity";
    let names: Vec<&String> = families.keys().collect();
    let svg = draw(ctx, title, &names, &quantities, &points);
    let table = table(&points)?;
    let cap = ctx.caption(format!(
        "Each sweep family of the suite (augmentations.parquet's family and severity) at its severity levels, the levels of a family paired (the same random draws for an image at every level, only the magnitude changes): mean over images with its percentile bootstrap 95% band ({} resamples).{}",
        config.bootstrap_resamples,
        if text { " Flip rate: share of images whose top-1 zero-shot label differs from the original's (text stage)." } else { "" }
    ) + &super::floor_caption(ctx));
    Ok(Some(fig("dose_response", title, cap, svg, table)))
}

/// Every family's points: per severity level and quantity, the mean over images with its
/// bootstrap interval (levels without values left out).
fn points(
    ctx: &Ctx<'_>,
    families: &BTreeMap<String, Vec<(u32, String)>>,
    flips: Option<&BTreeMap<String, Vec<f64>>>,
    quantities: &[(&'static str, &'static str)],
    config: &ReportConfig,
) -> Vec<Point> {
    let mut points = Vec::new();
    for (family, levels) in families {
        for (severity, aug) in levels {
            for &(quantity, _) in quantities {
                let values = match (quantity, flips) {
                    ("flip_rate", Some(flips)) => flips.get(aug).cloned().unwrap_or_default(),
                    _ => match (ctx.data.metric_index(quantity), ctx.data.augs.iter().position(|a| a == aug)) {
                        (Some(m), Some(a)) => ctx.data.values(m, a),
                        _ => Vec::new(),
                    },
                };
                if values.is_empty() {
                    continue;
                }
                let (lo, hi) = config.mean_ci(&values, &["dose", quantity, aug]);
                points.push(Point {
                    family: family.clone(),
                    severity: *severity,
                    augmentation: aug.clone(),
                    quantity,
                    n: values.len() as u64,
                    mean: stats::mean(&values),
                    lo,
                    hi,
                });
            }
        }
    }
    points
}

/// One panel per quantity, one line per family (colours by family order).
fn draw(
    ctx: &Ctx<'_>,
    title: &str,
    families: &[&String],
    quantities: &[(&'static str, &'static str)],
    points: &[Point],
) -> String {
    let max_severity = points.iter().map(|p| p.severity).max().unwrap_or(1);
    let (width, height) = (960.0, 520.0);
    let mut svg = Svg::new(width, height);
    let top = header(&mut svg, title, ctx.random_init) + 24.0;
    let panel_w = (width - 230.0) / quantities.len() as f64;
    for (q, &(quantity, label)) in quantities.iter().enumerate() {
        let r = Rect { x: 80.0 + panel_w * q as f64, y: top, w: panel_w - 90.0, h: height - top - 70.0 };
        let ours: Vec<&Point> = points.iter().filter(|p| p.quantity == quantity).collect();
        let finite = |v: f64| v.is_finite().then_some(v);
        // The cosine panel shows the noise floor too.
        let band = ctx.floor.map(|f| f.band).filter(|_| quantity == schema::COSINE_SIMILARITY);
        let lo = ours.iter().filter_map(|p| finite(p.lo).or(finite(p.mean))).chain(band.map(|b| b.lo));
        let lo = lo.fold(f64::INFINITY, f64::min);
        let hi = ours.iter().filter_map(|p| finite(p.hi).or(finite(p.mean))).chain(band.map(|b| b.hi));
        let hi = hi.fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            continue;
        }
        let (y0, y1, yt) = nice_domain(lo, if hi > lo { hi } else { lo + 1e-6 }, 5);
        let xs = Scale::new(0.5, f64::from(max_severity) + 0.5, r.x, r.right());
        let ys = Scale::new(y0, y1, r.bottom(), r.y);
        let xt: Vec<f64> = (1..=max_severity).map(f64::from).collect();
        chart::draw_axes(
            &mut svg,
            r,
            &Axis { scale: xs, ticks: &xt, label: "severity (3 = the paper's setting)" },
            &Axis { scale: ys, ticks: &yt, label },
        );
        if let Some(band) = band {
            band.draw_across(&mut svg, r, ys);
        }
        for (f, family) in families.iter().enumerate() {
            let line: Vec<&&Point> = ours.iter().filter(|p| &p.family == *family).collect();
            if line.is_empty() {
                continue;
            }
            let c = colour(f);
            let x = |p: &Point| xs.map(f64::from(p.severity));
            let mut band: Vec<(f64, f64)> = line.iter().map(|p| (x(p), ys.map(p.hi))).collect();
            band.extend(line.iter().rev().map(|p| (x(p), ys.map(p.lo))));
            if band.iter().all(|(_, y)| y.is_finite()) {
                svg.polygon(&band, &c, 0.15, "none", 0.0, None);
            }
            svg.polyline(&line.iter().map(|p| (x(p), ys.map(p.mean))).collect::<Vec<_>>(), &c, 2.0);
            for p in &line {
                svg.circle(x(p), ys.map(p.mean), 3.0, &c, None);
            }
        }
    }
    let entries: Vec<(String, String)> = families.iter().enumerate().map(|(f, n)| ((*n).clone(), colour(f))).collect();
    chart::legend(&mut svg, width - 165.0, top, &entries);
    svg.text(width - 165.0, top - 8.0, "family", TextStyle::size(12.0).bold());
    svg.finish()
}

fn table(points: &[Point]) -> Result<DataFrame, ReportError> {
    let column =
        |name: &str, f: &dyn Fn(&Point) -> f64| Column::new(name.into(), points.iter().map(f).collect::<Vec<_>>());
    frame(
        "dose_response",
        &schema::dose_response(),
        vec![
            Column::new("family".into(), points.iter().map(|p| p.family.clone()).collect::<Vec<_>>()),
            Column::new("severity".into(), points.iter().map(|p| p.severity).collect::<Vec<_>>()),
            Column::new(schema::AUGMENTATION.into(), points.iter().map(|p| p.augmentation.clone()).collect::<Vec<_>>()),
            Column::new("quantity".into(), points.iter().map(|p| p.quantity.to_owned()).collect::<Vec<_>>()),
            Column::new("n".into(), points.iter().map(|p| p.n).collect::<Vec<_>>()),
            column("mean", &|p| p.mean),
            column("ci_low", &|p| p.lo),
            column("ci_high", &|p| p.hi),
        ],
    )
}
