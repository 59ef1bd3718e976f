//! Checks against `reference/fixtures.json`, written by
//! `reference/make_fixtures.py` with numpy and scipy.

use clipshift_report::{
    Linkage, dendrogram_links, fcluster_distance, gaussian_kde, histogram_auto, leaf_order, linkage, linspace,
    mmd_test, paired_shift_test, pearson, quantile, threshold, wilcoxon,
};
use serde_json::Value;

fn fixtures() -> Value {
    let text = include_str!("../../reference/fixtures.json");
    serde_json::from_str(text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300) || (a - b).abs() < 1e-300
}

#[test]
fn linkage_matches_scipy() {
    let fx = fixtures();
    let cases = fx["linkage"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let n = c["n"].as_u64().unwrap() as usize;
        let method: Linkage = c["method"].as_str().unwrap().parse().unwrap();
        let d = f64s(&c["condensed"]);
        let z = linkage(&d, n, method);
        let zs = c["z"].as_array().unwrap();
        assert_eq!(z.len(), zs.len());
        for (i, (m, r)) in z.iter().zip(zs).enumerate() {
            let r = f64s(r);
            let ctx = format!("case {} {method} step {i}: ours {m:?}, scipy {r:?}", c["case"]);
            assert_eq!(m.left as f64, r[0], "{ctx}");
            assert_eq!(m.right as f64, r[1], "{ctx}");
            assert!(close(m.distance, r[2], 1e-12), "{ctx}");
            assert_eq!(m.size as f64, r[3], "{ctx}");
        }
        let t = threshold(&z, 0.7);
        assert!(close(t, c["threshold"].as_f64().unwrap(), 1e-12));
        // Use scipy's threshold so a last-bit difference cannot flip a cut.
        let flat = fcluster_distance(&z, n, c["threshold"].as_f64().unwrap());
        let want: Vec<u32> = c["fcluster"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(flat, want, "fcluster case {} {method}", c["case"]);
        let leaves: Vec<usize> = c["leaves"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(leaf_order(&z, n), leaves, "leaves case {} {method}", c["case"]);
        // scipy lists links in traversal order; compare as sorted sets of U shapes.
        let mut ours: Vec<[f64; 8]> = dendrogram_links(&z, n)
            .iter()
            .map(|l| [l.x[0], l.x[1], l.x[2], l.x[3], l.y[0], l.y[1], l.y[2], l.y[3]])
            .collect();
        let mut theirs: Vec<[f64; 8]> = c["icoord"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["dcoord"].as_array().unwrap())
            .map(|(ic, dc)| {
                let (ic, dc) = (f64s(ic), f64s(dc));
                [ic[0], ic[1], ic[2], ic[3], dc[0], dc[1], dc[2], dc[3]]
            })
            .collect();
        let key = |a: &[f64; 8], b: &[f64; 8]| a[0].total_cmp(&b[0]).then(a[5].total_cmp(&b[5]));
        ours.sort_by(key);
        theirs.sort_by(key);
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(&theirs) {
            for j in 0..8 {
                assert!(close(o[j], t[j], 1e-12), "dendrogram coords case {} {method}: {o:?} vs {t:?}", c["case"]);
            }
        }
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    let fx = fixtures();
    for c in fx["wilcoxon"].as_array().unwrap() {
        let (x, y) = (f64s(&c["x"]), f64s(&c["y"]));
        let w = wilcoxon(&x, &y);
        let name = c["name"].as_str().unwrap();
        assert!(
            close(w.statistic, c["statistic"].as_f64().unwrap(), 1e-12),
            "{name}: statistic {} vs {}",
            w.statistic,
            c["statistic"]
        );
        assert!(
            close(w.p_value, c["pvalue"].as_f64().unwrap(), 1e-9),
            "{name} ({}): p {} vs {}",
            w.method,
            w.p_value,
            c["pvalue"]
        );
    }
}

#[test]
fn kde_matches_scipy() {
    let fx = fixtures();
    for c in fx["kde"].as_array().unwrap() {
        let data = f64s(&c["data"]);
        let lo = data.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let grid = linspace(lo, hi, 100);
        for (g, w) in grid.iter().zip(f64s(&c["grid"])) {
            assert!(close(*g, w, 1e-14));
        }
        let dens = gaussian_kde(&data, &grid).unwrap();
        for (d, w) in dens.iter().zip(f64s(&c["density"])) {
            assert!(close(*d, w, 1e-10), "kde {d} vs {w}");
        }
    }
}

#[test]
fn histogram_matches_numpy_auto_bins() {
    let fx = fixtures();
    let cases = fx["histogram"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let data = f64s(&c["data"]);
        let (edges, counts) = histogram_auto(&data);
        let want_edges = f64s(&c["edges"]);
        let want_counts: Vec<u64> = c["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(
            edges.len(),
            want_edges.len(),
            "n = {}: {} bins, numpy {}",
            data.len(),
            counts.len(),
            want_counts.len()
        );
        for (e, w) in edges.iter().zip(&want_edges) {
            assert!(close(*e, *w, 1e-14), "n = {}: edge {e} vs {w}", data.len());
        }
        assert_eq!(counts, want_counts, "n = {}", data.len());
    }
}

#[test]
fn quantiles_match_numpy() {
    let fx = fixtures();
    for c in fx["quantile"].as_array().unwrap() {
        let data = f64s(&c["data"]);
        for (q, want) in f64s(&c["q"]).iter().zip(f64s(&c["value"])) {
            assert!(close(quantile(&data, *q), want, 1e-14), "q {q}: {} vs {want}", quantile(&data, *q));
        }
    }
}

#[test]
fn pearson_matches_scipy() {
    let fx = fixtures();
    for c in fx["pearson"].as_array().unwrap() {
        let x = f64s(&c["x"]);
        let y = f64s(&c["y"]);
        let r = pearson(&x, &y);
        match c["r"].as_f64() {
            Some(want) => assert!(close(r, want, 1e-12), "pearson {r} vs scipy {want} (n {})", x.len()),
            None => assert!(r.is_nan(), "constant data: scipy gives NaN, got {r}"),
        }
    }
}

/// The paired shift test and the MMD test of `drift.parquet` against numpy
/// (`reference/make_drift_fixtures.py`), with the fixture's own permutations.
#[test]
fn drift_tests_match_numpy() {
    let fx: Value = serde_json::from_str(include_str!("../../reference/drift_fixtures.json")).unwrap();
    let rows = |v: &Value| v.as_array().unwrap().iter().map(f64s).collect::<Vec<_>>();
    for c in fx["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (o, a) = (rows(&c["original"]), rows(&c["variant"]));
        let d: Vec<Vec<f64>> = o.iter().zip(&a).map(|(o, a)| a.iter().zip(o).map(|(x, y)| x - y).collect()).collect();
        let signs: Vec<Vec<bool>> = c["signs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_array().unwrap().iter().map(|b| b.as_bool().unwrap()).collect())
            .collect();
        let perms: Vec<Vec<usize>> = c["permutations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect())
            .collect();
        let (stat, effect, p) = paired_shift_test(&d, &signs);
        let want = |k: &str| c[k].as_f64().unwrap();
        assert!(close(stat, want("shift_statistic"), 1e-12), "{name}: shift {stat} vs {}", want("shift_statistic"));
        assert!(close(effect, want("shift_effect"), 1e-12), "{name}: effect {effect}");
        assert_eq!(p, want("shift_p"), "{name}: shift p");
        let (mmd2, sigma, mmd_effect, mmd_p) = mmd_test(&o, &a, &perms);
        assert!(close(sigma, want("mmd_bandwidth"), 1e-12), "{name}: bandwidth {sigma} vs {}", want("mmd_bandwidth"));
        assert!((mmd2 - want("mmd2")).abs() < 1e-12, "{name}: MMD² {mmd2} vs {}", want("mmd2"));
        assert!((mmd_effect - want("mmd_effect")).abs() < 1e-9, "{name}: MMD effect {mmd_effect}");
        assert_eq!(mmd_p, want("mmd_p"), "{name}: MMD p");
    }
}
