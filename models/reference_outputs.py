#!/usr/bin/env python3
"""Reference outputs of the committed tiny model, for the Rust encoder's tests.

Runs Python onnxruntime (CPU, one thread) on models/tiny-clip/model.onnx with a
deterministic input that the Rust tests recompute from the formula (nothing else
is stored):

    pixel_values[n, c, y, x] = sin(0.013*x + 0.029*y + 0.7*c + 1.3*n)
    N = 3, C = 3, H = W = 224; computed in float64, then cast to float32.

and writes crates/encode/tests/fixtures/tiny_reference.json:

    formula                  the formula above, as text
    batch, channels, height, width
    image_embeds             [N][D]        raw projected embeddings
    last_attention_cls       [N][P]        mean over heads of last_attention[n, :, 0, 1:]
    last_attention_shape     shape of last_attention
    layer_cls_states_shape   shape of layer_cls_states
    layer_cls_states_last    [N][hidden]   layer_cls_states[n, -1, :]
    model_sha256             sha256 of the model file used
    onnxruntime              version used

Floats are written with repr (shortest string that round-trips the float32 value
once widened to float64).

Usage: reference_outputs.py [--model models/tiny-clip/model.onnx]
                            [--output crates/encode/tests/fixtures/tiny_reference.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FORMULA = "pixel_values[n,c,y,x] = sin(0.013*x + 0.029*y + 0.7*c + 1.3*n), computed in float64, cast to float32"


def make_input(n: int = 3, c: int = 3, h: int = 224, w: int = 224) -> np.ndarray:
    nn, cc, yy, xx = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(c, dtype=np.float64),
                                 np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                                 indexing="ij")
    return np.sin(0.013 * xx + 0.029 * yy + 0.7 * cc + 1.3 * nn).astype(np.float32)


def floats(a: np.ndarray):
    """Nested lists of Python floats (float32 widened exactly to float64)."""
    return [floats(x) for x in a] if a.ndim > 1 else [float(v) for v in a.astype(np.float64)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models/tiny-clip/model.onnx")
    ap.add_argument("--output", type=Path, default=ROOT / "crates/encode/tests/fixtures/tiny_reference.json")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    sidecar_path = args.model.parent / "model.json"
    meta = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
    size = int(meta.get("image_size", 224))
    sha = hashlib.sha256(args.model.read_bytes()).hexdigest()
    if meta.get("sha256") not in (None, sha):
        print(f"warning: {sidecar_path} sha256 {meta['sha256']} != model file {sha}", file=sys.stderr)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(args.model), so, providers=["CPUExecutionProvider"])
    x = make_input(3, 3, size, size)
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(names, {"pixel_values": x})))

    emb = out["image_embeds"]
    attn = out["last_attention"]
    cls_states = out["layer_cls_states"]
    cls_attn = attn[:, :, 0, 1:].astype(np.float64).mean(axis=1)  # mean over heads, in float64

    ref = {
        "formula": FORMULA,
        "batch": int(x.shape[0]),
        "channels": int(x.shape[1]),
        "height": int(x.shape[2]),
        "width": int(x.shape[3]),
        "image_embeds": floats(emb),
        "last_attention_cls": [[float(v) for v in row] for row in cls_attn],
        "last_attention_shape": list(attn.shape),
        "layer_cls_states_shape": list(cls_states.shape),
        "layer_cls_states_last": floats(cls_states[:, -1, :]),
        "model": str(args.model.resolve().relative_to(ROOT)) if args.model.resolve().is_relative_to(ROOT) else str(args.model),
        "model_sha256": sha,
        "onnxruntime": ort.__version__,
        "note": "random-init test model: values are meaningless except as a regression reference; "
                "compare with a tolerance of about 1e-4 (absolute) to allow for kernel differences",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {args.output}: image_embeds {list(emb.shape)}, last_attention_cls {list(cls_attn.shape)}, "
          f"layer_cls_states {list(cls_states.shape)}, model sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
