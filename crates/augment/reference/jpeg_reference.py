"""PIL's decoding of the JPEG sources, the reference for clipshift's JPEG decoder.

PIL (libjpeg-turbo) is what the paper's code and Hugging Face processors decode with, so
`Image.open(p).convert("RGB")` is the behaviour clipshift must reproduce exactly. This
writes `fixtures/jpeg_pil.json`: for every `data/samples/*.jpg` and for two small files
made here (`fixtures/jpeg/progressive.jpg`, `fixtures/jpeg/cmyk.jpg`, which exercise the
progressive and four-component paths), the size and the sha256 of PIL's RGB bytes. It
also makes an animated WebP (lossless) and an animated GIF of two different frames
(`fixtures/animated/`) and records PIL's `convert("RGB")` of each, its first frame, in
`fixtures/first_frame_pil.json`.

Run from the repository root:
    python -m venv .venv && .venv/bin/pip install -r crates/augment/reference/jpeg-requirements.txt
    .venv/bin/python crates/augment/reference/jpeg_reference.py
"""

import glob
import hashlib
import json
import os

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(ROOT, "fixtures")
SAMPLES = os.path.join(ROOT, "..", "..", "..", "data", "samples")


def pil_rgb(path):
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return {
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
    }


def make_small(out_dir):
    """A progressive and a CMYK JPEG, 96 px wide, from one sample: a few KB each."""
    with Image.open(os.path.join(SAMPLES, "dahlia_flower.jpg")) as im:
        small = im.convert("RGB")
        small = small.resize((96, round(96 * small.height / small.width)), Image.Resampling.BILINEAR)
    small.save(os.path.join(out_dir, "progressive.jpg"), progressive=True, quality=90)
    # PIL writes four-component JPEGs with the Adobe (inverted) convention it reads back.
    small.convert("CMYK").save(os.path.join(out_dir, "cmyk.jpg"), quality=90)


def make_animated(out_dir):
    """Two-frame animations whose frames differ everywhere: the first must be decoded."""
    with Image.open(os.path.join(SAMPLES, "dahlia_flower.jpg")) as im:
        first = im.convert("RGB").resize((48, 32), Image.Resampling.BILINEAR)
    second = Image.eval(first, lambda v: 255 - v)
    first.save(os.path.join(out_dir, "animated.webp"), save_all=True, append_images=[second], lossless=True,
               duration=100, loop=0)
    first.save(os.path.join(out_dir, "animated.gif"), save_all=True, append_images=[second], duration=100, loop=0)


def main():
    jpeg_dir = os.path.join(FIXTURES, "jpeg")
    os.makedirs(jpeg_dir, exist_ok=True)
    make_small(jpeg_dir)
    entries = {}
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*.jpg"))):
        entries["data/samples/" + os.path.basename(path)] = pil_rgb(path)
    for name in ("progressive.jpg", "cmyk.jpg"):
        entries["crates/augment/reference/fixtures/jpeg/" + name] = pil_rgb(os.path.join(jpeg_dir, name))
    out = {"pillow": PIL.__version__, "images": entries}
    with open(os.path.join(FIXTURES, "jpeg_pil.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(entries)} digests with Pillow {PIL.__version__}")

    animated_dir = os.path.join(FIXTURES, "animated")
    os.makedirs(animated_dir, exist_ok=True)
    make_animated(animated_dir)
    frames = {}
    for name in ("animated.webp", "animated.gif"):
        path = os.path.join(animated_dir, name)
        with Image.open(path) as im:
            assert im.n_frames == 2, name
        frames["crates/augment/reference/fixtures/animated/" + name] = pil_rgb(path)
    with open(os.path.join(FIXTURES, "first_frame_pil.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "images": frames}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
