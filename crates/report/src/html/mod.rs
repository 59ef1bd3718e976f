//! The self-contained `index.html`: inline SVG figures, no external resources.

use std::fmt::Write as _;

mod findings;

use crate::analysis::{Clustering, MetricData, PairTest, SummaryRow};
use crate::chart::escape;
use crate::figures::Figure;
use crate::run_info::RunInfo;
use clipshift_tables::schema::COSINE_SIMILARITY;

/// Standard base64 (RFC 4648) with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) struct Page<'a> {
    pub(crate) run: &'a RunInfo,
    pub(crate) data: &'a MetricData,
    pub(crate) summary: &'a [SummaryRow],
    pub(crate) tests: &'a [PairTest],
    pub(crate) floor: Option<&'a crate::floor::NoiseFloor>,
    pub(crate) clusterings: &'a [&'a Clustering],
    pub(crate) figures: &'a [Figure],
    /// (file name relative to the run directory, description)
    pub(crate) tables: &'a [(String, String)],
    /// Rows of `errors.parquet` from the stages before the report.
    pub(crate) input_errors: usize,
    /// Parts of this report that could not be drawn (rows of `errors.parquet`, stage `report`).
    pub(crate) report_errors: usize,
    pub(crate) config: &'a crate::ReportConfig,
}

const CSS: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:1240px;margin:0 auto;padding:1em 1.5em;color:#111;line-height:1.45}\
h1{font-size:1.7em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}td{white-space:nowrap}.scroll{overflow-x:auto}\
table.pm td{text-align:center;font-size:.95em}td.ns{background:#e6e6e6;color:#555}td.sig{font-weight:bold}td.na{background:#fff}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.banner{background:#B00020;color:#fff;padding:1em;font-weight:bold;font-size:1.2em;border-radius:4px}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9em;color:#333}\
.warn{color:#B00020;font-weight:bold}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\
li ul{margin:.2em 0}";

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

fn row<'a>(s: &'a [SummaryRow], aug: &str, metric: &str) -> Option<&'a SummaryRow> {
    s.iter().find(|r| r.augmentation == aug && r.metric == metric)
}

fn not_significant(t: &PairTest) -> bool {
    t.p_holm.partial_cmp(&0.05) != Some(std::cmp::Ordering::Less)
}

/// The test of `a` against `b` (either order) on `metric`.
fn test_of<'a>(tests: &'a [PairTest], metric: &str, a: &str, b: &str) -> Option<&'a PairTest> {
    tests.iter().find(|t| t.metric == metric && ((t.a == a && t.b == b) || (t.a == b && t.b == a)))
}

/// Augmentations in headline order (rank 1 = most disruptive by cosine similarity).
fn ranked_augs(p: &Page<'_>) -> Vec<String> {
    let mut augs: Vec<(&String, u32)> = p
        .data
        .augs
        .iter()
        .map(|a| (a, row(p.summary, a, COSINE_SIMILARITY).map(|r| r.rank).unwrap_or(u32::MAX)))
        .collect();
    augs.sort_by_key(|x| x.1);
    augs.into_iter().map(|(a, _)| a.clone()).collect()
}

fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "n/a".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The whole page, section by section.
pub(crate) fn render(p: &Page<'_>) -> String {
    let mut h = String::new();
    intro(&mut h, p);
    findings_section(&mut h, p);
    headline_table(&mut h, p);
    figures(&mut h, p);
    paired_tests(&mut h, p);
    tables(&mut h, p);
    configuration(&mut h, p);
    h
}

/// Head, the random-init banner, the title and what the run is.
fn intro(h: &mut String, p: &Page<'_>) {
    let title = format!("clipshift report: {} on {}", escape(&p.run.model.name), escape(&p.run.augment.suite.name));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>{CSS}</style></head><body>\n"
    );
    if p.run.model.random_init {
        h.push_str("<div class=\"banner\" id=\"random-init-banner\">RANDOM-INIT MODEL: this run used a model with random weights. Every number and figure below is meaningless and exists only to test the pipeline.</div>\n");
    }
    let _ = writeln!(h, "<h1>{title}</h1>");
    let _ = writeln!(
        h,
        "<p>{} images, {} augmentations, model <b>{}</b> ({}), clipshift {}.</p>",
        p.data.image_ids.len(),
        p.data.augs.len(),
        escape(&p.run.model.name),
        escape(&p.run.model.source),
        escape(&p.run.augment.tool_version)
    );
    if p.input_errors > 0 {
        let _ = writeln!(
            h,
            "<p class=\"warn\">{} failures were recorded in <a href=\"../errors.parquet\">errors.parquet</a>; the affected images are left out of the statistics.</p>",
            p.input_errors
        );
    }
    if p.report_errors > 0 {
        let _ = writeln!(
            h,
            "<p class=\"warn\">{} parts of this report could not be drawn; each is a row of <a href=\"../errors.parquet\">errors.parquet</a> (stage report).</p>",
            p.report_errors
        );
    }
}

fn findings_section(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"findings\">Findings</h2><ul>\n");
    for f in findings::findings(p) {
        let _ = writeln!(h, "<li>{f}</li>");
    }
    h.push_str("</ul>\n");
}

/// Mean and bootstrap half-width of every metric, augmentations in headline order.
fn headline_table(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"headline\">Headline table</h2>\n<p>Mean \u{00b1} half-width of the 95% percentile-bootstrap interval of the mean. Rank 1 = most disruptive by cosine similarity.</p>\n<div class=\"scroll\"><table><tr><th>rank</th><th class=\"l\">augmentation</th>");
    for m in &p.data.metrics {
        let _ = write!(h, "<th>{}</th>", m.label);
    }
    h.push_str("</tr>\n");
    for a in &ranked_augs(p) {
        let colour = crate::chart::colour(p.data.augs.iter().position(|x| x == a).unwrap_or(0));
        let rank = row(p.summary, a, COSINE_SIMILARITY).map_or_else(|| "–".into(), |r| r.rank.to_string());
        let _ = write!(
            h,
            "<tr><td>{rank}</td><td class=\"l\"><span class=\"sw\" style=\"background:{colour}\"></span>{}</td>",
            escape(a)
        );
        for m in &p.data.metrics {
            match row(p.summary, a, m.name) {
                Some(r) => {
                    let half = ((r.ci_high - r.mean).max(r.mean - r.ci_low)).abs();
                    let _ = write!(
                        h,
                        "<td title=\"n = {}, rank {}\">{} \u{00b1} {}</td>",
                        r.n,
                        r.rank,
                        fmt(r.mean),
                        fmt(half)
                    );
                }
                None => h.push_str("<td>–</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></div>\n");
}

/// Each figure inline, with its caption and links to its files.
fn figures(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"figures\">Figures</h2>\n");
    for f in p.figures {
        let _ = writeln!(
            h,
            "<figure id=\"{stem}\">\n{svg}<figcaption><b>{title}.</b> {cap} <a href=\"{stem}.svg\">SVG</a> \u{00b7} <a href=\"{stem}.png\">PNG</a> \u{00b7} <a href=\"{stem}.parquet\">data</a></figcaption></figure>",
            stem = f.stem,
            svg = f.svg,
            title = escape(&f.title),
            cap = escape(&f.caption)
        );
    }
}

/// The Wilcoxon tests of cosine similarity: a matrix of p-values and the full list.
fn paired_tests(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"tests\">Paired tests</h2>\n<p>Wilcoxon signed-rank tests over images for every pair of augmentations (scipy.stats.wilcoxon defaults: zeros dropped, no continuity correction, exact null distribution for up to 50 untied pairs), Holm-corrected within each metric. Full table: <a href=\"wilcoxon.parquet\">wilcoxon.parquet</a>.</p>\n");
    let cos_tests: Vec<&PairTest> = p.tests.iter().filter(|t| t.metric == COSINE_SIMILARITY).collect();
    if !cos_tests.is_empty() {
        // Matrix of Holm-corrected p-values, augmentations in headline order.
        let order = ranked_augs(p);
        h.push_str("<p>Cosine similarity, p<sub>Holm</sub> for each pair (rows and columns in headline order; grey = not significant at \u{03b1} = 0.05, bold = significant):</p>\n<div class=\"scroll\"><table class=\"pm\"><tr><th></th>");
        for a in &order {
            let _ = write!(h, "<th>{}</th>", escape(a));
        }
        h.push_str("</tr>\n");
        for (i, a) in order.iter().enumerate() {
            let _ = write!(h, "<tr><th class=\"l\">{}</th>", escape(a));
            for (j, b) in order.iter().enumerate() {
                match test_of(p.tests, COSINE_SIMILARITY, a, b).filter(|_| i != j) {
                    Some(t) if t.p_holm.is_finite() => {
                        let class = if not_significant(t) { "ns" } else { "sig" };
                        let _ = write!(
                            h,
                            "<td class=\"{class}\" title=\"{} vs {}: p = {}, n = {}\">{}</td>",
                            escape(a),
                            escape(b),
                            fmt_p(t.test.p_value),
                            t.n,
                            fmt_p(t.p_holm)
                        );
                    }
                    Some(_) => h.push_str("<td class=\"ns\">n/a</td>"),
                    None => h.push_str("<td class=\"na\"></td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table></div>\n<details><summary>All cosine-similarity tests</summary><div class=\"scroll\">");
        h.push_str("<table><tr><th class=\"l\">a</th><th class=\"l\">b</th><th>mean(a) \u{2212} mean(b)</th><th>n</th><th>statistic</th><th>p</th><th>p (Holm)</th></tr>\n");
        for t in cos_tests {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&t.a),
                escape(&t.b),
                fmt(t.mean_diff),
                t.n,
                fmt(t.test.statistic),
                fmt_p(t.test.p_value),
                fmt_p(t.p_holm)
            );
        }
        h.push_str("</table></div></details>\n");
    }
}

fn tables(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"tables\">Tables</h2><ul>\n");
    for (file, desc) in p.tables {
        let _ = writeln!(h, "<li><a href=\"{}\">{}</a>: {}</li>", escape(file), escape(file), escape(desc));
    }
    h.push_str("</ul>\n");
}

/// The run's configuration and model, the report's settings and `run.json` verbatim.
fn configuration(h: &mut String, p: &Page<'_>) {
    h.push_str("<h2 id=\"configuration\">Run configuration and model</h2>\n<table>");
    for (k, v) in [
        ("model", p.run.model.name.clone()),
        ("source", p.run.model.source.clone()),
        ("random init", p.run.model.random_init.to_string()),
        ("sha256", p.run.model.sha256.clone()),
        ("suite", p.run.augment.suite.name.clone()),
        ("seed", p.run.augment.seed.to_string()),
        ("image size", p.run.augment.image_size.to_string()),
        ("tool version", p.run.augment.tool_version.clone()),
        ("report: linkage", p.config.linkage.as_str().to_owned()),
        ("report: cluster threshold", format!("{} \u{00d7} the largest merge distance", p.config.threshold_ratio)),
        ("report: bootstrap resamples", p.config.bootstrap_resamples.to_string()),
        ("report: seed (bootstrap, samples)", p.config.seed.to_string()),
    ] {
        let _ = writeln!(h, "<tr><th class=\"l\">{k}</th><td class=\"l\">{}</td></tr>", escape(&v));
    }
    h.push_str("</table>\n<details><summary>run.json</summary><pre>");
    h.push_str(&escape(&serde_json::to_string_pretty(&p.run.raw).unwrap_or_default()));
    h.push_str("</pre></details>\n</body></html>\n");
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
