#!/usr/bin/env python3
"""The Python peers of clipshift-metrics' benchmark: every metric family of
metrics_reference.py (numpy, scipy, OpenCV, scikit-image) timed on one image's nine
comparisons at 224 x 224, one thread.

`cargo xtask bench metrics` runs this in .cache/venv-bench-metrics (requirements.txt
beside this file), then the Rust side (crates/metrics/benches/metrics.rs), which builds
the same images and vectors with the same xorshift generator. Each figure is the median
over repeats of the time for all nine comparisons.

Usage: bench_peers.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics_reference as ref  # noqa: E402

cv2.setNumThreads(1)
SIDE = 224
VARIANTS = 9
MASK = (1 << 64) - 1


def noise(seed: int, n: int) -> np.ndarray:
    """The Rust bench's xorshift values in [0, 1), as float32."""
    s = ((seed * 0x9E3779B97F4A7C15) & MASK) | 1
    out = np.empty(n, np.float32)
    for i in range(n):
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
        out[i] = np.float32(s >> 40) / np.float32(1 << 24)
    return out


def image(seed: int) -> np.ndarray:
    """The Rust bench's image: 0.7 * ((x + y) mod 256) + 76.5 * noise, in f32, truncated."""
    v = noise(seed, SIDE * SIDE * 3).reshape(SIDE, SIDE, 3)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    base = ((xx + yy) % 256).astype(np.float32)[..., None]
    px = np.float32(0.7) * base + np.float32(0.3 * 255.0) * v
    return np.clip(px, 0, 255).astype(np.uint8)


def timed(fn, seconds: float) -> float:
    """Median seconds of `fn()` over repeats filling about `seconds`."""
    fn()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    original = image(0)
    variants = [image(s) for s in range(1, VARIANTS + 1)]
    embeds = [noise(100 + s, 512).astype(np.float64) for s in range(VARIANTS + 1)]
    attn = [noise(200 + s, 49) for s in range(VARIANTS + 1)]

    def embedding():
        a = embeds[0]
        for e in embeds[1:]:
            float(np.dot(a, e) / (np.linalg.norm(a) * np.linalg.norm(e)))
            float(np.linalg.norm(a - e))

    def pixel(metric):
        return lambda: [metric(original, v) for v in variants]

    families = [
        ("embedding: cosine + l2, 9 variants (D=512)", embedding),
        ("pairwise: pdist cosine + euclidean, 10 variants", lambda: (pdist(np.stack(embeds), "cosine"), pdist(np.stack(embeds), "euclidean"))),
        ("attention: 7x7 -> 224x224, 9 variants", lambda: [ref.attention_similarity(attn[0], a, SIDE, SIDE) for a in attn[1:]]),
        ("patch_similarity", pixel(ref.patch_similarity)),
        ("edge_preservation", pixel(ref.edge_preservation)),
        ("detail_preservation", pixel(ref.detail_preservation)),
        ("ssim (scikit-image structural_similarity)", pixel(ref.ssim)),
    ]
    print(f"Python peers, nine comparisons at {SIDE} x {SIDE}, one thread (numpy {np.__version__}, "
          f"OpenCV {cv2.__version__}, scikit-image {__import__('skimage').__version__}):")
    for name, fn in families:
        print(f"  {name:<52} {timed(fn, args.seconds) * 1e3:9.3f} ms")


if __name__ == "__main__":
    main()
