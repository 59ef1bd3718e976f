#!/usr/bin/env python3
"""PyTorch reference for one and two optimisation steps of attributing-clip's SAE training.

The seed paper's code (maxdreyer/attributing-clip) trains its TopKSAE with:
  model_training/sae.py         TopKSAE: encoder = weight_norm(Linear(d, m)) (dim 0: weight_v
                                [m, d], weight_g [m, 1], bias [m]); decoder = weight_norm(
                                Linear(m, d, bias=False), dim=1) (weight_v [d, m], weight_g
                                [1, m] filled with 1.0, requires_grad False); z = encoder(x);
                                z_bar = z * top-k mask (signed, no ReLU); rec = decoder(z_bar)
  model_training/base_pl.py     Vanilla.default_step: loss = 100 * MSELoss(normalize(rec),
                                normalize(x)), rec taken at hook_post_sae, i.e. before the
                                add_residual trick
  utils/training_utils.py       torch.optim.AdamW(sae.parameters(), lr, eps=1e-7) (default
                                betas (0.9, 0.999), default weight_decay 0.01: the config's
                                weight_decay is passed in but not used)
  model_training/train_sae.py   Lightning Trainer(gradient_clip_val=1.0): clip_grad_norm_(
                                params with grads, 1.0) before every optimiser step
This script copies that module and step (in float32 on the CPU; the seed trains with
precision="16-mixed" on a GPU) and runs two steps, on batch x0 then on batch x1, for
four cases: activation "topk" (the seed's) and "topk_relu" (z_bar = ReLU(z * mask), the
other SAE family's definition), each at lr 2e-4 (the seed's configs) and lr 1e-2 (so the
parameter change is large enough to compare meaningfully), with d = 16, m = 48, k = 24
(see K below for why k is m / 2) and batches of 32.

Writes crates/sae/tests/fixtures/train_step.safetensors (or --out). Per case `{case}/`:
  x0, x1 [32, 16]; init/{enc_v [48, 16], enc_g [48, 1], enc_b [48], dec_v [16, 48]};
  step1/... and step2/... (same names, after each step); loss [2] (before each update);
  grad_norm [2] (total L2 norm of the gradients before clipping, as clip_grad_norm_
  returns it); z_bar0 [32, 48] and rec0 [32, 16] (batch x0 at the initial parameters).
The decoder's weight_g is 1 throughout and is not stored. Metadata: d, m, k, cases,
activation/{case}, lr/{case}, eps, weight_decay, beta1, beta2, max_grad_norm,
clip_norm_eps, loss_scale, batch, torch_version, source.

Needs torch and safetensors (models/fixture-requirements.txt).

    python crates/sae/reference/make_train_fixture.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "crates/sae/tests/fixtures/train_step.safetensors"
# k = m / 2: with the default nn.Linear initialisation the k largest of 48 pre-activations
# are all positive for k <= 16 on this data, which would make "topk_relu" identical to
# "topk" (and leave the seed's signed values untested); at k = 24 about a fifth of the
# kept values are negative, so the two variants differ and both paths are exercised.
D, M, K, BATCH = 16, 48, 24, 32
LRS = [2e-4, 1e-2]
ACTIVATIONS = ["topk", "topk_relu"]
EPS = 1e-7            # utils/training_utils.py: AdamW(params, lr, eps=1e-07)
WEIGHT_DECAY = 0.01   # AdamW's default; get_optimizer ignores the config's weight_decay
BETAS = (0.9, 0.999)  # AdamW's default
MAX_GRAD_NORM = 1.0   # train_sae.py: Trainer(gradient_clip_val=1.0), algorithm "norm"
CLIP_NORM_EPS = 1e-6  # clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to <= 1
LOSS_SCALE = 100.0    # base_pl.py Vanilla.default_step: 100 * MSELoss(...)
SOURCE = ("maxdreyer/attributing-clip model_training/sae.py + base_pl.py (Vanilla) + "
          "utils/training_utils.py + train_sae.py (gradient_clip_val)")


def weight_norm(module, name="weight", dim=0):
    """torch.nn.utils.weight_norm, as the seed imports it (deprecated in recent torch in
    favour of the parametrizations API, but still present and identical: it registers
    weight_g = ||weight|| over all dims but `dim`, and weight_v = weight)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.nn.utils.weight_norm(module, name=name, dim=dim)


class TopKSAE(nn.Module):
    """Copied from maxdreyer/attributing-clip model_training/sae.py (TopKSAE), without the
    layer_idx/token bookkeeping and from_config; `activation` adds the "topk_relu"
    variant (ReLU after the mask), "topk" is the seed's own."""

    def __init__(self, input_dim, hidden_dim, k, activation="topk"):
        super().__init__()
        assert activation in ACTIVATIONS
        self.k = k
        self.activation = activation
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.hook_pre_sae = nn.Identity()
        self.hook_hidden_post = nn.Identity()
        self.hook_post_sae = nn.Identity()
        self.add_residual = True  # Whether to add residual connections in SAE
        self.encoder = nn.Sequential(
            weight_norm(nn.Linear(input_dim, hidden_dim)),
        )
        self.decoder = weight_norm(nn.Linear(hidden_dim, input_dim, bias=False), dim=1)
        self._fix_weight_norm()

    def _fix_weight_norm(self):
        """Set the magnitude parameter (g) to 1 and remove it from training."""
        for layer in [self.decoder]:
            layer.weight_g.data.fill_(1.0)
            layer.weight_g.requires_grad = False

    def top_k_masking(self, z):
        values, indices = torch.topk(z, self.k, dim=1)
        mask = torch.zeros_like(z).scatter(1, indices, 1.0)
        z_bar = z * mask
        if self.activation == "topk_relu":
            z_bar = torch.relu(z_bar)
        return z_bar

    def forward(self, x):
        x = self.hook_pre_sae(x)
        if len(x.shape) == 2:
            z = self.encoder(x)
            z_bar = self.top_k_masking(z)
            z_bar = self.hook_hidden_post(z_bar)
            x_recon = self.decoder(z_bar)
            x_recon = self.hook_post_sae(x_recon)
        else:
            batch_size = x.shape[0]
            token_dim = x.shape[1]
            z = self.encoder(x.reshape(batch_size * token_dim, -1))
            z_bar = self.top_k_masking(z)
            z_bar = self.hook_hidden_post(z_bar.reshape(batch_size, token_dim, -1))
            x_recon = self.decoder(z_bar.reshape(batch_size * token_dim, -1))
            x_recon = self.hook_post_sae(x_recon.reshape(batch_size, token_dim, -1))
        if self.add_residual:
            x_recon = x_recon + (x - x_recon).detach()
        return x_recon, z, z_bar


class Vanilla:
    """The parts of model_training/base_pl.py's Vanilla that make the training loss: forward
    hooks capture the SAE's input, its reconstruction before the residual trick, and the
    masked code; loss = 100 * MSELoss(normalize(rec), normalize(act))."""

    def __init__(self, sae: TopKSAE):
        self.sae = sae
        self.loss = nn.MSELoss()  # utils/training_utils.py get_loss("mse")
        self.pre_activations = self.post_activations = self.hidden_activations = None
        sae.hook_pre_sae.register_forward_hook(self.hook_pre_activations)
        sae.hook_post_sae.register_forward_hook(self.hook_post_activations)
        sae.hook_hidden_post.register_forward_hook(self.hook_hidden_activations)

    def hook_pre_activations(self, module, input, output):
        self.pre_activations = output.clone()

    def hook_post_activations(self, module, input, output):
        self.post_activations = output.clone()

    def hook_hidden_activations(self, module, input, output):
        self.hidden_activations = output.clone()

    def default_step(self, x):
        self.sae(x)
        act, rec = self.pre_activations, self.post_activations
        return LOSS_SCALE * self.loss(F.normalize(rec, dim=-1), F.normalize(act, dim=-1))


def params(sae: TopKSAE) -> dict[str, torch.Tensor]:
    enc = sae.encoder[0]
    return {"enc_v": enc.weight_v.detach().clone(), "enc_g": enc.weight_g.detach().clone(),
            "enc_b": enc.bias.detach().clone(), "dec_v": sae.decoder.weight_v.detach().clone()}


def check_decoder(sae: TopKSAE) -> float:
    """The decoder's effective weight v * g / ||v|| (column norms, dim=1) has unit columns."""
    dec = sae.decoder
    assert torch.equal(dec.weight_g, torch.ones_like(dec.weight_g)) and dec.weight_g.shape == (1, M), "decoder weight_g moved"
    assert dec.weight_g.grad is None
    w = dec.weight_g * dec.weight_v / dec.weight_v.norm(dim=0, keepdim=True)
    err = (w.norm(dim=0) - 1).abs().max().item()
    assert err < 1e-5, err
    return err


def topk_gap(sae: TopKSAE, x: torch.Tensor) -> tuple[float, int]:
    """Smallest gap between the k-th and (k+1)-th largest pre-activation of any row (the
    Rust side must pick the same latents, so it must not be a near tie), and how many of
    the kept values are negative (where "topk" and "topk_relu" differ)."""
    with torch.no_grad():
        z = sae.encoder(x)
    top = torch.topk(z, K + 1, dim=1).values
    return (top[:, K - 1] - top[:, K]).min().item(), int((top[:, :K] < 0).sum())


def batches() -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches with a shared mean offset (as CLIP states have) and a scale that varies
    per sample, so the normalisation in the loss matters."""
    gen = torch.Generator().manual_seed(1234)
    offset = 0.7 * torch.randn(D, generator=gen)
    out = []
    for _ in range(2):
        scale = torch.exp(0.6 * torch.randn(BATCH, 1, generator=gen)) * 2.0
        out.append(((torch.randn(BATCH, D, generator=gen) + offset) * scale).contiguous())
    return out[0], out[1]


def run_case(activation: str, lr: float, x0: torch.Tensor, x1: torch.Tensor, name: str,
             dtype: torch.dtype = torch.float32) -> dict:
    """The fixture's case in float32; with dtype float64 the same two steps from the same
    float32 initial parameters and data, run only to bound the float32 rounding."""
    verbose = dtype == torch.float32
    torch.manual_seed(0)
    sae = TopKSAE(D, M, K, activation=activation).to(dtype)
    x0, x1 = x0.to(dtype), x1.to(dtype)
    vanilla = Vanilla(sae)
    # train_sae.py passes model.sae.parameters(); the frozen decoder weight_g is in the list
    # but never gets a gradient, so AdamW skips it (no update, no weight decay).
    optim = torch.optim.AdamW(sae.parameters(), lr, eps=EPS)
    assert optim.defaults["betas"] == BETAS and optim.defaults["weight_decay"] == WEIGHT_DECAY
    t = {"x0": x0.clone(), "x1": x1.clone()}
    for n, v in params(sae).items():
        t[f"init/{n}"] = v
    with torch.no_grad():
        x_recon, _, z_bar = sae(x0)
        t["z_bar0"] = z_bar.clone()
        t["rec0"] = vanilla.post_activations.clone()
    assert torch.allclose(x_recon, x0)  # the residual trick: forward returns x itself
    if activation == "topk":
        assert torch.equal(z_bar, vanilla.hidden_activations)
    losses, norms = [], []
    for step, x in enumerate([x0, x1], start=1):
        gap, negative = topk_gap(sae, x)
        assert gap > 1e-4, f"{name} step {step}: near tie in the top-k ({gap:.2e})"
        assert negative > 0, f"{name} step {step}: no negative value in the top-k"
        optim.zero_grad(set_to_none=True)
        loss = vanilla.default_step(x)
        loss.backward()
        with_grad = [p for p in sae.parameters() if p.grad is not None]
        assert len(with_grad) == 4
        # Lightning's gradient_clip_val=1.0 (gradient_clip_algorithm "norm"):
        # Precision.clip_grad_by_norm -> torch.nn.utils.clip_grad_norm_(params, 1.0)
        total = torch.nn.utils.clip_grad_norm_(with_grad, MAX_GRAD_NORM)
        optim.step()
        losses.append(loss.item())
        norms.append(total.item())
        for n, v in params(sae).items():
            t[f"step{step}/{n}"] = v
        err = check_decoder(sae)
        if verbose:
            print(f"  step {step}: loss {loss.item():.6f}  grad_norm before clip {total.item():.6f} "
                  f"({'clipped' if total.item() > MAX_GRAD_NORM else 'not clipped'})  top-k gap {gap:.2e}  "
                  f"negative kept {negative}/{BATCH * K}  decoder |col norm - 1| max {err:.1e}")
    for n in ["enc_v", "enc_g", "enc_b", "dec_v"]:
        init, s1, s2 = t[f"init/{n}"], t[f"step1/{n}"], t[f"step2/{n}"]
        if verbose:
            print(f"  {n:6s} ||step1 - init|| / ||init|| = {((s1 - init).norm() / init.norm()).item():.3e}"
                  f"   ||step2 - step1|| / ||init|| = {((s2 - s1).norm() / init.norm()).item():.3e}")
    t["loss"] = torch.tensor(losses, dtype=torch.float32)
    t["grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    return {f"{name}/{k}": v.float().contiguous() for k, v in t.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)

    x0, x1 = batches()
    tensors, names = {}, []
    meta = {"d": str(D), "m": str(M), "k": str(K), "batch": str(BATCH), "eps": repr(EPS),
            "weight_decay": repr(WEIGHT_DECAY), "beta1": repr(BETAS[0]), "beta2": repr(BETAS[1]),
            "max_grad_norm": repr(MAX_GRAD_NORM), "clip_norm_eps": repr(CLIP_NORM_EPS),
            "loss_scale": repr(LOSS_SCALE), "torch_version": torch.__version__, "source": SOURCE}
    for activation in ACTIVATIONS:
        for lr in LRS:
            name = f"{activation}_lr{lr!r}"
            print(f"{name}:")
            tensors.update(run_case(activation, lr, x0, x1, name))
            names.append(name)
            meta[f"activation/{name}"] = activation
            meta[f"lr/{name}"] = repr(lr)
    meta["cases"] = ",".join(names)
    for lr in LRS:  # the ReLU must matter
        a, b = f"topk_lr{lr!r}", f"topk_relu_lr{lr!r}"
        assert not torch.equal(tensors[f"{a}/z_bar0"], tensors[f"{b}/z_bar0"])
        assert not torch.equal(tensors[f"{a}/step2/dec_v"], tensors[f"{b}/step2/dec_v"])
    # The same steps in float64 bound what float32 rounding alone moves (the Rust side
    # compares to 1e-5): they must agree far inside that.
    for name in names:
        ref = run_case(meta[f"activation/{name}"], float(meta[f"lr/{name}"]), x0, x1, name, torch.float64)
        worst = {kind: max((ref[key] - tensors[key]).abs().max().item() for key in tensors
                           if key.startswith(f"{name}/") and kind in key.split("/"))
                 for kind in ["step1", "step2", "loss", "grad_norm"]}
        print(f"{name}: |float64 - float32| max " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        assert max(worst.values()) < 5e-6, worst

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=meta)
    with safe_open(str(args.out), "pt") as f:
        assert set(f.keys()) == set(tensors) and f.metadata() == meta
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), tensors[key]), key
    print(f"wrote {args.out}: {len(names)} cases, {len(tensors)} tensors, "
          f"{args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
