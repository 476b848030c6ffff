"""Which training rows each optimiser step sees: pooled over the sources, or the official per-domain batches.

``per_domain`` is the official loader (thuml/CLIPood converter_domainbed.py:56-58, ``get_forever_iter``: one
infinite loader of ``-b`` images per source domain, zipped and concatenated), so a step holds ``batch`` images from
every source domain and a large domain does not outweigh a small one. ``pooled`` draws ``batch`` images from the
union. Both are seeded epoch permutations, so a resumed run replays the same batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .world.scenes import stable_seed


def batch_indices(n: int, batch: int, step: int, seed: int, stream: str = "") -> np.ndarray:
    """Positions (into a pool of ``n``) of optimiser step ``step``: seeded epoch permutations, wrapped."""
    start = step * batch
    out: list[int] = []
    while len(out) < batch:
        epoch, pos = divmod(start + len(out), n)
        key = ("epoch", seed, epoch) if not stream else ("epoch", seed, stream, epoch)
        perm = np.random.default_rng(stable_seed(*key)).permutation(n)
        out.extend(perm[pos: pos + batch - len(out)].tolist())
    return np.asarray(out)


def make_sampler(train: np.ndarray, train_domains: np.ndarray, batch: int, seed: int,
                 kind: str = "pooled") -> Callable[[int], np.ndarray]:
    """step -> table rows of that step's batch (``batch`` per source domain with ``per_domain``)."""
    if kind == "pooled":
        return lambda step: train[batch_indices(len(train), batch, step, seed)]
    if kind != "per_domain":
        raise ValueError(f"unknown sampler {kind!r}")
    pools = [train[train_domains == d] for d in np.unique(train_domains)]

    def per_domain(step: int) -> np.ndarray:
        return np.concatenate([p[batch_indices(len(p), batch, step, seed, f"domain{i}")]
                               for i, p in enumerate(pools)])
    return per_domain
