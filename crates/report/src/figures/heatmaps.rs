//! Heatmaps: metric means by augmentation, and the per-image cosine
//! similarity of a seeded sample of images.

use clipshift_augment::Rng;
use polars::prelude::*;

use super::{Ctx, Figure, fig, label_of};
use crate::ReportError;
use crate::analysis::Clustering;
use crate::chart::{self, Scale, Svg, TextStyle, header, nice_domain};
use crate::io::frame;
use crate::stats;
use clipshift_tables::schema::{self, COSINE_SIMILARITY};

/// Metric x augmentation heatmap; columns in the given order.
pub(crate) fn heatmap(
    ctx: &Ctx<'_>,
    order: &[String],
    stem: &str,
    title: &str,
    how: &str,
    tree: Option<&Clustering>,
) -> Result<Option<Figure>, ReportError> {
    // The paper's measures (derived ones such as sensitivity have their own figure).
    let metrics: Vec<&str> = ctx.data.metrics.iter().filter(|m| m.paper).map(|m| m.name).collect();
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
        svg.text(left - 8.0, ty + 4.0, "cut (0.7 \u{00d7} max)", TextStyle::size(10.0).end().fill("#B00020"));
    }
    let (mut ta, mut tm, mut tv, mut tn, mut tr, mut tc) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (ri, m) in metrics.iter().enumerate() {
        let y = top + ch * ri as f64;
        svg.text(left - 8.0, y + ch / 2.0 + 4.0, label_of(m), TextStyle::size(12.0).end());
        for (ci, a) in order.iter().enumerate() {
            let x = left + cw * ci as f64;
            let Some(row) = ctx.row(a, m) else {
                svg.rect_title(x, y, cw - 1.0, ch - 1.0, "#F2F2F2", &format!("{a} / {m}: no values"));
                svg.text(x + cw / 2.0, y + ch / 2.0 + 4.0, "n/a", TextStyle::size(10.0).middle().fill("#777777"));
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
                    TextStyle::size(11.0).middle().fill(chart::text_on_viridis(t)),
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
        svg.text(x + cw / 2.0 + 4.0, bottom + 20.0, a, TextStyle::size(12.0).end().rotate(-35.0));
    }
    // Colour bar.
    let bx = left + cw * order.len() as f64 + 24.0;
    let bh = ch * metrics.len() as f64;
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + bh * i as f64 / 50.0, 16.0, bh / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx + 20.0, top + 10.0, "least shift", TextStyle::size(10.0));
    svg.text(bx + 20.0, top + bh, "most shift", TextStyle::size(10.0));
    svg.text(bx + 20.0, top + bh / 2.0 - 4.0, "normalised", TextStyle::size(10.0).fill("#555555"));
    svg.text(bx + 20.0, top + bh / 2.0 + 9.0, "within metric", TextStyle::size(10.0).fill("#555555"));
    let table = frame(
        stem,
        &schema::metric_heatmap(),
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

/// Cosine similarity of 50 randomly chosen images (rows) under each augmentation.
pub(crate) fn sample_heatmap(ctx: &Ctx<'_>, seed: u64) -> Result<Option<Figure>, ReportError> {
    let Some(mi) = ctx.data.metric_index(COSINE_SIMILARITY) else {
        return Ok(None);
    };
    let n_img = ctx.data.image_ids.len();
    if n_img == 0 || ctx.data.augs.is_empty() {
        return Ok(None);
    }
    let chosen = sample_images(ctx, mi, seed);
    let k = chosen.len();
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
            TextStyle::size(10.0).end().fill("#333333"),
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
        svg.text(x + cw / 2.0 + 4.0, bottom + 20.0, a, TextStyle::size(11.0).end().rotate(-35.0));
    }
    svg.text(
        24.0,
        top + ch * k as f64 / 2.0,
        if k >= 16 { "Image (rows by mean, highest first)" } else { "Image" },
        TextStyle::size(11.0).middle().rotate(-90.0),
    );
    let bx = left + cw * ctx.data.augs.len() as f64 + 24.0;
    value_colour_bar(&mut svg, (bx, top), (ch * k as f64).max(120.0), (lo, hi));
    let table = frame(
        "sample_heatmap",
        &schema::sample_heatmap(),
        vec![
            Column::new("image_id".into(), ti),
            Column::new("augmentation".into(), ta),
            Column::new(COSINE_SIMILARITY.into(), tv),
            Column::new("row".into(), tr),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Per-image cosine similarity to the original embedding for {which}, one row per image (labelled by image_id), rows sorted by their mean; colour scale from the lowest ({lo:.4}) to the highest ({hi:.4}) value shown."
    ));
    Ok(Some(fig("sample_heatmap", &title, cap, svg.finish(), table)))
}

/// Up to 50 images drawn with the report seed (all of them when there are
/// fewer), as indices into `image_ids`, highest mean `metric` first.
fn sample_images(ctx: &Ctx<'_>, metric: usize, seed: u64) -> Vec<usize> {
    let n_img = ctx.data.image_ids.len();
    let mut idx: Vec<usize> = (0..n_img).collect();
    let mut rng = Rng::from_state(seed ^ 0x50);
    let k = n_img.min(50);
    for i in 0..k {
        let j = i + rng.below(n_img - i);
        idx.swap(i, j);
    }
    let mut chosen: Vec<usize> = idx[..k].to_vec();
    let row_mean = |img: usize| {
        let v: Vec<f64> = (0..ctx.data.augs.len()).filter_map(|a| ctx.data.value(metric, a, img)).collect();
        stats::mean(&v)
    };
    chosen.sort_by(|&a, &b| row_mean(b).total_cmp(&row_mean(a)));
    chosen
}

/// A vertical viridis bar of height `h` at `at` for values from `lo` (bottom)
/// to `hi` (top), with the end values and round ticks between them.
fn value_colour_bar(svg: &mut Svg, at: (f64, f64), h: f64, (lo, hi): (f64, f64)) {
    let (bx, top) = at;
    for i in 0..50 {
        let t = 1.0 - i as f64 / 50.0;
        svg.rect(bx, top + h * i as f64 / 50.0, 16.0, h / 50.0 + 0.5, &chart::viridis(t), None);
    }
    svg.text(bx, top - 6.0, "Cosine similarity", TextStyle::size(10.0));
    let dec = chart::decimals_for(hi - lo);
    let bar = Scale::new(hi, lo, top, top + h);
    svg.text(bx + 20.0, bar.map(hi) + 8.0, &format!("{hi:.dec$}"), TextStyle::size(10.0));
    if hi > lo {
        svg.text(bx + 20.0, bar.map(lo), &format!("{lo:.dec$}"), TextStyle::size(10.0));
        let (_, _, ticks) = nice_domain(lo, hi, 4);
        let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
        for t in ticks.into_iter().filter(|t| *t > lo && *t < hi) {
            let y = bar.map(t);
            // Skip ticks that would collide with the end labels.
            if y - bar.map(hi) > 16.0 && bar.map(lo) - y > 16.0 {
                svg.line(bx + 16.0, y, bx + 19.0, y, "#000000", 1.0, None);
                svg.text(bx + 22.0, y + 3.5, &chart::fmt_tick(t, step), TextStyle::size(9.0).fill("#333333"));
            }
        }
    }
}
