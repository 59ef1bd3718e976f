//! Last-layer class-token attention of one image's variants, over their pixels.

use clipshift_augment::RgbImage;
use clipshift_tables::RunDir;
use polars::prelude::*;

use super::text::{Bar, panels};
use super::{Ctx, Figure, Raster};
use crate::analysis::SummaryRow;
use crate::chart::{self, Svg, TextStyle, header};
use crate::io::{col_str, frame, scan, table_name};
use crate::replay::{Pixels, THUMB, pick_images, png_bytes, thumb, variants};
use crate::{ReportConfig, ReportError};
use clipshift_tables::schema::{self, COSINE_SIMILARITY};

fn normalise(v: &[f64]) -> Vec<f64> {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi > lo { v.iter().map(|x| (x - lo) / (hi - lo)).collect() } else { v.to_vec() }
}

fn hex_rgb(h: &str) -> [f64; 3] {
    let v = u32::from_str_radix(h.trim_start_matches('#'), 16).unwrap_or(0);
    [(v >> 16 & 255) as f64, (v >> 8 & 255) as f64, (v & 255) as f64]
}

fn overlay(img: &RgbImage, att: &[f64], g: usize) -> RgbImage {
    let size = img.width();
    // The same cv2 INTER_LINEAR upsampling as the attention-similarity metric.
    let grid: Vec<f32> = att.iter().map(|&v| v as f32).collect();
    let up =
        clipshift_metrics::upsample_attention(&grid, size, size).unwrap_or_else(|| vec![0.0; (size * size) as usize]);
    debug_assert_eq!(grid.len(), g * g);
    let heat = normalise(&up.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    let mut out = img.clone();
    for (i, p) in out.pixels_mut().enumerate() {
        let c = hex_rgb(&chart::viridis(heat[i]));
        for k in 0..3 {
            p[k] = (0.5 * p[k] as f64 + 0.5 * c[k]).round() as u8;
        }
    }
    out
}

/// Class-token attention of each variant of one image.
fn attention(run: &RunDir, image_id: u64) -> Result<Vec<(String, Vec<f64>)>, String> {
    let path = run.embeddings();
    let table = &table_name(&path);
    let df = scan(&path)
        .map_err(|e| e.to_string())?
        .filter(col(schema::IMAGE_ID).eq(lit(image_id)))
        .select([col(schema::AUGMENTATION), col("cls_attention")])
        .collect()
        .map_err(|e| e.to_string())?;
    let augs = col_str(&df, table, schema::AUGMENTATION).map_err(|e| e.to_string())?;
    let att = df.column("cls_attention").map_err(|e| e.to_string())?.array().map_err(|e| e.to_string())?.clone();
    let mut out = Vec::new();
    for (i, a) in augs.into_iter().enumerate() {
        let Some(s) = att.get_as_series(i) else {
            continue;
        };
        let s = s.cast(&DataType::Float64).map_err(|e| e.to_string())?;
        let v: Vec<f64> = s.f64().map_err(|e| e.to_string())?.iter().map(|x| x.unwrap_or(0.0)).collect();
        if v.is_empty() {
            continue;
        }
        out.push((a, v));
    }
    Ok(out)
}

/// The first image of the seeded sample in every variant, its class-token
/// attention over the pixels.
pub(crate) fn attention_overlays(
    ctx: &Ctx<'_>,
    pixels: &Pixels<'_>,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    const STEM: &str = "attention_overlays";
    if !config.replay_images || !pixels.run.embeddings().exists() {
        return Ok(None);
    }
    let vars = variants(ctx);
    let Some(&id) = pick_images(ctx, config.seed, 1).first() else {
        return Ok(None);
    };
    let att = match attention(pixels.run, id) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return Ok(None),
        Err(e) => {
            let table = table_name(&pixels.run.embeddings());
            pixels.record(STEM, Some(id), format!("cannot read the attention of image {id:016x} in {table}: {e}"));
            return Ok(None);
        }
    };
    let Some(px) = pixels.variants_of(STEM, id, &vars) else {
        return Ok(None);
    };
    let mi = ctx.data.metric_index(COSINE_SIMILARITY);
    let img_ix = ctx.data.image_ids.iter().position(|&x| x == id);
    let title = "Last-layer class-token attention with cosine similarity";
    let top = chart::header_height(ctx.random_init) + 44.0;
    let left = 20.0;
    let cols = 5usize;
    let cell_w = THUMB + 30.0;
    let cell_h = THUMB + 42.0;
    let n = px.len();
    let mut svg =
        Svg::new((left * 2.0 + cell_w * cols as f64).max(700.0), top + cell_h * n.div_ceil(cols) as f64 + 10.0);
    header(&mut svg, title, ctx.random_init);
    svg.text(left, top - 20.0, &format!("image {id:016x}"), TextStyle::size(11.0).fill("#333333"));
    // Colour key of the overlay.
    let bx = svg.width - left - 190.0;
    svg.text(bx - 6.0, top - 20.0, "attention: low", TextStyle::size(11.0).end().fill("#333333"));
    for i in 0..40 {
        svg.rect(bx + 4.0 * i as f64, top - 30.0, 4.5, 12.0, &chart::viridis(i as f64 / 39.0), None);
    }
    svg.text(bx + 166.0, top - 20.0, "high", TextStyle::size(11.0).fill("#333333"));
    let mut rasters = Vec::new();
    let (mut ta, mut tcs, mut tr, mut tcol, mut tv) = (vec![], vec![], vec![], vec![], vec![]);
    for (k, (v, img, _)) in px.iter().enumerate() {
        let Some((_, a)) = att.iter().find(|(name, _)| name == v) else {
            continue;
        };
        let g = (a.len() as f64).sqrt().round() as usize;
        if g * g != a.len() || g == 0 {
            continue;
        }
        let ov = overlay(img, a, g);
        let (x, y) = (left + cell_w * (k % cols) as f64, top + cell_h * (k / cols) as f64);
        svg.image_png(x, y, THUMB, THUMB, &png_bytes(&thumb(&ov)));
        rasters.push(Raster { x, y, w: THUMB, h: THUMB, image: ov });
        let cos = match (mi, ctx.data.augs.iter().position(|x| x == v), img_ix) {
            (Some(m), Some(ai), Some(ii)) => ctx.data.value(m, ai, ii),
            _ => None,
        };
        let second = match cos {
            Some(c) => format!("cos {c:.4}"),
            None if v == "original" => "reference".to_owned(),
            None => "cos n/a".to_owned(),
        };
        svg.rect(x, y + THUMB + 2.0, THUMB, 4.0, &ctx.colour_of(v), None);
        svg.text(x + THUMB / 2.0, y + THUMB + 17.0, v, TextStyle::size(10.0).middle().bold());
        svg.text(x + THUMB / 2.0, y + THUMB + 30.0, &second, TextStyle::size(10.0).middle().fill("#333333"));
        for (p, val) in normalise(a).iter().enumerate() {
            ta.push(v.clone());
            tcs.push(cos);
            tr.push((p / g) as u32);
            tcol.push((p % g) as u32);
            tv.push(*val);
        }
    }
    if rasters.is_empty() {
        return Ok(None);
    }
    let table = frame(
        STEM,
        &schema::attention_overlays(),
        vec![
            Column::new("image_id".into(), vec![id; ta.len()]),
            Column::new("augmentation".into(), ta),
            Column::new(COSINE_SIMILARITY.into(), tcs),
            Column::new("patch_row".into(), tr),
            Column::new("patch_col".into(), tcol),
            Column::new("attention".into(), tv),
        ],
    )?;
    let cap = ctx.caption("Class-token to patch attention of the last layer, averaged over heads, resized bilinearly to the image and min-max normalised (viridis, 50% over the image), for the original and each augmentation, with the cosine similarity of the augmented embedding to the original's.".into());
    let mut f = Figure::new(STEM, title, cap, svg.finish(), table);
    f.rasters = rasters;
    Ok(Some(f))
}

/// The attention similarity in the paper's frame beside the same comparison in the
/// variant's frame (`attention_similarity_aligned`), per augmentation: for a geometric
/// augmentation the gap is the part of the paper's drop that only reflects the warp.
pub(crate) fn attention_alignment(ctx: &Ctx<'_>) -> Result<Option<Figure>, ReportError> {
    const PAPER: &str = "attention_similarity";
    const ALIGNED: &str = "attention_similarity_aligned";
    let rows: Vec<(&String, &SummaryRow, &SummaryRow)> =
        ctx.data.augs.iter().filter_map(|a| Some((a, ctx.row(a, PAPER)?, ctx.row(a, ALIGNED)?))).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let bar = |a: &String, r: &SummaryRow| Bar {
        label: a.clone(),
        colour: ctx.colour_of(a),
        value: r.mean,
        lo: r.ci_low,
        hi: r.ci_high,
    };
    let title = "Attention similarity in the paper's frame and aligned to the variant's";
    let svg = panels(
        ctx,
        title,
        &[
            ("Attention similarity (paper)", rows.iter().map(|(a, p, _)| bar(a, p)).collect()),
            ("Attention similarity, aligned", rows.iter().map(|(a, _, q)| bar(a, q)).collect()),
        ],
    );
    let col = |name: &str, f: &dyn Fn(&(&String, &SummaryRow, &SummaryRow)) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let table = frame(
        "attention_alignment",
        &schema::attention_alignment(),
        vec![
            Column::new(schema::AUGMENTATION.into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
            Column::new("n".into(), rows.iter().map(|r| r.2.n).collect::<Vec<_>>()),
            col("paper_mean", &|r| r.1.mean),
            col("paper_ci_low", &|r| r.1.ci_low),
            col("paper_ci_high", &|r| r.1.ci_high),
            col("aligned_mean", &|r| r.2.mean),
            col("aligned_ci_low", &|r| r.2.ci_low),
            col("aligned_ci_high", &|r| r.2.ci_high),
        ],
    )?;
    let cap = ctx.caption("Left: the paper's attention similarity, which compares the variant's class-token attention with the original's in the image frame. Right: attention_similarity_aligned, which first moves the original's upsampled map with the same warp as the pixels (flip, shift-scale-rotate, perspective, elastic, pixel shift) and compares over the pixels the moved map covers, so a flipped image whose attention simply flips scores 1; for augmentations that move no pixel the two are equal. Means over images with percentile bootstrap 95% intervals (summary.parquet).".into());
    Ok(Some(Figure::new("attention_alignment", title, cap, svg, table)))
}
