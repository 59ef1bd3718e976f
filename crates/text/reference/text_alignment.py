"""numpy's text alignment of a run, the reference for the text stage's tables.

From the run's stored embeddings (`embeddings.parquet`), the prompt embeddings the text
stage stored (`text_embeddings.parquet`), and the settings `run.json` records (labels,
templates, keywords, captions file) plus the model's `logit_scale` (its model.json),
recomputes in float64:

  zero_shot          per image x variant: argmax label, its softmax probability over
                     exp(logit_scale) * cos(image, class), flipped (top-1 differs from the
                     original's), KL(original || variant); a class is the normalised mean
                     of its templates' normalised prompt embeddings
  keyword_alignment  per image x augmentation x keyword: cos(variant, kw) - cos(original, kw)
  caption_alignment  per captioned image x variant: cos(variant, own caption), minus the
                     original's, and 1 + the number of the run's captions more similar

Prints JSON {"zero_shot": [...], "keyword": [...], "caption": [...]}.

    python crates/text/reference/text_alignment.py RUN_DIR
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

HERE = Path(__file__).resolve().parent


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def read_labels(source):
    path = HERE.parent / "labels/cifar100.txt" if source == "cifar100" else Path(source)
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(line)
    return names


def main():
    run = Path(sys.argv[1])
    manifest = json.loads((run / "run.json").read_text())
    text = manifest["text"]
    model = json.loads((Path(manifest["model"]["dir"]) / "model.json").read_text())
    scale = np.exp(model["logit_scale"])

    prompts = ds.dataset(run / "text_embeddings.parquet").to_table()
    prompt_vec = dict(zip(prompts.column("prompt").to_pylist(),
                          unit(np.stack(prompts.column("embedding").to_numpy(zero_copy_only=False)))))
    labels = read_labels(text["labels"])
    classes = np.stack([unit(np.mean([prompt_vec[t.replace("{}", l)] for t in text["templates"]], axis=0))
                        for l in labels])
    keywords = sorted({k for ks in text["keywords"].values() for k in ks})
    kw = np.stack([prompt_vec[k] for k in keywords]) if keywords else np.zeros((0, classes.shape[1]))

    images = ds.dataset(run / "images.parquet").to_table()
    path_of = dict(zip(images.column("image_id").to_pylist(), images.column("path").to_pylist()))
    captions = {}
    if text.get("captions"):
        with open(text["captions"], newline="") as f:
            for row in csv.DictReader(f):
                p, c = row.get("path", ""), (row.get("caption") or "").strip()
                if p and c and p not in captions:
                    captions[p] = c
    captioned = sorted(i for i, p in path_of.items() if p in captions)
    cap = np.stack([prompt_vec[captions[path_of[i]]] for i in captioned]) if captioned else None
    cap_row = {i: j for j, i in enumerate(captioned)}

    table = ds.dataset(run / "embeddings.parquet").to_table(columns=["image_id", "augmentation", "embedding"])
    emb = unit(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)))
    by_image = {}
    for i, (image, aug) in enumerate(zip(table.column("image_id").to_pylist(),
                                         table.column("augmentation").to_pylist())):
        by_image.setdefault(image, {})[aug] = emb[i]

    def log_softmax(e):
        logits = scale * classes @ e
        m = logits.max()
        return logits - (m + np.log(np.exp(logits - m).sum()))

    out = {"zero_shot": [], "keyword": [], "caption": []}
    for image, variants in by_image.items():
        if "original" not in variants:
            continue
        o = variants["original"]
        lo = log_softmax(o)
        top_o = int(np.argmax(lo))
        for aug, v in variants.items():
            lv = log_softmax(v)
            top = int(np.argmax(lv))
            kl = max(0.0, float(np.sum(np.exp(lo) * (lo - lv))))
            out["zero_shot"].append([image, aug, labels[top], float(np.exp(lv[top])), top != top_o, kl])
            if aug != "original":
                for k, d in zip(keywords, kw @ v - kw @ o):
                    out["keyword"].append([image, aug, k, float(d)])
            if image in cap_row:
                j = cap_row[image]
                sims = cap @ v
                rank = 1 + int(np.sum(np.delete(sims, j) > sims[j]))
                out["caption"].append([image, aug, float(sims[j]), float(sims[j] - cap[j] @ o), rank])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
