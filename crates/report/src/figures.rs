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

/// One augmentation's panel of the cosine-distribution figure.
struct CosPanel {
    aug: String,
    n: usize,
    mean: f64,
    std: f64,
    lo: f64,
    hi: f64,
    edges: Vec<f64>,
    counts: Vec<u64>,
    /// numpy `density=True` heights; None for a constant sample (drawn as a spike).
    density: Option<Vec<f64>>,
    kde: Option<(Vec<f64>, Vec<f64>)>,
}

impl CosPanel {
    fn new(aug: &str, v: &[f64]) -> Self {
        let n = v.len();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut edges, counts) = stats::histogram_auto(v);
        let density = if n > 0 && hi > lo {
            Some(counts.iter().zip(edges.windows(2)).map(|(&c, e)| c as f64 / (e[1] - e[0]) / n as f64).collect())
        } else {
            // numpy widens a constant sample to x +/- 0.5; a bar that wide would
            // claim a spread the data does not have, so record the point itself.
            if n > 0 {
                edges = vec![lo, hi];
            }
            None
        };
        let kde =
            (n >= 2).then(|| stats::linspace(lo, hi, 100)).and_then(|g| stats::gaussian_kde(v, &g).map(|d| (g, d)));
        Self {
            aug: aug.to_owned(),
            n,
            mean: stats::mean(v),
            std: stats::std_dev(v, 1),
            lo,
            hi,
            edges,
            counts,
            density,
            kde,
        }
    }

    fn y_max(&self) -> f64 {
        let h = self.density.iter().flatten().copied().fold(0.0, f64::max);
        let k = self.kde.iter().flat_map(|(_, d)| d.iter().copied()).fold(0.0, f64::max);
        h.max(k)
    }
}

/// Cosine similarity per augmentation as small multiples: histogram (numpy
/// "auto" bins, density scale) with the Gaussian KDE (Scott's bandwidth, on
/// 100 points between the sample's minimum and maximum, like seaborn's
/// `histplot(kde=True)`), the mean, and mean +/- std. Each panel has its own
/// axes.
pub(crate) fn cosine_distribution(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index("cosine_similarity") else {
        return Ok(None);
    };
    // Most disruptive first, as in the headline table; augmentations without
    // values come last with an empty panel.
    let mut augs = ctx.sorted_by("cosine_similarity", false);
    augs.extend(ctx.data.augs.iter().filter(|a| !augs.contains(a)).cloned().collect::<Vec<_>>());
    let panels: Vec<CosPanel> = augs
        .iter()
        .map(|a| {
            let ai = ctx.data.augs.iter().position(|x| x == a).unwrap_or(0);
            CosPanel::new(a, &ctx.data.values(mi, ai))
        })
        .collect();
    if panels.iter().all(|p| p.n == 0) {
        return Ok(None);
    }
    let title = "Distribution of the cosine similarity to the original embedding";
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols);
    let (pw, ph) = (310.0, 222.0);
    let legend_y = chart::header_height(ctx.random_init) + 14.0;
    let top = legend_y + 22.0;
    let width = (20.0 + pw * cols as f64).max(700.0);
    let mut svg = Svg::new(width, top + ph * rows as f64 + 8.0);
    header(&mut svg, title, ctx.random_init);

    // Figure legend: what the marks are (the panel titles carry the numbers).
    let mut lx = 20.0;
    svg.rect(lx, legend_y - 9.0, 18.0, 12.0, "#999999", None);
    svg.text(lx + 24.0, legend_y + 1.0, "histogram (density, numpy 'auto' bins)", 11.0, "start", 0.0, false, "#000000");
    lx += 270.0;
    svg.line(lx, legend_y - 3.0, lx + 22.0, legend_y - 3.0, "#555555", 2.2, None);
    svg.text(lx + 28.0, legend_y + 1.0, "Gaussian KDE (Scott)", 11.0, "start", 0.0, false, "#000000");
    lx += 160.0;
    svg.line(lx + 11.0, legend_y - 10.0, lx + 11.0, legend_y + 3.0, "#000000", 1.3, Some("4 3"));
    svg.text(lx + 20.0, legend_y + 1.0, "mean", 11.0, "start", 0.0, false, "#000000");
    lx += 64.0;
    svg.line(lx, legend_y - 3.0, lx + 22.0, legend_y - 3.0, "#000000", 1.3, None);
    for x in [lx, lx + 22.0] {
        svg.line(x, legend_y - 7.0, x, legend_y + 1.0, "#000000", 1.3, None);
    }
    svg.text(lx + 28.0, legend_y + 1.0, "mean \u{00b1} std", 11.0, "start", 0.0, false, "#000000");

    let (mut t_panel, mut t_aug, mut t_n, mut t_mean, mut t_std) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut t_kind, mut t_left, mut t_right, mut t_count, mut t_dens) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, p) in panels.iter().enumerate() {
        let (px0, py0) = (10.0 + pw * (i % cols) as f64, top + ph * (i / cols) as f64);
        let r = Rect { x: px0 + 62.0, y: py0 + 50.0, w: pw - 80.0, h: 118.0 };
        let colour = ctx.colour_of(&p.aug);
        svg.rect(px0 + 8.0, py0 + 5.0, 12.0, 12.0, &colour, None);
        svg.text(px0 + 26.0, py0 + 15.0, &p.aug, 13.0, "start", 0.0, true, "#000000");
        let stat_line = if p.n == 0 {
            "no values".to_owned()
        } else if p.std.is_finite() {
            let d = chart::decimals_for(p.std);
            format!("mean {:.d$}, std {:.d$} (n = {})", p.mean, p.std, p.n)
        } else {
            format!("mean {:.4}, std undefined (n = {})", p.mean, p.n)
        };
        svg.text(px0 + 26.0, py0 + 31.0, &stat_line, 11.0, "start", 0.0, false, "#333333");
        // Each panel zooms on its own sample: on one shared axis the
        // near-invariant augmentations shrink to a single pixel column.
        let (x0, x1, xt) = match p.n {
            0 => nice_domain(0.0, 1.0, 4),
            _ if p.hi > p.lo => nice_domain(p.lo, p.hi, 3),
            _ => nice_domain(p.lo - 0.005, p.hi + 0.005, 3),
        };
        let xstep = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
        let xs = Scale::new(x0, x1, r.x, r.right());
        let ym = p.y_max();
        let (y0, y1, yt) = nice_domain(0.0, if ym > 0.0 { ym } else { 1.0 }, 3);
        let ys = Scale::new(y0, y1, r.bottom(), r.y);
        let ystep = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        // A constant sample has no density scale to show.
        for &t in yt.iter().filter(|_| p.density.is_some()) {
            let py = ys.map(t);
            svg.line(r.x, py, r.right(), py, "#EEEEEE", 1.0, None);
            svg.line(r.x - 4.0, py, r.x, py, "#333333", 1.0, None);
            svg.text(r.x - 6.0, py + 3.5, &chart::fmt_tick(t, ystep), 10.0, "end", 0.0, false, "#333333");
        }
        for &t in &xt {
            let px = xs.map(t);
            svg.line(px, r.bottom(), px, r.bottom() + 4.0, "#333333", 1.0, None);
            svg.text(px, r.bottom() + 15.0, &chart::fmt_tick(t, xstep), 10.0, "middle", 0.0, false, "#333333");
        }
        svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
        svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
        svg.text(r.x + r.w / 2.0, r.bottom() + 31.0, "Cosine similarity", 11.0, "middle", 0.0, false, "#000000");
        if i % cols == 0 {
            svg.text(px0 + 14.0, r.y + r.h / 2.0, "Density", 11.0, "middle", -90.0, false, "#000000");
        }
        if p.n == 0 {
            continue;
        }
        match &p.density {
            Some(dens) => {
                for (j, d) in dens.iter().enumerate() {
                    let (a, b) = (xs.map(p.edges[j]), xs.map(p.edges[j + 1]));
                    let tip = format!("{:.4} to {:.4}: {} images", p.edges[j], p.edges[j + 1], p.counts[j]);
                    svg.rect_alpha(a, ys.map(*d), b - a, ys.map(0.0) - ys.map(*d), &colour, 0.45, &tip);
                }
            }
            None => {
                let x = xs.map(p.lo);
                svg.line(x, r.bottom(), x, r.y, &colour, 3.0, None);
                let text = if p.n == 1 {
                    format!("one value: {:.4}", p.lo)
                } else {
                    format!("all {} values = {:.4}", p.n, p.lo)
                };
                let (tx, anchor) = if x + 110.0 > r.right() { (x - 6.0, "end") } else { (x + 6.0, "start") };
                svg.text(tx, r.y + 10.0, &text, 10.0, anchor, 0.0, false, "#333333");
            }
        }
        if let Some((g, d)) = &p.kde {
            let pts: Vec<(f64, f64)> = g.iter().zip(d).map(|(x, y)| (xs.map(*x), ys.map(*y))).collect();
            svg.polyline(&pts, &colour, 2.2);
        }
        let mx = xs.map(p.mean);
        svg.line(mx, r.bottom(), mx, r.y, "#000000", 1.3, Some("4 3"));
        if p.std.is_finite() {
            // Above the plot area, so it never covers the bars.
            let sy = r.y - 9.0;
            let (lo, hi) = (p.mean - p.std, p.mean + p.std);
            svg.line(xs.map(lo.max(x0)), sy, xs.map(hi.min(x1)), sy, "#000000", 1.3, None);
            // An end cap only where the interval ends inside the axis.
            for v in [lo, hi].into_iter().filter(|v| (x0..=x1).contains(v)) {
                svg.line(xs.map(v), sy - 4.0, xs.map(v), sy + 4.0, "#000000", 1.3, None);
            }
            svg.circle(mx, sy, 2.5, "#000000", None);
        }

        let mut push = |kind: &str, left: f64, right: f64, count: Option<u64>, dens: Option<f64>| {
            t_panel.push(i as u32);
            t_aug.push(p.aug.clone());
            t_n.push(p.n as u64);
            t_mean.push(p.mean);
            t_std.push(p.std.is_finite().then_some(p.std));
            t_kind.push(kind.to_owned());
            t_left.push(left);
            t_right.push(right);
            t_count.push(count);
            t_dens.push(dens);
        };
        for (j, &c) in p.counts.iter().enumerate() {
            push("histogram", p.edges[j], p.edges[j + 1], Some(c), p.density.as_ref().map(|d| d[j]));
        }
        if let Some((g, d)) = &p.kde {
            for (x, y) in g.iter().zip(d) {
                push("kde", *x, *x, None, Some(*y));
            }
        }
    }
    let table = frame(
        "cosine_distribution",
        vec![
            Column::new("panel".into(), t_panel),
            Column::new("augmentation".into(), t_aug),
            Column::new("n".into(), t_n),
            Column::new("mean".into(), t_mean),
            Column::new("std".into(), t_std),
            Column::new("kind".into(), t_kind),
            Column::new("x_left".into(), t_left),
            Column::new("x_right".into(), t_right),
            Column::new("count".into(), t_count),
            Column::new("density".into(), t_dens),
        ],
    )?;
    let cap = ctx.caption("Per-image cosine similarity between each augmented embedding and the original's, one panel per augmentation, most disruptive first. Bars: histogram on the density scale (numpy bins=\"auto\"); line: Gaussian kernel density (Scott's bandwidth, scipy.stats.gaussian_kde) between the sample's minimum and maximum; dashed: mean; bar above each panel: mean \u{00b1} one standard deviation (ddof = 1). Each panel has its own axes, zoomed on its sample, so compare locations by the means in the panel titles; an interval running off the axis has no end cap. A sample whose values are all equal is drawn as a single line.".into());
    Ok(Some(fig("cosine_distribution", title, cap, svg.finish(), table)))
}

/// Gaussian KDE (Scott's bandwidth) of the L2 distance per augmentation.
pub(crate) fn l2_kde(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index("l2_distance") else {
        return Ok(None);
    };
    let title = "Kernel density of the L2 distance to the original embedding";
    let mut curves = Vec::new();
    let mut skipped = Vec::new();
    let (mut a_col, mut x_col, mut y_col) = (vec![], vec![], vec![]);
    for (ai, a) in ctx.data.augs.iter().enumerate() {
        let v = ctx.data.values(mi, ai);
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let grid = stats::linspace(lo, hi, 100);
        // scipy's KDE is undefined for fewer than two values or zero variance.
        let Some(dens) = stats::gaussian_kde(&v, &grid) else {
            skipped.push(a.as_str());
            continue;
        };
        for (x, y) in grid.iter().zip(&dens) {
            a_col.push(a.clone());
            x_col.push(*x);
            y_col.push(*y);
        }
        curves.push((a.clone(), grid, dens));
    }
    let table = |a: Vec<String>, x: Vec<f64>, y: Vec<f64>| {
        frame(
            "l2_kde",
            vec![
                Column::new("augmentation".into(), a),
                Column::new("l2_distance".into(), x),
                Column::new("density".into(), y),
            ],
        )
    };
    let cap = ctx.caption("Gaussian kernel density (Scott's bandwidth, as scipy.stats.gaussian_kde) of the L2 distance between augmented and original embeddings, on 100 points between each augmentation's minimum and maximum.".into());
    if curves.is_empty() {
        // Keep the figure so the page says why there is nothing to see.
        let mut svg = Svg::new(960.0, 200.0);
        let top = header(&mut svg, title, ctx.random_init);
        svg.text(
            480.0,
            top + 60.0,
            "No density to draw: a KDE needs at least two distinct L2 distances per augmentation.",
            14.0,
            "middle",
            0.0,
            false,
            "#333333",
        );
        return Ok(Some(fig("l2_kde", title, cap, svg.finish(), table(vec![], vec![], vec![])?)));
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
    if !skipped.is_empty() {
        let y = r.y + 20.0 * entries.len() as f64 + 16.0;
        svg.text(r.right() + 24.0, y, "No curve (under two", 11.0, "start", 0.0, false, "#333333");
        svg.text(r.right() + 24.0, y + 14.0, "distinct values):", 11.0, "start", 0.0, false, "#333333");
        for (i, a) in skipped.iter().enumerate() {
            svg.text(r.right() + 24.0, y + 28.0 + 14.0 * i as f64, a, 11.0, "start", 0.0, false, "#333333");
        }
    }
    Ok(Some(fig("l2_kde", title, cap, svg.finish(), table(a_col, x_col, y_col)?)))
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
    let title = format!("Dendrogram of the {what} ({} linkage)", c.method.title());
    let mut svg = Svg::new(960.0, 640.0);
    let top = header(&mut svg, &title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 820.0, h: 640.0 - top - 190.0 };
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
        &format!("{} merge distance (of mean cosine distances)", c.method.title()),
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
    let cut = format!("threshold {:.4} (0.7 \u{00d7} largest merge): {k} clusters", c.threshold);
    // A white box behind the label so links crossing it stay legible around it.
    let lw = 6.6 * cut.chars().count() as f64;
    svg.rect(r.right() - lw - 8.0, ty - 20.0, lw + 6.0, 17.0, "#FFFFFF", None);
    svg.text(r.right() - 4.0, ty - 7.0, &cut, 12.0, "end", 0.0, false, "#B00020");
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
    // Members of each flat cluster, in the colour of its links.
    let mut ly = r.bottom() + 118.0;
    let mut lx = r.x;
    svg.text(lx, ly, "Clusters:", 12.0, "start", 0.0, true, "#000000");
    lx += 70.0;
    for cl in 1..=k as u32 {
        let members: Vec<&str> =
            c.leaf_order.iter().filter(|&&i| c.clusters[i] == cl).map(|&i| c.labels[i].as_str()).collect();
        let text = format!("{cl}: {}", members.join(", "));
        let w = 6.6 * text.chars().count() as f64 + 18.0;
        if lx + w > svg.width - 10.0 && lx > r.x + 70.0 {
            ly += 16.0;
            lx = r.x + 70.0;
        }
        let singleton = members.len() == 1;
        let col = if singleton { "#777777" } else { CLUSTER_COLOURS[(cl as usize - 1) % CLUSTER_COLOURS.len()] };
        svg.rect(lx, ly - 9.0, 10.0, 10.0, col, None);
        svg.text(lx + 14.0, ly, &text, 12.0, "start", 0.0, false, "#000000");
        lx += w + 10.0;
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
        c.method.title(), c.threshold
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
    // Most disruptive first, as everywhere in the report.
    let augs: Vec<String> = ctx.overall_scores().into_iter().rev().map(|(a, _)| a).collect();
    let n = augs.len();
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (cell, cell_h) = (310.0, 280.0);
    let width = cell * cols as f64 + 20.0;
    let top0 = chart::header_height(ctx.random_init);
    let top = top0 + 34.0;
    let mut svg = Svg::new(width.max(700.0), top + cell_h * rows as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    let mean = |a: &str, m: &str| ctx.row(a, m).map(|r| r.mean).unwrap_or(f64::NAN);
    let finite_or_nan = |v: f64| if v.is_finite() { v } else { f64::NAN };
    let best: Vec<f64> = metrics
        .iter()
        .map(|m| augs.iter().map(|a| mean(a, m)).filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max))
        .map(finite_or_nan)
        .collect();
    let worst: Vec<f64> = metrics
        .iter()
        .map(|m| augs.iter().map(|a| mean(a, m)).filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min))
        .map(finite_or_nan)
        .collect();
    // Radial axis from a round value below the worst mean to 1 (or the best):
    // the centre is not zero, so the rings are labelled.
    let w_min = worst.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::min);
    let b_max = best.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::max);
    let (lo, hi, rings) = nice_domain(w_min.min(b_max - 0.05), b_max, 3);
    let (lo, hi) = (lo.max(w_min.min(0.0)), hi.max(lo + 1e-9));
    let ring_step = if rings.len() > 1 { rings[1] - rings[0] } else { 1.0 };
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
    for (i, a) in augs.iter().enumerate() {
        let cx = 10.0 + cell * (i % cols) as f64 + cell / 2.0;
        let cy = top + cell_h * (i / cols) as f64 + cell_h / 2.0 + 10.0;
        let pt = |j: usize, v: f64| {
            let ang = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * j as f64 / k as f64;
            let rr = if v.is_finite() { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * radius } else { 0.0 };
            (cx + rr * ang.cos(), cy + rr * ang.sin())
        };
        for &ring in rings.iter().filter(|&&r| r > lo + 1e-12) {
            let pts: Vec<(f64, f64)> = (0..k).map(|j| pt(j, ring)).collect();
            svg.polygon(&pts, "none", 0.0, "#DDDDDD", 1.0, None);
        }
        for (j, m) in metrics.iter().enumerate() {
            let (x, y) = pt(j, hi);
            svg.line(cx, cy, x, y, "#DDDDDD", 1.0, None);
            let ang = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * j as f64 / k as f64;
            let (lx, ly) = (cx + (radius + 10.0) * ang.cos(), cy + (radius + 10.0) * ang.sin());
            let anchor = if (lx - cx).abs() < 5.0 {
                "middle"
            } else if lx > cx {
                "start"
            } else {
                "end"
            };
            let ly = if ang.sin() < -0.9 { ly - 2.0 } else { ly + 4.0 + 6.0 * ang.sin().max(0.0) };
            let short = label_of(m).split(' ').next().unwrap_or(m);
            // A missing mean is drawn at the centre, so say it is missing.
            let short = if mean(a, m).is_finite() { short.to_owned() } else { format!("{short} (n/a)") };
            svg.text(lx, ly, &short, 10.0, anchor, 0.0, false, "#333333");
        }
        // Ring values along the upper-left gap between the first and last spokes.
        for &ring in rings.iter().filter(|&&r| r >= lo - 1e-12) {
            let rr = ((ring - lo) / (hi - lo)).clamp(0.0, 1.0) * radius;
            let ang = -std::f64::consts::FRAC_PI_2 - std::f64::consts::PI / k as f64;
            let (x, y) = (cx + rr * ang.cos(), cy + rr * ang.sin());
            svg.text(x, y + 3.0, &chart::fmt_tick(ring, ring_step), 8.5, "middle", 0.0, false, "#888888");
        }
        let poly = |vals: &[f64]| -> Vec<(f64, f64)> { vals.iter().enumerate().map(|(j, v)| pt(j, *v)).collect() };
        let vals: Vec<f64> = metrics.iter().map(|m| mean(a, m)).collect();
        svg.polygon(&poly(&best), "none", 0.0, "#000000", 1.2, Some("5 3"));
        svg.polygon(&poly(&worst), "none", 0.0, "#888888", 1.2, Some("2 2"));
        let c = ctx.colour_of(a);
        svg.polygon(&poly(&vals), &c, 0.35, &c, 2.0, None);
        svg.text(cx, cy - radius - 32.0, a, 14.0, "middle", 0.0, true, "#000000");
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
        "Mean of each radar metric (cosine, attention, patch, edge, detail) per augmentation, most disruptive (lowest overall score) first; radial axis from {lo:.2} (centre) to {hi:.2}, rings labelled. Dashed: the best augmentation's mean per metric; dotted: the worst."
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
    // Most disruptive (largest distance) first, as everywhere in the report.
    let augs = ctx.sorted_by("l2_distance", true);
    let rows: Vec<(&String, &SummaryRow)> =
        augs.iter().filter_map(|a| ctx.row(a, "l2_distance").map(|r| (a, r))).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let title = "Mean L2 distance to the original embedding";
    let mut svg = Svg::new(960.0, 580.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 830.0, h: 580.0 - top - 150.0 };
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
    svg.text(
        r.x + r.w / 2.0,
        r.bottom() + 118.0,
        "Augmentation, largest distance first",
        13.0,
        "middle",
        0.0,
        false,
        "#000000",
    );
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
            &if s.std.is_finite() {
                format!("{a}: {:.4} \u{00b1} {:.4}", s.mean, s.std)
            } else {
                format!("{a}: {:.4} (std undefined for n = {})", s.mean, s.n)
            },
        );
        if s.std.is_finite() {
            let cx = x + bw / 2.0;
            let (lo, hi) = (ys.map((s.mean - s.std).max(y0)), ys.map(s.mean + s.std));
            // A white halo keeps the bar readable over dark fills.
            for (colour, w) in [("#FFFFFF", 3.5), ("#000000", 1.3)] {
                svg.line(cx, lo, cx, hi, colour, w, None);
                for y in [lo, hi] {
                    svg.line(cx - 6.0, y, cx + 6.0, y, colour, w, None);
                }
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
    let cap = ctx.caption("Mean over images of the L2 distance between augmented and original embeddings, largest first; error bars are one standard deviation (ddof = 1), cut at zero.".into());
    Ok(Some(fig("l2_bars", title, cap, svg.finish(), table)))
}

/// Metric x augmentation heatmap; columns in the given order.
pub(crate) fn heatmap(
    ctx: &Ctx<'_>,
    order: &[String],
    stem: &str,
    title: &str,
    how: &str,
    tree: Option<&Clustering>,
) -> Result<Option<Figure>, ReportError> {
    let metrics: Vec<&str> = ctx.data.metrics.iter().map(|m| m.column).collect();
    if order.is_empty() || metrics.is_empty() {
        return Ok(None);
    }
    let cw = (820.0 / order.len() as f64).min(110.0);
    let ch = 40.0;
    let left = 180.0;
    let tree_h = if tree.is_some() { 100.0 } else { 0.0 };
    let top = chart::header_height(ctx.random_init) + 20.0 + tree_h;
    let mut svg =
        Svg::new((left + cw * order.len() as f64 + 150.0).max(700.0), top + ch * metrics.len() as f64 + 120.0);
    header(&mut svg, title, ctx.random_init);
    if let Some(c) = tree.filter(|c| c.labels.len() >= 2 && c.labels.len() == order.len()) {
        // The augmentation dendrogram over the columns (leaf x = 5, 15, ... in scipy units).
        let ymax = c.merges.iter().map(|m| m.distance).fold(0.0, f64::max);
        let ys = Scale::new(0.0, if ymax > 0.0 { ymax } else { 1.0 }, top - 6.0, top - tree_h + 8.0);
        for l in crate::cluster::dendrogram_links(&c.merges, c.labels.len()) {
            let pts: Vec<(f64, f64)> = (0..4).map(|j| (left + cw * l.x[j] / 10.0, ys.map(l.y[j]))).collect();
            svg.polyline(&pts, "#555555", 1.5);
        }
        let ty = ys.map(c.threshold);
        svg.line(left, ty, left + cw * order.len() as f64, ty, "#B00020", 1.2, Some("6 4"));
        svg.text(left - 8.0, ty + 4.0, "cut (0.7 \u{00d7} max)", 10.0, "end", 0.0, false, "#B00020");
    }
    let (mut ta, mut tm, mut tv, mut tn, mut tr, mut tc) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (ri, m) in metrics.iter().enumerate() {
        let y = top + ch * ri as f64;
        svg.text(left - 8.0, y + ch / 2.0 + 4.0, label_of(m), 12.0, "end", 0.0, false, "#000000");
        for (ci, a) in order.iter().enumerate() {
            let x = left + cw * ci as f64;
            let Some(row) = ctx.row(a, m) else {
                svg.rect_title(x, y, cw - 1.0, ch - 1.0, "#F2F2F2", &format!("{a} / {m}: no values"));
                svg.text(x + cw / 2.0, y + ch / 2.0 + 4.0, "n/a", 10.0, "middle", 0.0, false, "#777777");
                continue;
            };
            let t = ctx.normalised(a, m).unwrap_or(f64::NAN);
            svg.rect_title(x, y, cw - 1.0, ch - 1.0, &chart::viridis(t), &format!("{a} / {m}: mean {:.4}", row.mean));
            // Numbers only where they fit; the table and the hover title have them all.
            if cw >= 44.0 {
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
            }
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
        let x = left + cw * ci as f64;
        svg.rect(x, bottom + 2.0, cw - 1.0, 5.0, &ctx.colour_of(a), None);
        svg.text(x + cw / 2.0 + 4.0, bottom + 20.0, a, 12.0, "end", -35.0, false, "#000000");
    }
    // Colour bar.
    let bx = left + cw * order.len() as f64 + 24.0;
    let bh = ch * metrics.len() as f64;
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + bh * i as f64 / 50.0, 16.0, bh / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx + 20.0, top + 10.0, "least shift", 10.0, "start", 0.0, false, "#000000");
    svg.text(bx + 20.0, top + bh, "most shift", 10.0, "start", 0.0, false, "#000000");
    svg.text(bx + 20.0, top + bh / 2.0 - 4.0, "normalised", 10.0, "start", 0.0, false, "#555555");
    svg.text(bx + 20.0, top + bh / 2.0 + 9.0, "within metric", 10.0, "start", 0.0, false, "#555555");
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
    // Rank 1 = most disruptive (lowest overall score), as in the headline table.
    let scores: Vec<(String, f64)> = ctx.overall_scores().into_iter().rev().collect();
    if metrics.is_empty() || scores.is_empty() {
        return Ok(None);
    }
    let title = "Augmentations ranked by overall shift (1 = most disruptive)";
    let cols = scores.len().clamp(1, 3);
    let rows = scores.len().div_ceil(cols);
    let pw = 320.0;
    let ph = 40.0 + 22.0 * metrics.len() as f64 + 30.0;
    let top = chart::header_height(ctx.random_init) + 12.0;
    let mut svg = Svg::new((pw * cols as f64 + 20.0).max(700.0), top + ph * rows as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    let (mut tr, mut ta, mut ts, mut tm, mut tv) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, (a, score)) in scores.iter().enumerate() {
        let x0 = 10.0 + pw * (i % cols) as f64;
        let y0 = top + ph * (i / cols) as f64;
        svg.text(
            x0 + 8.0,
            y0 + 22.0,
            &format!("#{} {a} (overall score {score:.2})", i + 1),
            13.0,
            "start",
            0.0,
            true,
            "#000000",
        );
        let bx = x0 + 110.0;
        let bw = pw - 145.0;
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
    let cap = ctx.caption("Panels ranked by the overall score, most disruptive first: the mean over the radar metrics of each augmentation's min-max normalised mean (0 = most shift, 1 = least shift of all augmentations). Bars show the raw metric means on a 0 to 1 axis.".into());
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
    if vals.is_empty() {
        return Ok(None);
    }
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (title, which) = if n_img > k {
        (
            format!("Cosine similarity of {k} randomly chosen images"),
            format!("{k} of {n_img} images drawn with the report seed"),
        )
    } else {
        (format!("Cosine similarity of all {k} images"), format!("all {k} images (at most 50 are drawn at random)"))
    };
    let cw = 70.0;
    let ch = 14.0;
    let left = 160.0;
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
            10.0,
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
        let x = left + cw * ai as f64;
        svg.rect(x, bottom + 2.0, cw - 1.0, 5.0, &ctx.colour_of(a), None);
        svg.text(x + cw / 2.0 + 4.0, bottom + 20.0, a, 11.0, "end", -35.0, false, "#000000");
    }
    svg.text(
        24.0,
        top + ch * k as f64 / 2.0,
        if k >= 16 { "Image (rows by mean, highest first)" } else { "Image" },
        11.0,
        "middle",
        -90.0,
        false,
        "#000000",
    );
    // Colour bar with the end values and round ticks between them.
    let bx = left + cw * ctx.data.augs.len() as f64 + 24.0;
    let bh = (ch * k as f64).max(120.0);
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + bh * i as f64 / 50.0, 16.0, bh / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx, top - 6.0, "Cosine similarity", 10.0, "start", 0.0, false, "#000000");
    let dec = chart::decimals_for(hi - lo);
    let bar = Scale::new(hi, lo, top, top + bh);
    svg.text(bx + 20.0, bar.map(hi) + 8.0, &format!("{hi:.dec$}"), 10.0, "start", 0.0, false, "#000000");
    if hi > lo {
        svg.text(bx + 20.0, bar.map(lo), &format!("{lo:.dec$}"), 10.0, "start", 0.0, false, "#000000");
        let (_, _, ticks) = nice_domain(lo, hi, 4);
        let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
        for t in ticks.into_iter().filter(|t| *t > lo && *t < hi) {
            let y = bar.map(t);
            // Skip ticks that would collide with the end labels.
            if y - bar.map(hi) > 16.0 && bar.map(lo) - y > 16.0 {
                svg.line(bx + 16.0, y, bx + 19.0, y, "#000000", 1.0, None);
                svg.text(bx + 22.0, y + 3.5, &chart::fmt_tick(t, step), 9.0, "start", 0.0, false, "#333333");
            }
        }
    }
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
        "Per-image cosine similarity to the original embedding for {which}, one row per image (labelled by image_id), rows sorted by their mean; colour scale from the lowest ({lo:.4}) to the highest ({hi:.4}) value shown."
    ));
    Ok(Some(fig("sample_heatmap", &title, cap, svg.finish(), table)))
}
