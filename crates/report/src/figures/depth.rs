//! Where in depth the shift appears: the class token's cosine similarity to the
//! original's at every layer state (`layer_shift.parquet`), per augmentation.

use std::collections::BTreeMap;

use clipshift_tables::{RunDir, schema};
use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::chart::{self, Axis, Rect, Scale, Svg, TextStyle, header, legend, nice_domain};
use crate::config::ReportConfig;
use crate::floor::{Band, FLOOR_ROW, per_image_floor};
use crate::io::{col_f64, col_str, col_u64, frame, read_optional};
use crate::stats;

/// The first layer at which the shift (1 − mean cosine) reaches half of its value at the
/// last layer; `None` when there is no shift at the last layer.
pub(crate) fn half_shift_layer(means: &[f64]) -> Option<usize> {
    let last = 1.0 - *means.last()?;
    if last.is_nan() || last <= 0.0 {
        return None;
    }
    means.iter().position(|m| 1.0 - m >= 0.5 * last)
}

/// The noise floor at each layer from the floor members' `((layer, image), cosine)`
/// rows: per image the smallest cosine of a floor member, then its mean and interval;
/// empty unless every layer has one.
fn layer_floor(
    rows: Vec<((u64, u64), f64)>,
    members: usize,
    depth: usize,
    config: &ReportConfig,
) -> Vec<(usize, Band)> {
    let mut per_layer: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for ((layer, _), v) in per_image_floor(rows, members) {
        per_layer.entry(layer).or_default().push(v);
    }
    let floor: Vec<(usize, Band)> = per_layer
        .iter()
        .filter_map(|(&l, v)| Some((l as usize, Band::of(v, config, &["noise-floor-layer", &l.to_string()])?)))
        .collect();
    if floor.len() == depth { floor } else { Vec::new() }
}

/// One augmentation's mean cosine similarity at each layer, with its bootstrap 95% interval.
struct Curve {
    augmentation: String,
    points: Vec<Point>,
    half: Option<usize>,
}

struct Point {
    layer: usize,
    mean: f64,
    lo: f64,
    hi: f64,
    n: usize,
}

/// Mean cosine similarity against depth, one line per augmentation with its bootstrap
/// 95% band; each augmentation's legend entry names its half-shift layer. `None` when
/// the run has no `layer_shift.parquet` (a model without per-layer states).
pub(crate) fn layer_shift(ctx: &Ctx<'_>, run: &RunDir, config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    let Some((df, name)) = read_optional(
        &run.layer_shift(),
        &[schema::IMAGE_ID, schema::AUGMENTATION, "layer", schema::COSINE_SIMILARITY],
    )?
    else {
        return Ok(None);
    };
    let ids = col_u64(&df, &name, schema::IMAGE_ID)?;
    let augs = col_str(&df, &name, schema::AUGMENTATION)?;
    let layers = col_u64(&df, &name, "layer")?;
    let cosines = col_f64(&df, &name, schema::COSINE_SIMILARITY)?;
    let members: &[String] = ctx.floor.map_or(&[], |f| &f.members);
    let mut values: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    let mut floor_rows = Vec::new();
    for (((id, a), l), c) in ids.into_iter().zip(augs).zip(layers).zip(cosines) {
        if let (true, Some(c)) = (members.contains(&a), c) {
            floor_rows.push(((l, id), c));
        }
        values.entry((a, l)).or_default().extend(c);
    }
    let depth = values.keys().map(|(_, l)| *l).max().unwrap_or(0) as usize + 1;
    let floor = layer_floor(floor_rows, members.len(), depth, config);
    let curves = curves(ctx, &values, depth, config);
    if curves.is_empty() {
        return Ok(None);
    }
    let table = profile_table(&curves, &floor)?;
    let title = "Cosine similarity to the original's class token at each depth";
    let svg = draw(ctx, title, &curves, &floor, depth);
    let cap = ctx.caption(format!(
        "Mean over images of the cosine similarity between the variant's and the original's class-token state at each layer (layer_shift.parquet), with its percentile bootstrap 95% interval ({} resamples) as a band. Each augmentation's half-shift layer is the first at which 1 \u{2212} mean cosine reaches half its value at the last layer.{}",
        config.bootstrap_resamples,
        if floor.is_empty() {
            String::new()
        } else {
            format!(" Grey band: the noise floor at each layer, the mean over images of the smallest cosine similarity any floor member ({}) gives there, with its bootstrap 95% interval (rows noise_floor of the table).", members.join(", "))
        }
    ));
    Ok(Some(fig("layer_profile", title, cap, svg, table)))
}

/// One curve per augmentation of the run that has a value at every layer (one whose
/// variants all failed draws no line).
fn curves(
    ctx: &Ctx<'_>,
    values: &BTreeMap<(String, u64), Vec<f64>>,
    depth: usize,
    config: &ReportConfig,
) -> Vec<Curve> {
    let mut curves = Vec::new();
    for a in &ctx.data.augs {
        let mut points = Vec::new();
        for layer in 0..depth {
            let v = values.get(&(a.clone(), layer as u64)).map(Vec::as_slice).unwrap_or_default();
            if v.is_empty() {
                continue;
            }
            let seed = clipshift_tables::Fnv1a::with_seed(config.seed).bytes(a.as_bytes()).word(layer as u64).finish();
            let (lo, hi) = stats::bootstrap_mean_ci(v, config.bootstrap_resamples, seed);
            points.push(Point { layer, mean: stats::mean(v), lo, hi, n: v.len() });
        }
        if points.len() != depth {
            continue;
        }
        let half = half_shift_layer(&points.iter().map(|p| p.mean).collect::<Vec<_>>());
        curves.push(Curve { augmentation: a.clone(), points, half });
    }
    curves
}

/// The figure's table: every curve's points, then the noise floor's (rows `noise_floor`).
fn profile_table(curves: &[Curve], floor: &[(usize, Band)]) -> Result<DataFrame, ReportError> {
    let (mut t_aug, mut t_layer, mut t_mean, mut t_lo, mut t_hi, mut t_n, mut t_half) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let floor: Vec<Point> =
        floor.iter().map(|(layer, b)| Point { layer: *layer, mean: b.mean, lo: b.lo, hi: b.hi, n: b.n }).collect();
    let rows = curves.iter().flat_map(|c| c.points.iter().map(move |p| (c.augmentation.as_str(), p, c.half)));
    for (aug, p, half) in rows.chain(floor.iter().map(|p| (FLOOR_ROW, p, None))) {
        t_aug.push(aug.to_owned());
        t_layer.push(p.layer as u32);
        t_mean.push(p.mean);
        t_lo.push(p.lo);
        t_hi.push(p.hi);
        t_n.push(p.n as u64);
        t_half.push(half.map(|h| h as u32));
    }
    frame(
        "layer_profile",
        &schema::layer_profile(),
        vec![
            Column::new(schema::AUGMENTATION.into(), t_aug),
            Column::new("layer".into(), t_layer),
            Column::new("mean_cosine_similarity".into(), t_mean),
            Column::new("ci_low".into(), t_lo),
            Column::new("ci_high".into(), t_hi),
            Column::new("n".into(), t_n),
            Column::new("half_shift_layer".into(), t_half),
        ],
    )
}

fn draw(ctx: &Ctx<'_>, title: &str, curves: &[Curve], floor: &[(usize, Band)], depth: usize) -> String {
    let mut svg = Svg::new(960.0, 560.0);
    let top = header(&mut svg, title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 600.0, h: 560.0 - top - 70.0 };
    let lo = curves.iter().flat_map(|c| c.points.iter().map(|p| p.lo)).chain(floor.iter().map(|f| f.1.lo));
    let lo = lo.fold(f64::INFINITY, f64::min);
    let hi = curves.iter().flat_map(|c| c.points.iter().map(|p| p.hi)).chain(floor.iter().map(|f| f.1.hi));
    let hi = hi.fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1, yt) = nice_domain(lo, hi.max(lo + 1e-9), 5);
    let xt: Vec<f64> = (0..depth).map(|l| l as f64).collect();
    let xs = Scale::new(0.0, (depth.max(2) - 1) as f64, r.x, r.right());
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    chart::draw_axes(
        &mut svg,
        r,
        &Axis { scale: xs, ticks: &xt, label: "Layer state (0: after the pre-layernorm, then each block)" },
        &Axis { scale: ys, ticks: &yt, label: "Mean cosine similarity" },
    );
    if !floor.is_empty() {
        let mut band: Vec<(f64, f64)> = floor.iter().map(|(l, b)| (xs.map(*l as f64), ys.map(b.hi))).collect();
        band.extend(floor.iter().rev().map(|(l, b)| (xs.map(*l as f64), ys.map(b.lo))));
        svg.polygon(&band, "#808080", 0.35, "none", 0.0, None);
    }
    for curve in curves {
        let c = ctx.colour_of(&curve.augmentation);
        let x = |p: &Point| xs.map(p.layer as f64);
        let mut band: Vec<(f64, f64)> = curve.points.iter().map(|p| (x(p), ys.map(p.hi))).collect();
        band.extend(curve.points.iter().rev().map(|p| (x(p), ys.map(p.lo))));
        svg.polygon(&band, &c, 0.15, "none", 0.0, None);
        let line: Vec<(f64, f64)> = curve.points.iter().map(|p| (x(p), ys.map(p.mean))).collect();
        svg.polyline(&line, &c, 2.0);
    }
    let mut entries: Vec<(String, String)> = curves
        .iter()
        .map(|c| {
            let at = c.half.map_or("no shift".to_owned(), |h| format!("half at {h}"));
            (format!("{} ({at})", c.augmentation), ctx.colour_of(&c.augmentation))
        })
        .collect();
    if !floor.is_empty() {
        entries.push(("noise floor".to_owned(), "#808080".to_owned()));
    }
    legend(&mut svg, r.right() + 24.0, r.y, &entries);
    svg.text(
        r.right() + 24.0,
        r.y + 20.0 * entries.len() as f64 + 16.0,
        "half at k: first layer with half the final shift",
        TextStyle::size(11.0).fill("#333333"),
    );
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_half_shift_layer_is_the_first_reaching_half_the_final_shift() {
        // Shifts 0, 0.1, 0.3, 0.4: half of 0.4 is first reached at layer 2.
        assert_eq!(half_shift_layer(&[1.0, 0.9, 0.7, 0.6]), Some(2));
        assert_eq!(half_shift_layer(&[0.9, 0.9]), Some(0));
        assert_eq!(half_shift_layer(&[1.0, 1.0]), None);
        assert_eq!(half_shift_layer(&[]), None);
    }
}
