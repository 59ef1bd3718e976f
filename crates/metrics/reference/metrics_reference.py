#!/usr/bin/env python3
"""Reference values for clipshift-metrics, computed with numpy, scipy, OpenCV and
scikit-image straight from the formulas in docs/tables.md ("Metrics").

    python -m venv .cache/venv-metricsref
    .cache/venv-metricsref/bin/pip install -r crates/metrics/reference/requirements.txt
    .cache/venv-metricsref/bin/python crates/metrics/reference/metrics_reference.py

Writes the fixture images (deterministic; only when missing, or all with
--rewrite-fixtures) and fixtures/expected.json, which crates/metrics/tests/it reads.
Checked with numpy 2.4.6, scipy 1.17.1, opencv-python-headless 5.0.0.93,
scikit-image 0.26.0.
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.spatial.distance import pdist
from skimage.metrics import structural_similarity

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"


# --------------------------------------------------------------------- fixtures
def scene(h, w, seed):
    """A photo-like RGB8 image: smooth gradients, discs, stripes and mild texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            120 + 80 * np.sin(xx / (w / 3.1) + seed),
            100 + 90 * np.cos(yy / (h / 2.3)),
            60 + 0.5 * (xx + yy),
        ],
        axis=-1,
    )
    for _ in range(5):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.3) * min(h, w)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img[:, (np.arange(w) // 4) % 5 == 0] *= 0.6
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_pairs():
    pairs = {}
    x = scene(224, 224, 1)
    noise = np.random.default_rng(11).normal(0, 60, x.shape)
    pairs["noise_224"] = (x, np.clip(np.rint(x + noise), 0, 255).astype(np.uint8))

    x = scene(45, 61, 2)
    y = cv2.GaussianBlur(x, (5, 5), 0)
    y = np.clip(y.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    pairs["blur_bright_61x45"] = (x, y)

    x = scene(29, 37, 3)
    pairs["flip_37x29"] = (x, x[:, ::-1].copy())

    x = scene(24, 32, 4)
    y = x.copy()
    for i in range(8):  # every 8x8-grid patch of the luminance flat: detail 0
        for j in range(8):
            sl = (slice(i * 3, (i + 1) * 3), slice(j * 4, (j + 1) * 4))
            y[sl] = np.rint(x[sl].reshape(-1, 3).mean(0)).astype(np.uint8)
    pairs["flat_patches_32x24"] = (x, y)

    pairs["gray_vs_black_16"] = (np.full((16, 16, 3), 128, np.uint8), np.zeros((16, 16, 3), np.uint8))
    pairs["black_vs_black_16"] = (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    x = scene(20, 20, 5)
    pairs["identical_20"] = (x, x.copy())
    return pairs


def write_fixtures(force):
    for name, (x, y) in make_pairs().items():
        for tag, img in (("x", x), ("y", y)):
            path = FIX / f"{name}.{tag}.png"
            if force or not path.exists():
                Image.fromarray(img, "RGB").save(path, optimize=True)


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


# ---------------------------------------------------------------------- metrics
def gray(img):
    x = img.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def patch_similarity(x, y, wrapped=False):
    h, w = x.shape[:2]
    ph, pw = h // 4, w // 4
    scores = []
    for i in range(4):
        for j in range(4):
            p1 = x[i * ph : (i + 1) * ph, j * pw : (j + 1) * pw]
            p2 = y[i * ph : (i + 1) * ph, j * pw : (j + 1) * pw]
            if wrapped:  # the paper's public code: uint8 arithmetic wraps modulo 256
                mse = np.mean((p1 - p2) ** 2)
            else:
                mse = np.mean((p1.astype(np.float64) - p2.astype(np.float64)) ** 2)
            scores.append(1.0 / (1.0 + mse / 255.0**2))
    return float(np.mean(scores))


def edge_map(g):
    gy, gx = np.gradient(g)
    e = np.abs(gx) + np.abs(gy)
    m = e.max()
    return e / m if m > 0 else e


def edge_preservation(x, y):
    return float(1.0 - np.mean(np.abs(edge_map(gray(x)) - edge_map(gray(y)))))


def detail_preservation(x, y):
    gx, gy = gray(x), gray(y)
    h, w = gx.shape
    ph, pw = h // 8, w // 8
    s = []
    for i in range(8):
        for j in range(8):
            sl = (slice(i * ph, (i + 1) * ph), slice(j * pw, (j + 1) * pw))
            sx = gx[sl].std()
            if sx >= 1e-6:
                with np.errstate(divide="ignore"):
                    s.append(np.exp(-abs(np.log(gy[sl].std() / sx))))
    return float(np.mean(s)) if s else 0.0


def ssim(x, y):
    return float(
        structural_similarity(
            gray(x), gray(y), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=255,
        )
    )


def upsample(a, width, height):
    g = int(round(len(a) ** 0.5))
    grid = np.asarray(a, np.float32).reshape(g, g)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)


def attention_similarity(a, b, width, height):
    def norm(m):
        m = m.astype(np.float64)
        lo, hi = m.min(), m.max()
        return (m - lo) / (hi - lo) if hi > lo else m

    A, B = norm(upsample(a, width, height)), norm(upsample(b, width, height))
    return float(1.0 / (1.0 + np.mean((A - B) ** 2)))


def f32list(v):
    return [float(t) for t in np.asarray(v, np.float32)]


# ------------------------------------------------------------------------- main
def main():
    FIX.mkdir(exist_ok=True)
    write_fixtures("--rewrite-fixtures" in sys.argv)
    out = {"versions": {"numpy": np.__version__, "opencv": cv2.__version__,
                        "scipy": __import__("scipy").__version__,
                        "skimage": __import__("skimage").__version__}}

    out["pixel"] = []
    for name in make_pairs():
        x, y = load(FIX / f"{name}.x.png"), load(FIX / f"{name}.y.png")
        out["pixel"].append({
            "name": name,
            "patch_similarity": patch_similarity(x, y),
            "patch_similarity_wrapped": patch_similarity(x, y, wrapped=True),
            "edge_preservation": edge_preservation(x, y),
            "detail_preservation": detail_preservation(x, y),
            "ssim": ssim(x, y),
        })

    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, 64).astype(np.float32)
    variants = [base, base.copy(), -base]
    for scale in (1e-4, 1e-2, 0.1, 0.5, 1.0, 3.0):
        variants.append((base + scale * rng.normal(0, 1, 64)).astype(np.float32))
    variants.append((base * 7.5).astype(np.float32))
    vecs = [f32list(v) for v in variants]
    X = np.asarray(vecs, np.float64)
    out["embeddings"] = {
        "vectors": vecs,
        "cosine_to_first": [float(np.dot(X[0], v) / (np.linalg.norm(X[0]) * np.linalg.norm(v))) for v in X],
        "l2_to_first": [float(np.linalg.norm(X[0] - v)) for v in X],
        "pdist_cosine": [float(d) for d in pdist(X, "cosine")],
        "pdist_euclidean": [float(d) for d in pdist(X, "euclidean")],
    }

    cases = []
    for g, w, h, kind in [(7, 224, 224, "random"), (7, 61, 45, "random"), (14, 100, 37, "random"),
                          (7, 224, 224, "constant"), (7, 23, 17, "peaked"), (4, 2, 2, "random"),
                          (7, 5, 3, "random"), (16, 224, 160, "peaked")]:
        a = rng.dirichlet(np.ones(g * g)).astype(np.float32)
        if kind == "constant":
            b = np.full(g * g, 1.0 / (g * g), np.float32)
        elif kind == "peaked":
            b = (a + 0.3 * (np.arange(g * g) == (g * g) // 3)).astype(np.float32)
        else:
            b = rng.dirichlet(np.ones(g * g)).astype(np.float32)
        case = {"a": f32list(a), "b": f32list(b), "width": w, "height": h,
                "attention_similarity": attention_similarity(a, b, w, h)}
        up = upsample(a, w, h)
        case["upsampled_a_sum"] = float(up.astype(np.float64).sum())
        if w * h <= 2000:
            case["upsampled_a"] = f32list(up.ravel())
        cases.append(case)
    out["attention"] = cases

    (FIX / "expected.json").write_text(json.dumps(out, indent=1) + "\n")
    for p in out["pixel"]:
        print(p)


if __name__ == "__main__":
    main()
