//! The distribution of the cosine similarity: one small histogram + KDE panel
//! per augmentation.

use polars::prelude::*;

use super::{Ctx, Figure, fig, floor_caption};
use crate::ReportError;
use crate::chart::{self, Anchor, Rect, Scale, Svg, TextStyle, header, nice_domain};
use crate::floor::Band;
use crate::io::frame;
use crate::stats;
use clipshift_tables::schema::{self, COSINE_SIMILARITY};

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
    let Some(mi) = ctx.data.metric_index(COSINE_SIMILARITY) else {
        return Ok(None);
    };
    // Most disruptive first, as in the headline table; augmentations without
    // values come last with an empty panel.
    let mut augs = ctx.sorted_by(COSINE_SIMILARITY, false);
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
    let legend_y = chart::header_height(ctx.random_init) + 14.0;
    let top = legend_y + 22.0;
    let width = (20.0 + PANEL_W * cols as f64).max(700.0);
    let mut svg = Svg::new(width, top + PANEL_H * rows as f64 + 8.0);
    header(&mut svg, title, ctx.random_init);
    marks_legend(&mut svg, legend_y);
    let mut table = CosTable::default();
    for (i, p) in panels.iter().enumerate() {
        let origin = (10.0 + PANEL_W * (i % cols) as f64, top + PANEL_H * (i / cols) as f64);
        p.draw(&mut svg, origin, &ctx.colour_of(&p.aug), i % cols == 0, ctx.floor.map(|f| f.band));
        table.push_panel(i, p);
    }
    let cap = ctx.caption(format!("Per-image cosine similarity between each augmented embedding and the original's, one panel per augmentation, most disruptive first. Bars: histogram on the density scale (numpy bins=\"auto\"); line: Gaussian kernel density (Scott's bandwidth, scipy.stats.gaussian_kde) between the sample's minimum and maximum; dashed: mean; bar above each panel: mean \u{00b1} one standard deviation (ddof = 1). Each panel has its own axes, zoomed on its sample, so compare locations by the means in the panel titles; an interval running off the axis has no end cap. A sample whose values are all equal is drawn as a single line.{}", floor_caption(ctx)));
    Ok(Some(fig("cosine_distribution", title, cap, svg.finish(), table.frame()?)))
}

/// Size of one panel.
const PANEL_W: f64 = 310.0;
const PANEL_H: f64 = 222.0;

/// The figure's legend: what the marks are (the panel titles carry the numbers).
fn marks_legend(svg: &mut Svg, y: f64) {
    let mut lx = 20.0;
    svg.rect(lx, y - 9.0, 18.0, 12.0, "#999999", None);
    svg.text(lx + 24.0, y + 1.0, "histogram (density, numpy 'auto' bins)", TextStyle::size(11.0));
    lx += 270.0;
    svg.line(lx, y - 3.0, lx + 22.0, y - 3.0, "#555555", 2.2, None);
    svg.text(lx + 28.0, y + 1.0, "Gaussian KDE (Scott)", TextStyle::size(11.0));
    lx += 160.0;
    svg.line(lx + 11.0, y - 10.0, lx + 11.0, y + 3.0, "#000000", 1.3, Some("4 3"));
    svg.text(lx + 20.0, y + 1.0, "mean", TextStyle::size(11.0));
    lx += 64.0;
    svg.line(lx, y - 3.0, lx + 22.0, y - 3.0, "#000000", 1.3, None);
    for x in [lx, lx + 22.0] {
        svg.line(x, y - 7.0, x, y + 1.0, "#000000", 1.3, None);
    }
    svg.text(lx + 28.0, y + 1.0, "mean \u{00b1} std", TextStyle::size(11.0));
}

/// A panel's axes: x zoomed on its sample, y on its density.
struct PanelAxes {
    xs: Scale,
    ys: Scale,
    x0: f64,
    x1: f64,
}

impl CosPanel {
    /// Draws the panel whose top-left corner is `origin`; the y-axis title
    /// only on the first panel of a row.
    fn draw(&self, svg: &mut Svg, origin: (f64, f64), colour: &str, first_in_row: bool, floor: Option<Band>) {
        let (px0, py0) = origin;
        let r = Rect { x: px0 + 62.0, y: py0 + 50.0, w: PANEL_W - 80.0, h: 118.0 };
        svg.rect(px0 + 8.0, py0 + 5.0, 12.0, 12.0, colour, None);
        svg.text(px0 + 26.0, py0 + 15.0, &self.aug, TextStyle::size(13.0).bold());
        svg.text(px0 + 26.0, py0 + 31.0, &self.stat_line(), TextStyle::size(11.0).fill("#333333"));
        let axes = self.axes(svg, r);
        if let Some(band) = floor {
            band.draw_up(svg, r, axes.xs);
            // Off this panel's zoomed axis: say on which side the floor lies.
            let style = TextStyle::size(10.0).fill("#555555");
            if band.lo > axes.x1 {
                svg.text(r.right() - 4.0, r.y + 10.0, &format!("noise floor {:.4} \u{2192}", band.mean), style.end());
            } else if band.hi < axes.x0 {
                svg.text(r.x + 4.0, r.y + 10.0, &format!("\u{2190} noise floor {:.4}", band.mean), style);
            }
        }
        if first_in_row {
            svg.text(px0 + 14.0, r.y + r.h / 2.0, "Density", TextStyle::size(11.0).middle().rotate(-90.0));
        }
        if self.n > 0 {
            self.draw_marks(svg, r, &axes, colour);
        }
    }

    fn stat_line(&self) -> String {
        if self.n == 0 {
            "no values".to_owned()
        } else if self.std.is_finite() {
            let d = chart::decimals_for(self.std);
            format!("mean {:.d$}, std {:.d$} (n = {})", self.mean, self.std, self.n)
        } else {
            format!("mean {:.4}, std undefined (n = {})", self.mean, self.n)
        }
    }

    /// Draws the panel's axes in `r` and returns their scales.
    fn axes(&self, svg: &mut Svg, r: Rect) -> PanelAxes {
        // Each panel zooms on its own sample: on one shared axis the
        // near-invariant augmentations shrink to a single pixel column.
        let (x0, x1, xt) = match self.n {
            0 => nice_domain(0.0, 1.0, 4),
            _ if self.hi > self.lo => nice_domain(self.lo, self.hi, 3),
            _ => nice_domain(self.lo - 0.005, self.hi + 0.005, 3),
        };
        let xstep = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
        let xs = Scale::new(x0, x1, r.x, r.right());
        let ym = self.y_max();
        let (y0, y1, yt) = nice_domain(0.0, if ym > 0.0 { ym } else { 1.0 }, 3);
        let ys = Scale::new(y0, y1, r.bottom(), r.y);
        let ystep = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        // A constant sample has no density scale to show.
        for &t in yt.iter().filter(|_| self.density.is_some()) {
            let py = ys.map(t);
            svg.line(r.x, py, r.right(), py, "#EEEEEE", 1.0, None);
            svg.line(r.x - 4.0, py, r.x, py, "#333333", 1.0, None);
            svg.text(r.x - 6.0, py + 3.5, &chart::fmt_tick(t, ystep), TextStyle::size(10.0).end().fill("#333333"));
        }
        for &t in &xt {
            let px = xs.map(t);
            svg.line(px, r.bottom(), px, r.bottom() + 4.0, "#333333", 1.0, None);
            svg.text(px, r.bottom() + 15.0, &chart::fmt_tick(t, xstep), TextStyle::size(10.0).middle().fill("#333333"));
        }
        svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
        svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
        svg.text(r.x + r.w / 2.0, r.bottom() + 31.0, "Cosine similarity", TextStyle::size(11.0).middle());
        PanelAxes { xs, ys, x0, x1 }
    }

    /// Histogram bars (or the single line of a constant sample), KDE, mean and mean +/- std.
    fn draw_marks(&self, svg: &mut Svg, r: Rect, axes: &PanelAxes, colour: &str) {
        let PanelAxes { xs, ys, x0, x1 } = *axes;
        match &self.density {
            Some(dens) => {
                for (j, d) in dens.iter().enumerate() {
                    let (a, b) = (xs.map(self.edges[j]), xs.map(self.edges[j + 1]));
                    let tip = format!("{:.4} to {:.4}: {} images", self.edges[j], self.edges[j + 1], self.counts[j]);
                    svg.rect_alpha(a, ys.map(*d), b - a, ys.map(0.0) - ys.map(*d), colour, 0.45, &tip);
                }
            }
            None => {
                let x = xs.map(self.lo);
                svg.line(x, r.bottom(), x, r.y, colour, 3.0, None);
                let text = if self.n == 1 {
                    format!("one value: {:.4}", self.lo)
                } else {
                    format!("all {} values = {:.4}", self.n, self.lo)
                };
                let (tx, anchor) =
                    if x + 110.0 > r.right() { (x - 6.0, Anchor::End) } else { (x + 6.0, Anchor::Start) };
                svg.text(tx, r.y + 10.0, &text, TextStyle::size(10.0).anchor(anchor).fill("#333333"));
            }
        }
        if let Some((g, d)) = &self.kde {
            let pts: Vec<(f64, f64)> = g.iter().zip(d).map(|(x, y)| (xs.map(*x), ys.map(*y))).collect();
            svg.polyline(&pts, colour, 2.2);
        }
        let mx = xs.map(self.mean);
        svg.line(mx, r.bottom(), mx, r.y, "#000000", 1.3, Some("4 3"));
        if self.std.is_finite() {
            // Above the plot area, so it never covers the bars.
            let sy = r.y - 9.0;
            let (lo, hi) = (self.mean - self.std, self.mean + self.std);
            svg.line(xs.map(lo.max(x0)), sy, xs.map(hi.min(x1)), sy, "#000000", 1.3, None);
            // An end cap only where the interval ends inside the axis.
            for v in [lo, hi].into_iter().filter(|v| (x0..=x1).contains(v)) {
                svg.line(xs.map(v), sy - 4.0, xs.map(v), sy + 4.0, "#000000", 1.3, None);
            }
            svg.circle(mx, sy, 2.5, "#000000", None);
        }
    }
}

/// `cosine_distribution.parquet`: one row per histogram bin and per KDE point of each panel.
#[derive(Default)]
struct CosTable {
    panel: Vec<u32>,
    aug: Vec<String>,
    n: Vec<u64>,
    mean: Vec<f64>,
    std: Vec<Option<f64>>,
    kind: Vec<String>,
    left: Vec<f64>,
    right: Vec<f64>,
    count: Vec<Option<u64>>,
    density: Vec<Option<f64>>,
}

impl CosTable {
    fn push_panel(&mut self, i: usize, p: &CosPanel) {
        if p.n == 0 {
            return;
        }
        for (j, &c) in p.counts.iter().enumerate() {
            self.push(i, p, "histogram", (p.edges[j], p.edges[j + 1]), Some(c), p.density.as_ref().map(|d| d[j]));
        }
        if let Some((g, d)) = &p.kde {
            for (x, y) in g.iter().zip(d) {
                self.push(i, p, "kde", (*x, *x), None, Some(*y));
            }
        }
    }

    fn push(&mut self, i: usize, p: &CosPanel, kind: &str, x: (f64, f64), count: Option<u64>, density: Option<f64>) {
        self.panel.push(i as u32);
        self.aug.push(p.aug.clone());
        self.n.push(p.n as u64);
        self.mean.push(p.mean);
        self.std.push(p.std.is_finite().then_some(p.std));
        self.kind.push(kind.to_owned());
        self.left.push(x.0);
        self.right.push(x.1);
        self.count.push(count);
        self.density.push(density);
    }

    fn frame(self) -> Result<DataFrame, ReportError> {
        frame(
            "cosine_distribution",
            &schema::cosine_distribution(),
            vec![
                Column::new("panel".into(), self.panel),
                Column::new("augmentation".into(), self.aug),
                Column::new("n".into(), self.n),
                Column::new("mean".into(), self.mean),
                Column::new("std".into(), self.std),
                Column::new("kind".into(), self.kind),
                Column::new("x_left".into(), self.left),
                Column::new("x_right".into(), self.right),
                Column::new("count".into(), self.count),
                Column::new("density".into(), self.density),
            ],
        )
    }
}
