"""numpy's layer-wise shift of a run, the reference for `layer_shift.parquet`.

For every image and every variant other than the original, and every layer state of
`layer_cls_states` (the class token after the pre-layernorm, then after each block):
the cosine similarity and the L2 distance between the variant's and the original's
state, in float64 from the stored float32 values. Reads `embeddings.parquet` (a
directory of parts) with pyarrow.dataset and prints JSON: a list of
[image_id, augmentation, layer, cosine, l2].

    python crates/metrics/reference/layer_shift.py RUN_DIR STATES
(STATES: the number of layer states, `model.layer_states[0]` in run.json)
"""

import json
import sys

import numpy as np
import pyarrow.dataset as ds


def main():
    run, states = sys.argv[1], int(sys.argv[2])
    table = ds.dataset(f"{run}/embeddings.parquet").to_table(
        columns=["image_id", "augmentation", "layer_cls_states"])
    ids = table.column("image_id").to_pylist()
    augs = table.column("augmentation").to_pylist()
    flat = table.column("layer_cls_states").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    rows = np.asarray(flat, dtype=np.float64).reshape(len(ids), states, -1)
    by_image = {}
    for i, (image, aug) in enumerate(zip(ids, augs)):
        by_image.setdefault(image, {})[aug] = rows[i]
    out = []
    for image, variants in by_image.items():
        original = variants["original"]
        for aug, states_of in variants.items():
            if aug == "original":
                continue
            dot = np.sum(original * states_of, axis=1)
            norms = np.linalg.norm(original, axis=1) * np.linalg.norm(states_of, axis=1)
            cosine = np.clip(dot / norms, -1.0, 1.0)
            l2 = np.linalg.norm(original - states_of, axis=1)
            for layer in range(len(cosine)):
                out.append([image, aug, layer, float(cosine[layer]), float(l2[layer])])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
