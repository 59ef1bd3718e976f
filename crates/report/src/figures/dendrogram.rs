//! The dendrogram of a clustering, with its cut and flat clusters.

use polars::prelude::*;

use super::{Ctx, Figure, fig};
use crate::ReportError;
use crate::analysis::Clustering;
use crate::chart::{self, Rect, Scale, Svg, TextStyle, header, nice_domain};
use crate::io::frame;
use clipshift_tables::schema;

const CLUSTER_COLOURS: [&str; 7] = ["#E69F00", "#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"];

/// Dendrogram with the threshold line and the cluster count.
pub(crate) fn dendrogram(ctx: &Ctx<'_>, c: &Clustering, stem: &str) -> Result<Option<Figure>, ReportError> {
    let n = c.labels.len();
    if n < 2 {
        return Ok(None);
    }
    let k = c.n_clusters();
    let what = if c.set == "variants" { "augmented variants and the original" } else { "augmentations" };
    let title = format!("Dendrogram of the {what} ({} linkage)", c.method.title());
    let mut svg = Svg::new(960.0, 640.0);
    let top = header(&mut svg, &title, ctx.random_init) + 16.0;
    let r = Rect { x: 90.0, y: top, w: 820.0, h: 640.0 - top - 190.0 };
    let axis = format!("{} merge distance (of mean cosine distances)", c.method.title());
    let cols = tree(&mut svg, ctx, c, r, &axis);
    cluster_legend(&mut svg, c, (r.x, r.bottom() + 118.0));
    let table = frame(stem, &schema::dendrogram(), cols)?;
    let cap = ctx.caption(format!(
        "{} linkage of the cosine distance between variant embeddings, averaged over images. Flat clusters (fcluster, criterion 'distance') at 0.7 \u{00d7} the largest merge distance = {:.4}: {k} clusters.",
        c.method.title(), c.threshold
    ));
    Ok(Some(fig(stem, &title, cap, svg.finish(), table)))
}

/// The tree of `c` in `r` (leaves below it, the cut as a dashed line), with `axis` as the
/// height's label; returns the columns of schema::dendrogram for what it drew.
pub(crate) fn tree(svg: &mut Svg, ctx: &Ctx<'_>, c: &Clustering, r: Rect, axis: &str) -> Vec<Column> {
    let n = c.labels.len();
    let links = crate::cluster::dendrogram_links(&c.merges, n);
    let k = c.n_clusters();
    let ymax = c.merges.iter().map(|m| m.distance).fold(0.0, f64::max);
    let (y0, y1, yt) = nice_domain(0.0, ymax * 1.05, 5);
    let xs = Scale::new(0.0, 10.0 * n as f64, r.x, r.right());
    let ys = Scale::new(y0, y1, r.bottom(), r.y);
    let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    for &t in &yt {
        let py = ys.map(t);
        svg.line(r.x, py, r.right(), py, "#EEEEEE", 1.0, None);
        svg.line(r.x - 5.0, py, r.x, py, "#333333", 1.0, None);
        svg.text(r.x - 8.0, py + 4.0, &chart::fmt_tick(t, step), TextStyle::size(11.0).end().fill("#333333"));
    }
    svg.line(r.x, r.y, r.x, r.bottom(), "#333333", 1.0, None);
    svg.text(r.x - 60.0, r.y + r.h / 2.0, axis, TextStyle::size(13.0).middle().rotate(-90.0));
    // Cluster of each node (None above the threshold), for colouring.
    let mut node_cluster: Vec<Option<u32>> = c.clusters.iter().map(|&x| Some(x)).collect();
    for m in &c.merges {
        let (l, rr) = (node_cluster[m.left], node_cluster[m.right]);
        node_cluster.push(if m.distance <= c.threshold && l == rr { l } else { None });
    }
    let (mut kind, mut label, mut clus) = (vec![], vec![], vec![]);
    let mut coords: [Vec<f64>; 8] = Default::default();
    for (i, l) in links.iter().enumerate() {
        let cl = node_cluster[n + i];
        let col = cl.map(|k| CLUSTER_COLOURS[(k as usize - 1) % CLUSTER_COLOURS.len()]).unwrap_or("#777777");
        let pts: Vec<(f64, f64)> = (0..4).map(|j| (xs.map(l.x[j]), ys.map(l.y[j]))).collect();
        svg.polyline(&pts, col, 2.0);
        kind.push("link".to_owned());
        label.push(None::<String>);
        clus.push(cl);
        for j in 0..4 {
            coords[j].push(l.x[j]);
            coords[4 + j].push(l.y[j]);
        }
    }
    let ty = ys.map(c.threshold);
    svg.line(r.x, ty, r.right(), ty, "#B00020", 1.5, Some("6 4"));
    let cut = format!("threshold {:.4} (0.7 \u{00d7} largest merge): {k} clusters", c.threshold);
    // A white box behind the label so links crossing it stay legible around it.
    let lw = 6.6 * cut.chars().count() as f64;
    svg.rect(r.right() - lw - 8.0, ty - 20.0, lw + 6.0, 17.0, "#FFFFFF", None);
    svg.text(r.right() - 4.0, ty - 7.0, &cut, TextStyle::size(12.0).end().fill("#B00020"));
    for (pos, &leaf) in c.leaf_order.iter().enumerate() {
        let x = xs.map(5.0 + 10.0 * pos as f64);
        let name = &c.labels[leaf];
        svg.rect(x - 5.0, r.bottom() + 6.0, 10.0, 10.0, &ctx.colour_of(name), None);
        svg.text(x + 4.0, r.bottom() + 24.0, name, TextStyle::size(12.0).end().rotate(-40.0));
        kind.push("leaf".to_owned());
        label.push(Some(name.clone()));
        clus.push(Some(c.clusters[leaf]));
        let xx = 5.0 + 10.0 * pos as f64;
        for j in 0..4 {
            coords[j].push(xx);
            coords[4 + j].push(0.0);
        }
    }
    kind.push("threshold".to_owned());
    label.push(None);
    clus.push(None);
    for j in 0..4 {
        coords[j].push(if j < 2 { 0.0 } else { 10.0 * n as f64 });
        coords[4 + j].push(c.threshold);
    }
    let mut cols =
        vec![Column::new("kind".into(), kind), Column::new("label".into(), label), Column::new("cluster".into(), clus)];
    for (j, name) in ["x0", "x1", "x2", "x3", "y0", "y1", "y2", "y3"].iter().enumerate() {
        cols.push(Column::new((*name).into(), coords[j].clone()));
    }
    cols
}

/// Members of each flat cluster, in the colour of its links, in rows from `at`.
fn cluster_legend(svg: &mut Svg, c: &Clustering, at: (f64, f64)) {
    let (x0, mut ly) = at;
    let mut lx = x0;
    svg.text(lx, ly, "Clusters:", TextStyle::size(12.0).bold());
    lx += 70.0;
    for cl in 1..=c.n_clusters() as u32 {
        let members: Vec<&str> =
            c.leaf_order.iter().filter(|&&i| c.clusters[i] == cl).map(|&i| c.labels[i].as_str()).collect();
        let text = format!("{cl}: {}", members.join(", "));
        let w = 6.6 * text.chars().count() as f64 + 18.0;
        if lx + w > svg.width - 10.0 && lx > x0 + 70.0 {
            ly += 16.0;
            lx = x0 + 70.0;
        }
        let singleton = members.len() == 1;
        let col = if singleton { "#777777" } else { CLUSTER_COLOURS[(cl as usize - 1) % CLUSTER_COLOURS.len()] };
        svg.rect(lx, ly - 9.0, 10.0, 10.0, col, None);
        svg.text(lx + 14.0, ly, &text, TextStyle::size(12.0));
        lx += w + 10.0;
    }
}
