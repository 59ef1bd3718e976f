#!/usr/bin/env python3
"""What the GPU check measures, from a run's tables and nvidia-smi's samples.

    tally.py compare RUN_CPU RUN_GPU [--tolerance 1e-4]
        The largest difference between the two runs' embeddings.parquet, per column
        (embedding, cls_attention, layer_cls_states), rows matched by (image_id,
        augmentation), absolute and relative to the row's largest value; exits 1 when a
        row is missing or a relative difference exceeds the tolerance.

    tally.py busy SAMPLES.csv LOG RUN
        nvidia-smi's utilization.gpu samples (`--query-gpu=timestamp,utilization.gpu,
        memory.used --format=csv,noheader,nounits`) over the whole process and over the
        encode stage alone (from its `encode` log line to its `inference loop` line, both
        printed with RUST_LOG=info), and the encode stage's variants per second: over
        that window and over the seconds the model ran (`model_s` of the last line).

Needs numpy and pyarrow (both in the device image's python3).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

import numpy as np
import pyarrow.dataset as ds

COLUMNS = ("embedding", "cls_attention", "layer_cls_states")


def load(run: str) -> tuple[list[tuple[int, str]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Row keys in sorted order, and per column its values [rows, width] and validity."""
    table = ds.dataset(f"{run}/embeddings.parquet").to_table()
    keys = list(zip(table.column("image_id").to_pylist(), table.column("augmentation").to_pylist()))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    columns = {}
    for name in (c for c in COLUMNS if c in table.column_names):
        column = table.column(name).combine_chunks()
        width = column.type.list_size
        flat = column.values.to_numpy(zero_copy_only=False)
        values = flat[column.offset * width:(column.offset + len(column)) * width].reshape(len(column), width)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        columns[name] = (values[order].astype(np.float64), valid[order])
    return [keys[i] for i in order], columns


def compare(run_a: str, run_b: str, tolerance: float) -> int:
    keys_a, a = load(run_a)
    keys_b, b = load(run_b)
    if keys_a != keys_b:
        print(f"FAIL: the runs hold different rows ({len(keys_a)} and {len(keys_b)}; "
              f"{len(set(keys_a) ^ set(keys_b))} in one only)")
        return 1
    status = 0
    for name, (va, valid_a) in a.items():
        if name not in b or b[name][0].shape != va.shape or (b[name][1] != valid_a).any():
            print(f"FAIL: {name} is missing, of another width or null elsewhere in {run_b}")
            return 1
        vb = b[name][0]
        diff = np.abs(va - vb)[valid_a]
        if diff.size == 0:
            continue
        # Relative to the row's largest magnitude: a random-init model's embeddings are
        # not of unit size.
        scale = np.maximum(np.abs(va[valid_a]).max(axis=1), np.finfo(np.float32).tiny)
        relative = float((diff.max(axis=1) / scale).max())
        ok = relative <= tolerance
        status |= not ok
        print(f"{'PASS' if ok else 'FAIL'}: {name}: max |difference| {diff.max():.3e}, {relative:.3e} of the "
              f"row's largest value (tolerance {tolerance:g}, {len(keys_a)} rows)")
    return status


def log_time(line: str) -> datetime | None:
    # tracing's default format starts with an RFC 3339 UTC timestamp (ANSI colours around it).
    m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        return None
    return datetime.fromisoformat(m.group(1)[:26]).replace(tzinfo=timezone.utc)


def busy(samples: str, log: str, run: str) -> int:
    start = end = model_s = None
    for line in open(log, encoding="utf-8", errors="replace"):
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if re.search(r": encode model=", plain) and start is None:
            start = log_time(plain)
        if "inference loop" in plain:
            end = log_time(plain)
            m = re.search(r"model_s=([0-9.e+-]+)", plain)
            model_s = float(m.group(1)) if m else None
    points = []
    for line in open(samples, encoding="utf-8"):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        # nvidia-smi prints local time; the device machines run in UTC.
        t = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        points.append((t, int(parts[1])))
    if not points:
        print("FAIL: no nvidia-smi samples")
        return 1
    whole = np.mean([u for _, u in points])
    print(f"GPU busy over the whole process: {whole:.1f}% ({len(points)} samples)")
    if start is None or end is None:
        print("no encode window in the log (RUST_LOG=info prints it)")
        return 1
    inside = [u for t, u in points if start <= t <= end]
    if not inside:
        print("FAIL: no sample inside the encode stage")
        return 1
    seconds = (end - start).total_seconds()
    print(f"GPU busy during the encode stage: {np.mean(inside):.1f}% ({len(inside)} samples, {seconds:.2f} s)")
    variants = ds.dataset(f"{run}/embeddings.parquet").count_rows()
    line = f"encode: {variants} variants, {variants / seconds:.0f}/s over the stage"
    if model_s:
        line += f", {variants / model_s:.0f}/s over the model's {model_s:.2f} s"
    print(line)
    return 0


def main() -> int:
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "compare":
        tolerance = float(args[args.index("--tolerance") + 1]) if "--tolerance" in args else 1e-4
        return compare(args[1], args[2], tolerance)
    if len(args) == 4 and args[0] == "busy":
        return busy(args[1], args[2], args[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
