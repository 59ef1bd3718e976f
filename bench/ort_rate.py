#!/usr/bin/env python3
"""ONNX Runtime's own inference rate for a model on this machine: the model alone, with
the options clipshift's encode stage uses (CPU provider, every graph optimisation, one
intra-op thread per CPU the process may use, every output), on a random batch. The pipeline benchmark divides
the marginal cost of an image by this, so that the pipeline's own overhead is told apart
from how close ONNX Runtime's kernels come to the GEMM peak on the machine.

Usage: ort_rate.py --model DIR --out FILE.json [--batch 32] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gemm import best_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="model directory (model.onnx, model.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="intra-op threads")
    args = ap.parse_args()
    spec = json.loads((args.model / "model.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(args.model / spec["onnx"]), options, providers=["CPUExecutionProvider"])
    size = spec["image_size"]
    pixels = np.random.default_rng(0).standard_normal((args.batch, 3, size, size), dtype=np.float32)
    seconds = best_seconds(lambda: session.run(None, {"pixel_values": pixels}), min_seconds=8.0)
    result = {
        "seconds_per_image": seconds / args.batch,
        "batch": args.batch,
        "threads": args.threads,
        "onnxruntime": ort.__version__,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
