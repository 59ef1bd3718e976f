//! Per-augmentation profiles over the radar metrics: the radar grid and the
//! ranked bar panels.

use polars::prelude::*;

use super::{Ctx, Figure, fig, label_of};
use crate::ReportError;
use crate::analysis::RADAR;
use crate::chart::{self, Anchor, Scale, Svg, TextStyle, header, nice_domain};
use crate::io::frame;
use clipshift_tables::schema;

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
    let scale = RadarScale::new(&best, &worst, metrics.len());
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
    for (i, a) in augs.iter().enumerate() {
        let cx = 10.0 + cell * (i % cols) as f64 + cell / 2.0;
        let cy = top + cell_h * (i / cols) as f64 + cell_h / 2.0 + 10.0;
        let vals: Vec<f64> = metrics.iter().map(|m| mean(a, m)).collect();
        let labels: Vec<String> = metrics
            .iter()
            .zip(&vals)
            .map(|(m, v)| {
                let short = label_of(m).split(' ').next().unwrap_or(m);
                // A missing mean is drawn at the centre, so say it is missing.
                if v.is_finite() { short.to_owned() } else { format!("{short} (n/a)") }
            })
            .collect();
        scale.draw_frame(&mut svg, (cx, cy), &labels);
        let poly = |vals: &[f64]| -> Vec<(f64, f64)> {
            vals.iter().enumerate().map(|(j, v)| scale.point((cx, cy), j, *v)).collect()
        };
        svg.polygon(&poly(&best), "none", 0.0, "#000000", 1.2, Some("5 3"));
        svg.polygon(&poly(&worst), "none", 0.0, "#888888", 1.2, Some("2 2"));
        let c = ctx.colour_of(a);
        svg.polygon(&poly(&vals), &c, 0.35, &c, 2.0, None);
        svg.text(cx, cy - RADIUS - 32.0, a, TextStyle::size(14.0).middle().bold());
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
        &schema::radar(),
        vec![
            Column::new("augmentation".into(), t_aug),
            Column::new("metric".into(), t_metric),
            Column::new("mean".into(), t_val),
            Column::new("best".into(), t_best),
            Column::new("worst".into(), t_worst),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Mean of each radar metric (cosine, attention, patch, edge, detail) per augmentation, most disruptive (lowest overall score) first; radial axis from {:.2} (centre) to {:.2}, rings labelled. Dashed: the best augmentation's mean per metric; dotted: the worst.",
        scale.lo, scale.hi
    ));
    Ok(Some(fig("radar", title, cap, svg.finish(), table)))
}

/// Radius of each radar, in pixels.
const RADIUS: f64 = 95.0;

/// The radial axis every radar of the grid shares, and the spokes of `k` metrics.
struct RadarScale {
    /// Value at the centre.
    lo: f64,
    /// Value at the rim.
    hi: f64,
    rings: Vec<f64>,
    k: usize,
}

impl RadarScale {
    /// From a round value below the worst mean to 1 (or the best): the centre
    /// is not zero, so the rings are labelled.
    fn new(best: &[f64], worst: &[f64], k: usize) -> Self {
        let w_min = worst.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::min);
        let b_max = best.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::max);
        let (lo, hi, rings) = nice_domain(w_min.min(b_max - 0.05), b_max, 3);
        let (lo, hi) = (lo.max(w_min.min(0.0)), hi.max(lo + 1e-9));
        Self { lo, hi, rings, k }
    }

    /// Direction of spoke `j`, the first pointing up.
    fn angle(&self, j: usize) -> f64 {
        -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * j as f64 / self.k as f64
    }

    /// Where `v` lies on spoke `j` of the radar centred at `c` (the centre when undefined).
    fn point(&self, (cx, cy): (f64, f64), j: usize, v: f64) -> (f64, f64) {
        let ang = self.angle(j);
        let rr = if v.is_finite() { ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0) * RADIUS } else { 0.0 };
        (cx + rr * ang.cos(), cy + rr * ang.sin())
    }

    /// Rings, spokes with their `labels`, and the ring values of the radar centred at `c`.
    fn draw_frame(&self, svg: &mut Svg, c: (f64, f64), labels: &[String]) {
        let (cx, cy) = c;
        let (lo, hi, k) = (self.lo, self.hi, self.k);
        for &ring in self.rings.iter().filter(|&&r| r > lo + 1e-12) {
            let pts: Vec<(f64, f64)> = (0..k).map(|j| self.point(c, j, ring)).collect();
            svg.polygon(&pts, "none", 0.0, "#DDDDDD", 1.0, None);
        }
        for (j, label) in labels.iter().enumerate() {
            let (x, y) = self.point(c, j, hi);
            svg.line(cx, cy, x, y, "#DDDDDD", 1.0, None);
            let ang = self.angle(j);
            let (lx, ly) = (cx + (RADIUS + 10.0) * ang.cos(), cy + (RADIUS + 10.0) * ang.sin());
            let anchor = if (lx - cx).abs() < 5.0 {
                Anchor::Middle
            } else if lx > cx {
                Anchor::Start
            } else {
                Anchor::End
            };
            let ly = if ang.sin() < -0.9 { ly - 2.0 } else { ly + 4.0 + 6.0 * ang.sin().max(0.0) };
            svg.text(lx, ly, label, TextStyle::size(10.0).anchor(anchor).fill("#333333"));
        }
        // Ring values along the upper-left gap between the first and last spokes.
        let ring_step = if self.rings.len() > 1 { self.rings[1] - self.rings[0] } else { 1.0 };
        for &ring in self.rings.iter().filter(|&&r| r >= lo - 1e-12) {
            let rr = ((ring - lo) / (hi - lo)).clamp(0.0, 1.0) * RADIUS;
            let ang = -std::f64::consts::FRAC_PI_2 - std::f64::consts::PI / k as f64;
            let (x, y) = (cx + rr * ang.cos(), cy + rr * ang.sin());
            svg.text(x, y + 3.0, &chart::fmt_tick(ring, ring_step), TextStyle::size(8.5).middle().fill("#888888"));
        }
    }
}

fn legend_inline(svg: &mut Svg, x: f64, y: f64, entries: &[(&str, &str, Option<&str>)]) {
    let mut xx = x;
    for (label, colour, dash) in entries {
        svg.line(xx, y, xx + 28.0, y, colour, 2.0, *dash);
        svg.text(xx + 34.0, y + 4.0, label, TextStyle::size(12.0));
        xx += 40.0 + 7.0 * label.len() as f64;
    }
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
            TextStyle::size(13.0).bold(),
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
                TextStyle::size(11.0).end().fill("#333333"),
            );
            svg.rect(bx, y, bw, 16.0, "#F2F2F2", None);
            if v.is_finite() {
                svg.rect_title(bx, y, xs.map(v.clamp(0.0, 1.0)) - bx, 16.0, &ctx.colour_of(a), &format!("{m}: {v:.4}"));
                svg.text(bx + bw + 4.0, y + 12.0, &format!("{v:.2}"), TextStyle::size(10.0).fill("#333333"));
            }
            tr.push(i as u32 + 1);
            ta.push(a.clone());
            ts.push(*score);
            tm.push((*m).to_owned());
            tv.push(v);
        }
        let ya = y0 + 36.0 + 22.0 * metrics.len() as f64 + 4.0;
        svg.line(bx, ya, bx + bw, ya, "#999999", 1.0, None);
        svg.text(bx, ya + 12.0, "0", TextStyle::size(9.0).middle().fill("#555555"));
        svg.text(bx + bw, ya + 12.0, "1", TextStyle::size(9.0).middle().fill("#555555"));
    }
    let table = frame(
        "ranked_profiles",
        &schema::ranked_profiles(),
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
