#!/usr/bin/env python3
"""Where ONNX Runtime spends a model's time on this machine: its own profiler over a few
batches (the encode stage's session options: CPU provider, every graph optimisation, one
intra-op thread per core), summed per operator type, and the GFLOP/s of each MatMul shape.
The pipeline benchmark's notes on kernel efficiency (docs/benchmarks.md) come from it.

Usage: ort_profile.py --model DIR [--batch 32] [--runs 4]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="model directory (model.onnx, model.json)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    spec = json.loads((args.model / "model.json").read_text())
    size = spec["image_size"]
    pixels = np.random.default_rng(0).standard_normal((args.batch, 3, size, size), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(args.model / spec["onnx"]), options, providers=["CPUExecutionProvider"])
        session.run(None, {"pixel_values": pixels})  # warm-up (profiled too)
        start = time.perf_counter()
        for _ in range(args.runs):
            session.run(None, {"pixel_values": pixels})
        per_image = (time.perf_counter() - start) / args.runs / args.batch
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    by_op: collections.Counter = collections.Counter()
    matmuls: dict = collections.defaultdict(lambda: [0.0, 0])
    for e in nodes:
        op = e["args"]["op_name"]
        by_op[op] += e["dur"]
        if op == "MatMul":
            inputs = [next(iter(t.values())) for t in e["args"]["input_type_shape"]]
            output = next(iter(e["args"]["output_type_shape"][0].values()))
            key = json.dumps([inputs[0], output])
            matmuls[key][0] += e["dur"]
            matmuls[key][1] += 1
    total = sum(by_op.values())
    print(f"{args.model.name}: {per_image * 1e3:.2f} ms per image (batch {args.batch}, onnxruntime {ort.__version__})")
    print("\nshare of kernel time by operator:")
    for op, micros in by_op.most_common():
        print(f"  {op:28s} {micros / total * 100:5.1f}%")
    print("\nMatMul by shape (input -> output; 2 x outputs x inner size flops per call):")
    for key, (micros, count) in sorted(matmuls.items(), key=lambda kv: -kv[1][0]):
        first, output = json.loads(key)
        flops = 2 * math.prod(output) * first[-1]
        rate = flops * count / (micros * 1e-6) / 1e9
        print(f"  {micros / 1e3:8.1f} ms over {count:4d} calls  {first} -> {output}: {rate:6.1f} GFLOP/s")
    print(f"\nMatMul share: {by_op['MatMul'] / total * 100:.1f}% of kernel time")


if __name__ == "__main__":
    main()
