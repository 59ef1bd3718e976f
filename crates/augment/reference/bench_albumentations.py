"""Single-threaded albumentations timings of the paper suite at 224x224, for comparison
with `cargo bench -p clipshift-augment` (per transform: apply with fixed parameters).

    .cache/venv-augref/bin/python crates/augment/reference/bench_albumentations.py
"""

import time
import warnings

import cv2
import numpy as np

warnings.filterwarnings("ignore")
import albumentations as A  # noqa: E402

cv2.setNumThreads(1)


def main() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    suite = {
        "noise": A.GaussNoise(std_range=(0.44, 0.88), p=1),
        "blur": A.GaussianBlur(blur_limit=(3, 7), p=1),
        "color_jitter": A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p=1),
        "shift_scale_rotate": A.ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.1, rotate_limit=15, p=1),
        "horizontal_flip": A.HorizontalFlip(p=1),
        "elastic": A.ElasticTransform(alpha=30, sigma=60, p=1),
        "perspective": A.Perspective(scale=(0.05, 0.1), p=1),
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1),
        "coarse_dropout": A.CoarseDropout(num_holes_range=(6, 8), hole_height_range=(16, 16), hole_width_range=(16, 16), fill="random", p=1),
    }
    total = 0.0
    for name, t in suite.items():
        t.set_random_seed(0)
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            t(image=img)
        dt = (time.perf_counter() - t0) / n
        total += dt
        print(f"{name:20} {dt * 1e6:9.1f} us  (sampling + apply)")
    print(f"{'paper_suite':20} {total * 1e6:9.1f} us")


if __name__ == "__main__":
    main()
