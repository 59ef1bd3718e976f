//! Pixels for the figures that show images (the gallery and the attention
//! overlays). Pixels come from the `png` column of `augmentations.parquet` when
//! the augment stage saved them, otherwise they are replayed from the source
//! image and the recorded parameters. An image whose pixels cannot be had is
//! left out of its figure and recorded in `errors.parquet`, rather than
//! failing the report.

use clipshift_augment::{Replay, RgbImage, Rng};
use clipshift_tables::{ErrorKind, ErrorLog, RunDir, SourceImages, schema};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use polars::prelude::*;

use crate::figures::Ctx;
use crate::io::{col_opt_str, col_str, figure_path, scan, table_name};

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
    let mut rng = Rng::from_state(seed ^ 0x9a11);
    let k = k.min(ids.len());
    for i in 0..k {
        let j = i + rng.below(ids.len() - i);
        ids.swap(i, j);
    }
    ids.truncate(k);
    ids
}

/// One image's rows of `augmentations.parquet`: variant, recorded parameters
/// and saved PNG (when the augment stage saved pixels).
struct VariantRows {
    augmentations: Vec<String>,
    params: Vec<Option<String>>,
    pngs: Vec<Option<Vec<u8>>>,
}

impl VariantRows {
    fn read(run: &RunDir, image_id: u64) -> Result<Self, String> {
        let path = run.augmentations();
        let table = &table_name(&path);
        let named = |e: &dyn std::fmt::Display| format!("{table}: {e}");
        let lf = scan(&path).map_err(|e| named(&e))?;
        let has_png = lf.clone().collect_schema().map(|s| s.contains("png")).unwrap_or(false);
        let mut sel = vec![col(schema::AUGMENTATION), col("params")];
        if has_png {
            sel.push(col("png"));
        }
        let df = lf.filter(col(schema::IMAGE_ID).eq(lit(image_id))).select(sel).collect().map_err(|e| named(&e))?;
        let augmentations = col_str(&df, table, schema::AUGMENTATION).map_err(|e| e.to_string())?;
        let params = col_opt_str(&df, table, "params").map_err(|e| e.to_string())?;
        let pngs = if has_png {
            let png = df.column("png").and_then(|c| c.binary().cloned()).map_err(|e| named(&e))?;
            png.iter().map(|b| b.map(<[u8]>::to_vec)).collect()
        } else {
            vec![None; augmentations.len()]
        };
        Ok(Self { augmentations, params, pngs })
    }
}

/// Pixels of every variant of one image, in the given order ("original" first):
/// the saved PNG where there is one, otherwise replayed from the source image,
/// which `sources` (when readable) locates.
fn variant_pixels(
    run: &RunDir,
    sources: Option<&SourceImages>,
    image_id: u64,
    variants: &[String],
) -> Result<Vec<(String, RgbImage, &'static str)>, String> {
    let rows = VariantRows::read(run, image_id)?;
    let mut replay: Option<Replay> = None;
    let mut out = Vec::new();
    for v in variants {
        let r = rows.augmentations.iter().position(|a| a == v).ok_or_else(|| format!("no row for {v}"))?;
        if let Some(bytes) = &rows.pngs[r] {
            let img = image::load_from_memory(bytes).map_err(|e| format!("{v}: saved PNG: {e}"))?.to_rgb8();
            out.push((v.clone(), img, "png column"));
            continue;
        }
        let replay = match &mut replay {
            Some(replay) => replay,
            none => {
                let sources = sources.ok_or("images.parquet could not be read")?;
                let file = sources.file(image_id).ok_or("image not in images.parquet")?;
                none.insert(Replay::load(&file, sources.image_size(), sources.max_pixels()).map_err(|e| e.to_string())?)
            }
        };
        // The original is the canonical image itself; its recorded parameters are not read.
        let json = match rows.params[r].as_deref() {
            Some(json) => json,
            None if v == schema::ORIGINAL => "",
            None => return Err(format!("{v}: null params")),
        };
        let img = replay.variant(v, json).map_err(|e| e.to_string())?.into_owned();
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
