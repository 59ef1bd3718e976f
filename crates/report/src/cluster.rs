//! Hierarchical clustering with scipy's conventions: kodama computes the
//! merges; this module lays them out like `scipy.cluster.hierarchy.linkage`,
//! cuts them like `fcluster(criterion="distance")` and orders leaves like
//! `dendrogram`.

use crate::Linkage;

/// One row of a scipy linkage matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Merge {
    pub left: usize,
    pub right: usize,
    pub distance: f64,
    pub size: usize,
}

/// Linkage of `n` observations from a condensed distance matrix (scipy `pdist` order).
pub fn linkage(condensed: &[f64], n: usize, method: Linkage) -> Vec<Merge> {
    if n < 2 {
        return Vec::new();
    }
    let mut m = condensed.to_vec();
    let dend = kodama::linkage(&mut m, n, method.kodama());
    dend.steps()
        .iter()
        .map(|s| Merge { left: s.cluster1, right: s.cluster2, distance: s.dissimilarity, size: s.size })
        .collect()
}

/// Largest merge distance times `ratio` (the paper's 0.7 threshold).
pub fn threshold(merges: &[Merge], ratio: f64) -> f64 {
    let max = merges.iter().map(|m| m.distance).fold(f64::NEG_INFINITY, f64::max);
    if merges.is_empty() { 0.0 } else { ratio * max }
}

/// Flat clusters (1-based) like `fcluster(Z, t, criterion="distance")`,
/// numbered in scipy's traversal order.
pub fn fcluster_distance(merges: &[Merge], n: usize, t: f64) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    if merges.is_empty() {
        return vec![1; n];
    }
    // Max merge distance within each subtree (monotone criterion).
    let mut max_d = vec![0.0f64; merges.len()];
    for (i, m) in merges.iter().enumerate() {
        let mut d = m.distance;
        for c in [m.left, m.right] {
            if c >= n {
                d = d.max(max_d[c - n]);
            }
        }
        max_d[i] = d;
    }
    let mut cut = Cut { merges, max_d: &max_d, n, t, n_cluster: 0, out: vec![0u32; n] };
    cut.visit(merges.len() - 1, false);
    cut.out
}

/// scipy's `cluster_monocrit` traversal: depth first, left before right; a
/// node whose subtree stays within the threshold starts a new cluster, and a
/// leaf outside any such node is a cluster of its own, numbered after the
/// sibling subtrees.
struct Cut<'a> {
    merges: &'a [Merge],
    max_d: &'a [f64],
    n: usize,
    t: f64,
    n_cluster: u32,
    out: Vec<u32>,
}

impl Cut<'_> {
    fn visit(&mut self, node: usize, mut leader: bool) {
        if !leader && self.max_d[node] <= self.t {
            self.n_cluster += 1;
            leader = true;
        }
        let m = self.merges[node];
        for c in [m.left, m.right] {
            if c >= self.n {
                self.visit(c - self.n, leader);
            }
        }
        for c in [m.left, m.right] {
            if c < self.n {
                if !leader {
                    self.n_cluster += 1;
                }
                self.out[c] = self.n_cluster;
            }
        }
    }
}

/// Leaf order of scipy's `dendrogram` with default options (left child first).
pub fn leaf_order(merges: &[Merge], n: usize) -> Vec<usize> {
    if merges.is_empty() {
        return (0..n).collect();
    }
    let mut out = Vec::with_capacity(n);
    let mut stack = vec![merges.len() - 1 + n];
    while let Some(node) = stack.pop() {
        if node < n {
            out.push(node);
        } else {
            let m = merges[node - n];
            stack.push(m.right);
            stack.push(m.left);
        }
    }
    out
}

/// One U-shaped link of a dendrogram drawing, scipy's `icoord`/`dcoord`
/// (leaves at x = 5, 15, 25, ...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    pub step: usize,
    pub x: [f64; 4],
    pub y: [f64; 4],
}

/// Coordinates of every link, in merge order.
pub fn dendrogram_links(merges: &[Merge], n: usize) -> Vec<Link> {
    let order = leaf_order(merges, n);
    let mut pos = vec![(0.0, 0.0); n + merges.len()];
    for (i, &leaf) in order.iter().enumerate() {
        pos[leaf] = (5.0 + 10.0 * i as f64, 0.0);
    }
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (xl, yl) = pos[m.left];
            let (xr, yr) = pos[m.right];
            pos[n + i] = ((xl + xr) / 2.0, m.distance);
            Link { step: i, x: [xl, xl, xr, xr], y: [yl, m.distance, m.distance, yr] }
        })
        .collect()
}

/// Condensed (pdist-order) vector of the upper triangle of a square matrix.
pub fn condensed(square: &[Vec<f64>]) -> Vec<f64> {
    square.iter().enumerate().flat_map(|(i, row)| row[i + 1..].iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_groups() {
        // points 0,1 close; 2,3 close; far apart.
        let sq = vec![
            vec![0.0, 0.1, 1.0, 1.1],
            vec![0.1, 0.0, 1.2, 1.0],
            vec![1.0, 1.2, 0.0, 0.2],
            vec![1.1, 1.0, 0.2, 0.0],
        ];
        let z = linkage(&condensed(&sq), 4, Linkage::Average);
        assert_eq!(z.len(), 3);
        assert_eq!((z[0].left, z[0].right, z[0].size), (0, 1, 2));
        assert_eq!((z[1].left, z[1].right, z[1].size), (2, 3, 2));
        assert_eq!((z[2].left, z[2].right, z[2].size), (4, 5, 4));
        let t = threshold(&z, 0.7);
        assert_eq!(fcluster_distance(&z, 4, t), vec![1, 1, 2, 2]);
        assert_eq!(leaf_order(&z, 4), vec![0, 1, 2, 3]);
    }
}
