#!/usr/bin/env python3
"""Sparse autoencoders (SAEs) in the layout the SAE stage reads, without torch.

The layout (docs/sae.md): a safetensors file with
    W_enc [d, m], b_enc [m], W_dec [m, d], b_dec [d]      float32
and metadata
    k           number of active latents (required)
    activation  topk_relu: z = ReLU(TopK_k(pre))  |  topk: z = TopK_k(pre), signed
    input_norm  none  |  layer_norm: x = (h - mean) / (std_unbiased + 1e-5), and the
                reconstruction scaled back, h_hat = std * x_hat + mean (ViT-Prisma's)
    source      where the weights came from
with pre = W_enc^T (x - b_dec) + b_enc and x_hat = W_dec^T z + b_dec.

Sources:
    vit-prisma DIR          ViT-Prisma's SAEs (config.json + weights.pt, e.g. the Hugging
                            Face repos Prisma-Multimodal/sae-top_k-64-cls_only-layer_11-
                            hook_resid_post, trained on LAION's DataComp CLIP ViT-B/32):
                            StandardSparseAutoencoder, TopK then ReLU, b_dec subtracted.
    attributing-clip CKPT   maxdreyer/attributing-clip's TopKSAE (a Lightning .ckpt or a
                            state dict): weight-normalised encoder (g v / |v| per latent),
                            unit-norm decoder columns, no decoder bias, signed TopK;
                            k is not stored in the checkpoint: pass --k.
    random                  a random SAE (tests): unit-norm decoder rows, tied encoder.

Usage:
    convert_sae.py vit-prisma DIR --output sae.safetensors
    convert_sae.py attributing-clip last.ckpt --k 64 --output sae.safetensors
    convert_sae.py random --d 64 --m 512 --k 8 [--seed 0] --output sae.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkpoint_files import read_torch_bin  # noqa: E402


def save(path: Path, w_enc, b_enc, w_dec, b_dec, *, k: int, activation: str, input_norm: str, source: str,
         extra: dict | None = None) -> None:
    from safetensors.numpy import save_file
    d, m = w_enc.shape
    shapes = {"b_enc": (m,), "W_dec": (m, d), "b_dec": (d,)}
    tensors = {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec}
    for name, shape in shapes.items():
        if tensors[name].shape != shape:
            raise SystemExit(f"error: {name} has shape {tensors[name].shape}, expected {shape}")
    if not 0 < k <= m:
        raise SystemExit(f"error: k = {k} must be in 1..{m}")
    for name, t in tensors.items():
        if not np.isfinite(t).all():
            raise SystemExit(f"error: {name} has non-finite values")
    meta = {"k": str(k), "activation": activation, "input_norm": input_norm, "source": source}
    meta.update({key: str(v) for key, v in (extra or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: np.ascontiguousarray(t, dtype=np.float32) for n, t in tensors.items()}, str(path), metadata=meta)
    print(f"wrote {path}: d = {d}, m = {m}, k = {k}, {activation}, input_norm {input_norm} ({source})")


def state_dict_of(obj: dict) -> dict:
    """The tensors of a checkpoint that is either a state dict or wraps one."""
    sd = obj.get("state_dict", obj)
    return {k: v for k, v in sd.items() if isinstance(v, np.ndarray)}


def from_vit_prisma(src: Path) -> tuple:
    weights = src if src.is_file() else src / "weights.pt"
    config_path = weights.parent / "config.json"
    if not weights.is_file():
        raise SystemExit(f"error: {weights} not found (ViT-Prisma stores weights.pt beside config.json)")
    if not config_path.is_file():
        raise SystemExit(f"error: {config_path} not found: it says k and the input normalisation")
    cfg = json.loads(config_path.read_text())
    sd = state_dict_of(read_torch_bin(weights, other_objects=True))
    for key in ("W_enc", "b_enc", "W_dec", "b_dec"):
        if key not in sd:
            raise SystemExit(f"error: {weights} has no {key} (keys: {sorted(sd)})")
    act = cfg.get("activation_fn_str", "relu")
    if act != "topk":
        raise SystemExit(f"error: {config_path}: activation_fn_str is {act!r}; only TopK SAEs are supported")
    k = int((cfg.get("activation_fn_kwargs") or {}).get("k", 0))
    norm = cfg.get("normalize_activations")
    input_norm = {None: "none", "none": "none", "layer_norm": "layer_norm"}.get(norm)
    if input_norm is None:
        raise SystemExit(f"error: {config_path}: normalize_activations {norm!r} is not supported "
                         "(none or layer_norm)")
    if not cfg.get("cls_token_only", False):
        print("warning: this SAE was not trained on the class token alone (cls_token_only is false)",
              file=sys.stderr)
    w_dec = sd["W_dec"]
    norms = np.linalg.norm(w_dec, axis=1)
    if np.abs(norms - 1).max() > 1e-3:
        print(f"warning: decoder rows are not unit norm (|w| in [{norms.min():.4f}, {norms.max():.4f}])",
              file=sys.stderr)
    extra = {"model_name": cfg.get("model_name", ""),
             "hook_point": f"blocks.{cfg.get('hook_point_layer')}.{cfg.get('layer_subtype', 'hook_resid_post')}"}
    return (sd["W_enc"], sd["b_enc"], w_dec, sd["b_dec"]), k, "topk_relu", input_norm, extra


def weight_norm(sd: dict, prefix: str, dim: int) -> np.ndarray:
    """The effective weight of torch's weight_norm, in its legacy (weight_g / weight_v)
    or parametrization (parametrizations.weight.original0 / 1) keys: g v / |v|, the norm
    taken over every axis but `dim`."""
    for g_key, v_key in ((prefix + "weight_g", prefix + "weight_v"),
                         (prefix + "parametrizations.weight.original0", prefix + "parametrizations.weight.original1")):
        if g_key in sd and v_key in sd:
            g, v = sd[g_key].astype(np.float64), sd[v_key].astype(np.float64)
            axes = tuple(a for a in range(v.ndim) if a != dim)
            return g * v / np.sqrt((v * v).sum(axis=axes, keepdims=True))
    if prefix + "weight" in sd:
        return sd[prefix + "weight"].astype(np.float64)
    raise SystemExit(f"error: no weight for {prefix!r} (keys: {sorted(sd)})")


def from_attributing_clip(src: Path, k: int | None) -> tuple:
    if k is None:
        raise SystemExit("error: attributing-clip checkpoints do not store k: pass --k (its configs name it, "
                         "e.g. topk-cls-64-30000 is k = 64, 30000 latents)")
    sd = state_dict_of(read_torch_bin(src, other_objects=True))
    enc = weight_norm(sd, "encoder.0.", dim=0)            # [m, d]: Linear(d -> m), one norm per latent
    dec = weight_norm(sd, "decoder.", dim=1)              # [d, m]: Linear(m -> d), one norm per latent
    b_enc = sd.get("encoder.0.bias")
    if b_enc is None:
        raise SystemExit(f"error: {src} has no encoder.0.bias (keys: {sorted(sd)})")
    d = enc.shape[1]
    return (enc.T, b_enc, dec.T, np.zeros(d, dtype=np.float32)), k, "topk", "none", {}


def random_sae(d: int, m: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    w_dec = rng.standard_normal((m, d))
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    b_enc = rng.standard_normal(m) * 0.02
    b_dec = rng.standard_normal(d) * 0.02
    return w_dec.T.copy(), b_enc, w_dec, b_dec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", choices=["vit-prisma", "attributing-clip", "random"])
    ap.add_argument("path", nargs="?", type=Path, help="checkpoint directory or file (not for random)")
    ap.add_argument("--output", "-o", required=True, type=Path)
    ap.add_argument("--k", type=int, default=None, help="active latents (attributing-clip, random)")
    ap.add_argument("--d", type=int, default=None, help="state width (random)")
    ap.add_argument("--m", type=int, default=None, help="latents (random)")
    ap.add_argument("--seed", type=int, default=0, help="seed (random)")
    args = ap.parse_args(argv)
    if args.source == "random":
        if None in (args.d, args.m, args.k):
            raise SystemExit("error: random needs --d, --m and --k")
        w = random_sae(args.d, args.m, args.seed)
        save(args.output, *w, k=args.k, activation="topk_relu", input_norm="none",
             source=f"random-init:seed{args.seed}", extra={"random_init": "true"})
        return 0
    if args.path is None:
        raise SystemExit(f"error: {args.source} needs the checkpoint path")
    if args.source == "vit-prisma":
        w, k, act, norm, extra = from_vit_prisma(args.path)
    else:
        w, k, act, norm, extra = from_attributing_clip(args.path, args.k)
    save(args.output, *w, k=k, activation=act, input_norm=norm, source=f"{args.source}:{args.path.name}",
         extra=extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
