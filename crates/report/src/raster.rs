//! SVG -> PNG with resvg, using the embedded DejaVu Sans so text renders the
//! same on every machine (no system fonts are consulted).

use resvg::{tiny_skia, usvg};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) struct Rasterizer {
    options: usvg::Options<'static>,
    scale: f32,
}

impl Rasterizer {
    pub(crate) fn new(scale: f32) -> Self {
        let mut options = usvg::Options::default();
        options.fontdb_mut().load_font_data(FONT.to_vec());
        options.font_family = crate::chart::FONT.to_owned();
        Self { options, scale }
    }

    /// Render a figure: its SVG, then its raster images on top.
    pub(crate) fn figure(&self, f: &crate::figures::Figure) -> Result<Vec<u8>, String> {
        let mut pixmap = self.pixmap(&f.svg)?;
        for r in &f.rasters {
            let (w, h) = ((r.w * self.scale as f64).round() as u32, (r.h * self.scale as f64).round() as u32);
            let img = crate::replay::display_resize(&r.image, w, h);
            let mut rgba = Vec::with_capacity((w * h * 4) as usize);
            for p in img.pixels() {
                rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
            }
            let size = tiny_skia::IntSize::from_wh(w.max(1), h.max(1)).ok_or("empty raster")?;
            let src = tiny_skia::Pixmap::from_vec(rgba, size).ok_or("bad raster")?;
            let (x, y) = ((r.x * self.scale as f64).round() as i32, (r.y * self.scale as f64).round() as i32);
            pixmap.draw_pixmap(
                x,
                y,
                src.as_ref(),
                &tiny_skia::PixmapPaint::default(),
                tiny_skia::Transform::identity(),
                None,
            );
        }
        Ok(png(&pixmap))
    }

    #[cfg(test)]
    fn png(&self, svg: &str) -> Result<Vec<u8>, String> {
        Ok(png(&self.pixmap(svg)?))
    }

    fn pixmap(&self, svg: &str) -> Result<tiny_skia::Pixmap, String> {
        let tree = usvg::Tree::from_str(svg, &self.options).map_err(|e| e.to_string())?;
        let size = tree.size();
        let w = (size.width() * self.scale).ceil() as u32;
        let h = (size.height() * self.scale).ceil() as u32;
        let mut pixmap = tiny_skia::Pixmap::new(w.max(1), h.max(1)).ok_or("empty figure")?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(&tree, tiny_skia::Transform::from_scale(self.scale, self.scale), &mut pixmap.as_mut());
        Ok(pixmap)
    }
}

/// A figure as an RGB PNG. Figures are opaque (drawn on white), so the alpha channel is
/// dropped; the encoding is the image crate's fast one (fdeflate): tiny-skia's own
/// `encode_png` (zlib at the default level) was a quarter of the report's time, for
/// files a quarter smaller.
fn png(pixmap: &tiny_skia::Pixmap) -> Vec<u8> {
    let rgb = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue()]
        })
        .collect();
    let image = image::RgbImage::from_raw(pixmap.width(), pixmap.height(), rgb).expect("one pixel per RGB triple");
    crate::replay::png_bytes(&image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_renders_with_embedded_font() {
        let r = Rasterizer::new(1.0);
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"><text x="2" y="15" font-family="DejaVu Sans" font-size="14">Hi</text></svg>"#;
        let png = r.png(svg).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgba8();
        assert!(img.pixels().any(|p| p[0] < 128), "text produced no dark pixels");
    }
}
