//! What `index.html` may refer to: it must render from the file alone.

/// Every reference in `html` that reaches outside the page: a `src`, `href`,
/// `@import` or `url(` whose target is not a `data:` URI or an in-page
/// `#fragment`. A plain link (`<a href>`) to a relative path is allowed: it
/// loads nothing when the page renders (the page links the run's tables that
/// way); a link with a scheme or to `//host` is not.
pub(crate) fn outside_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for pattern in ["src=", "href=", "url("] {
        for (at, _) in html.match_indices(pattern) {
            let target = target_at(&html[at + pattern.len()..], pattern == "url(");
            let inside = target.starts_with("data:") || target.starts_with('#');
            let local_link = pattern == "href=" && in_anchor(&html[..at]) && !is_remote(target);
            if !inside && !local_link {
                found.push(format!("{pattern}{target}"));
            }
        }
    }
    // `@import "x"` (a bare string); `@import url(x)` is caught as `url(` above.
    for (at, _) in html.match_indices("@import") {
        let rest = html[at + "@import".len()..].trim_start();
        if !rest.starts_with("url(") {
            found.push(format!("@import {}", target_at(rest, false)));
        }
    }
    found
}

/// The quoted or bare value at the start of `rest`; inside `url(...)` it ends at `)`.
fn target_at(rest: &str, in_url: bool) -> &str {
    let rest = rest.trim_start();
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
        _ if in_url => rest.split(')').next().unwrap_or("").trim(),
        _ => rest.split(|c: char| c.is_whitespace() || c == '>').next().unwrap_or(""),
    }
}

/// Whether the attribute that follows `before` belongs to an `<a>` element.
fn in_anchor(before: &str) -> bool {
    let tag = &before[before.rfind('<').map_or(0, |i| i + 1)..];
    tag.starts_with("a ") || tag.starts_with("a\n")
}

/// A target with a scheme (`https:`, `file:`, ...) or a network path (`//host`).
fn is_remote(target: &str) -> bool {
    let scheme = target.split_once(':').map(|(s, _)| s);
    target.starts_with("//")
        || scheme.is_some_and(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

#[test]
fn outside_references_catch_remote_loads_and_accept_inline_ones() {
    for bad in [
        r#"<img src="https://x/a.png">"#,
        r#"<script src='http://x/a.js'></script>"#,
        r#"<link rel="stylesheet" href="//x/a.css">"#,
        r#"<a href="//x">x</a>"#,
        r#"<a href="https://x">x</a>"#,
        r#"<image href="b.png"/>"#,
        r#"<img src=https://x/a.png>"#,
        "<style>@import url(http://x/a.css);</style>",
        "<style>@import 'a.css';</style>",
        "<style>body{background:url('https://x/a.png')}</style>",
        "<style>body{background:url( https://x/a.png )}</style>",
    ] {
        assert_eq!(outside_references(bad).len(), 1, "not caught: {bad}");
    }
    let good = concat!(
        r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,AAAA"/></svg>"#,
        r##"<a href="#findings">findings</a> <a href="../summary.parquet">table</a> <a href="radar.svg">SVG</a>"##,
        "<style>body{background:url(data:image/png;base64,AAAA)}</style>",
        r#"<p>see http://example.org in the text</p>"#,
    );
    assert_eq!(outside_references(good), Vec::<String>::new());
}
