#!/usr/bin/env python3
"""The machine's fp32 GEMM rate: the best of numpy (OpenBLAS) and torch sgemm over square
sizes 1024 to 2048 (2 n^3 flops per product), every core busy. Shared by the encode and
pipeline benchmarks, so that their ratios to the GEMM peak are measured the same way.

Usage: gemm.py --out FILE.json [--threads N]   (or import gemm_rate)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def best_seconds(fn, min_seconds: float = 1.5, min_calls: int = 3) -> float:
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_rate(threads: int) -> dict:
    """Best fp32 GEMM rate in GFLOP/s of numpy and torch, and the best of both."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for name, make, mm in [
        ("numpy", lambda n: np.random.default_rng(0).standard_normal((n, n), dtype=np.float32), np.matmul),
        ("torch", lambda n: torch.randn(n, n, dtype=torch.float32), torch.mm),
    ]:
        best = 0.0
        for n in (1024, 1536, 2048):
            a, b = make(n), make(n)
            best = max(best, 2 * n**3 / best_seconds(lambda: mm(a, b)) / 1e9)
        out[name] = best
    out["best"] = max(out["numpy"], out["torch"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    rate = gemm_rate(args.threads)
    source = "numpy" if rate["numpy"] >= rate["torch"] else "torch"
    result = {"gflops": rate["best"], "source": source, **rate, "threads": args.threads}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
