//! What augmentations do to text alignment (the text stage's tables): zero-shot label
//! flips and KL, the change of similarity to keyword prompts and its correlation with the
//! embedding shift, and image–caption similarity and retrieval.

use std::collections::{BTreeMap, HashMap};

use clipshift_tables::{RunDir, schema};
use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::chart::{self, Rect, Scale, Svg, TextStyle, header, nice_domain};
use crate::config::ReportConfig;
use crate::io::{col_f64, col_str, col_u64, frame, read_optional, scan, table_name};
use crate::stats;

/// One bar of an interval panel: label, colour, value and its 95% interval.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) colour: String,
    pub(super) value: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

/// Bars from zero with interval whiskers, in `r`, labelled `axis`.
fn interval_panel(svg: &mut Svg, r: Rect, axis: &str, bars: &[Bar]) {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let lo = bars.iter().map(|b| finite(b.lo).min(finite(b.value))).fold(0.0, f64::min);
    let hi = bars.iter().map(|b| finite(b.hi).max(finite(b.value))).fold(0.0, f64::max);
    let (y0, y1, yt) = nice_domain(lo, if hi > lo { hi } else { lo + 1e-9 }, 5);
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    for &t in &yt {
        let py = ys.map(t);
        svg.line(r.x, py, r.right(), py, "#E5E5E5", 1.0, None);
        svg.text(r.x - 6.0, py + 4.0, &chart::fmt_tick(t, step), TextStyle::size(10.0).end().fill("#333333"));
    }
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.line(r.x, ys.map(0.0), r.right(), ys.map(0.0), "#333333", 1.0, None);
    svg.text(r.x - 52.0, r.y + r.h / 2.0, axis, TextStyle::size(12.0).middle().rotate(-90.0));
    let bw = r.w / bars.len().max(1) as f64;
    for (i, b) in bars.iter().enumerate() {
        let x = r.x + bw * i as f64;
        if b.value.is_finite() {
            let (top, bottom) = (ys.map(b.value.max(0.0)), ys.map(b.value.min(0.0)));
            let tip = format!("{}: {:.4} [{:.4}, {:.4}]", b.label, b.value, b.lo, b.hi);
            svg.rect_title(x + bw * 0.15, top, bw * 0.7, bottom - top, &b.colour, &tip);
        }
        if b.lo.is_finite() && b.hi.is_finite() {
            let (cx, lo, hi) = (x + bw / 2.0, ys.map(b.lo), ys.map(b.hi));
            for (colour, w) in [("#FFFFFF", 3.5), ("#000000", 1.3)] {
                svg.line(cx, lo, cx, hi, colour, w, None);
                for y in [lo, hi] {
                    svg.line(cx - 5.0, y, cx + 5.0, y, colour, w, None);
                }
            }
        }
        svg.text(x + bw / 2.0 + 4.0, r.bottom() + 14.0, &b.label, TextStyle::size(11.0).end().rotate(-35.0));
    }
}

/// A figure of interval panels side by side.
pub(super) fn panels(ctx: &Ctx<'_>, title: &str, panels: &[(&str, Vec<Bar>)]) -> String {
    let width = 960.0;
    let mut svg = Svg::new(width, 540.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let w = (width - 40.0) / panels.len() as f64;
    for (i, (axis, bars)) in panels.iter().enumerate() {
        let r = Rect { x: 20.0 + w * i as f64 + 70.0, y: top, w: w - 90.0, h: 540.0 - top - 120.0 };
        interval_panel(&mut svg, r, axis, bars);
    }
    svg.finish()
}

/// Flip rate of the top-1 zero-shot label and mean KL(original ‖ variant) per augmentation.
pub(crate) fn zero_shot(ctx: &Ctx<'_>, run: &RunDir, config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    let path = run.zero_shot();
    let name = table_name(&path);
    let df = scan(&path)?
        .filter(col(schema::AUGMENTATION).neq(lit(schema::ORIGINAL)))
        .select([col(schema::AUGMENTATION), col("flipped").cast(DataType::Float64), col("kl_to_original")])
        .collect()
        .map_err(ReportError::polars(&name))?;
    let mut by_aug: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let rows = col_str(&df, &name, schema::AUGMENTATION)?
        .into_iter()
        .zip(col_f64(&df, &name, "flipped")?)
        .zip(col_f64(&df, &name, "kl_to_original")?);
    for ((a, f), k) in rows {
        let entry = by_aug.entry(a).or_default();
        entry.0.extend(f);
        entry.1.extend(k);
    }
    /// An augmentation's flip rate and mean KL, each as (value, ci_low, ci_high).
    struct Row {
        aug: String,
        n: u64,
        flip: [f64; 3],
        kl: [f64; 3],
    }
    let mut rows = Vec::new();
    for a in ctx.data.augs.iter().filter(|a| by_aug.contains_key(*a)) {
        let (flips, kls) = &by_aug[a];
        let (flo, fhi) = config.mean_ci(flips, &["flip", a]);
        let (klo, khi) = config.mean_ci(kls, &["kl", a]);
        let (flip, kl) = ([stats::mean(flips), flo, fhi], [stats::mean(kls), klo, khi]);
        rows.push(Row { aug: a.clone(), n: flips.len() as u64, flip, kl });
    }
    if rows.is_empty() {
        return Ok(None);
    }
    // Most disruptive (most flips) first.
    rows.sort_by(|x, y| y.flip[0].total_cmp(&x.flip[0]).then(x.aug.cmp(&y.aug)));
    let bar = |r: &Row, v: [f64; 3]| Bar {
        label: r.aug.clone(),
        colour: ctx.colour_of(&r.aug),
        value: v[0],
        lo: v[1],
        hi: v[2],
    };
    let title = "Zero-shot labels: how often the top-1 label flips, and how far the label distribution moves";
    let svg = panels(
        ctx,
        title,
        &[
            ("Flip rate of the top-1 label", rows.iter().map(|r| bar(r, r.flip)).collect()),
            ("Mean KL(original \u{2016} variant), nats", rows.iter().map(|r| bar(r, r.kl)).collect()),
        ],
    );
    let column =
        |name: &str, f: &dyn Fn(&Row) -> f64| Column::new(name.into(), rows.iter().map(f).collect::<Vec<f64>>());
    let table = frame(
        "zero_shot_flips",
        &schema::zero_shot_summary(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.aug.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<_>>()),
            column("flip_rate", &|r| r.flip[0]),
            column("flip_ci_low", &|r| r.flip[1]),
            column("flip_ci_high", &|r| r.flip[2]),
            column("mean_kl", &|r| r.kl[0]),
            column("kl_ci_low", &|r| r.kl[1]),
            column("kl_ci_high", &|r| r.kl[2]),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Zero-shot labelling with the model's text tower (zero_shot.parquet): the share of images whose top-1 label over the label set differs from the original's, and the mean KL divergence from the original's label distribution (softmax of exp(logit_scale) \u{00d7} cosine), each with its percentile bootstrap 95% interval ({} resamples). Most flips first.",
        config.bootstrap_resamples
    ));
    Ok(Some(fig("zero_shot_flips", title, cap, svg, table)))
}

/// The augmentation x keyword-prompt heatmap of mean Δcos, the own keywords outlined.
pub(crate) fn keyword_alignment(
    ctx: &Ctx<'_>,
    run: &RunDir,
    keywords: &BTreeMap<String, Vec<String>>,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    let Some((df, name)) = read_optional(&run.keyword_alignment(), &[schema::AUGMENTATION, "prompt", "delta_cosine"])?
    else {
        return Ok(None);
    };
    let mut cells: HashMap<(String, String), Vec<f64>> = HashMap::new();
    let rows = col_str(&df, &name, schema::AUGMENTATION)?.into_iter().zip(col_str(&df, &name, "prompt")?).zip(col_f64(
        &df,
        &name,
        "delta_cosine",
    )?);
    for ((a, p), d) in rows {
        cells.entry((a, p)).or_default().extend(d);
    }
    let augs: Vec<&String> = ctx.data.augs.iter().filter(|a| cells.keys().any(|(x, _)| x == *a)).collect();
    // Prompts in the suite's order, each augmentation's own first.
    let mut prompts: Vec<String> = Vec::new();
    for a in &augs {
        for p in keywords.get(*a).into_iter().flatten() {
            if !prompts.contains(p) {
                prompts.push(p.clone());
            }
        }
    }
    for (_, p) in cells.keys() {
        if !prompts.contains(p) {
            prompts.push(p.clone());
        }
    }
    if augs.is_empty() || prompts.is_empty() {
        return Ok(None);
    }
    let own = |a: &str, p: &str| keywords.get(a).is_some_and(|k| k.iter().any(|x| x == p));
    let mut table_rows = Vec::new();
    for a in &augs {
        for p in &prompts {
            let Some(v) = cells.get(&((*a).clone(), p.clone())) else { continue };
            let (lo, hi) = config.mean_ci(v, &["keyword", a, p]);
            table_rows.push(((*a).clone(), p.clone(), own(a, p), v.len() as u64, stats::mean(v), lo, hi));
        }
    }
    let mean_of: HashMap<(&str, &str), f64> = table_rows.iter().map(|r| ((r.0.as_str(), r.1.as_str()), r.4)).collect();
    let extent = table_rows.iter().map(|r| r.4.abs()).fold(0.0, f64::max).max(1e-12);

    let title = "Change of similarity to keyword prompts: does each augmentation move toward its own?";
    let (left, cw, ch) = (190.0, (700.0 / prompts.len() as f64).min(90.0), 30.0);
    let top = chart::header_height(ctx.random_init) + 20.0;
    let height = top + ch * augs.len() as f64 + 190.0;
    let mut svg = Svg::new((left + cw * prompts.len() as f64 + 40.0).max(760.0), height);
    header(&mut svg, title, ctx.random_init);
    for (i, a) in augs.iter().enumerate() {
        let y = top + ch * i as f64;
        svg.text(left - 8.0, y + ch / 2.0 + 4.0, a, TextStyle::size(12.0).end());
        for (j, p) in prompts.iter().enumerate() {
            let x = left + cw * j as f64;
            let Some(m) = mean_of.get(&(a.as_str(), p.as_str())) else { continue };
            svg.rect_title(x, y, cw, ch, &diverging(m / extent), &format!("{a} \u{2192} \u{201c}{p}\u{201d}: {m:+.4}"));
            if own(a, p) {
                svg.rect(x + 1.5, y + 1.5, cw - 3.0, ch - 3.0, "none", Some("#000000"));
            }
        }
    }
    let bottom = top + ch * augs.len() as f64;
    for (j, p) in prompts.iter().enumerate() {
        let x = left + cw * j as f64 + cw / 2.0 + 4.0;
        svg.text(x, bottom + 12.0, p, TextStyle::size(11.0).end().rotate(-40.0));
    }
    svg.text(
        left,
        height - 14.0,
        &format!(
            "blue: less similar, red: more similar than the original (\u{00b1}{extent:.4}); outlined: own keyword"
        ),
        TextStyle::size(11.0).fill("#333333"),
    );
    let table = frame(
        "keyword_heatmap",
        &schema::keyword_alignment_summary(),
        vec![
            Column::new(schema::AUGMENTATION.into(), table_rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("prompt".into(), table_rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()),
            Column::new("own".into(), table_rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("n".into(), table_rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("mean_delta_cosine".into(), table_rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            Column::new("ci_low".into(), table_rows.iter().map(|r| r.5).collect::<Vec<_>>()),
            Column::new("ci_high".into(), table_rows.iter().map(|r| r.6).collect::<Vec<_>>()),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Mean over images of cos(variant, prompt) \u{2212} cos(original, prompt) for every augmentation (rows) and keyword prompt of the suite (columns; keyword_alignment.parquet); the table adds percentile bootstrap 95% intervals ({} resamples). An augmentation whose own keyword (outlined) is the reddest cell of its row moves the embedding toward its description.",
        config.bootstrap_resamples
    ));
    Ok(Some(fig("keyword_heatmap", title, cap, svg.finish(), table)))
}

/// Blue (−1) through white (0) to red (+1).
fn diverging(t: f64) -> String {
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        let s = -t;
        (255.0 - s * (255.0 - 33.0), 255.0 - s * (255.0 - 102.0), 255.0 - s * (255.0 - 172.0))
    } else {
        (255.0 - t * (255.0 - 178.0), 255.0 - t * (255.0 - 24.0), 255.0 - t * (255.0 - 43.0))
    };
    format!("#{:02X}{:02X}{:02X}", r.round() as u8, g.round() as u8, b.round() as u8)
}

/// Per augmentation with own keywords: Pearson's r over images between the embedding
/// shift (1 − cosine similarity, metrics.parquet) and the mean Δcos to its own keywords.
pub(crate) fn keyword_shift_correlation(
    ctx: &Ctx<'_>,
    run: &RunDir,
    keywords: &BTreeMap<String, Vec<String>>,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    let Some((df, name)) =
        read_optional(&run.keyword_alignment(), &[schema::IMAGE_ID, schema::AUGMENTATION, "prompt", "delta_cosine"])?
    else {
        return Ok(None);
    };
    let mut own: HashMap<(u64, String), Vec<f64>> = HashMap::new();
    let rows = col_u64(&df, &name, schema::IMAGE_ID)?
        .into_iter()
        .zip(col_str(&df, &name, schema::AUGMENTATION)?)
        .zip(col_str(&df, &name, "prompt")?)
        .zip(col_f64(&df, &name, "delta_cosine")?);
    for (((id, a), p), d) in rows {
        if keywords.get(&a).is_some_and(|k| k.contains(&p)) {
            own.entry((id, a)).or_default().extend(d);
        }
    }
    let metrics = run.metrics();
    let mname = table_name(&metrics);
    let m = scan(&metrics)?
        .select([col(schema::IMAGE_ID), col(schema::AUGMENTATION), col(schema::COSINE_SIMILARITY)])
        .collect()
        .map_err(ReportError::polars(&mname))?;
    let mut pairs: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let rows = col_u64(&m, &mname, schema::IMAGE_ID)?
        .into_iter()
        .zip(col_str(&m, &mname, schema::AUGMENTATION)?)
        .zip(col_f64(&m, &mname, schema::COSINE_SIMILARITY)?);
    for ((id, a), cos) in rows {
        if let (Some(cos), Some(deltas)) = (cos, own.get(&(id, a.clone()))) {
            let entry = pairs.entry(a).or_default();
            entry.0.push(1.0 - cos);
            entry.1.push(stats::mean(deltas));
        }
    }
    let rows: Vec<(String, u64, f64, f64, f64)> = ctx
        .data
        .augs
        .iter()
        .filter_map(|a| {
            let (shift, delta) = pairs.get(a)?;
            let (lo, hi) =
                stats::bootstrap_pearson_ci(shift, delta, config.bootstrap_resamples, config.named_seed(&["r", a]));
            Some((a.clone(), shift.len() as u64, stats::pearson(shift, delta), lo, hi))
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let title = "Does a larger embedding shift move the image toward its augmentation's keyword?";
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar { label: r.0.clone(), colour: ctx.colour_of(&r.0), value: r.2, lo: r.3, hi: r.4 })
        .collect();
    let svg = panels(ctx, title, &[("Pearson r: shift vs own-keyword \u{0394}cos", bars)]);
    let table = frame(
        "keyword_shift_correlation",
        &schema::keyword_shift_correlation(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("pearson_r".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("ci_low".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("ci_high".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
        ],
    )?;
    let cap = ctx.caption(format!(
        "Pearson's r over images between the embedding shift (1 \u{2212} cosine similarity, metrics.parquet) and the change of similarity to the augmentation's own keyword prompts (their mean, keyword_alignment.parquet), with a percentile bootstrap 95% interval over images ({} resamples). Undefined (constant data) is left empty.",
        config.bootstrap_resamples
    ));
    Ok(Some(fig("keyword_shift_correlation", title, cap, svg, table)))
}

/// Image–caption cosine change and caption retrieval recall@1 and @5 per variant.
pub(crate) fn captions(ctx: &Ctx<'_>, run: &RunDir, config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    let Some((df, name)) = read_optional(
        &run.caption_alignment(),
        &[schema::AUGMENTATION, schema::COSINE_SIMILARITY, "delta_cosine", "rank"],
    )?
    else {
        return Ok(None);
    };
    let mut by: BTreeMap<String, [Vec<f64>; 4]> = BTreeMap::new();
    let augs = col_str(&df, &name, schema::AUGMENTATION)?;
    let cos = col_f64(&df, &name, schema::COSINE_SIMILARITY)?;
    let delta = col_f64(&df, &name, "delta_cosine")?;
    let rank = col_u64(&df, &name, "rank")?;
    for i in 0..augs.len() {
        let entry = by.entry(augs[i].clone()).or_default();
        entry[0].extend(cos[i]);
        entry[1].extend(delta[i]);
        entry[2].push(f64::from(u8::from(rank[i] <= 1)));
        entry[3].push(f64::from(u8::from(rank[i] <= 5)));
    }
    let captions = by.get(schema::ORIGINAL).map_or(0, |v| v[0].len()) as u64;
    let order: Vec<String> = std::iter::once(schema::ORIGINAL.to_owned())
        .chain(ctx.data.augs.iter().cloned())
        .filter(|a| by.contains_key(a))
        .collect();
    if order.is_empty() {
        return Ok(None);
    }
    struct Row {
        aug: String,
        n: u64,
        values: [f64; 10],
    }
    let rows: Vec<Row> = order
        .iter()
        .map(|a| {
            let v = &by[a];
            let (dlo, dhi) = config.mean_ci(&v[1], &["caption-delta", a]);
            let (r1lo, r1hi) = config.mean_ci(&v[2], &["recall1", a]);
            let (r5lo, r5hi) = config.mean_ci(&v[3], &["recall5", a]);
            let values = [
                stats::mean(&v[0]),
                stats::mean(&v[1]),
                dlo,
                dhi,
                stats::mean(&v[2]),
                r1lo,
                r1hi,
                stats::mean(&v[3]),
                r5lo,
                r5hi,
            ];
            Row { aug: a.clone(), n: v[0].len() as u64, values }
        })
        .collect();
    let bars = |k: usize, skip_original: bool| -> Vec<Bar> {
        rows.iter()
            .filter(|r| !(skip_original && r.aug == schema::ORIGINAL))
            .map(|r| Bar {
                label: r.aug.clone(),
                colour: ctx.colour_of(&r.aug),
                value: r.values[k],
                lo: r.values[k + 1],
                hi: r.values[k + 2],
            })
            .collect()
    };
    let title = "Captions: how much each augmentation lowers image–caption similarity and caption retrieval";
    let svg = panels(
        ctx,
        title,
        &[
            ("Mean change of image\u{2013}caption cosine", bars(1, true)),
            ("Recall@1 among the run's captions", bars(4, false)),
            ("Recall@5", bars(7, false)),
        ],
    );
    let names = [
        "mean_cosine",
        "mean_delta_cosine",
        "delta_ci_low",
        "delta_ci_high",
        "recall_at_1",
        "recall_at_1_ci_low",
        "recall_at_1_ci_high",
        "recall_at_5",
        "recall_at_5_ci_low",
        "recall_at_5_ci_high",
    ];
    let mut columns = vec![
        Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.aug.clone()).collect::<Vec<_>>()),
        Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<_>>()),
        Column::new("captions".into(), vec![captions; rows.len()]),
    ];
    columns.extend(
        names
            .iter()
            .enumerate()
            .map(|(k, n)| Column::new((*n).into(), rows.iter().map(|r| r.values[k]).collect::<Vec<_>>())),
    );
    let table = frame("caption_retrieval", &schema::caption_alignment_summary(), columns)?;
    let cap = ctx.caption(format!(
        "From caption_alignment.parquet ({captions} captioned images): the mean change of cosine similarity between each variant and its image's caption, and caption retrieval among the run's captions (recall@k: the share of images whose own caption is among the k most similar), with percentile bootstrap 95% intervals ({} resamples). The original's recall is the reference.",
        config.bootstrap_resamples
    ));
    Ok(Some(fig("caption_retrieval", title, cap, svg, table)))
}
