"""Reference outputs for clipshift-augment, computed with albumentations / OpenCV.

Run from the repository root with a venv holding albumentations 2.0.x and
opencv-python-headless:

    python3 -m venv .cache/venv-augref
    .cache/venv-augref/bin/pip install "albumentations>=2.0,<2.1" opencv-python-headless
    .cache/venv-augref/bin/python crates/augment/reference/generate.py

It writes small synthetic source images, the output of each transform for fixed
parameters (given in clipshift's Params JSON), random-field statistics and sampling
statistics into crates/augment/reference/fixtures/. The Rust tests in tests/it read them.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

warnings.filterwarnings("ignore")
import albumentations as A  # noqa: E402
from albumentations.augmentations.blur import functional as fblur  # noqa: E402
from albumentations.augmentations.geometric import functional as fgeometric  # noqa: E402

OUT = Path(__file__).resolve().parent / "fixtures"


def write_png(name: str, img: np.ndarray) -> str:
    cv2.imwrite(str(OUT / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return name


def synthetic(h: int, w: int, seed: int) -> np.ndarray:
    """Gradients, hard edges, a disc and mild texture: exercises interpolation and edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    cy, cx, rad = h * 0.55, w * 0.4, min(h, w) * 0.25
    disc = (y - cy) ** 2 + (x - cx) ** 2 < rad**2
    img[disc] = [230, 40, 60]
    img[(x > w * 0.7) & (y < h * 0.3)] = [20, 200, 90]
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def smooth_224(seed: int) -> np.ndarray:
    """A 224x224 image that compresses well (gradients and shapes, no texture)."""
    h = w = 224
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / (w - 1), 255 * (1 - y / (h - 1)), 128 + 60 * np.sin((x + y) / 17.0)], axis=-1)
    for cy, cx, rad, col in [(60, 70, 30, (250, 240, 30)), (150, 160, 45, (30, 30, 200)), (170, 50, 20, (0, 0, 0))]:
        img[(y - cy) ** 2 + (x - cx) ** 2 < rad**2] = col
    img[100:120, 20:200] = [255, 255, 255]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sources = {
        "a": synthetic(48, 64, 1),
        "b": synthetic(41, 57, 2),
        "c": smooth_224(3),
    }
    for key, img in sources.items():
        write_png(f"src_{key}.png", img)

    cases = []

    # `check` is what tests/it/reference.rs requires of clipshift's output against `out`:
    # "exact" (the same bytes), "within_one_level" (every value within one grey level: the
    # warps do not reproduce OpenCV's float arithmetic operation for operation, so a value
    # on a rounding boundary can land one level apart) or "dropout_geometry" (random
    # fills: the same holes, fills with the statistics of uniform bytes). Colour jitter is
    # exact against the HSV->RGB of opencv-python's x86-64 wheels on an AVX2 CPU, which
    # clipshift reproduces on every CPU; OpenCV's other code paths quantise differently,
    # so generate the fixtures on such a machine.
    def case(name: str, src: str, params: dict, out: np.ndarray, check: str, **extra) -> None:
        file = write_png(f"out_{name}.png", out)
        cases.append({"name": name, "source": f"src_{src}.png", "params": params, "output": file, "check": check, **extra})

    # --- resize (cv2.resize INTER_LINEAR) ---
    for src, (w, h) in [("a", (150, 110)), ("b", (100, 90)), ("c", (100, 75)), ("c", (112, 112)), ("a", (37, 61))]:
        out = cv2.resize(sources[src], (w, h), interpolation=cv2.INTER_LINEAR)
        file = write_png(f"resize_{src}_{w}x{h}.png", out)
        cases.append({"name": f"resize_{src}_{w}x{h}", "source": f"src_{src}.png", "resize": [w, h], "output": file, "check": "exact"})

    # --- horizontal flip ---
    for src in ["a", "b"]:
        out = A.HorizontalFlip(p=1).apply(sources[src])
        case(f"hflip_{src}", src, {"transform": "horizontal_flip"}, out, "exact")

    # --- brightness / contrast ---
    t = A.RandomBrightnessContrast(p=1)
    for i, (alpha, beta) in enumerate([(1.15, 0.1), (0.83, -0.17), (1.0, 0.2), (1.2, -0.2)]):
        for src in ["a", "c"]:
            out = t.apply(sources[src], alpha=alpha, beta=beta * 255)
            params = {"transform": "random_brightness_contrast", "alpha": alpha, "beta": beta, "brightness_by_max": True}
            case(f"rbc{i}_{src}", src, params, out, "exact")

    # --- gaussian blur ---
    t = A.GaussianBlur(p=1)
    for i, (ksize, sigma) in enumerate([(3, 0.5), (5, 1.3), (7, 2.9), (7, 0.8), (5, 3.0)]):
        for src in ["a", "b"]:
            kernel = fblur.create_gaussian_kernel_1d(sigma, ksize)
            out = t.apply(sources[src], kernel=kernel)
            case(f"blur{i}_{src}", src, {"transform": "gaussian_blur", "ksize": ksize, "sigma": sigma}, out, "exact")

    # --- colour jitter ---
    t = A.ColorJitter(p=1)
    jitters = [
        (1.1, 0.9, 1.15, 0.1, [0, 1, 2, 3]),
        (0.85, 1.18, 0.82, -0.17, [3, 2, 1, 0]),
        (1.0, 1.0, 1.0, 0.2, [2, 3, 0, 1]),
        (1.2, 0.8, 1.2, -0.05, [1, 3, 0, 2]),
    ]
    for i, (b, c, s, h, order) in enumerate(jitters):
        for src in ["a", "b"]:
            out = t.apply(sources[src], brightness=b, contrast=c, saturation=s, hue=h, order=order)
            params = {"transform": "color_jitter", "brightness": b, "contrast": c, "saturation": s, "hue": h, "order": order}
            case(f"jitter{i}_{src}", src, params, out, "exact")
    # Each operation alone, extremes included. Source b is 57 pixels wide, so OpenCV's
    # HSV->RGB runs 32 pixels of each row through its vector loop and 25 through the
    # scalar tail, which quantise differently; a (64 wide) takes the vector loop only.
    identity = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    isolated = [("brightness", [0.0, 0.5, 1.6]), ("contrast", [0.0, 0.6, 1.7]), ("saturation", [0.0, 0.3, 2.0]), ("hue", [-0.5, 0.31, 0.5])]
    for op, values in isolated:
        for k, value in enumerate(values):
            for src in ["a", "b"]:
                f = {**identity, op: value}
                out = t.apply(sources[src], **f, order=[0, 1, 2, 3])
                case(f"jitter_{op}{k}_{src}", src, {"transform": "color_jitter", **f, "order": [0, 1, 2, 3]}, out, "exact")
    # All 24 orders, factors drawn from the paper's ranges.
    gen = np.random.default_rng(2025)
    for k, order in enumerate(itertools.permutations(range(4))):
        b, c, s = (float(x) for x in gen.uniform(0.8, 1.2, 3))
        h = float(gen.uniform(-0.2, 0.2))
        src = "b" if k % 4 else "c"
        out = t.apply(sources[src], brightness=b, contrast=c, saturation=s, hue=h, order=list(order))
        params = {"transform": "color_jitter", "brightness": b, "contrast": c, "saturation": s, "hue": h, "order": list(order)}
        case(f"jitter_order{k}_{src}", src, params, out, "exact")

    # --- shift scale rotate (Affine) ---
    for i, (tx, ty, sx, sy, angle) in enumerate([(3, -2, 1.05, 0.93, 12.5), (-4, 0, 0.9, 1.1, -15.0), (0, 5, 1.0, 1.0, 7.0), (2, 2, 1.07, 1.07, 0.0)]):
        for src in ["a", "b"] + (["c"] if i < 2 else []):
            img = sources[src]
            h, w = img.shape[:2]
            m = fgeometric.create_affine_transformation_matrix(
                {"x": tx, "y": ty}, {"x": -0.0, "y": -0.0}, {"x": sx, "y": sy}, angle, fgeometric.center((h, w))
            )
            out = fgeometric.warp_affine(img, m, cv2.INTER_LINEAR, 0, cv2.BORDER_CONSTANT, (h, w))
            params = {
                "transform": "shift_scale_rotate", "shift_x": tx, "shift_y": ty, "scale_x": sx, "scale_y": sy,
                "angle": angle, "border_mode": "constant", "fill": 0,
            }
            case(f"ssr{i}_{src}", src, params, out, "within_one_level")

    # --- perspective ---
    t = A.Perspective(scale=(0.05, 0.1), p=1)
    for i in range(3):
        for src in ["a", "b", "c"]:
            img = sources[src]
            h, w = img.shape[:2]
            gen = np.random.default_rng(100 + i)
            pts = fgeometric.generate_perspective_points((h, w), 0.05 + 0.025 * i, gen)
            pts = fgeometric.order_points(pts)
            matrix, mw, mh = fgeometric.compute_perspective_params(pts.copy(), (h, w))
            out = t.apply(img, matrix=matrix, max_height=mh, max_width=mw)
            params = {"transform": "perspective", "points": pts.tolist(), "border_mode": "constant", "fill": 0}
            case(f"persp{i}_{src}", src, params, out, "within_one_level")

    # --- elastic, with the displacement field given ---
    for i, (alpha, sigma) in enumerate([(30.0, 60.0), (300.0, 6.0), (60.0, 3.0)]):
        for src in ["a", "b"]:
            img = sources[src]
            h, w = img.shape[:2]
            seed = 7 + i
            noise = np.random.default_rng(seed).standard_normal((2, h, w), dtype=np.float32)
            dx, dy = fgeometric.generate_displacement_fields(
                (h, w), alpha, sigma, same_dxdy=False, kernel_size=(0, 0),
                random_generator=np.random.default_rng(seed), noise_distribution="gaussian",
            )
            t = A.ElasticTransform(alpha=alpha, sigma=sigma, p=1)
            coords = np.stack(np.meshgrid(np.arange(w), np.arange(h)))
            maps = coords + np.stack([dx, dy])
            out = t.apply(img, map_x=maps[0].astype(np.float32), map_y=maps[1].astype(np.float32))
            name = f"elastic{i}_{src}"
            np.stack([dx, dy]).astype("<f4").tofile(OUT / f"{name}_field.f32")
            params = {"alpha": alpha, "sigma": sigma, "border_mode": "constant", "fill": 0}
            extra = {"field": f"{name}_field.f32"}
            if src == "a" and i < 2:
                # The raw standard normals, to check the smoothing and scaling separately.
                noise.astype("<f4").tofile(OUT / f"{name}_noise.f32")
                extra["noise"] = f"{name}_noise.f32"
            case(name, src, params, out, "within_one_level", **extra)

    # --- coarse dropout: geometry with fixed fills, random fill statistics ---
    t = A.CoarseDropout(num_holes_range=(6, 8), hole_height_range=(16, 16), hole_width_range=(16, 16), fill=0, p=1)
    for src in ["a", "c"]:
        img = sources[src]
        h, w = img.shape[:2]
        holes = np.array([[0, 0, 16, 16], [w - 16, h - 16, w, h], [10, 5, 26, 21], [20, 20, 36, 36], [w - 16, 0, w, 16]])
        out = t.apply(img, holes=holes, seed=0)
        params = {"transform": "coarse_dropout", "holes": holes.tolist(), "fill": 0, "seed": 0}
        case(f"dropout_{src}", src, params, out, "exact")
        t2 = A.CoarseDropout(fill=(10, 200, 30), p=1)
        out = t2.apply(img, holes=holes, seed=0)
        case(f"dropout_rgb_{src}", src, {**params, "fill": [10, 200, 30]}, out, "exact")
        t3 = A.CoarseDropout(fill="random", p=1)
        out = t3.apply(img, holes=holes, seed=5)
        case(f"dropout_random_{src}", src, {**params, "fill": "random", "seed": 5}, out, "dropout_geometry")

    # --- random-field statistics ---
    stats = {}
    grey = np.full((224, 224, 3), 128, np.uint8)
    for std in [0.1, 0.44, 0.88]:
        diffs = []
        for s in range(8):
            t = A.GaussNoise(std_range=(std, std), p=1)
            t.set_random_seed(s)
            out = t(image=grey)["image"].astype(np.float64)
            diffs.append(out)
        d = np.concatenate([x.ravel() for x in diffs])
        stats[f"noise_{std}"] = {
            "std": std, "input": 128, "mean": float(d.mean()), "sd": float(d.std()),
            "frac_0": float((d == 0).mean()), "frac_255": float((d == 255).mean()),
        }
    for alpha, sigma in [(30.0, 60.0), (300.0, 6.0)]:
        sds, maxes = [], []
        for s in range(16):
            dx, dy = fgeometric.generate_displacement_fields(
                (224, 224), alpha, sigma, same_dxdy=False, kernel_size=(0, 0),
                random_generator=np.random.default_rng(1000 + s), noise_distribution="gaussian",
            )
            f = np.stack([dx, dy])
            sds.append(float(f.std()))
            maxes.append(float(np.abs(f).max()))
        stats[f"elastic_{alpha}_{sigma}"] = {"alpha": alpha, "sigma": sigma, "size": 224,
                                             "sd_mean": float(np.mean(sds)), "sd_sd": float(np.std(sds)),
                                             "maxabs_mean": float(np.mean(maxes))}
    (OUT / "field_stats.json").write_text(json.dumps(stats, indent=1))

    # --- sampling distributions of the paper suite (224x224) ---
    paper = {
        "noise": A.GaussNoise(std_range=(0.44, 0.88), p=1),
        "blur": A.GaussianBlur(blur_limit=(3, 7), p=1),
        "color_jitter": A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p=1),
        "shift_scale_rotate": A.ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.1, rotate_limit=15, p=1),
        "perspective": A.Perspective(scale=(0.05, 0.1), p=1),
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1),
        "coarse_dropout": A.CoarseDropout(num_holes_range=(6, 8), hole_height_range=(16, 16), hole_width_range=(16, 16), fill="random", p=1),
    }
    img = sources["c"]
    n = 2000
    samples: dict[str, dict[str, list[float]]] = {}
    for name, t in paper.items():
        t.set_random_seed(42)
        acc: dict[str, list[float]] = {}

        def put(k: str, v: float) -> None:
            acc.setdefault(k, []).append(float(v))

        for _ in range(n):
            p = t.get_params()
            data = {"image": img}
            p.update({"shape": img.shape})
            p.update(t.get_params_dependent_on_data(p, data))
            if name == "blur":
                put("ksize", len(p["kernel"]))
            elif name == "color_jitter":
                for k in ["brightness", "contrast", "saturation", "hue"]:
                    put(k, p[k])
                put("first_op", p["order"][0])
            elif name == "shift_scale_rotate":
                put("angle", p["rotate"])
                put("scale_x", p["scale"]["x"])
                put("scale_y", p["scale"]["y"])
                m = p["matrix"]
                # The translation part of the matrix minus the rotation/scale about the centre.
                c = fgeometric.center(img.shape[:2])
                lin = m[:2, :2]
                t_vec = m[:2, 2] - (np.array(c) - lin @ np.array(c))
                put("shift_x", round(t_vec[0]))
                put("shift_y", round(t_vec[1]))
            elif name == "perspective":
                mtx = p["matrix"]
                # Where the destination corners come from: recover ordered source points.
                inv = np.linalg.inv(mtx)
                for k, (x, y) in enumerate([(0, 0), (224, 0), (224, 224), (0, 224)]):
                    v = inv @ np.array([x, y, 1.0])
                    put(f"p{k}x", v[0] / v[2])
                    put(f"p{k}y", v[1] / v[2])
            elif name == "brightness_contrast":
                put("alpha", p["alpha"])
                put("beta", p["beta"] / 255.0)
            elif name == "coarse_dropout":
                holes = p["holes"]
                put("num_holes", len(holes))
                for hole in holes:
                    put("x_min", hole[0])
                    put("y_min", hole[1])
            elif name == "noise":
                nm = p["noise_map"]
                put("noise_sd", nm.std() / 255.0)
        samples[name] = {k: {"mean": float(np.mean(v)), "sd": float(np.std(v)), "min": float(np.min(v)), "max": float(np.max(v))} for k, v in acc.items()}
    (OUT / "sampling_stats.json").write_text(json.dumps({"n": n, "size": 224, "members": samples}, indent=1))

    meta = {
        "albumentations": A.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    (OUT / "cases.json").write_text(json.dumps({"versions": meta, "cases": cases}, indent=1))
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"{len(cases)} cases, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
