//! The noise floor: how far the embedding moves under changes that should not matter
//! (the suite's floor members; `--floor` adds JPEG at quality 95, a one-pixel shift and
//! a resize round trip). Per image the floor is the smallest cosine similarity any floor
//! member gives, the largest move a harmless change makes. An augmentation stays inside
//! the floor when its paired mean difference to that floor is not below 0 at 95%
//! (the upper end of the bootstrap interval reaches 0). `noise_floor.parquet` holds the
//! comparison; the cosine figures draw the floor's mean with its interval as a band.

use std::collections::BTreeMap;

use clipshift_tables::schema::{self, COSINE_SIMILARITY};
use polars::prelude::*;

use crate::ReportError;
use crate::analysis::MetricData;
use crate::chart::{Rect, Scale, Svg, TextStyle};
use crate::config::ReportConfig;
use crate::io::frame;
use crate::stats;

/// The name of the floor's own row in `noise_floor.parquet`.
pub(crate) const FLOOR_ROW: &str = "noise_floor";

/// The mean over images of the per-image floor, with its bootstrap 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Band {
    pub(crate) mean: f64,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) n: usize,
}

impl Band {
    /// `None` for no values.
    pub(crate) fn of(values: &[f64], config: &ReportConfig, parts: &[&str]) -> Option<Band> {
        if values.is_empty() {
            return None;
        }
        let (lo, hi) = config.mean_ci(values, parts);
        Some(Band { mean: stats::mean(values), lo, hi, n: values.len() })
    }

    /// The band across a panel whose vertical axis is `ys`, clipped to the panel.
    pub(crate) fn draw_across(&self, svg: &mut Svg, r: Rect, ys: Scale) {
        let (top, bottom) = (ys.map(self.hi).max(r.y), ys.map(self.lo).min(r.bottom()));
        if bottom >= top {
            svg.rect_alpha(r.x, top, r.w, (bottom - top).max(1.0), BAND_COLOUR, 0.3, &self.title());
            svg.text(r.right() - 4.0, top - 3.0, "noise floor", TextStyle::size(10.0).end().fill("#555555"));
        }
    }

    /// The band up a panel whose horizontal axis is `xs`, clipped to the panel.
    pub(crate) fn draw_up(&self, svg: &mut Svg, r: Rect, xs: Scale) {
        let (left, right) = (xs.map(self.lo).max(r.x), xs.map(self.hi).min(r.right()));
        if right >= left {
            svg.rect_alpha(left, r.y, (right - left).max(1.0), r.h, BAND_COLOUR, 0.3, &self.title());
        }
    }

    fn title(&self) -> String {
        format!("noise floor: mean {:.4}, 95% CI [{:.4}, {:.4}], {} images", self.mean, self.lo, self.hi, self.n)
    }
}

const BAND_COLOUR: &str = "#808080";

/// Per key (an image), the smallest value among the floor members, for the keys where
/// all `members` have a value. `rows` holds the floor members' values only.
pub(crate) fn per_image_floor<K: Ord>(rows: impl IntoIterator<Item = (K, f64)>, members: usize) -> BTreeMap<K, f64> {
    let mut seen: BTreeMap<K, (usize, f64)> = BTreeMap::new();
    for (key, v) in rows {
        let entry = seen.entry(key).or_insert((0, f64::INFINITY));
        *entry = (entry.0 + 1, entry.1.min(v));
    }
    seen.into_iter().filter(|(_, (n, _))| *n == members).map(|(k, (_, v))| (k, v)).collect()
}

/// One row of `noise_floor.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FloorRow {
    pub(crate) augmentation: String,
    pub(crate) floor: bool,
    pub(crate) n: u64,
    pub(crate) mean_cosine: f64,
    /// The paired test against the floor (augmentations that are not floor members).
    pub(crate) test: Option<FloorTest>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FloorTest {
    /// Mean of the floor over the images this augmentation has.
    pub(crate) floor_cosine: f64,
    /// Mean of cos − floor per image, with its bootstrap 95% interval.
    pub(crate) difference: f64,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
}

impl FloorTest {
    pub(crate) fn inside(&self) -> bool {
        self.hi >= 0.0
    }
}

/// The floor of a run and every augmentation against it.
#[derive(Clone, Debug)]
pub(crate) struct NoiseFloor {
    pub(crate) members: Vec<String>,
    pub(crate) band: Band,
    pub(crate) rows: Vec<FloorRow>,
}

impl NoiseFloor {
    /// `None` when the run has no floor members or no image with all of them.
    pub(crate) fn compute(data: &MetricData, members: &[String], config: &ReportConfig) -> Option<NoiseFloor> {
        let cos = data.metric_index(COSINE_SIMILARITY)?;
        let index = |a: &str| data.augs.iter().position(|x| x == a);
        let member_ix: Vec<usize> = members.iter().filter_map(|m| index(m)).collect();
        if member_ix.is_empty() {
            return None;
        }
        let images = 0..data.image_ids.len();
        let rows =
            member_ix.iter().flat_map(|&m| images.clone().filter_map(move |i| Some((i, data.value(cos, m, i)?))));
        let floor = per_image_floor(rows, member_ix.len());
        let band = Band::of(&floor.values().copied().collect::<Vec<_>>(), config, &["noise-floor"])?;
        let mut out = vec![FloorRow {
            augmentation: FLOOR_ROW.into(),
            floor: true,
            n: band.n as u64,
            mean_cosine: band.mean,
            test: None,
        }];
        for (a, aug) in data.augs.iter().enumerate() {
            let values = data.values(cos, a);
            if values.is_empty() {
                continue;
            }
            let is_floor = member_ix.contains(&a);
            let test = (!is_floor).then(|| {
                let (own, under): (Vec<f64>, Vec<f64>) =
                    floor.iter().filter_map(|(&i, &f)| Some((data.value(cos, a, i)?, f))).unzip();
                let d: Vec<f64> = own.iter().zip(&under).map(|(x, f)| x - f).collect();
                let (lo, hi) = config.mean_ci(&d, &["noise-floor", aug]);
                (!d.is_empty()).then(|| FloorTest {
                    floor_cosine: stats::mean(&under),
                    difference: stats::mean(&d),
                    lo,
                    hi,
                })
            });
            out.push(FloorRow {
                augmentation: aug.clone(),
                floor: is_floor,
                n: values.len() as u64,
                mean_cosine: stats::mean(&values),
                test: test.flatten(),
            });
        }
        Some(NoiseFloor {
            members: data.augs.iter().filter(|a| members.contains(a)).cloned().collect(),
            band,
            rows: out,
        })
    }

    /// The augmentations (not floor members) inside the floor and outside it, in suite order.
    pub(crate) fn inside_and_outside(&self) -> (Vec<&str>, Vec<&str>) {
        let tested = self.rows.iter().filter_map(|r| Some((r.augmentation.as_str(), r.test?)));
        let (inside, outside): (Vec<_>, Vec<_>) = tested.partition(|(_, t)| t.inside());
        (inside.into_iter().map(|(a, _)| a).collect(), outside.into_iter().map(|(a, _)| a).collect())
    }

    pub(crate) fn frame(&self) -> Result<DataFrame, ReportError> {
        let rows = &self.rows;
        let test = |f: &dyn Fn(&FloorTest) -> f64| rows.iter().map(|r| r.test.as_ref().map(f)).collect::<Vec<_>>();
        // The floor's own row carries the band's interval.
        let band = |r: &FloorRow, v: f64| (r.augmentation == FLOOR_ROW && r.test.is_none()).then_some(v);
        let lo: Vec<Option<f64>> = rows.iter().map(|r| r.test.map(|t| t.lo).or(band(r, self.band.lo))).collect();
        let hi: Vec<Option<f64>> = rows.iter().map(|r| r.test.map(|t| t.hi).or(band(r, self.band.hi))).collect();
        frame(
            "noise_floor",
            &schema::noise_floor(),
            vec![
                Column::new(
                    schema::AUGMENTATION.into(),
                    rows.iter().map(|r| r.augmentation.clone()).collect::<Vec<_>>(),
                ),
                Column::new("floor".into(), rows.iter().map(|r| r.floor).collect::<Vec<_>>()),
                Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<_>>()),
                Column::new("mean_cosine".into(), rows.iter().map(|r| r.mean_cosine).collect::<Vec<_>>()),
                Column::new("floor_cosine".into(), test(&|t| t.floor_cosine)),
                Column::new("difference".into(), test(&|t| t.difference)),
                Column::new("ci_low".into(), lo),
                Column::new("ci_high".into(), hi),
                Column::new("inside".into(), rows.iter().map(|r| r.test.map(|t| t.inside())).collect::<Vec<_>>()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_smallest_member_value_of_complete_images() {
        let rows = [(1u64, 0.99), (1, 0.97), (2, 0.98), (3, 0.95), (3, 0.96)];
        let floor = per_image_floor(rows, 2);
        // Image 2 lacks a member: no floor there.
        assert_eq!(floor.into_iter().collect::<Vec<_>>(), vec![(1, 0.97), (3, 0.95)]);
    }
}
