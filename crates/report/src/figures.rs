//! Every figure of the report: an SVG drawn with `chart`, and the table of
//! exactly what it plots.

use polars::prelude::*;

use crate::ReportError;
use crate::analysis::{Clustering, MetricData, RADAR, SummaryRow};
use crate::chart::{self, Axis, Rect, Scale, Svg, colour, header, legend, nice_domain};
use crate::io::frame;
use crate::stats;

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
    /// Augmentations by mean of `metric`, most similar first.
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
        let def = self.data.metrics.iter().find(|m| m.column == metric)?;
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

fn label_of(metric: &str) -> &'static str {
    crate::analysis::METRICS.iter().find(|m| m.column == metric).map(|m| m.label).unwrap_or("metric")
}

fn fig(stem: &str, title: &str, caption: String, svg: String, table: DataFrame) -> Figure {
    Figure::new(stem, title, caption, svg, table)
}

/// Cosine-similarity distribution per augmentation: box (quartiles),
/// whiskers (5th-95th percentile), median line, mean +/- std marker.
pub(crate) fn cosine_distribution(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index("cosine_similarity") else {
        return Ok(None);
    };
    let augs = ctx.sorted_by("cosine_similarity", true);
    if augs.is_empty() {
        return Ok(None);
    }
    let title = "Cosine similarity to the original embedding";
    let row_h = 36.0;
    let top = chart::header_height(ctx.random_init) + 20.0;
    let r = Rect { x: 190.0, y: top, w: 700.0, h: row_h * augs.len() as f64 };
    let mut svg = Svg::new(960.0, r.bottom() + 90.0);
    header(&mut svg, title, ctx.random_init);

    let mut stats_rows = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for a in &augs {
        let ai = ctx.data.augs.iter().position(|x| x == a).unwrap_or(0);
        let mut v = ctx.data.values(mi, ai);
        v.sort_by(f64::total_cmp);
        let q = |p| stats::quantile_sorted(&v, p);
        let (m, s) = (stats::mean(&v), stats::std_dev(&v, 1));
        let row = (a.clone(), v.len() as u64, m, s, q(0.05), q(0.25), q(0.5), q(0.75), q(0.95));
        for x in [row.4, row.8, m - s.max(0.0), m + s.max(0.0)] {
            if x.is_finite() {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        stats_rows.push(row);
    }
    let (d0, d1, ticks) = nice_domain(lo, hi, 6);
    let xs = Scale::new(d0, d1, r.x, r.right());
    draw_axes_cat(&mut svg, r, &xs, &ticks, "Cosine similarity (1 = unchanged)");
    for (i, (a, _n, m, s, p05, q1, med, q3, p95)) in stats_rows.iter().enumerate() {
        let cy = r.y + row_h * (i as f64 + 0.5);
        let c = ctx.colour_of(a);
        svg.text(r.x - 10.0, cy + 4.0, a, 12.0, "end", 0.0, false, "#000000");
        if !med.is_finite() {
            continue;
        }
        svg.line(xs.map(*p05), cy, xs.map(*p95), cy, "#333333", 1.2, None);
        for w in [p05, p95] {
            svg.line(xs.map(*w), cy - 5.0, xs.map(*w), cy + 5.0, "#333333", 1.2, None);
        }
        svg.rect(xs.map(*q1), cy - 10.0, xs.map(*q3) - xs.map(*q1), 20.0, &c, Some("#333333"));
        svg.line(xs.map(*med), cy - 10.0, xs.map(*med), cy + 10.0, "#000000", 2.0, None);
        if s.is_finite() {
            svg.line(xs.map(m - s), cy + 14.0, xs.map(m + s), cy + 14.0, "#000000", 1.0, None);
        }
        svg.circle(xs.map(*m), cy + 14.0, 3.5, "#FFFFFF", Some("#000000"));
    }
    svg.text(
        r.x,
        r.bottom() + 62.0,
        "Box: quartiles; bold line: median; whiskers: 5th to 95th percentile; circle and bar below: mean \u{00b1} std.",
        11.0,
        "start",
        0.0,
        false,
        "#333333",
    );
    let table = frame(
        "cosine_distribution",
        vec![
            Column::new("augmentation".into(), stats_rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), stats_rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("mean".into(), stats_rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("std".into(), stats_rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("p05".into(), stats_rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            Column::new("q25".into(), stats_rows.iter().map(|r| r.5).collect::<Vec<_>>()),
            Column::new("median".into(), stats_rows.iter().map(|r| r.6).collect::<Vec<_>>()),
            Column::new("q75".into(), stats_rows.iter().map(|r| r.7).collect::<Vec<_>>()),
            Column::new("p95".into(), stats_rows.iter().map(|r| r.8).collect::<Vec<_>>()),
        ],
    )?;
    let cap = ctx.caption("Distribution over images of the cosine similarity between each augmented embedding and the original's, augmentations sorted by mean.".into());
    Ok(Some(fig("cosine_distribution", title, cap, svg.finish(), table)))
}

/// Horizontal value axis only (for charts whose rows are categories).
fn draw_axes_cat(svg: &mut Svg, r: Rect, xs: &Scale, ticks: &[f64], label: &str) {
    let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
    for &t in ticks {
        let px = xs.map(t);
        svg.line(px, r.y, px, r.bottom(), "#E5E5E5", 1.0, None);
        svg.line(px, r.bottom(), px, r.bottom() + 5.0, "#333333", 1.0, None);
        svg.text(px, r.bottom() + 18.0, &chart::fmt_tick(t, step), 11.0, "middle", 0.0, false, "#333333");
    }
    svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
    svg.text(r.x + r.w / 2.0, r.bottom() + 40.0, label, 13.0, "middle", 0.0, false, "#000000");
}

/// Gaussian KDE (Scott's bandwidth) of the L2 distance per augmentation.
pub(crate) fn l2_kde(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index("l2_distance") else {
        return Ok(None);
    };
    let title = "Kernel density of the L2 distance to the original embedding";
    let mut curves = Vec::new();
    let (mut a_col, mut x_col, mut y_col) = (vec![], vec![], vec![]);
    for (ai, a) in ctx.data.augs.iter().enumerate() {
        let v = ctx.data.values(mi, ai);
        if v.len() < 2 {
            continue;
        }
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let grid = stats::linspace(lo, hi, 100);
        let Some(dens) = stats::gaussian_kde(&v, &grid) else {
            continue;
        };
        for (x, y) in grid.iter().zip(&dens) {
            a_col.push(a.clone());
            x_col.push(*x);
            y_col.push(*y);
        }
        curves.push((a.clone(), grid, dens));
    }
    if curves.is_empty() {
        return Ok(None);
    }
    let mut svg = Svg::new(960.0, 560.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 640.0, h: 560.0 - top - 70.0 };
    let xlo = curves.iter().map(|c| c.1[0]).fold(f64::INFINITY, f64::min);
    let xhi = curves.iter().map(|c| c.1[c.1.len() - 1]).fold(f64::NEG_INFINITY, f64::max);
    let yhi = curves.iter().flat_map(|c| c.2.iter().copied()).fold(0.0, f64::max);
    let (x0, x1, xt) = nice_domain(xlo, xhi, 6);
    let (y0, y1, yt) = nice_domain(0.0, yhi, 5);
    let xs = Scale::new(x0, x1, r.x, r.right());
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    chart::draw_axes(
        &mut svg,
        r,
        &Axis { scale: xs, ticks: &xt, label: "L2 distance" },
        &Axis { scale: ys, ticks: &yt, label: "Density" },
    );
    for (a, g, d) in &curves {
        let pts: Vec<(f64, f64)> = g.iter().zip(d).map(|(x, y)| (xs.map(*x), ys.map(*y))).collect();
        svg.polyline(&pts, &ctx.colour_of(a), 2.0);
    }
    let entries: Vec<(String, String)> = curves.iter().map(|c| (c.0.clone(), ctx.colour_of(&c.0))).collect();
    legend(&mut svg, r.right() + 24.0, r.y, &entries);
    let table = frame(
        "l2_kde",
        vec![
            Column::new("augmentation".into(), a_col),
            Column::new("l2_distance".into(), x_col),
            Column::new("density".into(), y_col),
        ],
    )?;
    let cap = ctx.caption("Gaussian kernel density (Scott's bandwidth, as scipy.stats.gaussian_kde) of the L2 distance between augmented and original embeddings, on 100 points between each augmentation's minimum and maximum.".into());
    Ok(Some(fig("l2_kde", title, cap, svg.finish(), table)))
}

const CLUSTER_COLOURS: [&str; 7] = ["#E69F00", "#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"];

/// Dendrogram with the threshold line and the cluster count.
pub(crate) fn dendrogram(ctx: &Ctx<'_>, c: &Clustering, stem: &str) -> Result<Option<Figure>, ReportError> {
    let n = c.labels.len();
    if n < 2 {
        return Ok(None);
    }
    let links = crate::cluster::dendrogram_links(&c.merges, n);
    let k = c.n_clusters();
    let what = if c.set == "variants" { "augmented variants and the original" } else { "augmentations" };
    let title = format!("Dendrogram of the {what} ({} linkage)", c.method);
    let mut svg = Svg::new(960.0, 600.0);
    let top = header(&mut svg, &title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 820.0, h: 600.0 - top - 150.0 };
    let ymax = c.merges.iter().map(|m| m.distance).fold(0.0, f64::max);
    let (y0, y1, yt) = nice_domain(0.0, ymax * 1.05, 5);
    let xs = Scale::new(0.0, 10.0 * n as f64, r.x, r.right());
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    for &t in &yt {
        let py = ys.map(t);
        svg.line(r.x, py, r.right(), py, "#EEEEEE", 1.0, None);
        svg.line(r.x - 5.0, py, r.x, py, "#333333", 1.0, None);
        svg.text(r.x - 8.0, py + 4.0, &chart::fmt_tick(t, step), 11.0, "end", 0.0, false, "#333333");
    }
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.text(
        r.x - 60.0,
        r.y + r.h / 2.0,
        "Merge distance (averaged cosine distance)",
        13.0,
        "middle",
        -90.0,
        false,
        "#000000",
    );
    // Cluster of each node (None above the threshold), for colouring.
    let mut node_cluster: Vec<Option<u32>> = c.clusters.iter().map(|&x| Some(x)).collect();
    for m in &c.merges {
        let (l, rr) = (node_cluster[m.left], node_cluster[m.right]);
        node_cluster.push(if m.distance <= c.threshold && l == rr { l } else { None });
    }
    let (mut kind, mut label, mut clus) = (vec![], vec![], vec![]);
    let mut coords: [Vec<f64>; 8] = Default::default();
    for (i, l) in links.iter().enumerate() {
        let cl = node_cluster[n + i];
        let col = cl.map(|k| CLUSTER_COLOURS[(k as usize - 1) % CLUSTER_COLOURS.len()]).unwrap_or("#777777");
        let pts: Vec<(f64, f64)> = (0..4).map(|j| (xs.map(l.x[j]), ys.map(l.y[j]))).collect();
        svg.polyline(&pts, col, 2.0);
        kind.push("link".to_owned());
        label.push(None::<String>);
        clus.push(cl);
        for j in 0..4 {
            coords[j].push(l.x[j]);
            coords[4 + j].push(l.y[j]);
        }
    }
    let ty = ys.map(c.threshold);
    svg.line(r.x, ty, r.right(), ty, "#B00020", 1.5, Some("6 4"));
    svg.text(
        r.right() - 4.0,
        ty - 6.0,
        &format!("threshold {:.4} (0.7 \u{00d7} largest merge): {k} clusters", c.threshold),
        12.0,
        "end",
        0.0,
        false,
        "#B00020",
    );
    for (pos, &leaf) in c.leaf_order.iter().enumerate() {
        let x = xs.map(5.0 + 10.0 * pos as f64);
        let name = &c.labels[leaf];
        svg.rect(x - 5.0, r.bottom() + 6.0, 10.0, 10.0, &ctx.colour_of(name), None);
        svg.text(x + 4.0, r.bottom() + 24.0, name, 12.0, "end", -40.0, false, "#000000");
        kind.push("leaf".to_owned());
        label.push(Some(name.clone()));
        clus.push(Some(c.clusters[leaf]));
        let xx = 5.0 + 10.0 * pos as f64;
        for j in 0..4 {
            coords[j].push(xx);
            coords[4 + j].push(0.0);
        }
    }
    kind.push("threshold".to_owned());
    label.push(None);
    clus.push(None);
    for j in 0..4 {
        coords[j].push(if j < 2 { 0.0 } else { 10.0 * n as f64 });
        coords[4 + j].push(c.threshold);
    }
    let mut cols =
        vec![Column::new("kind".into(), kind), Column::new("label".into(), label), Column::new("cluster".into(), clus)];
    for (j, name) in ["x0", "x1", "x2", "x3", "y0", "y1", "y2", "y3"].iter().enumerate() {
        cols.push(Column::new((*name).into(), coords[j].clone()));
    }
    let table = frame(stem, cols)?;
    let cap = ctx.caption(format!(
        "{} linkage of the cosine distance between variant embeddings, averaged over images. Flat clusters (fcluster, criterion 'distance') at 0.7 \u{00d7} the largest merge distance = {:.4}: {k} clusters.",
        c.method, c.threshold
    ));
    Ok(Some(fig(stem, &title, cap, svg.finish(), table)))
}

/// Radar of the five paper metrics for each augmentation, against the
/// per-metric best and worst augmentation means.
pub(crate) fn radar_grid(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let metrics: Vec<&str> = RADAR.iter().copied().filter(|m| ctx.data.metric_index(m).is_some()).collect();
    if metrics.len() < 3 || ctx.data.augs.is_empty() {
        return Ok(None);
    }
    let title = "Metric profile of each augmentation against the best and worst";
    let n = ctx.data.augs.len();
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let cell = 310.0;
    let width = cell * cols as f64 + 20.0;
    let top0 = chart::header_height(ctx.random_init);
    let top = top0 + 44.0;
    let mut svg = Svg::new(width.max(700.0), top + cell * rows as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    let mean = |a: &str, m: &str| ctx.row(a, m).map(|r| r.mean).unwrap_or(f64::NAN);
    let best: Vec<f64> = metrics
        .iter()
        .map(|m| ctx.data.augs.iter().map(|a| mean(a, m)).filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max))
        .collect();
    let worst: Vec<f64> = metrics
        .iter()
        .map(|m| ctx.data.augs.iter().map(|a| mean(a, m)).filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min))
        .collect();
    let lo = worst.iter().copied().fold(0.0, f64::min);
    let hi = best.iter().copied().fold(1.0, f64::max);
    legend_inline(
        &mut svg,
        20.0,
        top0 + 14.0,
        &[
            ("best augmentation per metric", "#000000", Some("5 3")),
            ("worst augmentation per metric", "#888888", Some("2 2")),
        ],
    );
    let (mut t_aug, mut t_metric, mut t_val, mut t_best, mut t_worst) = (vec![], vec![], vec![], vec![], vec![]);
    let k = metrics.len();
    let radius = 95.0;
    for (i, a) in ctx.data.augs.iter().enumerate() {
        let cx = 10.0 + cell * (i % cols) as f64 + cell / 2.0;
        let cy = top + cell * (i / cols) as f64 + cell / 2.0 + 8.0;
        let pt = |j: usize, v: f64| {
            let ang = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * j as f64 / k as f64;
            let rr = if v.is_finite() { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * radius } else { 0.0 };
            (cx + rr * ang.cos(), cy + rr * ang.sin())
        };
        for ring in [0.25, 0.5, 0.75, 1.0] {
            let pts: Vec<(f64, f64)> = (0..k).map(|j| pt(j, lo + ring * (hi - lo))).collect();
            svg.polygon(&pts, "none", 0.0, "#DDDDDD", 1.0, None);
        }
        for (j, m) in metrics.iter().enumerate() {
            let (x, y) = pt(j, hi);
            svg.line(cx, cy, x, y, "#DDDDDD", 1.0, None);
            let (lx, ly) = pt(j, lo + 1.16 * (hi - lo));
            let anchor = if (lx - cx).abs() < 5.0 {
                "middle"
            } else if lx > cx {
                "start"
            } else {
                "end"
            };
            let short = label_of(m).split(' ').next().unwrap_or(m);
            svg.text(lx, ly + 4.0, short, 10.0, anchor, 0.0, false, "#333333");
        }
        let poly = |vals: &[f64]| -> Vec<(f64, f64)> { vals.iter().enumerate().map(|(j, v)| pt(j, *v)).collect() };
        let vals: Vec<f64> = metrics.iter().map(|m| mean(a, m)).collect();
        svg.polygon(&poly(&best), "none", 0.0, "#000000", 1.2, Some("5 3"));
        svg.polygon(&poly(&worst), "none", 0.0, "#888888", 1.2, Some("2 2"));
        let c = ctx.colour_of(a);
        svg.polygon(&poly(&vals), &c, 0.35, &c, 2.0, None);
        svg.text(cx, cy - radius - 26.0, a, 13.0, "middle", 0.0, true, "#000000");
        for (j, m) in metrics.iter().enumerate() {
            t_aug.push(a.clone());
            t_metric.push((*m).to_owned());
            t_val.push(vals[j]);
            t_best.push(best[j]);
            t_worst.push(worst[j]);
        }
    }
    let table = frame(
        "radar",
        vec![
            Column::new("augmentation".into(), t_aug),
            Column::new("metric".into(), t_metric),
            Column::new("mean".into(), t_val),
            Column::new("best".into(), t_best),
            Column::new("worst".into(), t_worst),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Mean of each radar metric (cosine, attention, patch, edge, detail) per augmentation; radial axis from {lo:.2} (centre) to {hi:.2}. Dashed: the best augmentation's mean per metric; dotted: the worst."
    ));
    Ok(Some(fig("radar", title, cap, svg.finish(), table)))
}

fn legend_inline(svg: &mut Svg, x: f64, y: f64, entries: &[(&str, &str, Option<&str>)]) {
    let mut xx = x;
    for (label, colour, dash) in entries {
        svg.line(xx, y, xx + 28.0, y, colour, 2.0, *dash);
        svg.text(xx + 34.0, y + 4.0, label, 12.0, "start", 0.0, false, "#000000");
        xx += 40.0 + 7.0 * label.len() as f64;
    }
}

/// Mean L2 distance per augmentation with one-standard-deviation error bars.
pub(crate) fn l2_bars(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    if ctx.data.metric_index("l2_distance").is_none() {
        return Ok(None);
    }
    let augs = ctx.sorted_by("l2_distance", false);
    let rows: Vec<(&String, &SummaryRow)> =
        augs.iter().filter_map(|a| ctx.row(a, "l2_distance").map(|r| (a, r))).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let title = "Mean L2 distance to the original embedding";
    let mut svg = Svg::new(960.0, 560.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 830.0, h: 560.0 - top - 130.0 };
    let hi = rows.iter().map(|(_, s)| s.mean + if s.std.is_finite() { s.std } else { 0.0 }).fold(0.0, f64::max);
    let (y0, y1, yt) = nice_domain(0.0, hi, 5);
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    for &t in &yt {
        let py = ys.map(t);
        svg.line(r.x, py, r.right(), py, "#E5E5E5", 1.0, None);
        svg.text(r.x - 8.0, py + 4.0, &chart::fmt_tick(t, step), 11.0, "end", 0.0, false, "#333333");
    }
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
    svg.text(r.x - 60.0, r.y + r.h / 2.0, "Mean L2 distance (\u{00b1} std)", 13.0, "middle", -90.0, false, "#000000");
    let bw = r.w / rows.len() as f64;
    for (i, (a, s)) in rows.iter().enumerate() {
        let x = r.x + bw * i as f64;
        let c = ctx.colour_of(a);
        svg.rect_title(
            x + bw * 0.15,
            ys.map(s.mean),
            bw * 0.7,
            ys.map(0.0) - ys.map(s.mean),
            &c,
            &format!("{a}: {:.4} \u{00b1} {:.4}", s.mean, s.std),
        );
        if s.std.is_finite() {
            let cx = x + bw / 2.0;
            svg.line(cx, ys.map((s.mean - s.std).max(y0)), cx, ys.map(s.mean + s.std), "#000000", 1.3, None);
            for v in [(s.mean - s.std).max(y0), s.mean + s.std] {
                svg.line(cx - 6.0, ys.map(v), cx + 6.0, ys.map(v), "#000000", 1.3, None);
            }
        }
        svg.text(x + bw / 2.0 + 4.0, r.bottom() + 16.0, a, 12.0, "end", -35.0, false, "#000000");
    }
    let table = frame(
        "l2_bars",
        vec![
            Column::new("augmentation".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("mean".into(), rows.iter().map(|r| r.1.mean).collect::<Vec<_>>()),
            Column::new("std".into(), rows.iter().map(|r| r.1.std).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.1.n).collect::<Vec<_>>()),
        ],
    )?;
    let cap = ctx.caption("Mean over images of the L2 distance between augmented and original embeddings; error bars are one standard deviation.".into());
    Ok(Some(fig("l2_bars", title, cap, svg.finish(), table)))
}

/// Metric x augmentation heatmap; columns in the given order.
pub(crate) fn heatmap(
    ctx: &Ctx<'_>,
    order: &[String],
    stem: &str,
    title: &str,
    how: &str,
) -> Result<Option<Figure>, ReportError> {
    let metrics: Vec<&str> = ctx.data.metrics.iter().map(|m| m.column).collect();
    if order.is_empty() || metrics.is_empty() {
        return Ok(None);
    }
    let cw = (820.0 / order.len() as f64).min(110.0);
    let ch = 40.0;
    let left = 180.0;
    let top = chart::header_height(ctx.random_init) + 20.0;
    let mut svg =
        Svg::new((left + cw * order.len() as f64 + 120.0).max(700.0), top + ch * metrics.len() as f64 + 130.0);
    header(&mut svg, title, ctx.random_init);
    let (mut ta, mut tm, mut tv, mut tn, mut tr, mut tc) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (ri, m) in metrics.iter().enumerate() {
        let y = top + ch * ri as f64;
        svg.text(left - 8.0, y + ch / 2.0 + 4.0, label_of(m), 12.0, "end", 0.0, false, "#000000");
        for (ci, a) in order.iter().enumerate() {
            let x = left + cw * ci as f64;
            let Some(row) = ctx.row(a, m) else { continue };
            let t = ctx.normalised(a, m).unwrap_or(f64::NAN);
            svg.rect_title(x, y, cw - 1.0, ch - 1.0, &chart::viridis(t), &format!("{a} / {m}: mean {:.4}", row.mean));
            svg.text(
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                &format!("{:.3}", row.mean),
                11.0,
                "middle",
                0.0,
                false,
                chart::text_on_viridis(t),
            );
            ta.push(a.clone());
            tm.push((*m).to_owned());
            tv.push(row.mean);
            tn.push(t);
            tr.push(ri as u32);
            tc.push(ci as u32);
        }
    }
    let bottom = top + ch * metrics.len() as f64;
    for (ci, a) in order.iter().enumerate() {
        let x = left + cw * (ci as f64 + 0.5);
        svg.text(x + 4.0, bottom + 14.0, a, 12.0, "end", -35.0, false, "#000000");
    }
    // Colour bar.
    let bx = left + cw * order.len() as f64 + 30.0;
    let bh = ch * metrics.len() as f64;
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + bh * i as f64 / 50.0, 16.0, bh / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx + 20.0, top + 10.0, "least shift", 10.0, "start", 0.0, false, "#000000");
    svg.text(bx + 20.0, top + bh, "most shift", 10.0, "start", 0.0, false, "#000000");
    let table = frame(
        stem,
        vec![
            Column::new("augmentation".into(), ta),
            Column::new("metric".into(), tm),
            Column::new("mean".into(), tv),
            Column::new("normalised".into(), tn),
            Column::new("row".into(), tr),
            Column::new("column".into(), tc),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Mean of each metric per augmentation (numbers); colour is the mean min-max normalised across augmentations within the metric, oriented so that yellow = closest to the original. {how}"
    ));
    Ok(Some(fig(stem, title, cap, svg.finish(), table)))
}

/// One panel per augmentation, in order of the overall score.
pub(crate) fn ranked_profiles(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let metrics: Vec<&str> = RADAR.iter().copied().filter(|m| ctx.data.metric_index(m).is_some()).collect();
    let scores = ctx.overall_scores();
    if metrics.is_empty() || scores.is_empty() {
        return Ok(None);
    }
    let title = "Augmentations ranked by overall similarity to the original";
    let cols = 3usize;
    let rows = scores.len().div_ceil(cols);
    let pw = 310.0;
    let ph = 40.0 + 22.0 * metrics.len() as f64 + 30.0;
    let top = chart::header_height(ctx.random_init) + 12.0;
    let mut svg = Svg::new(pw * cols as f64 + 20.0, top + ph * rows as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    let (mut tr, mut ta, mut ts, mut tm, mut tv) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, (a, score)) in scores.iter().enumerate() {
        let x0 = 10.0 + pw * (i % cols) as f64;
        let y0 = top + ph * (i / cols) as f64;
        svg.text(
            x0 + 8.0,
            y0 + 22.0,
            &format!("#{} {a} (score {score:.2})", i + 1),
            13.0,
            "start",
            0.0,
            true,
            "#000000",
        );
        let bx = x0 + 110.0;
        let bw = pw - 130.0;
        let xs = Scale::new(0.0, 1.0, bx, bx + bw);
        for (j, m) in metrics.iter().enumerate() {
            let y = y0 + 36.0 + 22.0 * j as f64;
            let v = ctx.row(a, m).map(|r| r.mean).unwrap_or(f64::NAN);
            svg.text(
                bx - 6.0,
                y + 12.0,
                label_of(m).split(' ').next().unwrap_or(m),
                11.0,
                "end",
                0.0,
                false,
                "#333333",
            );
            svg.rect(bx, y, bw, 16.0, "#F2F2F2", None);
            if v.is_finite() {
                svg.rect_title(bx, y, xs.map(v.clamp(0.0, 1.0)) - bx, 16.0, &ctx.colour_of(a), &format!("{m}: {v:.4}"));
                svg.text(bx + bw + 4.0, y + 12.0, &format!("{v:.2}"), 10.0, "start", 0.0, false, "#333333");
            }
            tr.push(i as u32 + 1);
            ta.push(a.clone());
            ts.push(*score);
            tm.push((*m).to_owned());
            tv.push(v);
        }
        let ya = y0 + 36.0 + 22.0 * metrics.len() as f64 + 4.0;
        svg.line(bx, ya, bx + bw, ya, "#999999", 1.0, None);
        svg.text(bx, ya + 12.0, "0", 9.0, "middle", 0.0, false, "#555555");
        svg.text(bx + bw, ya + 12.0, "1", 9.0, "middle", 0.0, false, "#555555");
    }
    let table = frame(
        "ranked_profiles",
        vec![
            Column::new("rank".into(), tr),
            Column::new("augmentation".into(), ta),
            Column::new("overall_score".into(), ts),
            Column::new("metric".into(), tm),
            Column::new("mean".into(), tv),
        ],
    )?;
    let cap = ctx.caption("Panels ordered by the overall score: the mean over the radar metrics of each augmentation's min-max normalised mean (1 = least shift of all augmentations). Bars show the raw metric means on a 0 to 1 axis.".into());
    Ok(Some(fig("ranked_profiles", title, cap, svg.finish(), table)))
}

/// Cosine similarity of 50 randomly chosen images (rows) under each augmentation.
pub(crate) fn sample_heatmap(ctx: &Ctx<'_>, seed: u64) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index("cosine_similarity") else {
        return Ok(None);
    };
    let n_img = ctx.data.image_ids.len();
    if n_img == 0 || ctx.data.augs.is_empty() {
        return Ok(None);
    }
    let mut idx: Vec<usize> = (0..n_img).collect();
    let mut rng = stats::SplitMix64::new(seed ^ 0x50);
    let k = n_img.min(50);
    for i in 0..k {
        let j = i + rng.below(n_img - i);
        idx.swap(i, j);
    }
    let mut chosen: Vec<usize> = idx[..k].to_vec();
    let row_mean = |img: usize| {
        let v: Vec<f64> = (0..ctx.data.augs.len()).filter_map(|a| ctx.data.value(mi, a, img)).collect();
        stats::mean(&v)
    };
    chosen.sort_by(|&a, &b| row_mean(b).total_cmp(&row_mean(a)));
    let vals: Vec<f64> = chosen
        .iter()
        .flat_map(|&img| (0..ctx.data.augs.len()).filter_map(move |a| ctx.data.value(mi, a, img)))
        .collect();
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let title = format!("Cosine similarity of {k} randomly chosen images");
    let cw = 70.0;
    let ch = 12.0;
    let left = 150.0;
    let top = chart::header_height(ctx.random_init) + 16.0;
    let mut svg = Svg::new((left + cw * ctx.data.augs.len() as f64 + 150.0).max(700.0), top + ch * k as f64 + 120.0);
    header(&mut svg, &title, ctx.random_init);
    let (mut ti, mut ta, mut tv, mut tr) = (vec![], vec![], vec![], vec![]);
    for (r, &img) in chosen.iter().enumerate() {
        let y = top + ch * r as f64;
        svg.text(
            left - 6.0,
            y + ch - 2.0,
            &format!("{:016x}", ctx.data.image_ids[img]),
            9.0,
            "end",
            0.0,
            false,
            "#333333",
        );
        for (ai, a) in ctx.data.augs.iter().enumerate() {
            let v = ctx.data.value(mi, ai, img);
            let t = v.map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 1.0 });
            let fill = t.map(chart::viridis).unwrap_or_else(|| "#FFFFFF".into());
            svg.rect_title(
                left + cw * ai as f64,
                y,
                cw - 1.0,
                ch - 1.0,
                &fill,
                &format!("{a}: {}", v.map(|v| format!("{v:.4}")).unwrap_or("missing".into())),
            );
            ti.push(ctx.data.image_ids[img]);
            ta.push(a.clone());
            tv.push(v);
            tr.push(r as u32);
        }
    }
    let bottom = top + ch * k as f64;
    for (ai, a) in ctx.data.augs.iter().enumerate() {
        svg.text(left + cw * (ai as f64 + 0.5) + 4.0, bottom + 14.0, a, 11.0, "end", -35.0, false, "#000000");
    }
    let bx = left + cw * ctx.data.augs.len() as f64 + 24.0;
    let bh = (ch * k as f64).max(100.0);
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + bh * i as f64 / 50.0, 16.0, bh / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx + 20.0, top + 10.0, &format!("{hi:.3}"), 10.0, "start", 0.0, false, "#000000");
    svg.text(bx + 20.0, top + bh, &format!("{lo:.3}"), 10.0, "start", 0.0, false, "#000000");
    svg.text(bx + 20.0, top + bh / 2.0, "cosine", 10.0, "start", 0.0, false, "#000000");
    let table = frame(
        "sample_heatmap",
        vec![
            Column::new("image_id".into(), ti),
            Column::new("augmentation".into(), ta),
            Column::new("cosine_similarity".into(), tv),
            Column::new("row".into(), tr),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Per-image cosine similarity for {k} images drawn with the report seed, rows sorted by their mean; colour scale from {lo:.3} to {hi:.3}."
    ));
    Ok(Some(fig("sample_heatmap", &title, cap, svg.finish(), table)))
}
