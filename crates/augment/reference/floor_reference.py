"""Reference outputs for the noise floor's transforms, computed with PIL and OpenCV.

The floor is made of changes that should not matter, each as the tools people use do it:
JPEG re-encoding is PIL's (`save(format="JPEG", quality=q)` then `open().convert("RGB")`,
libjpeg-turbo with PIL's defaults), the pixel shift is `cv2.warpAffine` with a whole-pixel
translation, the resize round trip two `cv2.resize(..., INTER_LINEAR)`. clipshift must
give these bytes exactly.

Run from the repository root (the venv of generate.py has every package this needs):

    python3 -m venv .cache/venv-augref
    .cache/venv-augref/bin/pip install -r crates/augment/reference/requirements.txt
    .cache/venv-augref/bin/python crates/augment/reference/floor_reference.py

It writes `fixtures/src_photo.png` (a real sample made canonical: PIL decode, then
cv2.resize to 224 x 224), `fixtures/floor/*.png` and `fixtures/floor_cases.json`
(sources, clipshift's Params JSON and the expected output of each case).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
SAMPLE = HERE.parents[2] / "data" / "samples" / "dahlia_flower.jpg"


def read_png(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIX / name).convert("RGB"))


def write_png(name: str, img: np.ndarray) -> str:
    Image.fromarray(img).save(FIX / name, optimize=True)
    return name


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"))


def pixel_shift(img: np.ndarray, dx: int, dy: int, border: int) -> np.ndarray:
    h, w = img.shape[:2]
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))


def resize_round_trip(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    # Python's round() is half to even; clipshift rounds half away from zero: no case here
    # lands on a half.
    small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def main() -> None:
    (FIX / "floor").mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        photo = cv2.resize(np.asarray(im.convert("RGB")), (224, 224), interpolation=cv2.INTER_LINEAR)
    write_png("src_photo.png", photo)
    sources = {name: read_png(f"src_{name}.png") for name in ["a", "b", "c", "photo"]}
    cases = []

    def case(name: str, src: str, params: dict, out: np.ndarray) -> None:
        file = write_png(f"floor/{name}.png", out)
        cases.append({"name": name, "source": f"src_{src}.png", "params": params, "output": file})

    for src in ["a", "b", "c", "photo"]:
        for q in [95, 40]:
            case(f"jpeg{q}_{src}", src, {"transform": "jpeg", "quality": q}, jpeg_round_trip(sources[src], q))
    for src, (dx, dy) in [("a", (1, 0)), ("b", (0, -1)), ("photo", (0, 1)), ("c", (3, 0))]:
        for mode, border in [("reflect101", cv2.BORDER_REFLECT_101), ("constant", cv2.BORDER_CONSTANT)]:
            params = {"transform": "pixel_shift", "dx": dx, "dy": dy, "border_mode": mode, "fill": 0}
            case(f"shift_{src}_{dx}_{dy}_{mode}", src, params, pixel_shift(sources[src], dx, dy, border))
    for src, scale in [("photo", 0.75), ("photo", 0.5), ("c", 0.75), ("a", 0.75), ("b", 1.3)]:
        params = {"transform": "resize_round_trip", "scale": scale}
        case(f"resize_{src}_{scale}", src, params, resize_round_trip(sources[src], scale))

    versions = {"pillow": PIL.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
    (FIX / "floor_cases.json").write_text(json.dumps({"versions": versions, "cases": cases}, indent=1) + "\n")
    print(f"{len(cases)} cases -> {FIX / 'floor_cases.json'}")


if __name__ == "__main__":
    main()
