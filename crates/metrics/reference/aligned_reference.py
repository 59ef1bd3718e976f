#!/usr/bin/env python3
"""Reference values of `attention_similarity_aligned`, with albumentations and OpenCV.

For a geometric augmentation the variant's attention lives in warped coordinates, so the
original's map is moved with the same warp as the pixels before comparing. Here that is
done the way the augmentations themselves are done: the original's grid upsampled with
`cv2.resize(INTER_LINEAR)` on float32, then albumentations' own functions on the float32
map (HorizontalFlip, `warp_affine` with `create_affine_transformation_matrix`,
Perspective's `apply` with `compute_perspective_params`, `cv2.remap` with a given
displacement, `cv2.warpAffine` with a whole-pixel translation). A pixel counts when
warping a map of ones with the same border gives at least 0.999 (the warped original
covers it); both maps are min-max normalised over those pixels, and the score is
1 / (1 + mean squared difference).

Run from the repository root with the augment references' venv (albumentations, OpenCV):

    python3 -m venv .cache/venv-augref
    .cache/venv-augref/bin/pip install -r crates/augment/reference/requirements.txt
    .cache/venv-augref/bin/python crates/metrics/reference/aligned_reference.py

Writes fixtures/aligned/*.f32 (grids, fields and warped maps, little-endian float32) and
fixtures/aligned.json, which crates/metrics/tests/it/aligned.rs reads.
"""

import json
import warnings
from pathlib import Path

import cv2
import numpy as np

warnings.filterwarnings("ignore")
import albumentations as A  # noqa: E402
from albumentations.augmentations.geometric import functional as fgeometric  # noqa: E402

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
OUT = FIX / "aligned"


def save(name, array):
    np.asarray(array, dtype="<f4").tofile(OUT / name)
    return name


def upsample(grid, w, h):
    return cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def border(mode):
    return {"constant": cv2.BORDER_CONSTANT, "reflect101": cv2.BORDER_REFLECT_101}[mode]


def warp(params, img, field):
    """The float32 map moved as albumentations moves the pixels for these parameters."""
    h, w = img.shape[:2]
    kind = params["transform"]
    if kind == "horizontal_flip":
        return A.HorizontalFlip(p=1).apply(img)
    if kind == "shift_scale_rotate":
        m = fgeometric.create_affine_transformation_matrix(
            {"x": params["shift_x"], "y": params["shift_y"]}, {"x": -0.0, "y": -0.0},
            {"x": params["scale_x"], "y": params["scale_y"]}, params["angle"], fgeometric.center((h, w)),
        )
        return fgeometric.warp_affine(img, m, cv2.INTER_LINEAR, 0, border(params["border_mode"]), (h, w))
    if kind == "perspective":
        pts = np.array(params["points"], dtype=np.float32)
        matrix, mw, mh = fgeometric.compute_perspective_params(pts.copy(), (h, w))
        t = A.Perspective(p=1, border_mode=border(params["border_mode"]), fill=0)
        return t.apply(img, matrix=matrix, max_height=mh, max_width=mw)
    if kind == "pixel_shift":
        m = np.array([[1, 0, params["dx"]], [0, 1, params["dy"]]], dtype=np.float64)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border(params["border_mode"]),
                              borderValue=0)
    if kind == "displaced":
        dx, dy = field
        coords = np.stack(np.meshgrid(np.arange(w), np.arange(h)))
        maps = coords + np.stack([dx, dy])
        return cv2.remap(img, maps[0].astype(np.float32), maps[1].astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=border(params["border_mode"]), borderValue=0)
    raise ValueError(kind)


def normalised(values):
    lo, hi = values.min(), values.max()
    return (values - lo) / (hi - lo) if hi > lo else values


def aligned_similarity(original, variant, params, w, h, field):
    moved = warp(params, upsample(original, w, h), field).astype(np.float64)
    covered = warp(params, np.ones((h, w), np.float32), field) >= 0.999
    mine = upsample(variant, w, h).astype(np.float64)
    a, b = normalised(moved[covered]), normalised(mine[covered])
    return 1.0 / (1.0 + np.mean((a - b) ** 2)), moved, covered


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2025)
    cases = []
    sizes = [(64, 48, 4), (224, 224, 7)]
    for w, h, g in sizes:
        gen = np.random.default_rng(100 + w)
        pts = fgeometric.order_points(fgeometric.generate_perspective_points((h, w), 0.08, gen))
        noise = rng.standard_normal((2, h, w)).astype(np.float32)
        field = np.stack([cv2.GaussianBlur(n, (0, 0), 6) for n in noise])
        field *= 6.0 / np.abs(field).max()
        ssr = {"transform": "shift_scale_rotate", "shift_x": 5, "shift_y": -3, "scale_x": 1.06, "scale_y": 0.94,
               "angle": 13.5, "fill": 0}
        params_list = [
            ("flip", {"transform": "horizontal_flip"}),
            ("ssr_constant", {**ssr, "border_mode": "constant"}),
            ("ssr_reflect", {**ssr, "border_mode": "reflect101"}),
            ("perspective", {"transform": "perspective", "points": pts.tolist(), "border_mode": "constant", "fill": 0}),
            ("shift", {"transform": "pixel_shift", "dx": 0, "dy": 1, "border_mode": "reflect101", "fill": 0}),
        ]
        small = w * h < 10000  # warped maps and the elastic field are stored for the small size only
        if small:
            params_list.append(("elastic", {"transform": "displaced", "border_mode": "constant"}))
        # Attention-like grids: positive, summing to about one.
        original = rng.dirichlet(np.full(g * g, 0.7)).astype(np.float32).reshape(g, g)
        variant = rng.dirichlet(np.full(g * g, 0.7)).astype(np.float32).reshape(g, g)
        tag = f"{w}x{h}"
        files = {"original": save(f"{tag}_original.f32", original), "variant": save(f"{tag}_variant.f32", variant)}
        if small:
            files["field"] = save(f"{tag}_field.f32", field)
        for name, params in params_list:
            score, moved, covered = aligned_similarity(original, variant, params, w, h, field)
            case = {"name": f"{name}_{tag}", "width": w, "height": h, "params": params, **files,
                    "similarity": float(score), "covered": int(covered.sum())}
            if small:
                case["moved"] = save(f"{name}_{tag}_moved.f32", moved)
                case["covered_mask"] = save(f"{name}_{tag}_covered.f32", covered.astype(np.float32))
            cases.append(case)
    versions = {"albumentations": A.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
    (FIX / "aligned.json").write_text(json.dumps({"versions": versions, "cases": cases}, indent=1) + "\n")
    print(f"{len(cases)} cases -> {FIX / 'aligned.json'}")


if __name__ == "__main__":
    main()
