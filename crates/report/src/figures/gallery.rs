//! The augmentation gallery: a few images and every variant of them, as the
//! encoder saw them.

use clipshift_tables::schema;
use polars::prelude::*;

use super::{Ctx, Figure, Raster};
use crate::chart::{self, Svg, TextStyle, header};
use crate::io::frame;
use crate::replay::{Pixels, THUMB, pick_images, png_bytes, thumb, variants};
use crate::{ReportConfig, ReportError};

/// Three images of the seeded sample in every variant; `image_size` is the
/// side of the canonical image the variants are made from.
pub(crate) fn gallery(
    ctx: &Ctx<'_>,
    pixels: &Pixels<'_>,
    image_size: u32,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    if !config.replay_images {
        return Ok(None);
    }
    let vars = variants(ctx);
    let rows: Vec<_> = pick_images(ctx, config.seed, 3)
        .into_iter()
        .filter_map(|id| pixels.variants_of("gallery", id, &vars).map(|px| (id, px)))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let title = "Augmentation gallery";
    let top = chart::header_height(ctx.random_init) + 30.0;
    let left = 20.0;
    let cell = THUMB + 8.0;
    let mut svg = Svg::new((left * 2.0 + cell * vars.len() as f64).max(700.0), top + cell * rows.len() as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    let mut rasters = Vec::new();
    let (mut ti, mut ta, mut tr, mut tc, mut ts) = (vec![], vec![], vec![], vec![], vec![]);
    for (c, v) in vars.iter().enumerate() {
        let x = left + cell * c as f64;
        // Black text (light palette colours are unreadable as text) over the
        // augmentation's colour key.
        svg.text(x + THUMB / 2.0, top - 12.0, v, TextStyle::size(11.0).middle());
        svg.rect(x, top - 7.0, THUMB, 4.0, &ctx.colour_of(v), None);
    }
    for (r, (id, px)) in rows.iter().enumerate() {
        for (c, (v, img, source)) in px.iter().enumerate() {
            let (x, y) = (left + cell * c as f64, top + cell * r as f64);
            let t = thumb(img);
            svg.image_png(x, y, THUMB, THUMB, &png_bytes(&t));
            rasters.push(Raster { x, y, w: THUMB, h: THUMB, image: img.clone() });
            ti.push(*id);
            ta.push(v.clone());
            tr.push(r as u32);
            tc.push(c as u32);
            ts.push(*source);
        }
    }
    let table = frame(
        "gallery",
        &schema::gallery(),
        vec![
            Column::new("image_id".into(), ti),
            Column::new("augmentation".into(), ta),
            Column::new("row".into(), tr),
            Column::new("column".into(), tc),
            Column::new("pixels".into(), ts),
        ],
    )?;
    let cap = ctx.caption(format!(
        "{} images (seeded sample) and their augmented variants, as the encoder saw them ({}x{}).",
        rows.len(),
        image_size,
        image_size
    ));
    let mut f = Figure::new("gallery", title, cap, svg.finish(), table);
    f.rasters = rasters;
    Ok(Some(f))
}
