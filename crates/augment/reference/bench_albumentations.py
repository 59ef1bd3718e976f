"""Single-threaded albumentations timings of the paper suite at 224x224: the Python half
of `cargo xtask bench augment`.

It prepares the two benchmark images (a real photograph from data/samples resized to
224 x 224 with cv2 INTER_LINEAR, and a uniform-noise image) and writes them as PNG, so
both sides time the same bytes; it times each transform's `__call__` (parameter sampling + apply,
one OpenCV thread) and the whole nine-transform suite, and writes `albumentations.json`
beside the images. The Rust bench
(`crates/augment/benches/vs_albumentations.rs`) reads them, times clipshift on the same
images the same way and prints both sides with the ratio.

    .cache/venv-bench-augment/bin/python crates/augment/reference/bench_albumentations.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

warnings.filterwarnings("ignore")
import albumentations as A  # noqa: E402

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[3]
PHOTO = "data/samples/cat_chelsea.png"
SIZE = 224


def suite() -> dict[str, A.BasicTransform]:
    """The paper's nine transforms (the paper suite, as in crates/augment/src/suite.rs), each with p=1."""
    return {
        "noise": A.GaussNoise(std_range=(0.44, 0.88), p=1),
        "blur": A.GaussianBlur(blur_limit=(3, 7), p=1),
        "color_jitter": A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p=1),
        "shift_scale_rotate": A.ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.1, rotate_limit=15, p=1),
        "horizontal_flip": A.HorizontalFlip(p=1),
        "elastic": A.ElasticTransform(alpha=30, sigma=60, p=1),
        "perspective": A.Perspective(scale=(0.05, 0.1), p=1),
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1),
        "coarse_dropout": A.CoarseDropout(
            num_holes_range=(6, 8), hole_height_range=(16, 16), hole_width_range=(16, 16), fill="random", p=1
        ),
    }


def images() -> list[np.ndarray]:
    bgr = cv2.imread(str(ROOT / PHOTO), cv2.IMREAD_COLOR)
    photo = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return [np.ascontiguousarray(photo), noise]


def best_ms(call, imgs: list[np.ndarray], n: int, repeats: int) -> float:
    """Best of `repeats` means over `n` calls (alternating images), in milliseconds:
    the minimum is the estimate least disturbed by other work on the machine."""
    for i in range(max(n // 10, 2)):
        call(imgs[i % len(imgs)])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            call(imgs[i % len(imgs)])
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "target/bench-augment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    imgs = images()
    for name, img in zip(["photo.png", "noise.png"], imgs):
        cv2.imwrite(str(args.out / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    transforms = suite()
    for t in transforms.values():
        t.set_random_seed(0)
    scale = 0.1 if args.quick else 1.0
    per_transform = {}
    for name, t in transforms.items():
        n = max(int((40 if name == "elastic" else 200) * scale), 4)
        per_transform[name] = best_ms(lambda img, t=t: t(image=img), imgs, n, args.repeats)
        print(f"albumentations {name:20} {per_transform[name]:8.3f} ms")

    def whole_suite(img: np.ndarray) -> None:
        for t in transforms.values():
            t(image=img)

    suite_ms = best_ms(whole_suite, imgs, max(int(30 * scale), 4), args.repeats)
    print(f"albumentations {'paper_suite':20} {suite_ms:8.3f} ms")
    result = {
        "albumentations": A.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": cv2.getNumThreads(),
        "photo": PHOTO,
        "size": SIZE,
        "images": ["photo.png", "noise.png"],
        "method": "best of repeats of mean __call__ time (sampling + apply), images alternating",
        "repeats": args.repeats,
        "ms": per_transform,
        "suite_ms": suite_ms,
    }
    (args.out / "albumentations.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / 'albumentations.json'}")


if __name__ == "__main__":
    main()
