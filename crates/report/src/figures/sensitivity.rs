//! Sensitivity: the embedding's shift per unit of pixel change, (1 − cos) / (1 − SSIM),
//! per image, as a distribution per augmentation.

use clipshift_tables::schema;
use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::chart::{Rect, Scale, Svg, TextStyle, header};
use crate::io::frame;
use crate::stats;

/// Smallest value drawn on the log axis.
const FLOOR: f64 = 1e-6;

/// One augmentation's distribution: 5th, 25th, 50th, 75th, 95th percentile and mean.
struct Spread {
    aug: String,
    n: u64,
    q: [f64; 5],
    mean: f64,
}

/// Box plots on a log axis: whiskers 5th–95th percentile, box the quartiles, median
/// line; the most sensitive augmentation (highest median) first.
pub(crate) fn sensitivity(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    let Some(metric) = ctx.data.metric_index("sensitivity") else {
        return Ok(None);
    };
    let mut rows: Vec<Spread> = ctx
        .data
        .augs
        .iter()
        .enumerate()
        .filter_map(|(a, aug)| {
            let mut v = ctx.data.values(metric, a);
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let q = [0.05, 0.25, 0.5, 0.75, 0.95].map(|p| stats::quantile_sorted(&v, p));
            Some(Spread { aug: aug.clone(), n: v.len() as u64, q, mean: stats::mean(&v) })
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|x, y| y.q[2].total_cmp(&x.q[2]).then(x.aug.cmp(&y.aug)));
    let title = "Sensitivity: embedding shift per unit of pixel change";
    let row_h = 34.0;
    let height = chart_height(ctx, rows.len(), row_h);
    let mut svg = Svg::new(960.0, height);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 200.0, y: top, w: 700.0, h: row_h * rows.len() as f64 };
    let log = |v: f64| v.max(FLOOR).log10();
    let lo = rows.iter().map(|x| log(x.q[0])).fold(f64::INFINITY, f64::min).floor();
    let hi = rows.iter().map(|x| log(x.q[4])).fold(f64::NEG_INFINITY, f64::max).ceil().max(lo + 1.0);
    let xs = Scale::new(lo, hi, r.x, r.right());
    for e in lo as i64..=hi as i64 {
        let px = xs.map(e as f64);
        svg.line(px, r.y, px, r.bottom(), "#E5E5E5", 1.0, None);
        svg.text(px, r.bottom() + 18.0, &format!("1e{e}"), TextStyle::size(11.0).middle().fill("#333333"));
    }
    svg.text(
        r.x + r.w / 2.0,
        r.bottom() + 40.0,
        "(1 \u{2212} cosine similarity) / (1 \u{2212} SSIM), per image (log scale)",
        TextStyle::size(13.0).middle(),
    );
    for (i, Spread { aug, n, q, .. }) in rows.iter().enumerate() {
        let cy = r.y + row_h * (i as f64 + 0.5);
        let c = ctx.colour_of(aug);
        svg.text(r.x - 10.0, cy + 4.0, aug, TextStyle::size(12.0).end());
        let x = |v: f64| xs.map(log(v));
        svg.line(x(q[0]), cy, x(q[4]), cy, "#333333", 1.2, None);
        let tip = format!("{aug}: n = {n}, median {:.4}, quartiles {:.4} to {:.4}", q[2], q[1], q[3]);
        svg.rect_title(x(q[1]), cy - 10.0, (x(q[3]) - x(q[1])).max(1.0), 20.0, &c, &tip);
        svg.line(x(q[2]), cy - 10.0, x(q[2]), cy + 10.0, "#000000", 2.0, None);
    }
    let column =
        |name: &str, f: &dyn Fn(&Spread) -> f64| Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>());
    let table = frame(
        "sensitivity",
        &schema::sensitivity_summary(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|x| x.aug.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|x| x.n).collect::<Vec<_>>()),
            column("p05", &|x| x.q[0]),
            column("p25", &|x| x.q[1]),
            column("median", &|x| x.q[2]),
            column("p75", &|x| x.q[3]),
            column("p95", &|x| x.q[4]),
            column("mean", &|x| x.mean),
        ],
    )?;
    let cap = ctx.caption(
        "How far the embedding moves per unit of structural pixel change: (1 \u{2212} cosine similarity) / (1 \u{2212} SSIM) of every image (metrics.parquet's sensitivity; undefined where the pixels did not change). A high value means the model is fragile to the augmentation, not that the augmentation changes many pixels. Boxes: quartiles; line: median; whiskers: 5th to 95th percentile. Most sensitive first.".to_owned(),
    );
    Ok(Some(fig("sensitivity", title, cap, svg.finish(), table)))
}

fn chart_height(ctx: &Ctx<'_>, rows: usize, row_h: f64) -> f64 {
    crate::chart::header_height(ctx.random_init) + 16.0 + row_h * rows as f64 + 70.0
}
