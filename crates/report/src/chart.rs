//! A deliberately small SVG toolkit: linear scales, nice ticks, axes,
//! legends, a colour-blind-safe palette and a sequential colour map.

use std::fmt::Write as _;

/// Paul Tol's "muted" scheme (colour-blind safe, nine distinct hues).
pub(crate) const PALETTE: [&str; 9] =
    ["#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499"];
/// Colour of the unaugmented original wherever it appears.
pub(crate) const ORIGINAL_COLOUR: &str = "#555555";
pub(crate) const FONT: &str = "DejaVu Sans";
pub(crate) const WARN_COLOUR: &str = "#B00020";

/// Colour of the `i`-th augmentation in suite order; beyond nine the hues
/// repeat with a darker shade so they stay distinguishable by lightness.
pub(crate) fn colour(i: usize) -> String {
    let base = PALETTE[i % PALETTE.len()];
    if i < PALETTE.len() {
        return base.to_owned();
    }
    let v = u32::from_str_radix(&base[1..], 16).unwrap_or(0);
    let f = |s: u32| ((v >> s & 0xff) as f64 * 0.6) as u32;
    format!("#{:02X}{:02X}{:02X}", f(16), f(8), f(0))
}

/// Sequential, perceptually uniform colour map (viridis key colours).
pub(crate) fn viridis(t: f64) -> String {
    const K: [(f64, f64, f64); 9] = [
        (68.0, 1.0, 84.0),
        (71.0, 45.0, 123.0),
        (59.0, 82.0, 139.0),
        (44.0, 114.0, 142.0),
        (33.0, 145.0, 140.0),
        (40.0, 174.0, 128.0),
        (94.0, 201.0, 98.0),
        (170.0, 220.0, 50.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (K.len() - 1) as f64;
    let i = (x.floor() as usize).min(K.len() - 2);
    let f = x - i as f64;
    let (a, b) = (K[i], K[i + 1]);
    let c = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    format!("#{:02X}{:02X}{:02X}", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

/// Black or white, whichever reads better on a viridis cell.
pub(crate) fn text_on_viridis(t: f64) -> &'static str {
    if t > 0.55 { "#000000" } else { "#FFFFFF" }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Linear map from a data domain to a pixel range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    pub(crate) d0: f64,
    pub(crate) d1: f64,
    pub(crate) r0: f64,
    pub(crate) r1: f64,
}

impl Scale {
    pub(crate) fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        let (d0, d1) = if (d1 - d0).abs() < 1e-300 || !(d1 - d0).is_finite() { (d0 - 0.5, d0 + 0.5) } else { (d0, d1) };
        Self { d0, d1, r0, r1 }
    }
    pub(crate) fn map(&self, v: f64) -> f64 {
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks.
pub(crate) fn nice_step(lo: f64, hi: f64, target: usize) -> f64 {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Domain widened outward to whole tick steps, and the ticks inside it.
pub(crate) fn nice_domain(lo: f64, hi: f64, target: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if !lo.is_finite() || !hi.is_finite() {
        (0.0, 1.0)
    } else if (hi - lo).abs() < 1e-12 {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    };
    let step = nice_step(lo, hi, target);
    let a = (lo / step).floor() * step;
    let b = (hi / step).ceil() * step;
    let n = ((b - a) / step).round() as usize;
    let ticks = (0..=n).map(|i| a + i as f64 * step).collect();
    (a, b, ticks)
}

/// Tick label with just enough decimals for `step`.
pub(crate) fn fmt_tick(v: f64, step: f64) -> String {
    let dec = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{v:.dec$}")
}

/// Decimals that show `spread` to two significant digits (at least three,
/// at most eight), so a mean of 0.99997 is not printed as 1.000.
pub(crate) fn decimals_for(spread: f64) -> usize {
    if !spread.is_finite() || spread <= 0.0 {
        return 4;
    }
    ((-spread.log10()).floor() as i64 + 2).clamp(3, 8) as usize
}

/// Plot rectangle in pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rect {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
}

impl Rect {
    pub(crate) fn right(&self) -> f64 {
        self.x + self.w
    }
    pub(crate) fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

/// Where text sits relative to its x coordinate (SVG `text-anchor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// How a piece of text is drawn: `TextStyle::size(11.0).end().bold()`.
/// Unless changed, text is regular black, anchored at its start and not rotated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TextStyle {
    size: f64,
    anchor: Anchor,
    bold: bool,
    fill: &'static str,
    /// Degrees, clockwise, about the text's (x, y).
    rotate: f64,
}

impl TextStyle {
    /// Font size in pixels.
    pub(crate) fn size(size: f64) -> Self {
        Self { size, anchor: Anchor::Start, bold: false, fill: "#000000", rotate: 0.0 }
    }

    pub(crate) fn anchor(self, anchor: Anchor) -> Self {
        Self { anchor, ..self }
    }

    /// Centred on x.
    pub(crate) fn middle(self) -> Self {
        self.anchor(Anchor::Middle)
    }

    /// Ending at x (labels left of an axis).
    pub(crate) fn end(self) -> Self {
        self.anchor(Anchor::End)
    }

    pub(crate) fn bold(self) -> Self {
        Self { bold: true, ..self }
    }

    pub(crate) fn fill(self, fill: &'static str) -> Self {
        Self { fill, ..self }
    }

    /// Rotated by `degrees` (clockwise) about the text's (x, y).
    pub(crate) fn rotate(self, degrees: f64) -> Self {
        Self { rotate: degrees, ..self }
    }
}

/// An SVG document being written.
pub(crate) struct Svg {
    pub(crate) width: f64,
    pub(crate) height: f64,
    body: String,
}

impl Svg {
    pub(crate) fn new(width: f64, height: f64) -> Self {
        let mut s = Self { width, height, body: String::new() };
        s.rect(0.0, 0.0, width, height, "#FFFFFF", None);
        s
    }

    pub(crate) fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: Option<&str>) {
        let stroke = stroke.map(|s| format!(r#" stroke="{s}" stroke-width="1""#)).unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{fill}"{stroke}/>"#,
            w.max(0.0),
            h.max(0.0)
        );
    }

    /// A translucent rectangle with a hover title (histogram bars).
    #[allow(clippy::too_many_arguments)] // an SVG <rect>'s own attributes
    pub(crate) fn rect_alpha(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, opacity: f64, title: &str) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{fill}" fill-opacity="{opacity}" stroke="#FFFFFF" stroke-width="0.5"><title>{}</title></rect>"##,
            w.max(0.0),
            h.max(0.0),
            escape(title)
        );
    }

    pub(crate) fn rect_title(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{fill}"><title>{}</title></rect>"#,
            w.max(0.0),
            h.max(0.0),
            escape(title)
        );
    }

    #[allow(clippy::too_many_arguments)] // an SVG <line>'s own attributes
    pub(crate) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64, dash: Option<&str>) {
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.2}" y1="{y1:.2}" x2="{x2:.2}" y2="{y2:.2}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#
        );
    }

    pub(crate) fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str, width: f64) {
        let p: Vec<String> =
            pts.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round"/>"#,
            p.join(" ")
        );
    }

    pub(crate) fn polygon(
        &mut self,
        pts: &[(f64, f64)],
        fill: &str,
        fill_opacity: f64,
        stroke: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<polygon points="{}" fill="{fill}" fill-opacity="{fill_opacity}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
            p.join(" ")
        );
    }

    pub(crate) fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: &str, stroke: Option<&str>) {
        let stroke = stroke.map(|s| format!(r#" stroke="{s}" stroke-width="1""#)).unwrap_or_default();
        let _ = writeln!(self.body, r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="{r}" fill="{fill}"{stroke}/>"#);
    }

    /// Text at (x, y) in the given style.
    pub(crate) fn text(&mut self, x: f64, y: f64, s: &str, style: TextStyle) {
        let TextStyle { size, anchor, bold, fill, rotate } = style;
        let anchor = anchor.as_str();
        let rot = if rotate != 0.0 { format!(r#" transform="rotate({rotate} {x:.2} {y:.2})""#) } else { String::new() };
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.2}" y="{y:.2}" font-family="{FONT}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{weight}{rot}>{}</text>"#,
            escape(s)
        );
    }

    pub(crate) fn image_png(&mut self, x: f64, y: f64, w: f64, h: f64, png: &[u8]) {
        let _ = writeln!(
            self.body,
            r#"<image x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" preserveAspectRatio="none" href="data:image/png;base64,{}"/>"#,
            crate::html::base64(png)
        );
    }

    pub(crate) fn finish(self) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
{body}</svg>
"#,
            w = self.width,
            h = self.height,
            body = self.body
        )
    }
}

/// Height taken by `header`.
pub(crate) fn header_height(random_init: bool) -> f64 {
    if random_init { 56.0 } else { 38.0 }
}

/// Figure title, plus a red warning line when the model is random-init.
/// Returns the y coordinate below the header.
pub(crate) fn header(svg: &mut Svg, title: &str, random_init: bool) -> f64 {
    let cx = svg.width / 2.0;
    svg.text(cx, 26.0, title, TextStyle::size(17.0).middle().bold());
    if random_init {
        svg.text(
            cx,
            46.0,
            "RANDOM-INIT MODEL: these results are meaningless",
            TextStyle::size(13.0).middle().bold().fill(WARN_COLOUR),
        );
    }
    header_height(random_init)
}

/// Axes with ticks, grid lines and labels.
pub(crate) struct Axis<'a> {
    pub(crate) scale: Scale,
    pub(crate) ticks: &'a [f64],
    pub(crate) label: &'a str,
}

pub(crate) fn draw_axes(svg: &mut Svg, r: Rect, x: &Axis<'_>, y: &Axis<'_>) {
    let step = |t: &[f64]| {
        if t.len() > 1 { (t[1] - t[0]).abs() } else { 1.0 }
    };
    let (sx, sy) = (step(x.ticks), step(y.ticks));
    for &t in y.ticks {
        let py = y.scale.map(t);
        svg.line(r.x, py, r.right(), py, "#E5E5E5", 1.0, None);
        svg.line(r.x - 5.0, py, r.x, py, "#333333", 1.0, None);
        svg.text(r.x - 8.0, py + 4.0, &fmt_tick(t, sy), TextStyle::size(11.0).end().fill("#333333"));
    }
    for &t in x.ticks {
        let px = x.scale.map(t);
        svg.line(px, r.bottom(), px, r.bottom() + 5.0, "#333333", 1.0, None);
        svg.text(px, r.bottom() + 18.0, &fmt_tick(t, sx), TextStyle::size(11.0).middle().fill("#333333"));
    }
    svg.line(r.x, r.bottom(), r.right(), r.bottom(), "#333333", 1.0, None);
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.text(r.x + r.w / 2.0, r.bottom() + 40.0, x.label, TextStyle::size(13.0).middle());
    svg.text(r.x - 52.0, r.y + r.h / 2.0, y.label, TextStyle::size(13.0).middle().rotate(-90.0));
}

/// A vertical legend whose top-left corner is at (x, y), outside the data area.
pub(crate) fn legend(svg: &mut Svg, x: f64, y: f64, entries: &[(String, String)]) {
    for (i, (label, colour)) in entries.iter().enumerate() {
        let yy = y + i as f64 * 20.0;
        svg.rect(x, yy, 14.0, 14.0, colour, None);
        svg.text(x + 20.0, yy + 11.5, label, TextStyle::size(12.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_cover_domain() {
        let (a, b, t) = nice_domain(0.13, 0.97, 5);
        assert!(a <= 0.13 && b >= 0.97);
        assert_eq!(t.len(), 6);
        assert_eq!(fmt_tick(t[1], t[1] - t[0]), "0.2");
    }

    #[test]
    fn palette_is_distinct() {
        let c: std::collections::HashSet<String> = (0..18).map(colour).collect();
        assert_eq!(c.len(), 18);
    }
}
