"""Reading Hugging Face checkpoint files without torch: Hub downloads, safetensors and
torch.save() zip state dicts, all as float32 numpy arrays (used by export_clip.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def hf_download(repo: str, filename: str, revision: str | None, missing_ok: bool = False) -> Path | None:
    """Download one file of a Hub repo (cached). With missing_ok, a file the repo lacks gives None."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover
        raise SystemExit(f"huggingface_hub is not installed ({exc}); pip install -r models/requirements.txt")
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision))
    except Exception as exc:  # network errors, gated or missing repos, missing files ...
        # the repo answered that it has no such file (not: the file is not in the offline cache)
        if type(exc).__name__ in ("RemoteEntryNotFoundError", "EntryNotFoundError"):
            if missing_ok:
                return None
            raise SystemExit(f"error: {repo!r} has no file {filename!r}") from None
        raise SystemExit(
            f"error: could not download {filename!r} of {repo!r} from the Hugging Face Hub:\n"
            f"  {type(exc).__name__}: {exc}\n"
            "Exporting a real checkpoint needs network access to huggingface.co once "
            "(or a populated HF cache / HF_HUB_OFFLINE=1 with the files already cached).\n"
            "Offline, use --random-init tiny|vit-b-32 for a model with random weights."
        ) from None


# safetensors dtype -> numpy dtype; BF16 is widened by hand (numpy has no bfloat16)
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read (some) tensors of a .safetensors file as float32 without any framework.

    The format is an 8-byte little-endian header length, a JSON header
    {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
    """
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name in (names if names is not None else list(header)):
        if name not in header:
            continue
        info = header[name]
        if info["dtype"] not in _ST_DTYPES:
            raise SystemExit(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        raw = np.frombuffer(mm[base + start: base + end], dtype=np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<"))
        if info["dtype"] == "BF16":
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = raw.astype(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def safetensors_keys(path: Path) -> list[str]:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return [k for k in header if k != "__metadata__"]


class _TorchStorage:
    def __init__(self, dtype, key):
        self.dtype, self.key = dtype, key


class _Opaque:
    """Stands in for any other class in a checkpoint read with other_objects=True: it
    keeps the pickled arguments and state as data and runs no code."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


def read_torch_bin(path: Path, other_objects: bool = False) -> dict:
    """Read a torch.save()d state dict (zip format, torch >= 1.6) without torch.

    Only what a plain state dict needs is understood: typed storages, _rebuild_tensor_v2,
    _rebuild_parameter, OrderedDict. Nothing else is unpickled: any other class is an
    error, or with other_objects (checkpoints that also pickle configs, e.g. Lightning's
    .ckpt) an inert _Opaque that keeps its data and runs no code.
    """
    import pickle
    import zipfile
    storage_dtypes = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
                      "BFloat16Storage": "bf16"}
    zf = zipfile.ZipFile(path)
    pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    root = pkl[: -len("data.pkl")]

    def rebuild_tensor(storage, offset, size, stride, *_args):
        raw = zf.read(f"{root}data/{storage.key}")
        if storage.dtype == "bf16":
            flat = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            flat = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<")).astype(np.float32)
        itemsize = flat.itemsize
        if len(size) == 0:
            return flat[offset:offset + 1].reshape(())
        return np.lib.stride_tricks.as_strided(flat[offset:], shape=tuple(size),
                                               strides=tuple(s * itemsize for s in stride)).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "collections" and name == "OrderedDict":
                import collections
                return collections.OrderedDict
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "torch._utils" and name == "_rebuild_parameter":
                return lambda data, requires_grad=False, hooks=None: data
            if module == "torch" and name in storage_dtypes:
                return storage_dtypes[name]
            if other_objects:
                return _Opaque
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")

        def persistent_load(self, pid):
            # ('storage', storage_type, key, location, numel)
            return _TorchStorage(pid[1], pid[2])

    return dict(Unpickler(zf.open(pkl)).load())
