//! The L2 distance to the original embedding: its density per augmentation
//! and its mean with error bars.

use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::analysis::SummaryRow;
use crate::chart::{self, Axis, Rect, Scale, Svg, TextStyle, header, legend, nice_domain};
use crate::io::frame;
use crate::stats;
use clipshift_tables::schema;

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
            &schema::l2_kde(),
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
            TextStyle::size(14.0).middle().fill("#333333"),
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
        svg.text(r.right() + 24.0, y, "No curve (under two", TextStyle::size(11.0).fill("#333333"));
        svg.text(r.right() + 24.0, y + 14.0, "distinct values):", TextStyle::size(11.0).fill("#333333"));
        for (i, a) in skipped.iter().enumerate() {
            svg.text(r.right() + 24.0, y + 28.0 + 14.0 * i as f64, a, TextStyle::size(11.0).fill("#333333"));
        }
    }
    Ok(Some(fig("l2_kde", title, cap, svg.finish(), table(a_col, x_col, y_col)?)))
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
        svg.text(r.x - 8.0, py + 4.0, &chart::fmt_tick(t, step), TextStyle::size(11.0).end().fill("#333333"));
    }
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
    svg.text(
        r.x - 60.0,
        r.y + r.h / 2.0,
        "Mean L2 distance (\u{00b1} std)",
        TextStyle::size(13.0).middle().rotate(-90.0),
    );
    svg.text(
        r.x + r.w / 2.0,
        r.bottom() + 118.0,
        "Augmentation, largest distance first",
        TextStyle::size(13.0).middle(),
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
        svg.text(x + bw / 2.0 + 4.0, r.bottom() + 16.0, a, TextStyle::size(12.0).end().rotate(-35.0));
    }
    let table = frame(
        "l2_bars",
        &schema::l2_bars(),
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
