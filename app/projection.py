"""2-D maps of embeddings for the Embeddings view: UMAP (umap-learn) or PCA, plus where class texts land.

UMAP runs on a precomputed cosine-distance matrix: for the < 4096 points shown here umap-learn would otherwise call
a Python-level metric per pair (seconds), while the matrix costs milliseconds. Class texts are placed at the median
position of their ``k`` nearest images (cosine), i.e. where the prompt points in the image map; CLIP's modality gap
would put them in a far-away cluster if they were embedded together with the images. ``warm_up()`` pays numba's JIT
once per process. umap is imported lazily: it is slow to import and only this view needs it.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import numpy as np

_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_LOCK = threading.Lock()
_UMAP_LOCK = threading.Lock()  # numba-compiled UMAP is not worth running twice at once on a few cores


def _umap(features: np.ndarray, seed: int, n_neighbors: int = 30, min_dist: float = 0.25) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

        d = np.clip(1.0 - features @ features.T, 0.0, 2.0).astype(np.float32)
        np.fill_diagonal(d, 0.0)
        nn = int(min(n_neighbors, max(2, len(features) - 1)))
        with _UMAP_LOCK:
            return umap.UMAP(n_neighbors=nn, min_dist=min_dist, metric="precomputed", random_state=seed,
                             init="spectral" if len(features) > nn + 2 else "random",
                             n_epochs=200).fit_transform(d)


def _pca(features: np.ndarray) -> np.ndarray:
    x = features - features.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def project(features: np.ndarray, method: str = "umap", seed: int = 0, key: tuple | None = None) -> np.ndarray:
    """(N, 2) coordinates of L2-normalised features; cached under ``key`` (which must name everything the features
    depend on) when given."""
    ck = (key, method, seed) if key is not None else None
    if ck is not None:
        with _LOCK:
            if ck in _CACHE:
                _CACHE.move_to_end(ck)
                return _CACHE[ck]
    f = np.asarray(features, dtype=np.float32)
    if len(f) < 4:
        out = np.zeros((len(f), 2), dtype=np.float32)
    else:
        out = (_umap(f, seed) if method == "umap" else _pca(f)).astype(np.float32)
    if ck is not None:
        with _LOCK:
            _CACHE[ck] = out
            while len(_CACHE) > 32:
                _CACHE.popitem(last=False)
    return out


def place_texts(image_features: np.ndarray, coords: np.ndarray, text_features: np.ndarray, k: int = 10) -> np.ndarray:
    """(K, 2) positions of class texts: the median map position of each text's ``k`` most similar images (the
    median stays on an island of the map where a mean could fall between two)."""
    sims = np.asarray(text_features, dtype=np.float32) @ np.asarray(image_features, dtype=np.float32).T
    k = max(1, min(k, sims.shape[1]))
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.median(np.asarray(coords)[nearest], axis=1)


def warm_up() -> None:
    """Import umap and compile its kernels on a tiny problem (seconds, once per process)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    _umap(x, 0, n_neighbors=5)
