#!/usr/bin/env python3
"""The Python peers of clipshift-encode's benchmark, and the machine's fp32 GEMM rate.

`cargo xtask bench encode` runs this in .cache/venv-bench-encode (requirements.txt
beside this file) after exporting a random-init ViT-B/32 with models/export_clip.py,
then runs the Rust side (crates/encode/benches/encode.rs), which reads the JSON written
here and prints the joint table.

On one batch of the same deterministic input that the Rust bench builds,

    pixel_values[n, c, y, x] = sin(0.013 x + 0.029 y + 0.7 c + 1.3 n)   (float64 -> float32)

it times
    onnxruntime       InferenceSession on model.onnx, all outputs (as the Rust encoder)
    onnxruntime-int8  the same on model.int8.onnx (dynamic int8 MatMul weights), if present
    pytorch           transformers' CLIPVisionModelWithProjection, eager attention, the
                      same random weights (regenerated with export_clip.random_weights from
                      the sidecar's seed), attentions and hidden states returned as the
                      ONNX graph does, torch.inference_mode
and measures the fp32 GEMM rate as the best of numpy (OpenBLAS) and torch sgemm over
square sizes 1024 to 2048, every core busy.

Usage: bench_peers.py --model DIR --out FILE.json [--batch 32] [--threads N] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "models"))
from export_clip import PRESETS, random_weights  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from gemm import gemm_rate  # noqa: E402  (the same measurement as the pipeline benchmark)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def formula_input(batch: int, size: int) -> np.ndarray:
    n, c, y, x = np.meshgrid(np.arange(batch), np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return np.sin(0.013 * x + 0.029 * y + 0.7 * c + 1.3 * n).astype(np.float32)


def time_calls(fn, min_seconds: float, min_calls: int = 5, warmup: int = 2) -> list[float]:
    """Seconds per call: `warmup` untimed calls, then at least `min_calls` and `min_seconds`."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summary(times: list[float], batch: int) -> dict:
    median = statistics.median(times)
    return {"images_per_s": batch / median, "median_batch_s": median, "min_batch_s": min(times),
            "calls": len(times)}


def ort_session(path: Path, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bench_ort(path: Path, x: np.ndarray, threads: int, seconds: float) -> tuple[dict, np.ndarray]:
    sess = ort_session(path, threads)
    feed = {"pixel_values": x}
    embeds = sess.run(["image_embeds"], feed)[0]
    return summary(time_calls(lambda: sess.run(None, feed), seconds), len(x)), embeds


def bench_torch(meta: dict, x: np.ndarray, threads: int, seconds: float) -> tuple[dict, np.ndarray]:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.set_num_threads(threads)
    preset = meta["source"].removeprefix("random-init:")
    if not meta.get("random_init") or preset not in PRESETS:
        raise SystemExit(f"the PyTorch peer rebuilds random-init models only, not {meta['source']!r}")
    cfg = PRESETS[preset]
    hf_cfg = CLIPVisionConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.num_channels,
        hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        projection_dim=cfg.projection_dim, hidden_act=cfg.hidden_act, layer_norm_eps=cfg.layer_norm_eps,
    )
    model = CLIPVisionModelWithProjection._from_config(hf_cfg, attn_implementation="eager")
    model.eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in random_weights(cfg, meta["seed"]).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    pixels = torch.from_numpy(x)

    def forward():
        with torch.inference_mode():
            return model(pixel_values=pixels, output_attentions=True, output_hidden_states=True)

    embeds = forward().image_embeds.numpy()
    return summary(time_calls(forward, seconds), len(x)), embeds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="directory with model.onnx and model.json")
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--seconds", type=float, default=20.0, help="least timed seconds per peer")
    args = ap.parse_args(argv)

    import onnxruntime
    import torch
    import transformers

    meta = json.loads((args.model / "model.json").read_text())
    x = formula_input(args.batch, meta["image_size"])
    print(f"peers: batch {args.batch}, {args.threads} threads, model {meta['name']}", file=sys.stderr)
    result = {
        "batch": args.batch,
        "threads": args.threads,
        "model": meta["name"],
        "model_sha256": meta["sha256"],
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                    "loadavg_start": os.getloadavg()},
        "versions": {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
        "peers": {},
    }
    result["gemm_gflops"] = gemm_rate(args.threads)
    print(f"  fp32 GEMM: {result['gemm_gflops']}", file=sys.stderr)

    ort_stats, ort_embeds = bench_ort(args.model / meta["onnx"], x, args.threads, args.seconds)
    result["peers"]["onnxruntime"] = ort_stats
    print(f"  onnxruntime: {ort_stats['images_per_s']:.2f} images/s", file=sys.stderr)

    int8 = args.model / "model.int8.onnx"
    if int8.exists():
        stats, q_embeds = bench_ort(int8, x, args.threads, args.seconds)
        cos = np.sum(q_embeds * ort_embeds, 1) / np.linalg.norm(q_embeds, axis=1) / np.linalg.norm(ort_embeds, axis=1)
        stats["cosine_to_fp32_min"] = float(cos.min())
        result["peers"]["onnxruntime_int8"] = stats
        print(f"  onnxruntime int8: {stats['images_per_s']:.2f} images/s", file=sys.stderr)

    torch_stats, torch_embeds = bench_torch(meta, x, args.threads, args.seconds)
    # The same model: PyTorch and the ONNX graph agree on the embeddings.
    torch_stats["max_abs_diff_to_onnxruntime"] = float(np.abs(torch_embeds - ort_embeds).max())
    result["peers"]["pytorch"] = torch_stats
    print(f"  pytorch: {torch_stats['images_per_s']:.2f} images/s "
          f"(max |embeds - onnxruntime| {torch_stats['max_abs_diff_to_onnxruntime']:.1e})", file=sys.stderr)
    if not torch_stats["max_abs_diff_to_onnxruntime"] < 1e-3:
        raise SystemExit("PyTorch and onnxruntime disagree: they are not running the same model")

    result["machine"]["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
