//! Figures that need pixels: the augmentation gallery and the attention
//! overlays. Pixels come from the `png` column of `augmentations.parquet` when
//! the augment stage saved them, otherwise they are replayed from the source
//! image and the recorded parameters. Missing pixels skip the figure with a
//! warning rather than failing the report.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::path::Path;

use clipshift_augment::{Params, RgbImage};
use clipshift_tables::SourceImages;
use polars::prelude::*;

use crate::chart::{self, Svg, header};
use crate::figures::{Ctx, Figure, Raster};
use crate::io::{col_opt_str, col_str, frame, scan};
use crate::run_info::RunInfo;
use crate::stats::SplitMix64;
use crate::{ReportConfig, ReportError};

const THUMB: f64 = 120.0;

/// Images shown in pixel figures: a seeded sample, so reports are reproducible.
fn pick_images(ctx: &Ctx<'_>, seed: u64, k: usize) -> Vec<u64> {
    let mut ids = ctx.data.image_ids.clone();
    let mut rng = SplitMix64::new(seed ^ 0x9a11);
    let k = k.min(ids.len());
    for i in 0..k {
        let j = i + rng.below(ids.len() - i);
        ids.swap(i, j);
    }
    ids.truncate(k);
    ids
}

/// Canonical image: decode and squash-resize exactly as the augment stage does.
fn canonical(path: &Path, size: u32) -> Result<RgbImage, String> {
    clipshift_augment::load_canonical(path, size).map_err(|e| e.to_string())
}

/// Pixels of every variant of one image, in the given order ("original" first);
/// `sources` (when readable) locates the source image for replayed variants.
fn variant_pixels(
    dir: &Path,
    sources: Option<&SourceImages>,
    image_id: u64,
    variants: &[String],
) -> Result<Vec<(String, RgbImage, &'static str)>, String> {
    let table = "augmentations.parquet";
    let lf = scan(dir, table).map_err(|e| e.to_string())?;
    let schema_has_png = lf.clone().collect_schema().map(|s| s.contains("png")).unwrap_or(false);
    let mut sel = vec![col("augmentation"), col("params")];
    if schema_has_png {
        sel.push(col("png"));
    }
    let df = lf.filter(col("image_id").eq(lit(image_id))).select(sel).collect().map_err(|e| e.to_string())?;
    let augs = col_str(&df, table, "augmentation").map_err(|e| e.to_string())?;
    let params = col_opt_str(&df, table, "params").map_err(|e| e.to_string())?;
    let pngs: Vec<Option<Vec<u8>>> = if schema_has_png {
        df.column("png")
            .map_err(|e| e.to_string())?
            .binary()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|b| b.map(<[u8]>::to_vec))
            .collect()
    } else {
        vec![None; augs.len()]
    };
    let mut base: Option<RgbImage> = None;
    let mut load_base = || -> Result<RgbImage, String> {
        if let Some(b) = &base {
            return Ok(b.clone());
        }
        let sources = sources.ok_or("images.parquet could not be read")?;
        let file = sources.file(image_id).ok_or("image not in images.parquet")?;
        let b = canonical(&file, sources.image_size())?;
        base = Some(b.clone());
        Ok(b)
    };
    let mut out = Vec::new();
    for v in variants {
        let Some(r) = augs.iter().position(|a| a == v) else {
            return Err(format!("no row for {v}"));
        };
        if let Some(bytes) = &pngs[r] {
            let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?.to_rgb8();
            out.push((v.clone(), img, "png column"));
            continue;
        }
        let b = load_base()?;
        let img = if v == "original" {
            b
        } else {
            let json = params[r].as_deref().ok_or("null params")?;
            Params::from_json(v, json).and_then(|p| p.apply(&b)).map_err(|e| e.to_string())?
        };
        out.push((v.clone(), img, "replayed"));
    }
    Ok(out)
}

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let _ = img.write_to(&mut buf, image::ImageFormat::Png);
    buf.into_inner()
}

fn thumb(img: &RgbImage) -> RgbImage {
    display_resize(img, THUMB as u32, THUMB as u32)
}

/// Resizes an image for display (thumbnails, figure rasters) with fast_image_resize's
/// antialiased bilinear convolution. Never used for pixels a metric or the model sees.
pub(crate) fn display_resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (width, height) = (width.max(1), height.max(1));
    if img.dimensions() == (width, height) {
        return img.clone();
    }
    if img.width() == 0 || img.height() == 0 {
        return RgbImage::new(width, height);
    }
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
        .expect("an RgbImage buffer matches its dimensions");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).expect("source and destination are both U8x3");
    RgbImage::from_raw(width, height, dst.into_vec()).expect("the buffer has width x height x 3 bytes")
}

fn variants(ctx: &Ctx<'_>) -> Vec<String> {
    std::iter::once("original".to_owned()).chain(ctx.data.augs.iter().cloned()).collect()
}

pub(crate) fn gallery(
    ctx: &Ctx<'_>,
    run: &RunInfo,
    dir: &Path,
    sources: Option<&SourceImages>,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    if !config.replay_images {
        return Ok(None);
    }
    let vars = variants(ctx);
    let mut rows = Vec::new();
    for id in pick_images(ctx, config.seed, 3) {
        match variant_pixels(dir, sources, id, &vars) {
            Ok(px) => rows.push((id, px)),
            Err(e) => tracing::warn!(image_id = id, "gallery: cannot get pixels: {e}"),
        }
    }
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
        svg.text(x + THUMB / 2.0, top - 12.0, v, 11.0, "middle", 0.0, false, "#000000");
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
        run.image_size,
        run.image_size
    ));
    let mut f = Figure::new("gallery", title, cap, svg.finish(), table);
    f.rasters = rasters;
    Ok(Some(f))
}

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
fn attention(dir: &Path, image_id: u64) -> Result<Vec<(String, Vec<f64>)>, String> {
    let table = "embeddings.parquet";
    let df = scan(dir, table)
        .map_err(|e| e.to_string())?
        .filter(col("image_id").eq(lit(image_id)))
        .select([col("augmentation"), col("cls_attention")])
        .collect()
        .map_err(|e| e.to_string())?;
    let augs = col_str(&df, table, "augmentation").map_err(|e| e.to_string())?;
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

pub(crate) fn attention_overlays(
    ctx: &Ctx<'_>,
    dir: &Path,
    sources: Option<&SourceImages>,
    config: &ReportConfig,
) -> Result<Option<Figure>, ReportError> {
    if !config.replay_images || !dir.join("embeddings.parquet").is_file() {
        return Ok(None);
    }
    let vars = variants(ctx);
    let Some(&id) = pick_images(ctx, config.seed, 1).first() else {
        return Ok(None);
    };
    let att = match attention(dir, id) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return Ok(None),
        Err(e) => {
            tracing::warn!("attention overlays: {e}");
            return Ok(None);
        }
    };
    let px = match variant_pixels(dir, sources, id, &vars) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(image_id = id, "attention overlays: cannot get pixels: {e}");
            return Ok(None);
        }
    };
    let mi = ctx.data.metric_index("cosine_similarity");
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
    svg.text(left, top - 20.0, &format!("image {id:016x}"), 11.0, "start", 0.0, false, "#333333");
    // Colour key of the overlay.
    let bx = svg.width - left - 190.0;
    svg.text(bx - 6.0, top - 20.0, "attention: low", 11.0, "end", 0.0, false, "#333333");
    for i in 0..40 {
        svg.rect(bx + 4.0 * i as f64, top - 30.0, 4.5, 12.0, &chart::viridis(i as f64 / 39.0), None);
    }
    svg.text(bx + 166.0, top - 20.0, "high", 11.0, "start", 0.0, false, "#333333");
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
        svg.text(x + THUMB / 2.0, y + THUMB + 17.0, v, 10.0, "middle", 0.0, true, "#000000");
        svg.text(x + THUMB / 2.0, y + THUMB + 30.0, &second, 10.0, "middle", 0.0, false, "#333333");
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
        "attention_overlays",
        vec![
            Column::new("image_id".into(), vec![id; ta.len()]),
            Column::new("augmentation".into(), ta),
            Column::new("cosine_similarity".into(), tcs),
            Column::new("patch_row".into(), tr),
            Column::new("patch_col".into(), tcol),
            Column::new("attention".into(), tv),
        ],
    )?;
    let cap = ctx.caption("Class-token to patch attention of the last layer, averaged over heads, resized bilinearly to the image and min-max normalised (viridis, 50% over the image), for the original and each augmentation, with the cosine similarity of the augmented embedding to the original's.".into());
    let mut f = Figure::new("attention_overlays", title, cap, svg.finish(), table);
    f.rasters = rasters;
    Ok(Some(f))
}
