#!/usr/bin/env python3
"""Reference model inputs for clipshift-encode's preprocessing, from the Hugging Face
CLIP processor (PIL backend) and OpenCV.

Run from the repository root in the environment of crates/encode/reference/requirements.txt
(`cargo xtask bench encode` creates it as .cache/venv-bench-encode):

    .cache/venv-bench-encode/bin/python crates/encode/reference/preprocess_reference.py

For a few committed images (data/samples, one tiled to get a large portrait input) it
writes into crates/encode/tests/fixtures/preprocess/:

    clip_<case>.png      the uint8 pixels CLIPImageProcessorPil feeds to its rescale step:
                         convert("RGB"), shortest edge to 224 with PIL BICUBIC
                         (reducing_gap=None, on the full image), centre crop 224
    paper_<case>.png     cv2.resize(rgb, (224, 224), interpolation=INTER_LINEAR)
    cases.json           sources, sizes, crop offsets, library versions, and
                         normalise_lut: float32 [3][256], the processor's output for each
                         channel value (its rescale in float64, cast to float32, then
                         normalise), written with repr so each float32 round-trips

The script checks that the processor's own output tensor equals lut[clip_<case>] exactly,
so the PNGs are what the processor saw, not a re-implementation of it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import PIL
import transformers
from PIL import Image
from transformers import CLIPImageProcessorPil
from transformers.image_transforms import get_resize_output_image_size
from transformers.image_utils import ChannelDimension

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "crates/encode/tests/fixtures/preprocess"
SIZE = 224

# (case, source under the repo root, tiles across and down, also a paper reference?):
# landscape, square, a 2:1 grayscale strip that is upscaled, and a portrait tiling
# downscaled 4.6 times. Only lossless sources, so that decoding is not under test (the
# Rust image crate's JPEG decoder does not match libjpeg-turbo bit for bit). The paper
# policy is the augment crate's cv2 resize, tested there at length: three cases suffice.
CASES = [
    ("cat_landscape", "data/samples/cat_chelsea.png", (1, 1), True),
    ("astronaut_square", "data/samples/astronaut_eileen_collins.png", (1, 1), False),
    ("page_upscaled_gray", "data/samples/printed_page_text_grayscale.png", (1, 1), True),
    ("astronaut_tiled_portrait", "data/samples/astronaut_eileen_collins.png", (2, 3), True),
]


def load(source: str, tiles: tuple[int, int]) -> Image.Image:
    img = Image.open(ROOT / source)
    img.load()
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        # the processor composites alpha on white; clipshift drops it (PIL convert("RGB"))
        raise SystemExit(f"{source}: pick an image without alpha")
    if tiles == (1, 1):
        return img
    tiled = Image.new(img.mode, (img.width * tiles[0], img.height * tiles[1]))
    for ty in range(tiles[1]):
        for tx in range(tiles[0]):
            tiled.paste(img, (tx * img.width, ty * img.height))
    return tiled


def clip_pixels(img: Image.Image) -> tuple[np.ndarray, dict]:
    """The processor's resize and crop, step by step as transformers' PIL backend does them."""
    rgb = img.convert("RGB")
    chw = np.moveaxis(np.array(rgb), -1, 0)
    new_h, new_w = get_resize_output_image_size(chw, size=SIZE, default_to_square=False,
                                                input_data_format=ChannelDimension.FIRST)
    resized = np.array(rgb.resize((new_w, new_h), resample=Image.Resampling.BICUBIC, reducing_gap=None))
    top, left = (new_h - SIZE) // 2, (new_w - SIZE) // 2
    crop = resized[top:top + SIZE, left:left + SIZE]
    return crop, {"resized": [new_w, new_h], "crop_left_top": [left, top]}


def lut(processor: CLIPImageProcessorPil) -> np.ndarray:
    """The processor's output for every channel value, read off a 224 x 224 image holding all of them."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([(y * SIZE + x + 85 * c) % 256 for c in range(3)], axis=-1).astype(np.uint8)
    out = processor(images=Image.fromarray(img), return_tensors="np")["pixel_values"][0]
    table = np.zeros((3, 256), np.float32)
    for c in range(3):
        for v in range(256):
            values = np.unique(out[c][img[..., c] == v])
            assert len(values) == 1, f"channel {c} value {v} maps to {values}"
            table[c, v] = values[0]
    return table


def write_png(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, rgb), path


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    processor = CLIPImageProcessorPil()
    assert processor.size == {"shortest_edge": SIZE} or processor.size.get("shortest_edge") == SIZE, processor.size
    table = lut(processor)

    cases = []
    for case, source, tiles, with_paper in CASES:
        img = load(source, tiles)
        pixels, geometry = clip_pixels(img)
        expected = processor(images=img, return_tensors="np")["pixel_values"][0]
        ours = np.stack([table[c][pixels[..., c]] for c in range(3)])
        if not np.array_equal(ours, expected):
            raise SystemExit(f"{case}: lut[pixels] differs from the processor by {np.abs(ours - expected).max()}")
        write_png(OUT / f"clip_{case}.png", pixels)
        if with_paper:
            paper = cv2.resize(np.array(img.convert("RGB")), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
            write_png(OUT / f"paper_{case}.png", paper)
        cases.append({"case": case, "source": source, "tiles": list(tiles), "paper": with_paper,
                      "mode": img.mode, "size": list(img.size), **geometry})
        print(f"{case}: {img.size[0]}x{img.size[1]} {img.mode} -> {geometry}")

    meta = {
        "image_size": SIZE,
        "processor": "transformers.CLIPImageProcessorPil (defaults)",
        "tiles": "the decoded source repeated [across, down] times",
        "versions": {"transformers": transformers.__version__, "pillow": PIL.__version__,
                     "opencv": cv2.__version__, "numpy": np.__version__},
        "cases": cases,
    }
    # one line per case and per LUT channel keeps the file short and diffable
    lines = [f'  "{k}": {json.dumps(v)},' for k, v in meta.items() if k != "cases"]
    lines.append('  "cases": [\n' + ",\n".join(f"    {json.dumps(c)}" for c in cases) + "\n  ],")
    lut_rows = ",\n".join("    [" + ", ".join(repr(float(v)) for v in row) + "]" for row in table)
    lines.append(f'  "normalise_lut": [\n{lut_rows}\n  ]')
    (OUT / "cases.json").write_text("{\n" + "\n".join(lines) + "\n}\n")
    json.loads((OUT / "cases.json").read_text())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
