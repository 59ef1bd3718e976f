#!/usr/bin/env python3
"""transformers' CLIP tokenisation of a fixed set of prompts, for the Rust tokenizer test.

The tokenizer is built by transformers' own CLIPTokenizer from CLIP's BPE merges as
open_clip ships them (`open_clip/bpe_simple_vocab_16e6.txt.gz` in the open_clip_torch
wheel), not from the tokenizer.json that export_clip.py writes: the Rust test loads that
file with the `tokenizers` crate and must give these ids. open_clip's own SimpleTokenizer
is run too, and the prompts on which it differs from transformers (it applies ftfy and
HTML unescaping first) are listed in the fixture; transformers is the reference.

Writes crates/encode/tests/fixtures/tokenizer_reference.json:

    context_length          77
    prompts                 [str]
    input_ids               [N][77]   padding="max_length", truncation=True, max_length=77
    attention_mask          [N][77]
    open_clip_differs       [int]     indices of prompts where open_clip's ids differ

Needs models/fixture-requirements.txt plus `pip install --no-deps open_clip_torch==3.3.0 ftfy regex`.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "crates/encode/tests/fixtures/tokenizer_reference.json"
CONTEXT = 77

PROMPTS = [
    "a photo of a cat.",
    "A Photo Of A DOG!",
    "",
    "   leading and   trailing   spaces   ",
    "tabs\tand\nnewlines",
    "it's a dog's life, isn't it? they're here; we've won: I'm sure you'll see, he'd go",
    "numbers 123 4567 3.14159 1,000,000 and 2nd 21st",
    "punctuation!!! ??? ... --- (brackets) [square] {curly} <angle> @#$%^&*_+=|\\/~`",
    "café crème brûlée naïve façade",
    "Straße ÆØÅ æøå ĳ ﬁ",
    "日本語のテキスト 中文 한국어",
    "emoji 🐱🐶 😀 👍🏽",
    "Ελληνικά русский текст עברית العربية",
    "combining e\u0301 vs é",
    "a photo with <|endoftext|> inside",
    "the " * 100 + "end",
    "a very long caption " + " ".join(f"word{i}" for i in range(90)),
    "a noisy photo",
    "a blurry photo",
    "a photo with shifted colours",
    "a rotated and shifted photo",
    "a mirrored photo",
    "a warped photo",
    "a photo seen in perspective",
    "a brighter photo",
    "a photo with black squares",
]


def bpe_path() -> Path:
    spec = importlib.util.find_spec("open_clip")
    return Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"


def main() -> int:
    import transformers
    from transformers import CLIPTokenizer

    sys.path.insert(0, str(ROOT / "models"))
    from export_clip import bytes_to_unicode

    lines = gzip.open(bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)
    enc = tok(PROMPTS, padding="max_length", truncation=True, max_length=CONTEXT)

    # open_clip/tokenizer.py alone: the package's __init__ needs torchvision and timm.
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer", bpe_path().parent / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    simple = module.SimpleTokenizer(context_length=CONTEXT)
    theirs = simple(PROMPTS).tolist()
    differs = []
    for i, (ours, other) in enumerate(zip(enc["input_ids"], theirs)):
        # open_clip pads with 0 where transformers pads with <|endoftext|>
        n = sum(enc["attention_mask"][i])
        if ours[:n] != other[:n] or any(other[n:]):
            differs.append(i)
    print(f"open_clip's SimpleTokenizer differs on prompts {differs}: "
          + "; ".join(repr(PROMPTS[i][:40]) for i in differs))

    OUTPUT.write_text(json.dumps({
        "versions": {"transformers": transformers.__version__, "open_clip_torch": importlib.metadata.version("open_clip_torch")},
        "context_length": CONTEXT,
        "prompts": PROMPTS,
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "open_clip_differs": differs,
    }, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {OUTPUT} ({len(PROMPTS)} prompts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
