//! Pixels for the figures that show images (the gallery and the attention
//! overlays). Pixels come from the `png` column of `augmentations.parquet` when
//! the augment stage saved them, otherwise they are replayed from the source
//! image and the recorded parameters. An image whose pixels cannot be had is
//! left out of its figure and recorded in `errors.parquet`, rather than
//! failing the report.

use std::path::Path;

use clipshift_augment::{Params, RgbImage};
use clipshift_tables::{ErrorKind, ErrorLog, RunDir, SourceImages, schema};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use polars::prelude::*;

use crate::figures::Ctx;
use crate::io::{col_opt_str, col_str, figure_path, scan, table_name};
use crate::stats::SplitMix64;

/// Where the pixel figures get their images, and where they record the images
/// they cannot show.
pub(crate) struct Pixels<'a> {
    pub(crate) run: &'a RunDir,
    /// `None` when `images.parquet` could not be read (recorded once).
    pub(crate) sources: Option<&'a SourceImages>,
    pub(crate) errors: &'a ErrorLog,
}

impl Pixels<'_> {
    /// Pixels of every variant of one image for the figure `stem`; a failure
    /// is recorded against that figure and the image is left out.
    pub(crate) fn variants_of(
        &self,
        stem: &str,
        image_id: u64,
        variants: &[String],
    ) -> Option<Vec<(String, RgbImage, &'static str)>> {
        variant_pixels(self.run, self.sources, image_id, variants)
            .map_err(|e| self.record(stem, Some(image_id), format!("cannot get pixels of image {image_id:016x}: {e}")))
            .ok()
    }

    /// Records that part of the figure `stem` could not be drawn.
    pub(crate) fn record(&self, stem: &str, image_id: Option<u64>, message: String) {
        let path = figure_path(self.run, stem);
        self.errors.record(Some(&path), image_id, None, ErrorKind::Figure, format!("{stem}: {message}"));
    }
}

pub(crate) const THUMB: f64 = 120.0;

/// Images shown in pixel figures: a seeded sample, so reports are reproducible.
pub(crate) fn pick_images(ctx: &Ctx<'_>, seed: u64, k: usize) -> Vec<u64> {
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
    run: &RunDir,
    sources: Option<&SourceImages>,
    image_id: u64,
    variants: &[String],
) -> Result<Vec<(String, RgbImage, &'static str)>, String> {
    let path = run.augmentations();
    let table = &table_name(&path);
    let lf = scan(&path).map_err(|e| e.to_string())?;
    let schema_has_png = lf.clone().collect_schema().map(|s| s.contains("png")).unwrap_or(false);
    let mut sel = vec![col(schema::AUGMENTATION), col("params")];
    if schema_has_png {
        sel.push(col("png"));
    }
    let df = lf.filter(col(schema::IMAGE_ID).eq(lit(image_id))).select(sel).collect().map_err(|e| e.to_string())?;
    let augs = col_str(&df, table, schema::AUGMENTATION).map_err(|e| e.to_string())?;
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
        let img = if v == schema::ORIGINAL {
            b
        } else {
            let json = params[r].as_deref().ok_or("null params")?;
            Params::from_json(v, json).and_then(|p| p.apply(&b)).map_err(|e| e.to_string())?
        };
        out.push((v.clone(), img, "replayed"));
    }
    Ok(out)
}

pub(crate) fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let _ = img.write_to(&mut buf, image::ImageFormat::Png);
    buf.into_inner()
}

pub(crate) fn thumb(img: &RgbImage) -> RgbImage {
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

pub(crate) fn variants(ctx: &Ctx<'_>) -> Vec<String> {
    std::iter::once(schema::ORIGINAL.to_owned()).chain(ctx.data.augs.iter().cloned()).collect()
}
