#!/usr/bin/env python3
"""PyTorch references for the SAE stage's closed-form attribution (docs/sae.md).

For three SAEs on the tiny model's 64-dimensional class-token states, each through its
own source's forward pass in PyTorch:
  tiny-random       models/tiny-clip/sae-random.safetensors, the contract's TopK + ReLU
  vit-prisma        a ViT-Prisma-style checkpoint (config.json + weights.pt, layer_norm
                    input scaling, TopK then ReLU), converted by models/convert_sae.py
  attributing-clip  an attributing-clip TopKSAE (weight-normalised encoder and decoder,
                    signed TopK, no decoder bias) saved as a Lightning-style .ckpt,
                    converted by models/convert_sae.py
it draws pairs of states (h_o, h_a) and computes with autograd, in float64:
  codes z_o, z_a; y(z) = cos(e(dec(z) + eps_a), e_o) with eps_a = h_a - dec(z_a) held
  fixed; its gradient at z_a; A_j = (z_o,j - z_a,j) dy/dz_j and G_j = z_a,j dy/dz_j for
  every latent active in either code; the LogitLens and energy scores; and the
  faithfulness curves: y after restoring the top-n latents of each order to z_o.
e(h) = visual_projection(post_layernorm(h)) from models/tiny-clip/head.safetensors.

Writes crates/sae/tests/fixtures/{attribution.json, sae-vit-prisma.safetensors,
sae-attributing-clip.safetensors}. Needs torch and safetensors
(models/fixture-requirements.txt) and numpy.

    python crates/sae/reference/make_fixtures.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "crates/sae/tests/fixtures"
HEAD = ROOT / "models/tiny-clip/head.safetensors"
D, M, K = 64, 128, 8
PAIRS = 4
ORDERS = ["patch_attribution", "act_x_grad", "logit_lens", "energy"]


def restore_counts(k: int) -> list[int]:
    counts, n = [0], 1
    while n < 2 * k:
        counts.append(n)
        n *= 2
    return counts + [2 * k]


class Head:
    def __init__(self, path: Path):
        t = load_file(str(path))
        with safe_open(str(path), "np") as f:
            self.eps = float(f.metadata()["layer_norm_eps"])
        self.gamma = torch.tensor(t["vision_model.post_layernorm.weight"], dtype=torch.float64)
        self.beta = torch.tensor(t["vision_model.post_layernorm.bias"], dtype=torch.float64)
        self.proj = torch.tensor(t["visual_projection.weight"], dtype=torch.float64)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        ln = torch.nn.functional.layer_norm(h, (h.shape[-1],), self.gamma, self.beta, self.eps)
        return ln @ self.proj.T


class ContractSae:
    """The layout itself: pre = W_enc^T (h - b_dec) + b_enc; z = ReLU(TopK(pre))."""

    def __init__(self, path: Path):
        t = load_file(str(path))
        with safe_open(str(path), "np") as f:
            self.k = int(f.metadata()["k"])
        self.w_enc, self.b_enc, self.w_dec, self.b_dec = (
            torch.tensor(t[n], dtype=torch.float64) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))

    def encode(self, h):
        pre = (h - self.b_dec) @ self.w_enc + self.b_enc
        top = torch.topk(pre, self.k)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode_fn(self, h_a):
        return lambda z: z @ self.w_dec + self.b_dec

    def directions(self):
        return self.w_dec


class PrismaSae(torch.nn.Module):
    """ViT-Prisma's StandardSparseAutoencoder forward with normalize_activations =
    "layer_norm" and activation_fn "topk" (TopK, then ReLU on the kept values)."""

    def __init__(self, d, m, k, rng):
        super().__init__()
        self.k = k
        w_dec = rng.standard_normal((m, d))
        w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
        self.W_dec = torch.nn.Parameter(torch.tensor(w_dec, dtype=torch.float32))
        self.W_enc = torch.nn.Parameter(torch.tensor(w_dec.T + 0.1 * rng.standard_normal((d, m)), dtype=torch.float32))
        self.b_enc = torch.nn.Parameter(torch.tensor(rng.standard_normal(m) * 0.1, dtype=torch.float32))
        self.b_dec = torch.nn.Parameter(torch.tensor(rng.standard_normal(d) * 0.1, dtype=torch.float32))

    def f64(self):
        return {n: p.detach().double() for n, p in self.named_parameters()}

    def norm_in(self, x):
        mu = x.mean(dim=-1, keepdim=True)
        x = x - mu
        std = x.std(dim=-1, keepdim=True)
        return x / (std + 1e-5), mu, std

    def encode(self, h):
        p = self.f64()
        x, _, _ = self.norm_in(h)
        pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
        top = torch.topk(pre, self.k)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode_fn(self, h_a):
        p = self.f64()
        _, mu, std = self.norm_in(h_a)
        return lambda z: (z @ p["W_dec"] + p["b_dec"]) * std + mu

    def directions(self):
        return self.f64()["W_dec"]


class AttributingClipSae(torch.nn.Module):
    """attributing-clip's TopKSAE (model_training/sae.py): weight_norm encoder, decoder
    with unit-norm columns (weight_g fixed to 1), no decoder bias, signed TopK."""

    def __init__(self, d, m, k):
        super().__init__()
        self.k = k
        wn = torch.nn.utils.weight_norm
        self.encoder = torch.nn.Sequential(wn(torch.nn.Linear(d, m)))
        self.decoder = wn(torch.nn.Linear(m, d, bias=False), dim=1)
        with torch.no_grad():
            self.decoder.weight_g.fill_(1.0)
            self.encoder[0].weight_g.mul_(3.0)  # not unit: the converter must keep g

    def weights(self):
        enc = self.encoder[0]
        w_enc = (enc.weight_g * enc.weight_v / enc.weight_v.norm(dim=1, keepdim=True)).detach().double()
        v = self.decoder.weight_v
        w_dec = (v / v.norm(dim=0, keepdim=True)).detach().double()          # [d, m]
        return w_enc, enc.bias.detach().double(), w_dec

    def encode(self, h):
        w_enc, b_enc, _ = self.weights()
        z = h @ w_enc.T + b_enc
        top = torch.topk(z, self.k)
        return torch.zeros_like(z).scatter(-1, top.indices, top.values)

    def decode_fn(self, h_a):
        _, _, w_dec = self.weights()
        return lambda z: z @ w_dec.T

    def directions(self):
        return self.weights()[2].T


def convert(args: list[str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "models/convert_sae.py"), *args], check=True)


@dataclass
class VisionModelSAERunnerConfig:  # pickled beside the state dict, as ViT-Prisma does
    d_in: int
    k: int


def reference_pair(sae, head: Head, h_o, h_a) -> dict:
    z_o, z_a = sae.encode(h_o), sae.encode(h_a)
    dec = sae.decode_fn(h_a)
    eps_a = (h_a - dec(z_a)).detach()
    e_o = head(h_o)

    def y_of(z):
        return torch.nn.functional.cosine_similarity(head(dec(z) + eps_a), e_o, dim=0)

    z = z_a.clone().requires_grad_(True)
    y = y_of(z)
    (grad,) = torch.autograd.grad(y, z)
    union = sorted(set(torch.nonzero(z_o).flatten().tolist()) | set(torch.nonzero(z_a).flatten().tolist()))
    w = sae.directions()
    latents = []
    for j in union:
        delta = (z_o[j] - z_a[j]).item()
        lens = head(w[j])
        latents.append({
            "latent": j,
            "z_original": z_o[j].item(),
            "z_augmented": z_a[j].item(),
            "gradient": grad[j].item(),
            "patch_attribution": delta * grad[j].item(),
            "act_x_grad": z_a[j].item() * grad[j].item(),
            "logit_lens": delta * torch.nn.functional.cosine_similarity(lens, e_o, dim=0).item(),
            "energy": abs(delta) * w[j].norm().item(),
        })
    score = {"patch_attribution": lambda l: l["patch_attribution"], "act_x_grad": lambda l: -l["act_x_grad"],
             "logit_lens": lambda l: l["logit_lens"], "energy": lambda l: l["energy"]}
    curves = {}
    with torch.no_grad():
        for order in ORDERS:
            ranked = sorted(latents, key=lambda l: (-score[order](l), l["latent"]))
            ys = []
            for n in restore_counts(sae.k):
                zz = z_a.clone()
                for l in ranked[:n]:
                    zz[l["latent"]] = z_o[l["latent"]]
                ys.append(y_of(zz).item())
            curves[order] = ys
    nz = lambda z: {"latents": torch.nonzero(z).flatten().tolist(),
                    "values": z[torch.nonzero(z).flatten()].tolist()}
    return {"h_original": h_o.tolist(), "h_augmented": h_a.tolist(), "z_original": nz(z_o), "z_augmented": nz(z_a),
            "cosine": y.item(), "latents": latents, "curves": curves}


def main() -> int:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = Head(HEAD)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    cases = []

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prisma = PrismaSae(D, M, K, rng)
        (tmp / "prisma").mkdir()
        torch.save({"cfg": VisionModelSAERunnerConfig(D, K), "state_dict": prisma.state_dict()},
                   tmp / "prisma/weights.pt")
        (tmp / "prisma/config.json").write_text(json.dumps({
            "d_in": D, "expansion_factor": M // D, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K},
            "normalize_activations": "layer_norm", "cls_token_only": True, "hook_point_layer": 1,
            "layer_subtype": "hook_resid_post", "model_name": "tiny-random"}))
        convert(["vit-prisma", str(tmp / "prisma"), "--output", str(FIXTURES / "sae-vit-prisma.safetensors")])

        ac = AttributingClipSae(D, M, K)
        torch.save({"state_dict": ac.state_dict(), "hyper_parameters": {"config": VisionModelSAERunnerConfig(D, K)},
                    "epoch": 29}, tmp / "last.ckpt")
        convert(["attributing-clip", str(tmp / "last.ckpt"), "--k", str(K),
                 "--output", str(FIXTURES / "sae-attributing-clip.safetensors")])

    saes = [("tiny-random", "models/tiny-clip/sae-random.safetensors", ContractSae(ROOT / "models/tiny-clip/sae-random.safetensors")),
            ("vit-prisma", "crates/sae/tests/fixtures/sae-vit-prisma.safetensors", prisma),
            ("attributing-clip", "crates/sae/tests/fixtures/sae-attributing-clip.safetensors", ac)]
    for name, path, sae in saes:
        pairs = []
        for _ in range(PAIRS):
            h_o = torch.tensor(rng.standard_normal(D) + 0.5, dtype=torch.float32).double()
            h_a = (h_o + torch.tensor(rng.standard_normal(D) * 0.5, dtype=torch.float32).double()).float().double()
            pairs.append(reference_pair(sae, head, h_o, h_a))
        cases.append({"name": name, "sae": path, "k": sae.k, "counts": restore_counts(sae.k), "pairs": pairs})

    out = {"generator": "crates/sae/reference/make_fixtures.py", "torch": torch.__version__,
           "head": "models/tiny-clip/head.safetensors", "cases": cases}
    (FIXTURES / "attribution.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {FIXTURES / 'attribution.json'}: {len(cases)} SAEs x {PAIRS} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
