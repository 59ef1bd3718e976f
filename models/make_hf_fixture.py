#!/usr/bin/env python3
"""A tiny random CLIP checkpoint in the Hugging Face layout, and what transformers computes from it.

The encode crate's test `hf_export` exports this checkpoint with export_clip.py (which
needs no torch) and checks that the ONNX graph reproduces the outputs stored here, so
that the hand-built graph is compared with transformers in every test run without
torch being installed there. Only this script needs torch and transformers
(models/fixture-requirements.txt); run it again only to change the fixture.

Writes into crates/encode/tests/fixtures/hf-tiny-clip/:

    config.json          a full CLIPConfig (vision and text towers), as transformers saves it
    model.safetensors    CLIPModel weights, float32, fixed torch seed
    reference.json       transformers' outputs on the formula input below, and the versions used

The weights are drawn by transformers and then redrawn per parameter under the same
seed: transformers' own init leaves LayerNorm at weight 1 / bias 0, linear biases at 0
and the attention logits so small that softmax is almost uniform, and on such weights
a swapped LayerNorm parameter, a dropped bias or a wrong attention scale would not
change the outputs. The layer-norm epsilon is not transformers' default, so an export
that ignored the config's value would be caught too.

Input (recomputed by the Rust test, never stored), as in models/reference_outputs.py:

    pixel_values[n, c, y, x] = sin(0.013*x + 0.029*y + 0.7*c + 1.3*n)
    N = 3, C = 3, H = W = image_size; computed in float64, then cast to float32.

reference.json holds, under "vision":

    image_embeds        [N][D]              CLIPModel.get_image_features: projected, not normalised
    last_attention      [N][heads][T][T]    softmax probabilities of the last layer (eager attention)
    cls_attention       [N][P]              mean over heads of last_attention[n, :, 0, 1:], in float64
    layer_cls_states    [N][L+1][hidden]    hidden_states[i][n, 0, :]: i = 0 after pre_layrnorm,
                                            then the output of each encoder layer

and under "text", for fixed token ids of the tiny vocabulary (stored with their masks):

    input_ids, attention_mask   [N][context]    start token, tokens, end token, padding
    text_embeds                 [N][D]          CLIPModel.get_text_features: projected, not normalised
    logit_scale                 scalar          the parameter (log of the logits' multiplier)

which is the model contract of export_clip.py. Floats are the shortest decimal that
reads back as the same float32.

Usage: make_hf_fixture.py [--output crates/encode/tests/fixtures/hf-tiny-clip]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "crates/encode/tests/fixtures/hf-tiny-clip"
SEED = 20240917
BATCH = 3
FORMULA = "pixel_values[n,c,y,x] = sin(0.013*x + 0.029*y + 0.7*c + 1.3*n), computed in float64, cast to float32"

# Every size differs from the others, so a transposed or mixed-up weight cannot have the right shape.
VISION = dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
              image_size=32, patch_size=8, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-4,
              projection_dim=24)
# Token ids are chosen for a 64-token vocabulary; eos_token_id != 2 selects transformers'
# pooling at the first end-of-text token rather than the legacy argmax of the ids.
TEXT = dict(hidden_size=24, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
            vocab_size=64, max_position_embeddings=16, hidden_act="quick_gelu", layer_norm_eps=1e-4,
            pad_token_id=0, bos_token_id=62, eos_token_id=63, projection_dim=24)
PROJECTION_DIM = 24


def make_input(n: int, c: int, h: int, w: int) -> np.ndarray:
    nn, cc, yy, xx = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(c, dtype=np.float64),
                                 np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                                 indexing="ij")
    return np.sin(0.013 * xx + 0.029 * yy + 0.7 * cc + 1.3 * nn).astype(np.float32)


def redraw(model, torch) -> None:
    """Weights on which every parameter and every step of the forward pass shows in the outputs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if "norm" in name or "layrnorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith(".weight") else 0.05 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif name.endswith("class_embedding"):
                p.copy_(torch.randn_like(p) * p.shape[0] ** -0.5)
            elif name.endswith("position_embedding.weight") or name.endswith("token_embedding.weight"):
                p.copy_(0.1 * torch.randn_like(p))
            elif p.ndim >= 2:  # linear and conv weights: fan_in^-1/2 keeps activations O(1)
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn_like(p) * fan_in ** -0.5)
            else:
                raise SystemExit(f"no rule for parameter {name} {tuple(p.shape)}")


def shortest(a: np.ndarray):
    """Nested lists of floats, each the shortest decimal that reads back as the same float32."""
    if a.ndim > 1:
        return [shortest(x) for x in a]
    return [float(str(np.float32(v))) for v in a]


def reference_outputs(model, torch, image_size: int) -> dict:
    x = make_input(BATCH, 3, image_size, image_size)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=torch.from_numpy(x), output_attentions=True,
                                       output_hidden_states=True)
        vm = model.vision_model
        # The contract's entry 0 is the state after pre_layrnorm: computed here on its own so
        # that a transformers version whose hidden_states[0] meant something else is caught.
        after_pre = vm.pre_layrnorm(vm.embeddings(torch.from_numpy(x)))
    hidden = out.hidden_states
    if len(hidden) != VISION["num_hidden_layers"] + 1:
        raise SystemExit(f"transformers returned {len(hidden)} hidden states, expected layers + 1")
    if not torch.equal(hidden[0], after_pre):
        raise SystemExit("transformers' hidden_states[0] is not the state after pre_layrnorm")
    embeds = out.pooler_output.numpy()
    attn = out.attentions[-1].numpy()
    rows = attn.sum(-1)
    if not np.allclose(rows, 1.0, atol=1e-5):
        raise SystemExit("last attention rows do not sum to 1: not softmax probabilities")
    cls_states = np.stack([h[:, 0].numpy() for h in hidden], axis=1)
    cls_attn = attn[:, :, 0, 1:].astype(np.float64).mean(axis=1)
    print(f"image_embeds {list(embeds.shape)}, last_attention {list(attn.shape)} "
          f"(class-token row max {attn[:, :, 0].max():.3f}, uniform would be {1 / attn.shape[-1]:.3f}), "
          f"layer_cls_states {list(cls_states.shape)}")
    return {
        "formula": FORMULA,
        "batch": BATCH,
        "image_size": image_size,
        "image_embeds": shortest(embeds),
        "last_attention": shortest(attn),
        "cls_attention": [[float(v) for v in row] for row in cls_attn],
        "layer_cls_states": shortest(cls_states),
    }


TEXT_BATCH = 3


def text_input() -> tuple[np.ndarray, np.ndarray]:
    """Token ids of the tiny vocabulary: start token, tokens, end token, then padding (id 0,
    mask 0), of three lengths; the last fills the context. Stored in reference.json."""
    ctx, bos, eos = TEXT["max_position_embeddings"], TEXT["bos_token_id"], TEXT["eos_token_id"]
    ids = np.zeros((TEXT_BATCH, ctx), dtype=np.int64)
    mask = np.zeros((TEXT_BATCH, ctx), dtype=np.int64)
    for n, length in enumerate((5, 11, ctx)):
        body = [(7 * n + 13 * i + 3) % (bos - 1) + 1 for i in range(length - 2)]
        ids[n, :length] = [bos, *body, eos]
        mask[n, :length] = 1
    return ids, mask


def text_reference(model, torch) -> dict:
    ids, mask = text_input()
    with torch.no_grad():
        out = model.get_text_features(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    embeds = (out.pooler_output if hasattr(out, "pooler_output") else out).numpy()
    print(f"text_embeds {list(embeds.shape)}")
    return {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "text_embeds": shortest(embeds),
        "logit_scale": float(model.logit_scale.detach().numpy()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = ap.parse_args(argv)

    import safetensors
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(SEED)
    config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=PROJECTION_DIM)
    model = CLIPModel(config)
    redraw(model, torch)
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output, safe_serialization=True)

    # The reference comes from the files as written, loaded back the way any user loads them.
    loaded = CLIPModel.from_pretrained(args.output, attn_implementation="eager")
    loaded.eval()
    impl = loaded.config.vision_config._attn_implementation
    if impl != "eager":
        raise SystemExit(f"transformers chose {impl!r} attention; only 'eager' returns the probabilities")
    ref = {
        "seed": SEED,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "attention": impl,
        "vision": reference_outputs(loaded, torch, VISION["image_size"]),
        "text": text_reference(loaded, torch),
    }
    path = args.output / "reference.json"
    path.write_text(json.dumps(ref, indent=1) + "\n")
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e3:.0f} kB" for p in sorted(args.output.iterdir()))
    print(f"wrote {args.output}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
