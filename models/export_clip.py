#!/usr/bin/env python3
"""Export a CLIP vision tower to ONNX without torch.

The ONNX graph is built node by node with ``onnx.helper`` from the checkpoint's
state dict (Hugging Face ``CLIPVisionModelWithProjection`` parameter names), with
exactly the semantics of transformers' CLIP vision model (eager attention):

    conv patchify (stride = patch, no bias) -> prepend class token -> + position
    embeddings -> pre_layrnorm -> L pre-LN encoder layers -> post_layernorm of the
    class token -> visual projection (no bias)

Nothing reads the last layer's patch tokens, so that layer computes the class token's row
alone (its query, attention row, output projection and MLP; keys and values of every
token): the same values, 1/12 fewer operations for ViT-B/32.

Model contract (docs/tables.md, "The model contract", says the same for readers of the tables):

    input   pixel_values      float32 [N, 3, H, W]      (N dynamic)
    outputs image_embeds      float32 [N, D]            projected, not normalised
            last_attention    float32 [N, heads, 1, T]  softmax probabilities of the class
                                                        token's query, last layer
            layer_cls_states  float32 [N, L+1, hidden]  class-token state of every
                                                        hidden_states entry (0 = after
                                                        pre_layrnorm, then each layer)

and, unless --no-text, the text tower (``CLIPTextModelWithProjection``) as ``text_model.onnx``:

    inputs  input_ids         int64 [N, S]              S <= context length (77); padded
            attention_mask    int64 [N, S]              1 for tokens, 0 for padding
    output  text_embeds       float32 [N, D]            projected, not normalised

with CLIP's tokenizer as ``tokenizer.json`` (truncating and padding to the context length;
a caller may cut the padding after the longest prompt's end token, which changes nothing),

the head after the last block as ``head.safetensors`` (post_layernorm and
visual_projection in transformers' names and layout, with model.onnx's sha256 in its
metadata: the SAE stage maps class-token states h to embeddings with it),

plus a sidecar ``model.json`` that the Rust encoder reads (its ``text`` section and
``logit_scale`` describe the text tower, its ``head`` section the head file).

Usage:
    export_clip.py --output DIR [--checkpoint REPO_ID_OR_LOCAL_DIR] [--revision REV]
    export_clip.py --output DIR --random-init {tiny,vit-b-32} [--seed S]
    common options: [--name NAME] [--verify] [--quantize int8] [--fp16]

--checkpoint defaults to openai/clip-vit-base-patch32. A Hub checkpoint needs network
access once (model.safetensors, config.json and preprocessor_config.json through
huggingface_hub); a local directory in the same layout and random-init models need none.
--verify compares the export with transformers and needs torch; without it the export
is still tested against transformers' stored outputs of a tiny checkpoint (see
models/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from checkpoint_files import hf_download, read_safetensors, read_torch_bin, safetensors_keys

OPSET = 17
DEFAULT_CHECKPOINT = "openai/clip-vit-base-patch32"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SUPPORTED_ACTS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh")
# protobuf cannot serialise a single message over 2 GiB; above this the weights go
# to an external data file next to model.onnx.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


@dataclass
class VisionConfig:
    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    projection_dim: int = 512
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_positions(self) -> int:
        return self.grid * self.grid + 1

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        if self.image_size % self.patch_size:
            raise SystemExit(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_attention_heads:
            raise SystemExit(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in SUPPORTED_ACTS:
            raise SystemExit(f"unsupported hidden_act {self.hidden_act!r}; supported: {', '.join(SUPPORTED_ACTS)}")


@dataclass
class TextConfig:
    """transformers' CLIPTextConfig fields the graph needs (defaults: ViT-B/32's text tower)."""
    vocab_size: int = 49408
    max_position_embeddings: int = 77
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    projection_dim: int = 512
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    # transformers pools at the first eos_token_id, or at the largest id (the legacy
    # rule, which the OpenAI checkpoints' config selects with eos_token_id = 2).
    eos_token_id: int = 2

    def validate(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise SystemExit(f"text hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in SUPPORTED_ACTS:
            raise SystemExit(f"unsupported text hidden_act {self.hidden_act!r}; supported: {', '.join(SUPPORTED_ACTS)}")


PRESETS = {
    "tiny": VisionConfig(image_size=224, patch_size=32, hidden_size=64, intermediate_size=256,
                         num_hidden_layers=2, num_attention_heads=4, projection_dim=32),
    "vit-b-32": VisionConfig(),
}
# The tiny text tower keeps the real vocabulary (49,408 x 16 token embeddings, 3 MB) so the
# real tokenizer drives it; everything else is toy-sized.
TEXT_PRESETS = {
    "tiny": TextConfig(hidden_size=16, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       projection_dim=32, eos_token_id=49407),
    "vit-b-32": TextConfig(eos_token_id=49407),
}
CLIP_VOCAB_SIZE = 49408
# CLIP's initial temperature, log(1 / 0.07), as transformers initialises logit_scale.
RANDOM_LOGIT_SCALE = math.log(1 / 0.07)


# --------------------------------------------------------------------------------------
# weights


def random_weights(cfg: VisionConfig, seed: int) -> dict[str, np.ndarray]:
    """Random weights with HF parameter names, drawn from numpy's default_rng(seed).

    Scales keep activations O(1) so attention is not uniform (a useful test model):
    linear weights N(0, fan_in^-1/2), conv N(0, (3*p*p)^-1/2), class/position
    embeddings N(0, 0.02 ... hidden^-1/2), biases N(0, 0.02). LayerNorm weights are
    1 + N(0, 0.1) and biases N(0, 0.02) rather than exactly 1/0 so that a swapped or
    missing LayerNorm parameter shows up in verification.
    """
    rng = np.random.default_rng(seed)
    h, m, p, c = cfg.hidden_size, cfg.intermediate_size, cfg.patch_size, cfg.num_channels

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def ln(prefix: str, out: dict) -> None:
        out[prefix + ".weight"] = (1.0 + rng.standard_normal(h) * 0.1).astype(np.float32)
        out[prefix + ".bias"] = normal(h, 0.02)

    def linear(prefix: str, n_out: int, n_in: int, out: dict) -> None:
        out[prefix + ".weight"] = normal((n_out, n_in), n_in ** -0.5)
        out[prefix + ".bias"] = normal(n_out, 0.02)

    w: dict[str, np.ndarray] = {}
    e = "vision_model.embeddings."
    w[e + "patch_embedding.weight"] = normal((h, c, p, p), (c * p * p) ** -0.5)
    w[e + "class_embedding"] = normal(h, h ** -0.5)
    w[e + "position_embedding.weight"] = normal((cfg.num_positions, h), 0.02 * 5)
    ln("vision_model.pre_layrnorm", w)
    for i in range(cfg.num_hidden_layers):
        pre = f"vision_model.encoder.layers.{i}."
        ln(pre + "layer_norm1", w)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(pre + "self_attn." + proj, h, h, w)
        ln(pre + "layer_norm2", w)
        linear(pre + "mlp.fc1", m, h, w)
        linear(pre + "mlp.fc2", h, m, w)
    ln("vision_model.post_layernorm", w)
    w["visual_projection.weight"] = normal((cfg.projection_dim, h), h ** -0.5)
    return w


def required_names(cfg: VisionConfig) -> list[str]:
    names = [
        "vision_model.embeddings.patch_embedding.weight",
        "vision_model.embeddings.class_embedding",
        "vision_model.embeddings.position_embedding.weight",
        "vision_model.pre_layrnorm.weight", "vision_model.pre_layrnorm.bias",
    ]
    for i in range(cfg.num_hidden_layers):
        pre = f"vision_model.encoder.layers.{i}."
        for mod in ("layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                    "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2"):
            names += [pre + mod + ".weight", pre + mod + ".bias"]
    names += ["vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
              "visual_projection.weight"]
    return names


def check_shapes(cfg: VisionConfig, w: dict[str, np.ndarray]) -> None:
    h, m, p, c = cfg.hidden_size, cfg.intermediate_size, cfg.patch_size, cfg.num_channels
    expect = {
        "vision_model.embeddings.patch_embedding.weight": (h, c, p, p),
        "vision_model.embeddings.class_embedding": (h,),
        "vision_model.embeddings.position_embedding.weight": (cfg.num_positions, h),
        "visual_projection.weight": (cfg.projection_dim, h),
    }
    for i in range(cfg.num_hidden_layers):
        pre = f"vision_model.encoder.layers.{i}."
        expect[pre + "mlp.fc1.weight"] = (m, h)
        expect[pre + "mlp.fc2.weight"] = (h, m)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            expect[pre + "self_attn." + proj + ".weight"] = (h, h)
    for name, shape in expect.items():
        if tuple(w[name].shape) != shape:
            raise SystemExit(f"{name}: shape {tuple(w[name].shape)} does not match the config ({shape})")


def random_text_weights(cfg: TextConfig, seed: int) -> dict[str, np.ndarray]:
    """Random text-tower weights with HF parameter names, on their own stream of `seed`
    (so adding the text tower left every vision weight as it was), scaled as
    `random_weights` scales the vision tower's."""
    rng = np.random.default_rng([seed, 1])
    h, m = cfg.hidden_size, cfg.intermediate_size

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w: dict[str, np.ndarray] = {}

    def ln(prefix: str) -> None:
        w[prefix + ".weight"] = (1.0 + rng.standard_normal(h) * 0.1).astype(np.float32)
        w[prefix + ".bias"] = normal(h, 0.02)

    def lin(prefix: str, n_out: int, n_in: int) -> None:
        w[prefix + ".weight"] = normal((n_out, n_in), n_in ** -0.5)
        w[prefix + ".bias"] = normal(n_out, 0.02)

    e = "text_model.embeddings."
    w[e + "token_embedding.weight"] = normal((cfg.vocab_size, h), 0.1 * 5)
    w[e + "position_embedding.weight"] = normal((cfg.max_position_embeddings, h), 0.02 * 5)
    for i in range(cfg.num_hidden_layers):
        pre = f"text_model.encoder.layers.{i}."
        ln(pre + "layer_norm1")
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            lin(pre + "self_attn." + proj, h, h)
        ln(pre + "layer_norm2")
        lin(pre + "mlp.fc1", m, h)
        lin(pre + "mlp.fc2", h, m)
    ln("text_model.final_layer_norm")
    w["text_projection.weight"] = normal((cfg.projection_dim, h), h ** -0.5)
    return w


def required_text_names(cfg: TextConfig) -> list[str]:
    names = ["text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight"]
    for i in range(cfg.num_hidden_layers):
        pre = f"text_model.encoder.layers.{i}."
        for mod in ("layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                    "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2"):
            names += [pre + mod + ".weight", pre + mod + ".bias"]
    return names + ["text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias",
                    "text_projection.weight"]


def check_text_shapes(cfg: TextConfig, w: dict[str, np.ndarray]) -> None:
    h, m = cfg.hidden_size, cfg.intermediate_size
    expect = {
        "text_model.embeddings.token_embedding.weight": (cfg.vocab_size, h),
        "text_model.embeddings.position_embedding.weight": (cfg.max_position_embeddings, h),
        "text_projection.weight": (cfg.projection_dim, h),
    }
    for i in range(cfg.num_hidden_layers):
        pre = f"text_model.encoder.layers.{i}."
        expect[pre + "mlp.fc1.weight"] = (m, h)
        expect[pre + "mlp.fc2.weight"] = (h, m)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            expect[pre + "self_attn." + proj + ".weight"] = (h, h)
    for name, shape in expect.items():
        if tuple(w[name].shape) != shape:
            raise SystemExit(f"{name}: shape {tuple(w[name].shape)} does not match the text config ({shape})")


# --------------------------------------------------------------------------------------
# tokenizer


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which CLIP's BPE vocabulary is written in."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def open_clip_bpe() -> Path:
    """CLIP's BPE merges as open_clip ships them (`pip install --no-deps open_clip_torch`),
    found without importing open_clip (which imports torch)."""
    import importlib.util
    spec = importlib.util.find_spec("open_clip")
    path = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz" if spec else None
    if path is None or not path.exists():
        raise SystemExit("error: CLIP's BPE vocabulary (open_clip/bpe_simple_vocab_16e6.txt.gz) is not installed; "
                         "`cargo xtask export-model` installs it (pip install --no-deps open_clip_torch)")
    return path


def clip_tokenizer_json(bpe_gz: Path, context_length: int) -> dict:
    """CLIP's tokenizer in the Hugging Face `tokenizers` format, built from the BPE merges
    the way open_clip's SimpleTokenizer builds its vocabulary, with transformers'
    CLIPTokenizer pipeline (NFC, whitespace runs to one space, lowercase; CLIP's split
    pattern; byte-level BPE with `</w>` word ends; <|startoftext|> ... <|endoftext|>),
    truncation to `context_length` and padding with <|endoftext|> to it. The fixture
    script checks it tokenises as transformers does."""
    import gzip
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = {t: i for i, t in enumerate(vocab)}
    bos, eos = ids["<|startoftext|>"], ids["<|endoftext|>"]

    def special(token: str) -> dict:
        return {"id": ids[token], "content": token, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    return {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": context_length, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": context_length}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": eos, "pad_type_id": 0, "pad_token": "<|endoftext|>"},
        "added_tokens": [special("<|startoftext|>"), special("<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d"
                                                   "|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", eos], "cls": ["<|startoftext|>", bos],
                           "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
                  "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": ids, "merges": [list(m) for m in merges]},
    }


def fixed_length(tokenizer: dict, context_length: int, pad_token: str) -> dict:
    """A checkpoint's tokenizer.json set to truncate and pad to the context length, as
    transformers' `padding="max_length", truncation=True` does."""
    ids = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
    ids.update(tokenizer["model"]["vocab"])
    if pad_token not in ids:
        raise SystemExit(f"error: tokenizer.json has no pad token {pad_token!r}")
    return dict(tokenizer,
                truncation={"direction": "Right", "max_length": context_length, "strategy": "LongestFirst",
                            "stride": 0},
                padding={"strategy": {"Fixed": context_length}, "direction": "Right", "pad_to_multiple_of": None,
                         "pad_id": ids[pad_token], "pad_type_id": 0, "pad_token": pad_token})


# --------------------------------------------------------------------------------------
# checkpoint


@dataclass
class TextTower:
    cfg: TextConfig
    weights: dict
    logit_scale: float  # the checkpoint's parameter: log of the multiplier of the cosine logits
    tokenizer: dict | None  # tokenizer.json's content


def text_config_of(config: dict) -> TextConfig | None:
    tc = config.get("text_config")
    if not tc:
        return None
    d = TextConfig()
    cfg = TextConfig(
        vocab_size=int(tc.get("vocab_size", d.vocab_size)),
        max_position_embeddings=int(tc.get("max_position_embeddings", d.max_position_embeddings)),
        hidden_size=int(tc.get("hidden_size", d.hidden_size)),
        intermediate_size=int(tc.get("intermediate_size", d.intermediate_size)),
        num_hidden_layers=int(tc.get("num_hidden_layers", d.num_hidden_layers)),
        num_attention_heads=int(tc.get("num_attention_heads", d.num_attention_heads)),
        projection_dim=int(config.get("projection_dim", tc.get("projection_dim", d.projection_dim))),
        hidden_act=str(tc.get("hidden_act", d.hidden_act)),
        layer_norm_eps=float(tc.get("layer_norm_eps", d.layer_norm_eps)),
        eos_token_id=int(tc.get("eos_token_id", d.eos_token_id)),
    )
    cfg.validate()
    return cfg


def load_checkpoint(repo: str, revision: str | None):
    """Return (VisionConfig, weights, mean, std, image_size, TextTower or None) for a Hub
    checkpoint or a local dir. The text tower is exported when the checkpoint has its
    config and weights; its tokenizer is the checkpoint's tokenizer.json, or CLIP's BPE
    vocabulary when it has none."""
    local = Path(repo)
    if local.is_dir():
        def get(fn, missing_ok=False):
            path = local / fn
            if not path.exists():
                if missing_ok:
                    return None
                raise SystemExit(f"error: {path} not found")
            return path
    else:
        def get(fn, missing_ok=False):
            return hf_download(repo, fn, revision, missing_ok=missing_ok)

    config = json.loads(get("config.json").read_text())
    vc = config.get("vision_config", config) or {}
    defaults = VisionConfig()
    cfg = VisionConfig(
        image_size=int(vc.get("image_size", defaults.image_size)),
        patch_size=int(vc.get("patch_size", defaults.patch_size)),
        num_channels=int(vc.get("num_channels", defaults.num_channels)),
        hidden_size=int(vc.get("hidden_size", defaults.hidden_size)),
        intermediate_size=int(vc.get("intermediate_size", defaults.intermediate_size)),
        num_hidden_layers=int(vc.get("num_hidden_layers", defaults.num_hidden_layers)),
        num_attention_heads=int(vc.get("num_attention_heads", defaults.num_attention_heads)),
        projection_dim=int(config.get("projection_dim", vc.get("projection_dim", defaults.projection_dim))),
        hidden_act=str(vc.get("hidden_act", defaults.hidden_act)),
        layer_norm_eps=float(vc.get("layer_norm_eps", defaults.layer_norm_eps)),
    )
    cfg.validate()

    mean, std, image_size = CLIP_MEAN, CLIP_STD, cfg.image_size
    pre_path = get("preprocessor_config.json", missing_ok=True)
    if pre_path is not None:
        pre = json.loads(pre_path.read_text())
    else:
        print("warning: no preprocessor_config.json; using CLIP's mean/std and the model's image_size",
              file=sys.stderr)
        pre = {}
    mean = [float(x) for x in pre.get("image_mean", mean)]
    std = [float(x) for x in pre.get("image_std", std)]
    crop = pre.get("crop_size", pre.get("size"))
    if isinstance(crop, dict):
        crop = crop.get("height", crop.get("shortest_edge"))
    if crop is not None and int(crop) != cfg.image_size:
        print(f"warning: preprocessor crop size {crop} differs from the model's image_size "
              f"{cfg.image_size}; the model's is used", file=sys.stderr)

    tcfg = text_config_of(config)
    wanted = required_names(cfg)
    st_path = get("model.safetensors", missing_ok=True)
    if st_path is not None:
        wpath, keys = st_path, safetensors_keys(st_path)
    else:
        # older repos have only pytorch_model.bin: read it without torch
        wpath = get("pytorch_model.bin")
        print(f"note: no model.safetensors; reading {wpath.name} (torch zip format) without torch",
              file=sys.stderr)
        all_tensors = read_torch_bin(wpath)
        keys = list(all_tensors)
    # find the prefix in front of "vision_model." (e.g. "" or "clip.")
    prefix = next((k[: -len("vision_model.embeddings.class_embedding")] for k in keys
                   if k.endswith("vision_model.embeddings.class_embedding")), None)
    if prefix is None:
        raise SystemExit(f"{wpath}: no vision_model.* tensors; is this a CLIP checkpoint?")
    missing = [prefix + n for n in wanted if prefix + n not in keys]
    if missing:
        raise SystemExit(f"{wpath}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    vision_names = wanted
    if tcfg is not None:
        text_names = required_text_names(tcfg) + ["logit_scale"]
        if all(prefix + n in keys for n in text_names):
            wanted = wanted + text_names
        else:
            print(f"note: {wpath.name} has no complete text tower; exporting the vision tower only", file=sys.stderr)
            tcfg = None
    if st_path is not None:
        try:
            from safetensors import safe_open
            with safe_open(str(st_path), framework="numpy") as f:
                weights = {n: np.asarray(f.get_tensor(prefix + n), dtype=np.float32) for n in wanted}
        except Exception as exc:  # e.g. bfloat16, which numpy lacks; or safetensors not installed
            print(f"note: safetensors could not read {st_path.name} as numpy ({exc}); using the built-in reader",
                  file=sys.stderr)
            got = read_safetensors(st_path, [prefix + n for n in wanted])
            weights = {n: got[prefix + n] for n in wanted}
    else:
        weights = {n: np.asarray(all_tensors[prefix + n], dtype=np.float32) for n in wanted}
    text = None
    if tcfg is not None:
        text_weights = {n: weights.pop(n) for n in list(weights) if n not in vision_names}
        logit_scale = float(np.asarray(text_weights.pop("logit_scale")).reshape(()))
        check_text_shapes(tcfg, text_weights)
        tok_path = get("tokenizer.json", missing_ok=True)
        if tok_path is not None:
            tokenizer = json.loads(tok_path.read_text())
            conf_path = get("tokenizer_config.json", missing_ok=True)
            pad = json.loads(conf_path.read_text()).get("pad_token") if conf_path is not None else None
            tokenizer = fixed_length(tokenizer, tcfg.max_position_embeddings, pad or "<|endoftext|>")
        elif tcfg.vocab_size < CLIP_VOCAB_SIZE:
            tokenizer = None
        else:
            print("note: no tokenizer.json; using CLIP's BPE vocabulary", file=sys.stderr)
            tokenizer = clip_tokenizer_json(open_clip_bpe(), tcfg.max_position_embeddings)
        size = len(tokenizer["model"]["vocab"]) if tokenizer is not None else CLIP_VOCAB_SIZE
        if size > tcfg.vocab_size:
            print(f"warning: the tokenizer's {size} tokens do not fit the text tower's {tcfg.vocab_size} "
                  "(a test checkpoint?); "
                  "no tokenizer is written (the text tower takes token ids only)", file=sys.stderr)
            tokenizer = None
        text = TextTower(tcfg, text_weights, logit_scale, tokenizer)
    check_shapes(cfg, weights)
    return cfg, weights, mean, std, image_size, text


# --------------------------------------------------------------------------------------
# graph


class GraphBuilder:
    def __init__(self):
        from onnx import helper, numpy_helper
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes = []
        self.initializers = []
        self._names: set[str] = set()
        self._count = 0

    def init(self, name: str, array: np.ndarray) -> str:
        assert name not in self._names, name
        self._names.add(name)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def const_i64(self, name: str, values) -> str:
        return self.init(name, np.asarray(values, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], name: str | None = None, outputs: int = 1, **attrs):
        self._count += 1
        base = name or f"{op_type.lower()}_{self._count}"
        outs = [base] if outputs == 1 else [f"{base}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outs, name=f"n_{base}", **attrs))
        return outs[0] if outputs == 1 else outs


def layer_norm(g: GraphBuilder, w: dict, x: str, prefix: str, eps: float, out: str | None = None) -> str:
    s = g.init(prefix + ".weight", w[prefix + ".weight"])
    b = g.init(prefix + ".bias", w[prefix + ".bias"])
    return g.op("LayerNormalization", [x, s, b], name=out, axis=-1, epsilon=eps)


def linear(g: GraphBuilder, w: dict, x: str, prefix: str, bias: bool = True) -> str:
    wt = g.init(prefix + ".weight_t", w[prefix + ".weight"].T)  # [in, out]
    y = g.op("MatMul", [x, wt])
    if bias:
        y = g.op("Add", [y, g.init(prefix + ".bias", w[prefix + ".bias"])])
    return y


def encoder_layer(g: GraphBuilder, w: dict, h: str, pre: str, i: int, eps: float, act: str,
                  allowed: str | None = None, class_token_only: bool = False) -> tuple[str, str]:
    """One pre-LN CLIP encoder layer (eager attention) on [N, T, H]; returns (hidden, probs).

    `allowed` (bool, broadcastable to [N, heads, T, T]) masks the attention scores
    (the text tower's causal and padding mask), as transformers' additive mask of the
    dtype's minimum does. With `class_token_only`, only the class token's row is
    computed: hidden [N, 1, H], probs [N, heads, 1, T] (keys and values of every token).
    """
    x = layer_norm(g, w, h, pre + "layer_norm1", eps)
    queries = x
    if class_token_only:
        h = g.op("Slice", [h, "slice_start", "slice_end", "axes_1"])              # [N, 1, H]
        queries = g.op("Slice", [x, "slice_start", "slice_end", "axes_1"])
    q = g.op("Mul", [linear(g, w, queries, pre + "self_attn.q_proj"), "attn_scale"])
    k = linear(g, w, x, pre + "self_attn.k_proj")
    v = linear(g, w, x, pre + "self_attn.v_proj")
    q = g.op("Transpose", [g.op("Reshape", [q, "sh_heads"])], perm=[0, 2, 1, 3])  # [N, nh, T, hd]
    kt = g.op("Transpose", [g.op("Reshape", [k, "sh_heads"])], perm=[0, 2, 3, 1])  # [N, nh, hd, T]
    v = g.op("Transpose", [g.op("Reshape", [v, "sh_heads"])], perm=[0, 2, 1, 3])  # [N, nh, T, hd]
    scores = g.op("MatMul", [q, kt], name=f"attn_scores_{i}")
    if allowed is not None:
        scores = g.op("Where", [allowed, scores, "mask_value"], name=f"attn_masked_{i}")
    probs = g.op("Softmax", [scores], name=f"attn_probs_{i}", axis=-1)
    ctx = g.op("MatMul", [probs, v])
    ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), "sh_merge"])
    h = g.op("Add", [h, linear(g, w, ctx, pre + "self_attn.out_proj")], name=f"attn_residual_{i}")
    x = layer_norm(g, w, h, pre + "layer_norm2", eps)
    x = linear(g, w, x, pre + "mlp.fc1")
    x = activation(g, x, act, f"act_{i}")
    x = linear(g, w, x, pre + "mlp.fc2")
    return g.op("Add", [h, x], name=f"hidden_{i + 1}"), probs


def attention_constants(g: GraphBuilder, hidden: int, heads: int) -> None:
    g.const_i64("sh_heads", [0, 0, heads, hidden // heads])  # [N, T, heads, hd]
    g.const_i64("sh_merge", [0, 0, hidden])                 # [N, T, H]


def finish_model(g: GraphBuilder, graph_name: str, inputs: list, outputs: list):
    from onnx import helper
    graph = helper.make_graph(g.nodes, graph_name, inputs, outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="clipshift-export_clip", producer_version="1")
    model.ir_version = 8  # opset 17 <-> IR 8; readable by every onnxruntime >= 1.14
    return model


def build_graph(cfg: VisionConfig, w: dict[str, np.ndarray], graph_name: str):
    from onnx import TensorProto, helper

    cfg.validate()
    check_shapes(cfg, w)
    g = GraphBuilder()
    H, T, Lyr, nh, hd = cfg.hidden_size, cfg.num_positions, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim
    eps = float(cfg.layer_norm_eps)

    # shared constants
    g.const_i64("idx_0", 0)
    g.const_i64("sh_tokens", [0, H, -1])          # [N, H, g*g]
    attention_constants(g, H, nh)
    g.const_i64("sh_cls_tail", [1, H])
    g.const_i64("slice_start", [0])
    g.const_i64("slice_end", [1])
    g.init("attn_scale", np.asarray(hd ** -0.5, dtype=np.float32))

    # embeddings
    e = "vision_model.embeddings."
    pw = g.init(e + "patch_embedding.weight", w[e + "patch_embedding.weight"])
    conv = g.op("Conv", ["pixel_values", pw], name="patch_conv",
                kernel_shape=[cfg.patch_size, cfg.patch_size], strides=[cfg.patch_size, cfg.patch_size])
    tokens = g.op("Reshape", [conv, "sh_tokens"])
    patches = g.op("Transpose", [tokens], name="patch_embeds", perm=[0, 2, 1])          # [N, P, H]
    shape = g.op("Shape", ["pixel_values"])
    n = g.op("Slice", [shape, "slice_start", "slice_end"], name="batch_dim")            # [1]
    cls_shape = g.op("Concat", [n, "sh_cls_tail"], axis=0)                              # [N, 1, H]
    cls_e = g.init(e + "class_embedding", w[e + "class_embedding"].reshape(1, 1, H))
    cls = g.op("Expand", [cls_e, cls_shape], name="class_tokens")
    emb = g.op("Concat", [cls, patches], name="tokens", axis=1)                         # [N, T, H]
    pos = g.init(e + "position_embedding.weight", w[e + "position_embedding.weight"])
    emb = g.op("Add", [emb, pos], name="embeddings")
    h = layer_norm(g, w, emb, "vision_model.pre_layrnorm", eps, out="hidden_0")

    def cls_of(x: str, i: int) -> str:
        c = g.op("Gather", [x, "idx_0"], axis=1)                                        # [N, H]
        return g.op("Unsqueeze", [c, "axes_1"], name=f"cls_state_{i}")                  # [N, 1, H]

    g.const_i64("axes_1", [1])
    cls_states = [cls_of(h, 0)]
    probs = None
    for i in range(Lyr):
        h, probs = encoder_layer(g, w, h, f"vision_model.encoder.layers.{i}.", i, eps, cfg.hidden_act,
                                 class_token_only=i == Lyr - 1)
        cls_states.append(cls_of(h, i + 1))

    pooled = g.op("Gather", [h, "idx_0"], name="cls_last", axis=1)
    pooled = layer_norm(g, w, pooled, "vision_model.post_layernorm", eps, out="pooled")
    wproj = g.init("visual_projection.weight_t", w["visual_projection.weight"].T)
    g.op("MatMul", [pooled, wproj], name="image_embeds")
    g.op("Identity", [probs], name="last_attention")
    g.op("Concat", cls_states, name="layer_cls_states", axis=1)

    N = "N"
    inputs = [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                            [N, cfg.num_channels, cfg.image_size, cfg.image_size])]
    outputs = [
        helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [N, cfg.projection_dim]),
        helper.make_tensor_value_info("last_attention", TensorProto.FLOAT, [N, nh, 1, T]),
        helper.make_tensor_value_info("layer_cls_states", TensorProto.FLOAT, [N, Lyr + 1, H]),
    ]
    return finish_model(g, graph_name, inputs, outputs)


def build_text_graph(cfg: TextConfig, w: dict[str, np.ndarray], graph_name: str):
    """transformers' CLIPTextModelWithProjection (eager attention): token + position
    embeddings -> L pre-LN layers under the causal and padding mask -> final_layer_norm
    -> the state at the pooled position -> text projection (no bias)."""
    from onnx import TensorProto, helper

    cfg.validate()
    check_text_shapes(cfg, w)
    g = GraphBuilder()
    H, P, nh = cfg.hidden_size, cfg.max_position_embeddings, cfg.num_attention_heads
    eps = float(cfg.layer_norm_eps)
    attention_constants(g, H, nh)
    g.init("attn_scale", np.asarray((H // nh) ** -0.5, dtype=np.float32))
    g.init("mask_value", np.asarray(np.finfo(np.float32).min, dtype=np.float32))
    g.const_i64("zero", [0])
    g.const_i64("one", [1])
    g.const_i64("two", [2])
    g.const_i64("axes_01", [0, 1])
    g.const_i64("axes_12", [1, 2])

    e = "text_model.embeddings."
    tok = g.op("Gather", [g.init(e + "token_embedding.weight", w[e + "token_embedding.weight"]), "input_ids"],
               name="token_embeds", axis=0)                                             # [N, S, H]
    seq = g.op("Slice", [g.op("Shape", ["input_ids"]), "one", "two"], name="seq_len")  # [1]
    pos = g.op("Slice", [g.init(e + "position_embedding.weight", w[e + "position_embedding.weight"]),
                         "zero", seq], name="position_embeds")                          # [S, H]
    h = g.op("Add", [tok, pos], name="hidden_0")

    causal = g.init("causal_mask", np.tril(np.ones((P, P), dtype=bool)))
    causal = g.op("Slice", [causal, g.op("Concat", ["zero", "zero"], axis=0), g.op("Concat", [seq, seq], axis=0),
                            "axes_01"], name="causal")                                  # [S, S]
    keys = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), "axes_12"])  # [N, 1, 1, S]
    allowed = g.op("And", [causal, keys], name="allowed")                               # [N, 1, S, S]
    for i in range(cfg.num_hidden_layers):
        h, _ = encoder_layer(g, w, h, f"text_model.encoder.layers.{i}.", i, eps, cfg.hidden_act, allowed)
    h = layer_norm(g, w, h, "text_model.final_layer_norm", eps, out="last_hidden")

    if cfg.eos_token_id == 2:  # legacy: the largest id (<|endoftext|> in CLIP's vocabulary); first on ties
        key = g.op("Cast", ["input_ids"], to=TensorProto.FLOAT)
    else:
        eos = g.const_i64("eos_token_id", cfg.eos_token_id)
        key = g.op("Cast", [g.op("Equal", ["input_ids", eos])], to=TensorProto.FLOAT)
    at = g.op("ArgMax", [key], name="pooled_position", axis=1, keepdims=1)               # [N, 1]
    pooled = g.op("GatherND", [h, at], name="pooled", batch_dims=1)                     # [N, H]
    g.op("MatMul", [pooled, g.init("text_projection.weight_t", w["text_projection.weight"].T)], name="text_embeds")

    # The sequence length may be shorter than the context: with the causal mask and pooling
    # at the end token, the positions after it change nothing, so a caller may cut them.
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["N", "S"])
              for name in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", cfg.projection_dim])]
    return finish_model(g, graph_name + "-text", inputs, outputs)


def activation(g: GraphBuilder, x: str, act: str, name: str) -> str:
    if act == "quick_gelu":  # x * sigmoid(1.702 x)
        c = g.init(name + "_c", np.asarray(1.702, dtype=np.float32))
        return g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [x, c])])], name=name)
    if act == "gelu":  # exact: 0.5 x (1 + erf(x / sqrt 2))
        inv = g.init(name + "_inv_sqrt2", np.asarray(1.0 / math.sqrt(2.0), dtype=np.float32))
        one = g.init(name + "_one", np.asarray(1.0, dtype=np.float32))
        half = g.init(name + "_half", np.asarray(0.5, dtype=np.float32))
        erf = g.op("Erf", [g.op("Mul", [x, inv])])
        return g.op("Mul", [g.op("Mul", [x, half]), g.op("Add", [erf, one])], name=name)
    if act in ("gelu_new", "gelu_pytorch_tanh"):  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        a = g.init(name + "_a", np.asarray(math.sqrt(2.0 / math.pi), dtype=np.float32))
        b = g.init(name + "_b", np.asarray(0.044715, dtype=np.float32))
        one = g.init(name + "_one", np.asarray(1.0, dtype=np.float32))
        half = g.init(name + "_half", np.asarray(0.5, dtype=np.float32))
        x3 = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [x3, b])]), a])
        return g.op("Mul", [g.op("Mul", [x, half]), g.op("Add", [g.op("Tanh", [inner]), one])], name=name)
    raise SystemExit(f"unsupported hidden_act {act!r}")


# --------------------------------------------------------------------------------------
# output


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model, path: Path) -> None:
    import onnx
    size = sum(t.ByteSize() for t in model.graph.initializer)
    path.parent.mkdir(parents=True, exist_ok=True)
    if size > EXTERNAL_DATA_THRESHOLD:
        data = path.name + ".data"
        print(f"weights are {size / 1e9:.2f} GB: storing them in {data} next to {path.name}", file=sys.stderr)
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    onnx.checker.check_model(str(path))


def sidecar(cfg: VisionConfig, *, name: str, source: str, random_init: bool, seed, onnx_name: str,
            sha: str, mean, std, image_size: int) -> dict:
    return {
        "name": name,
        "source": source,
        "random_init": random_init,
        "seed": seed,
        "onnx": onnx_name,
        "sha256": sha,
        "image_size": int(image_size),
        "patch_size": cfg.patch_size,
        "mean": [float(x) for x in mean],
        "std": [float(x) for x in std],
        "resize_policy": "paper",
        "embedding_dim": cfg.projection_dim,
        "hidden_size": cfg.hidden_size,
        "num_layers": cfg.num_hidden_layers,
        "num_heads": cfg.num_attention_heads,
        "outputs": {
            "image_embeds": "image_embeds",
            "last_attention": "last_attention",
            "layer_cls_states": "layer_cls_states",
        },
    }


def text_sidecar(text: TextTower, *, onnx_name: str, sha: str, tokenizer_name: str | None,
                 tokenizer_sha: str | None) -> dict:
    c = text.cfg
    return {
        "onnx": onnx_name,
        "sha256": sha,
        "tokenizer": tokenizer_name,
        "tokenizer_sha256": tokenizer_sha,
        "context_length": c.max_position_embeddings,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_layers": c.num_hidden_layers,
        "num_heads": c.num_attention_heads,
        "embedding_dim": c.projection_dim,
        "outputs": {"text_embeds": "text_embeds"},
    }


def write_head(cfg: VisionConfig, w: dict[str, np.ndarray], path: Path, model_sha: str) -> dict:
    """The head after the last block, for analyses of the class-token state h (the SAE
    stage): e(h) = visual_projection(post_layernorm(h)), in transformers' names and layout
    (`visual_projection.weight` is [projection_dim, hidden_size]). The metadata names the
    model.onnx it belongs to."""
    from safetensors.numpy import save_file
    names = ["vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias", "visual_projection.weight"]
    tensors = {n: np.ascontiguousarray(w[n], dtype=np.float32) for n in names}
    eps = float(cfg.layer_norm_eps)
    save_file(tensors, str(path), metadata={"model_sha256": model_sha, "layer_norm_eps": repr(eps)})
    # model_sha256 stays that of model.onnx in the int8 and float16 copies' sidecars.
    return {"file": path.name, "sha256": sha256_of(path), "layer_norm_eps": eps, "model_sha256": model_sha}


def head_check(path: Path, head: Path, cfg: VisionConfig) -> None:
    """The exported head applied to the graph's last class-token state gives its image_embeds."""
    from safetensors.numpy import load_file
    t = load_file(str(head))
    eps = float(cfg.layer_norm_eps)
    x = np.random.default_rng(99).standard_normal(
        (2, cfg.num_channels, cfg.image_size, cfg.image_size)).astype(np.float32)
    out = run_onnx(path, x)
    h = out["layer_cls_states"][:, -1, :].astype(np.float64)
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    ln = (h - mu) / np.sqrt(var + eps) * t["vision_model.post_layernorm.weight"] + t["vision_model.post_layernorm.bias"]
    e = ln @ t["visual_projection.weight"].T.astype(np.float64)
    d = np.abs(e - out["image_embeds"]).max() / np.abs(out["image_embeds"]).max()
    assert d < 1e-4, f"head.safetensors does not reproduce image_embeds (max relative diff {d})"
    print(f"head check passed: {head} reproduces image_embeds from layer_cls_states")


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# checks


def run_onnx(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"pixel_values": x})))


def smoke_test(path: Path, cfg: VisionConfig, batch_tol: float = 1e-4) -> None:
    rng = np.random.default_rng(1234)
    T, L = cfg.num_positions, cfg.num_hidden_layers
    single = None
    for n in (1, 3):
        x = rng.standard_normal((n, cfg.num_channels, cfg.image_size, cfg.image_size)).astype(np.float32)
        if single is not None:
            x[0] = single
        out = run_onnx(path, x)
        assert out["image_embeds"].shape == (n, cfg.projection_dim), out["image_embeds"].shape
        assert out["last_attention"].shape == (n, cfg.num_attention_heads, 1, T), out["last_attention"].shape
        assert out["layer_cls_states"].shape == (n, L + 1, cfg.hidden_size), out["layer_cls_states"].shape
        for k, v in out.items():
            assert np.isfinite(v).all(), f"{k} has non-finite values"
        rowsum = out["last_attention"].sum(-1)
        assert np.allclose(rowsum, 1.0, atol=1e-4), "attention rows do not sum to 1"
        if single is None:
            single, first = x[0].copy(), out
        else:
            d = np.abs(out["image_embeds"][0] - first["image_embeds"][0]).max()
            assert d < batch_tol, f"batch 1 and batch 3 disagree on the same image (max |diff| {d})"
    print(f"onnxruntime smoke test passed (batch 1 and 3): {path}")


def run_text_onnx(path: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(["text_embeds"], {"input_ids": ids, "attention_mask": mask})[0]


def random_token_ids(cfg: TextConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` sequences of different lengths: start token, random tokens, end token, padding."""
    rng = np.random.default_rng(seed)
    P, V = cfg.max_position_embeddings, cfg.vocab_size
    eos = V - 1 if cfg.eos_token_id == 2 else cfg.eos_token_id
    ids = np.full((n, P), eos, dtype=np.int64)
    mask = np.zeros((n, P), dtype=np.int64)
    for i in range(n):
        length = int(rng.integers(2, P + 1))
        ids[i, 0] = V - 2
        ids[i, 1:length - 1] = rng.integers(0, V - 2, length - 2)
        ids[i, length - 1] = eos
        mask[i, :length] = 1
    return ids, mask


def text_smoke_test(path: Path, cfg: TextConfig) -> None:
    ids, mask = random_token_ids(cfg, 3, 1234)
    three = run_text_onnx(path, ids, mask)
    one = run_text_onnx(path, ids[:1], mask[:1])
    assert three.shape == (3, cfg.projection_dim), three.shape
    assert np.isfinite(three).all(), "text_embeds has non-finite values"
    d = np.abs(one[0] - three[0]).max()
    assert d < 1e-4, f"batch 1 and batch 3 disagree on the same text (max |diff| {d})"
    longest = int(mask.sum(axis=1).max())
    cut = run_text_onnx(path, ids[:, :longest], mask[:, :longest])
    d = np.abs(cut - three).max()
    assert d < 1e-4, f"cutting the padding changed the embeddings (max |diff| {d})"
    print(f"onnxruntime smoke test passed (text, batch 1 and 3): {path}")


def import_transformers():
    """torch and the transformers classes --verify needs, or exit saying what to install."""
    try:
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    except Exception as exc:
        raise SystemExit(
            f"error: --verify needs torch and transformers, which are not importable here "
            f"({type(exc).__name__}: {exc}).\n"
            "Install them into this environment with: pip install -r models/fixture-requirements.txt"
        ) from None
    return torch, CLIPVisionConfig, CLIPVisionModelWithProjection


def verify_with_transformers(path: Path, cfg: VisionConfig, w: dict[str, np.ndarray], tol: float = 1e-4) -> None:
    """Compare the exported graph with transformers on the same weights (torch needed).

    The test suite checks the graph against stored transformers outputs of a tiny
    checkpoint without torch; this check covers a real checkpoint's own sizes and activation.
    """
    torch, CLIPVisionConfig, CLIPVisionModelWithProjection = import_transformers()
    hf_cfg = CLIPVisionConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.num_channels,
        hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        projection_dim=cfg.projection_dim, hidden_act=cfg.hidden_act, layer_norm_eps=cfg.layer_norm_eps,
    )
    # eager attention: the only implementation that returns attention probabilities as such
    hf_cfg._attn_implementation = "eager"
    model = CLIPVisionModelWithProjection(hf_cfg)
    model.eval()
    impl = getattr(model.config, "_attn_implementation", "?")
    if impl != "eager":
        print(f"warning: transformers chose {impl!r} attention, not 'eager'", file=sys.stderr)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"verification: state dict mismatch: missing {missing}, unexpected {unexpected}")
    rng = np.random.default_rng(99)
    x = rng.standard_normal((2, cfg.num_channels, cfg.image_size, cfg.image_size)).astype(np.float32)
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(x), output_attentions=True, output_hidden_states=True)
    ref_embeds = ref.image_embeds.numpy()
    ref_attn = ref.attentions[-1].numpy()[:, :, :1]  # the class token's row
    ref_cls = np.stack([hs[:, 0].numpy() for hs in ref.hidden_states], axis=1)
    out = run_onnx(path, x)
    diffs = {
        "image_embeds": float(np.abs(out["image_embeds"] - ref_embeds).max()),
        "last_attention": float(np.abs(out["last_attention"] - ref_attn).max()),
        "layer_cls_states": float(np.abs(out["layer_cls_states"] - ref_cls).max()),
    }
    print("verification against transformers", getattr(sys.modules.get("transformers"), "__version__", "?"),
          "/ torch", torch.__version__, f"({impl} attention, batch 2):")
    for k, d in diffs.items():
        print(f"  max |onnx - transformers| {k}: {d:.3e}")
    bad = {k: d for k, d in diffs.items() if not d <= tol}
    if bad:
        raise SystemExit(f"verification FAILED (tolerance {tol}): {bad}")
    print(f"verification passed (tolerance {tol})")


def verify_text_with_transformers(path: Path, text: TextTower, tol: float = 1e-4) -> None:
    """The text tower against transformers' CLIPTextModelWithProjection on the same weights."""
    torch, _, _ = import_transformers()
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    c = text.cfg
    hf_cfg = CLIPTextConfig(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings, hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, projection_dim=c.projection_dim, hidden_act=c.hidden_act,
        layer_norm_eps=c.layer_norm_eps, eos_token_id=c.eos_token_id)
    hf_cfg._attn_implementation = "eager"
    model = CLIPTextModelWithProjection(hf_cfg)
    model.eval()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in text.weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"text verification: state dict mismatch: missing {missing}, unexpected {unexpected}")
    ids, mask = random_token_ids(c, 3, 99)
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).text_embeds.numpy()
    d = float(np.abs(run_text_onnx(path, ids, mask) - ref).max())
    print(f"  max |onnx - transformers| text_embeds: {d:.3e}")
    if not d <= tol:
        raise SystemExit(f"text verification FAILED (tolerance {tol}): {d}")
    print(f"text verification passed (tolerance {tol})")


def write_copy_sidecar(meta: dict, dst: Path, kind: str, what: str) -> None:
    """model.<kind>.json for a copy of model.onnx at dst: the model's sidecar with the copy's
    name, file and sha256 (its `head` section still names model.onnx, whose head it shares)."""
    copy = dict(meta, name=f"{meta['name']}-{kind}", onnx=dst.name, sha256=sha256_of(dst))
    sidecar = dst.parent / f"model.{kind}.json"
    write_json(sidecar, copy)
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.2f} MB, {what}) and {sidecar}")


def quantize_int8(src: Path, meta: dict, out_dir: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    dst = out_dir / "model.int8.onnx"
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    write_copy_sidecar(meta, dst, "int8", "dynamic int8 MatMul weights")


def half_precision(src: Path, meta: dict, out_dir: Path) -> Path:
    """Writes model.fp16.onnx + model.fp16.json: weights and arithmetic in float16 (for GPUs),
    `pixel_values` and every output still float32 (Casts at the edges, so the encode stage
    reads it as it reads the float32 model). onnxconverter-common's converter, with ONNX's
    own rounding; ONNX Runtime's CPU provider runs it too, through Casts back to float32
    around the operators it has no float16 kernel for."""
    import onnx
    from onnxconverter_common import float16
    dst = out_dir / "model.fp16.onnx"
    with warnings.catch_warnings():
        # Weights smaller than 1e-7 in magnitude become +-1e-7 (it warns once per tensor):
        # the rounding float16 means, not worth a screen of warnings.
        warnings.simplefilter("ignore", UserWarning)
        half = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    save_model(half, dst)
    write_copy_sidecar(meta, dst, "fp16", "float16 weights and arithmetic, float32 input and outputs")
    return dst


def half_precision_check(full: Path, half: Path, cfg: VisionConfig, min_cosine: float = 0.999) -> None:
    """The float16 model against the float32 one on random pixels: every embedding's cosine
    with its float32 twin, and the largest difference of each output (printed)."""
    x = np.random.default_rng(7).standard_normal((3, cfg.num_channels, cfg.image_size, cfg.image_size))
    a, b = run_onnx(full, x.astype(np.float32)), run_onnx(half, x.astype(np.float32))
    for name in a:
        print(f"  max |fp16 - fp32| {name}: {float(np.abs(a[name] - b[name]).max()):.3e}")
    ea, eb = a["image_embeds"], b["image_embeds"]
    cosine = (ea * eb).sum(1) / np.linalg.norm(ea, axis=1) / np.linalg.norm(eb, axis=1)
    if not cosine.min() >= min_cosine:
        raise SystemExit(f"float16 check FAILED: embedding cosine with float32 {cosine.min():.6f} < {min_cosine}")
    print(f"float16 check passed: embedding cosine with float32 at least {cosine.min():.6f}")


# --------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Export a CLIP vision tower (CLIPVisionModelWithProjection) to ONNX, without torch.")
    ap.add_argument("--output", "-o", required=True, type=Path, help="directory for model.onnx and model.json")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", default=None,
                     help=f"Hugging Face repo id or local directory (default {DEFAULT_CHECKPOINT})")
    src.add_argument("--random-init", choices=sorted(PRESETS), default=None,
                     help="build the architecture with random weights (no download)")
    ap.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --checkpoint")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    ap.add_argument("--name", default=None, help="model name in model.json")
    ap.add_argument("--verify", action="store_true",
                    help="compare against transformers on the same weights; needs torch and transformers "
                         "(models/fixture-requirements.txt) and fails without them")
    ap.add_argument("--quantize", choices=["int8"], default=None,
                    help="also write a dynamically quantised copy (model.int8.onnx + model.int8.json)")
    ap.add_argument("--fp16", action="store_true",
                    help="also write a float16 copy for GPUs (model.fp16.onnx + model.fp16.json; float32 input "
                         "and outputs)")
    ap.add_argument("--skip-smoke-test", action="store_true", help="do not run the model in onnxruntime")
    ap.add_argument("--no-text", action="store_true", help="export the vision tower only")
    args = ap.parse_args(argv)
    if args.verify:
        import_transformers()  # before the export, not after it

    if args.random_init:
        cfg = PRESETS[args.random_init]
        weights = random_weights(cfg, args.seed)
        mean, std, image_size = CLIP_MEAN, CLIP_STD, cfg.image_size
        source = f"random-init:{args.random_init}"
        name = args.name or f"clip-{args.random_init}-random-seed{args.seed}"
        seed = args.seed
        text = None
        if not args.no_text:
            tcfg = TEXT_PRESETS[args.random_init]
            text = TextTower(tcfg, random_text_weights(tcfg, args.seed), RANDOM_LOGIT_SCALE,
                             clip_tokenizer_json(open_clip_bpe(), tcfg.max_position_embeddings))
    else:
        ckpt = args.checkpoint or DEFAULT_CHECKPOINT
        cfg, weights, mean, std, image_size, text = load_checkpoint(ckpt, args.revision)
        if args.no_text:
            text = None
        source = ckpt if args.revision is None else f"{ckpt}@{args.revision}"
        name = args.name or Path(ckpt.rstrip("/")).name
        seed = None

    out_dir: Path = args.output
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    model = build_graph(cfg, weights, name)
    save_model(model, onnx_path)
    meta = sidecar(cfg, name=name, source=source, random_init=bool(args.random_init), seed=seed,
                   onnx_name=onnx_path.name, sha=sha256_of(onnx_path), mean=mean, std=std,
                   image_size=image_size)
    meta["head"] = write_head(cfg, weights, out_dir / "head.safetensors", meta["sha256"])
    if text is not None:
        if text.cfg.projection_dim != cfg.projection_dim:
            raise SystemExit(f"text projection_dim {text.cfg.projection_dim} differs from the vision tower's "
                             f"{cfg.projection_dim}")
        text_path = out_dir / "text_model.onnx"
        save_model(build_text_graph(text.cfg, text.weights, name), text_path)
        tok_name = tok_sha = None
        if text.tokenizer is not None:
            tok_path = out_dir / "tokenizer.json"
            tok_path.write_text(json.dumps(text.tokenizer, ensure_ascii=False, separators=(",", ":")) + "\n")
            tok_name, tok_sha = tok_path.name, sha256_of(tok_path)
        meta["text"] = text_sidecar(text, onnx_name=text_path.name, sha=sha256_of(text_path),
                                    tokenizer_name=tok_name, tokenizer_sha=tok_sha)
        meta["logit_scale"] = text.logit_scale
    write_json(out_dir / "model.json", meta)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB) and {out_dir / 'model.json'}")
    if text is not None:
        c = text.cfg
        print(f"wrote {out_dir / 'text_model.onnx'}: {c.num_hidden_layers} layers, hidden {c.hidden_size}, "
              f"{c.num_attention_heads} heads, context {c.max_position_embeddings}, vocabulary {c.vocab_size}"
              f"{', tokenizer.json' if text.tokenizer is not None else ', no tokenizer'}")
    print(f"  {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
          f"mlp {cfg.intermediate_size}, projection {cfg.projection_dim}, {cfg.hidden_act}, "
          f"eps {cfg.layer_norm_eps}, image {cfg.image_size}, patch {cfg.patch_size}")
    print(f"  sha256 {meta['sha256']}")

    if not args.skip_smoke_test:
        smoke_test(onnx_path, cfg)
        head_check(onnx_path, out_dir / "head.safetensors", cfg)
        if text is not None:
            text_smoke_test(out_dir / "text_model.onnx", text.cfg)
    if args.verify:
        verify_with_transformers(onnx_path, cfg, weights)
        if text is not None:
            verify_text_with_transformers(out_dir / "text_model.onnx", text)
    if args.quantize == "int8":
        quantize_int8(onnx_path, meta, out_dir)
        if not args.skip_smoke_test:
            # dynamic quantisation scales activations per batch: only approximate agreement
            smoke_test(out_dir / "model.int8.onnx", cfg, batch_tol=0.5)
    if args.fp16:
        half = half_precision(onnx_path, meta, out_dir)
        if not args.skip_smoke_test:
            smoke_test(half, cfg, batch_tol=1e-2)
            half_precision_check(onnx_path, half, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
