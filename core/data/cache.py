"""On-disk caches that make a second run on the same data start fast: eval tensors, validation marks, unzips.

Root: ``$CLIPOOD_CACHE`` (default ``.cache/`` in the repo, gitignored); ``CLIPOOD_CACHE=off`` disables the eval
and validation caches. Keys are hashes of everything that changes the content, so a stale entry is never read:
a table's ``info["fingerprint"]`` (files or hub revision, caps, shots, split seed), the row indices, and the
preprocessing (image size and the pipeline's resize code version). The model itself is not part of the key: the
cached tensors are uint8 images before normalisation, identical for every model with the same input size.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
PREPROCESS_VERSION = "open-clip-eval-geometry-v2"  # bump when pipeline.raw changes


def cache_root() -> Path | None:
    v = os.environ.get("CLIPOOD_CACHE", "")
    if v.lower() in ("off", "0", "none", "false"):
        return None
    return Path(v).expanduser() if v else REPO_ROOT / ".cache"


def key_of(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def is_marked(kind: str, key: str) -> bool:
    root = cache_root()
    return root is not None and (root / kind / key).is_file()


def mark(kind: str, key: str, note: str = "") -> None:
    root = cache_root()
    if root is None:
        return
    p = root / kind / key
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(note)
    os.replace(tmp, p)


def eval_images(table, indices: np.ndarray, pipeline, batch: int | None = None) -> torch.Tensor:
    """uint8 (N, 3, S, S) eval images of ``table`` rows ``indices``: from the cache when the table has a
    fingerprint and the entry exists, else computed (and stored). Decoded in byte-sized batches."""
    from ..io import load_safetensors, save_safetensors
    from . import quota
    from .images import rows_per_batch

    batch = batch or rows_per_batch()

    def compute() -> torch.Tensor:
        parts = [pipeline.raw(table.load(indices[i:i + batch])) for i in range(0, len(indices), batch)]
        return torch.cat(parts) if parts else torch.zeros((0, 3, pipeline.size, pipeline.size), dtype=torch.uint8)

    fp = (table.info or {}).get("fingerprint")
    root = cache_root()
    if not fp or root is None:
        return compute()
    idx_hash = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()
    key = key_of(fp, idx_hash, pipeline.size, PREPROCESS_VERSION, pipeline.interpolation, pipeline.resize_mode)
    path = root / "eval" / f"{key}.safetensors"
    if path.is_file():
        try:
            x = load_safetensors(path)["images"]
            if x.dtype == torch.uint8 and x.shape == (len(indices), 3, pipeline.size, pipeline.size):
                quota.touch(path)
                return x
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never fatal
            pass
    x = compute()
    try:
        save_safetensors({"images": x.contiguous()}, path, metadata={"dataset": str(table.name)})
        quota.trim(root, keep=(path,))
    except OSError:
        pass  # read-only or full disk: the run goes on without caching
    return x
