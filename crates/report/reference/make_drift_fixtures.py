"""numpy reference for the report's paired distribution tests (drift.parquet).

For a few synthetic sets of unit embeddings (originals and variants of the same images)
it computes, with numpy/scipy, the paired sign-flip test of the shift and the MMD
two-sample test (Gaussian kernel, median heuristic, unbiased MMD²), each with explicit
permutations that the fixture stores, so the Rust code can use the same ones:

    python3 -m venv .cache/venv-reportref && .cache/venv-reportref/bin/pip install numpy scipy
    .cache/venv-reportref/bin/python crates/report/reference/make_drift_fixtures.py

It writes crates/report/reference/drift_fixtures.json (committed with this script).
"""

import json
import pathlib

import numpy as np
import scipy
from scipy.spatial.distance import pdist, squareform


def unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def shift_test(d, signs):
    observed = np.linalg.norm(d.mean(axis=0))
    effect = observed / np.linalg.norm(d, axis=1).mean()
    s = np.where(signs, 1.0, -1.0)
    permuted = np.linalg.norm((s[:, :, None] * d[None]).mean(axis=1), axis=1)
    p = (1 + np.sum(permuted >= observed)) / (1 + len(signs))
    return float(observed), float(effect), float(p)


def mmd2_unbiased(k, m):
    n = k.shape[0] - m
    kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def mmd_test(x, y, perms):
    z = np.vstack([x, y])
    sigma = np.median(pdist(z))
    k = np.exp(-squareform(pdist(z, "sqeuclidean")) / (2 * sigma**2))
    observed = mmd2_unbiased(k, len(x))
    permuted = np.array([mmd2_unbiased(k[np.ix_(p, p)], len(x)) for p in perms])
    p = (1 + np.sum(permuted >= observed)) / (1 + len(perms))
    return float(observed), float(sigma), float(np.sqrt(max(observed, 0.0))), float(p)


rng = np.random.default_rng(20261205)
cases = []
# (images, dimension, shift along a common direction, per-image noise)
for name, n, dim, shift, noise in [
    ("no shift", 12, 5, 0.0, 0.05),
    ("common shift", 12, 5, 0.3, 0.05),
    ("scattered shift", 15, 8, 0.0, 0.4),
    ("larger", 40, 16, 0.15, 0.2),
]:
    o = unit(rng.normal(size=(n, dim)) + 2.0)
    direction = unit(rng.normal(size=(1, dim)))
    a = unit(o + shift * direction + noise * rng.normal(size=(n, dim)))
    signs = rng.integers(0, 2, size=(60, n)).astype(bool)
    perms = np.array([rng.permutation(2 * n) for _ in range(60)])
    stat, effect, p = shift_test(a - o, signs)
    mmd2, sigma, mmd_effect, mmd_p = mmd_test(o, a, perms)
    cases.append({
        "name": name,
        "original": o.tolist(),
        "variant": a.tolist(),
        "signs": signs.tolist(),
        "permutations": perms.tolist(),
        "shift_statistic": stat,
        "shift_effect": effect,
        "shift_p": p,
        "mmd2": mmd2,
        "mmd_bandwidth": sigma,
        "mmd_effect": mmd_effect,
        "mmd_p": mmd_p,
    })

out = {"numpy": np.__version__, "scipy": scipy.__version__, "cases": cases}
path = pathlib.Path(__file__).with_name("drift_fixtures.json")
path.write_text(json.dumps(out) + "\n")
print(f"wrote {path}")
for c in cases:
    print(c["name"], c["shift_p"], c["mmd_p"], c["mmd2"])
