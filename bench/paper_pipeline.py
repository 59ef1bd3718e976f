#!/usr/bin/env python3
"""The Python peer of `cargo xtask bench pipeline`: the paper's pipeline as its code is
structured, on the same images and the same architecture as clipshift's run.

Per source image (PIL decode, made square 224 x 224 with cv2 INTER_LINEAR as clipshift's
canonical image, so both sides augment the same pixels):
  1. the nine augmentations with albumentations 2.0 (the paper's hyperparameters, p = 1);
  2. one embedding per variant: the Hugging Face CLIPImageProcessor, then
     CLIPModel.get_image_features (10 forward passes);
  3. the metrics loop, per augmentation: cosine similarity and L2 distance of the
     embeddings, attention similarity from two more forward passes with
     output_attentions=True (original and variant: 18 passes), patch similarity, edge
     and detail preservation, SSIM (scikit-image), and the pairwise distances of the
     ten embeddings (scipy pdist);
then the aggregation (means per augmentation and metric, the Ward linkage of the
averaged cosine distances, flat clusters at 0.7 x the largest merge) and the paper's
figures with matplotlib (cosine histograms with KDE, L2 bars, dendrogram, metric
heatmap, radar), written as PNG.

The model is transformers' CLIPModel with the ViT-B/32 configuration (vision 768 wide,
12 layers, patch 32; text 512 wide, 12 layers), random weights, eager attention, fp32,
torch.inference_mode. Random weights cost what trained ones cost.

Usage: paper_pipeline.py --data DIR --images N --out FILE.json [--threads T] [--figures DIR]
Writes the wall time of each part, the total, source images per second and the peak
resident memory of the process into FILE.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

warnings.filterwarnings("ignore")
import albumentations as A  # noqa: E402

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def paper_augmentations() -> dict[str, A.BasicTransform]:
    """clipshift's `Suite::paper()`, in albumentations 2.0 terms."""
    return {
        "noise": A.GaussNoise(std_range=(0.44, 0.88), p=1),
        "blur": A.GaussianBlur(blur_limit=(3, 7), p=1),
        "color_jitter": A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.8, 1.2),
                                      hue=(-0.2, 0.2), p=1),
        "shift_scale_rotate": A.ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.1, rotate_limit=15,
                                                 border_mode=cv2.BORDER_CONSTANT, p=1),
        "horizontal_flip": A.HorizontalFlip(p=1),
        "elastic": A.ElasticTransform(alpha=30, sigma=60, p=1),
        "perspective": A.Perspective(scale=(0.05, 0.1), p=1),
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1),
        "coarse_dropout": A.CoarseDropout(num_holes_range=(6, 8), hole_height_range=(16, 16),
                                          hole_width_range=(16, 16), fill="random", p=1),
    }


def gray(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def patch_similarity(a: np.ndarray, b: np.ndarray, grid: int = 4) -> float:
    h, w = a.shape[0] // grid, a.shape[1] // grid
    scores = []
    for i in range(grid):
        for j in range(grid):
            pa = a[i * h:(i + 1) * h, j * w:(j + 1) * w].astype(np.float64)
            pb = b[i * h:(i + 1) * h, j * w:(j + 1) * w].astype(np.float64)
            scores.append(1.0 / (1.0 + np.mean((pa - pb) ** 2) / 255.0**2))
    return float(np.mean(scores))


def edges(g: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(g)
    e = np.abs(gx) + np.abs(gy)
    return e / e.max() if e.max() > 0 else e


def detail_preservation(a: np.ndarray, b: np.ndarray, grid: int = 8) -> float:
    h, w = a.shape[0] // grid, a.shape[1] // grid
    scores = []
    for i in range(grid):
        for j in range(grid):
            sa = a[i * h:(i + 1) * h, j * w:(j + 1) * w].std()
            if sa < 1e-6:
                continue
            r = b[i * h:(i + 1) * h, j * w:(j + 1) * w].std() / sa
            scores.append(np.exp(-abs(np.log(r))) if r > 0 else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--figures", type=Path)
    args = ap.parse_args()

    start = time.perf_counter()
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform
    from skimage.metrics import structural_similarity

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()  # the ViT-B/32 configuration
    model.config._attn_implementation = "eager"
    model.vision_model.config._attn_implementation = "eager"
    # Resize 224 bicubic, centre crop 224, CLIP mean / std (the PIL backend: no torchvision).
    processor = CLIPImageProcessorPil()
    augmentations = paper_augmentations()
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in EXTENSIONS)[: args.images]
    timings = {"load": time.perf_counter() - start, "augment": 0.0, "embed": 0.0, "metrics": 0.0, "report": 0.0}

    def embed(img: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = processor(images=Image.fromarray(img), return_tensors="pt")
            # transformers 5: the projected embedding is the output's pooler_output.
            return model.get_image_features(**inputs).pooler_output[0].numpy().astype(np.float64)

    def attention(img: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = processor(images=Image.fromarray(img), return_tensors="pt")
            out = model.vision_model(pixel_values=inputs["pixel_values"], output_attentions=True)
        cls = out.attentions[-1][0].mean(0)[0, 1:].numpy()
        g = int(round(np.sqrt(cls.size)))
        up = cv2.resize(cls.reshape(g, g).astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR)
        lo, hi = up.min(), up.max()
        return (up - lo) / (hi - lo) if hi > lo else up

    names = list(augmentations)
    rows = {m: {a: [] for a in names} for m in
            ["cosine", "l2", "attention", "patch", "edge", "detail", "ssim"]}
    distances = []
    for path in files:
        t0 = time.perf_counter()
        with Image.open(path) as im:
            source = np.asarray(im.convert("RGB"))
        original = cv2.resize(source, (224, 224), interpolation=cv2.INTER_LINEAR)
        variants = {"original": original}
        for name, t in augmentations.items():
            variants[name] = t(image=original)["image"]
        t1 = time.perf_counter()
        emb = {name: embed(img) for name, img in variants.items()}
        t2 = time.perf_counter()
        g0 = gray(original)
        e0 = edges(g0)
        for name in names:
            u, v = emb["original"], emb[name]
            rows["cosine"][name].append(float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))))
            rows["l2"][name].append(float(np.linalg.norm(u - v)))
            a, b = attention(original), attention(variants[name])
            rows["attention"][name].append(float(1.0 / (1.0 + np.mean((a.astype(np.float64) - b) ** 2))))
            rows["patch"][name].append(patch_similarity(original, variants[name]))
            g1 = gray(variants[name])
            rows["edge"][name].append(float(1.0 - np.mean(np.abs(e0 - edges(g1)))))
            rows["detail"][name].append(detail_preservation(g0, g1))
            rows["ssim"][name].append(float(structural_similarity(g0, g1, gaussian_weights=True, sigma=1.5,
                                                                    use_sample_covariance=False, data_range=255)))
        order = ["original", *names]
        distances.append(squareform(pdist(np.stack([emb[n] for n in order]), "cosine")))
        t3 = time.perf_counter()
        timings["augment"] += t1 - t0
        timings["embed"] += t2 - t1
        timings["metrics"] += t3 - t2

    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram
    from scipy.stats import gaussian_kde

    means = {m: {a: float(np.mean(v)) for a, v in per.items()} for m, per in rows.items()}
    square = np.mean(distances, axis=0)[1:, 1:]
    link = linkage(squareform(square, checks=False), "ward")
    fcluster(link, 0.7 * link[:, 2].max(), criterion="distance")
    out_dir = args.figures or args.out.parent / "peer-figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(3, 3, figsize=(12, 10))
    for ax, name in zip(axes.flat, names):
        v = np.array(rows["cosine"][name])
        ax.hist(v, bins="auto", density=True, alpha=0.6)
        if len(v) > 1 and v.std() > 0:
            grid = np.linspace(v.min(), v.max(), 100)
            ax.plot(grid, gaussian_kde(v)(grid))
        ax.set_title(name)
    fig.savefig(out_dir / "cosine_distribution.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.bar(names, [means["l2"][n] for n in names], yerr=[np.std(rows["l2"][n]) for n in names])
    ax.tick_params(axis="x", rotation=45)
    fig.savefig(out_dir / "l2_bars.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 5))
    dendrogram(link, labels=names, ax=ax)
    fig.savefig(out_dir / "dendrogram.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.imshow(np.array([[means[m][n] for n in names] for m in rows]), aspect="auto")
    fig.savefig(out_dir / "heatmap.png", dpi=100)
    plt.close(fig)
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="polar")
    radar = ["cosine", "attention", "patch", "edge", "detail"]
    angles = np.linspace(0, 2 * np.pi, len(radar), endpoint=False)
    for n in names:
        ax.plot(angles, [means[m][n] for m in radar])
    fig.savefig(out_dir / "radar.png", dpi=100)
    plt.close(fig)
    timings["report"] = time.perf_counter() - t0

    total = time.perf_counter() - start
    result = {
        "images": len(files),
        "forward_passes": len(files) * (1 + len(names) + 2 * len(names)),
        "seconds": total,
        "images_per_s": len(files) / total,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parts": timings,
        "threads": torch.get_num_threads(),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
