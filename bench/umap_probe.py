"""UMAP of N embeddings as the app's Embeddings view computes it, timed in a fresh process.

Run as ``python -m bench.umap_probe --n 2000`` (the suite spawns it with a fresh ``NUMBA_CACHE_DIR`` for the cold
figure); prints one JSON line: import time, first call (numba JIT compile included), warm calls, peak RSS. Uses
``app.projection.project`` when the app package is importable (the code the app runs), otherwise :func:`project`,
a copy of its parameters (UMAP on a precomputed cosine-distance matrix, 15 neighbours, min_dist 0.1, 200 epochs).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
import warnings

import numpy as np


def project(features: np.ndarray, method: str = "umap", seed: int = 0, key=None) -> np.ndarray:
    """Stand-in for ``app.projection.project`` (same UMAP parameters) when the app is not importable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

        f = np.asarray(features, dtype=np.float32)
        d = np.clip(1.0 - f @ f.T, 0.0, 2.0).astype(np.float32)
        np.fill_diagonal(d, 0.0)
        nn = int(min(15, max(2, len(f) - 1)))
        return umap.UMAP(n_neighbors=nn, min_dist=0.1, metric="precomputed", random_state=seed,
                         init="spectral" if len(f) > nn + 2 else "random", n_epochs=200).fit_transform(d)


def embeddings(n: int, dim: int, seed: int, clusters: int = 16) -> np.ndarray:
    """L2-normalised points around ``clusters`` directions (embeddings of a 16-class eval split look like this)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.8 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.umap_probe")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--warm", type=int, default=3, help="warm repeats after the first (cold) call")
    a = p.parse_args(argv)
    try:
        from app.projection import project as proj

        where = "app.projection.project"
    except Exception:  # noqa: BLE001 - the app is optional here
        proj, where = project, "bench.umap_probe.project"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # noqa: F401
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    proj(embeddings(a.n, a.dim, 0), "umap", 0)
    t_cold = time.perf_counter() - t0
    warm = []
    for i in range(a.warm):
        x = embeddings(a.n, a.dim, i + 1)  # new points each time: nothing cached
        t0 = time.perf_counter()
        proj(x, "umap", 0)
        warm.append(time.perf_counter() - t0)
    print(json.dumps({"points": a.n, "dim": a.dim, "code": where, "import_s": t_import, "first_call_s": t_cold,
                      "warm_s": statistics.median(warm) if warm else None, "warm_all_s": warm,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
