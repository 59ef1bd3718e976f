"""Reference values for clipshift-report's tests, computed with numpy/scipy.

Regenerate with:
    python3 -m venv .cache/venv-reportref && .cache/venv-reportref/bin/pip install numpy scipy
    .cache/venv-reportref/bin/python crates/report/reference/make_fixtures.py
It writes crates/report/reference/fixtures.json (committed with this script).
"""

import json
import pathlib

import numpy as np
import scipy
from scipy.cluster.hierarchy import dendrogram, fcluster, linkage
from scipy.spatial.distance import pdist
from scipy.stats import gaussian_kde, wilcoxon

rng = np.random.default_rng(20240611)
out = {"numpy": np.__version__, "scipy": scipy.__version__, "linkage": [], "wilcoxon": [], "kde": [], "quantile": []}

# Clustering: condensed cosine-distance matrices of 9 and 10 points, like the
# averaged matrices the report clusters, plus a Euclidean one.
cases = []
for n, dim in [(9, 16), (10, 16), (9, 4), (10, 3)]:
    x = rng.normal(size=(n, dim)) + rng.normal(size=(1, dim)) * 2
    cases.append(pdist(x, metric="cosine"))
cases.append(pdist(rng.normal(size=(12, 5)), metric="euclidean"))
for case, d in enumerate(cases):
    n = int(round((1 + np.sqrt(1 + 8 * len(d))) / 2))
    for method in ["ward", "average", "complete", "single"]:
        z = linkage(d, method=method)
        t = 0.7 * z[:, 2].max()
        out["linkage"].append({
            "case": case,
            "n": n,
            "method": method,
            "condensed": d.tolist(),
            "z": z.tolist(),
            "threshold": float(t),
            "fcluster": fcluster(z, t, criterion="distance").tolist(),
            "leaves": dendrogram(z, no_plot=True)["leaves"],
            "icoord": dendrogram(z, no_plot=True)["icoord"],
            "dcoord": dendrogram(z, no_plot=True)["dcoord"],
        })

# Wilcoxon signed-rank, scipy defaults.
def wcase(name, x, y):
    r = wilcoxon(x, y)
    out["wilcoxon"].append({"name": name, "x": list(map(float, x)), "y": list(map(float, y)),
                            "statistic": float(r.statistic), "pvalue": float(r.pvalue)})

for n in [5, 12, 20, 50]:
    wcase(f"exact_{n}", rng.normal(0.8, 0.1, n), rng.normal(0.78, 0.1, n))
wcase("exact_shifted_30", rng.normal(0.9, 0.05, 30), rng.normal(0.7, 0.05, 30))
for n in [51, 200]:
    wcase(f"asymptotic_{n}", rng.normal(0.8, 0.1, n), rng.normal(0.79, 0.1, n))
x = np.round(rng.normal(0.8, 0.1, 80), 2)
y = np.round(rng.normal(0.8, 0.1, 80), 2)
y[:5] = x[:5]
wcase("ties_zeros_80", x, y)
x = np.round(rng.normal(0.8, 0.1, 30), 2)
y = np.round(rng.normal(0.78, 0.1, 30), 2)
y[:2] = x[:2]
wcase("ties_zeros_30", x, y)
x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
y = np.array([1.5, 1.0, 3.5, 3.0, 5.0, 5.0, 6.0, 9.5, 8.0, 7.0])
wcase("ties_small_10", x, y)

# KDE of L2 distances on 100 points between min and max.
for n in [2, 7, 100]:
    data = rng.gamma(2.0, 0.5, n)
    grid = np.linspace(data.min(), data.max(), 100)
    out["kde"].append({"data": data.tolist(), "grid": grid.tolist(), "density": gaussian_kde(data)(grid).tolist()})

for n in [1, 2, 9, 100]:
    data = rng.normal(size=n)
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    out["quantile"].append({"data": data.tolist(), "q": qs, "value": np.quantile(data, qs).tolist(),
                            "mean": float(np.mean(data)), "std": float(np.std(data, ddof=1)) if n > 1 else None})

# numpy.histogram(bins="auto"), the cosine-distribution figure's bins. A
# separate generator keeps the cases above unchanged.
hrng = np.random.default_rng(7)
out["histogram"] = []
hist_cases = [[], [0.93], [0.9, 0.95], [0.97, 0.97, 0.97, 0.97, 0.97], np.round(hrng.normal(0.9, 0.05, 40), 2)]
hist_cases += [1.0 - hrng.gamma(1.5, 0.02, n) for n in [2, 3, 12, 30, 200, 1000]]
hist_cases.append(np.concatenate([hrng.normal(0.6, 0.05, 25), hrng.normal(0.95, 0.01, 25)]))
for data in hist_cases:
    data = np.asarray(data, dtype=float)
    counts, edges = np.histogram(data, bins="auto")
    out["histogram"].append({"data": data.tolist(), "edges": edges.tolist(), "counts": counts.tolist()})

# scipy.stats.pearsonr, the keyword-shift correlation; constant data gives NaN (null).
prng = np.random.default_rng(11)
out["pearson"] = []
for n in [2, 3, 10, 200]:
    x = prng.normal(size=n)
    y = 0.6 * x + prng.normal(size=n)
    out["pearson"].append({"x": x.tolist(), "y": y.tolist(), "r": float(scipy.stats.pearsonr(x, y).statistic)})
out["pearson"].append({"x": [1.0, 1.0, 1.0], "y": [0.0, 1.0, 2.0], "r": None})

path = pathlib.Path(__file__).with_name("fixtures.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
