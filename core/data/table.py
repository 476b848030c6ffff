"""The one shape every dataset takes: an image table with labels, domains and a train/test pool.

Toy worlds, hub datasets, folders and zips all become an :class:`ImageTable`; settings and splits
(``core/data/splits.py``) and the image pipeline (``core/data/pipeline.py``) only ever see this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class DatasetError(ValueError):
    """A dataset cannot be used as asked; the message says what to fix."""


@dataclass
class ImageTable:
    name: str
    classes: list[str]
    domains: list[str]
    labels: np.ndarray  # (N,) int class index
    domain_ids: np.ndarray  # (N,) int domain index
    is_test: np.ndarray  # (N,) bool: True = test pool, False = train pool
    load: Callable[[np.ndarray], list]  # indices -> list of images (uint8 CHW tensors or PIL images)
    templates: tuple[str, ...] = ("a photo of a {}.",)
    default_sources: tuple[str, ...] = ()
    default_targets: tuple[str, ...] = ()
    default_base: tuple[str, ...] = ()  # base classes of the open-class settings (else: first half in label order)
    info: dict = field(default_factory=dict)  # e.g. the toy world's knobs, shown by the UI

    def __post_init__(self):
        n = len(self.labels)
        if not (len(self.domain_ids) == len(self.is_test) == n):
            raise DatasetError(f"{self.name}: labels, domains and pools differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per domain and class (for previews and validation)."""
        out: dict[str, dict[str, int]] = {}
        for d, dn in enumerate(self.domains):
            m = self.domain_ids == d
            out[dn] = {cn: int(((self.labels == c) & m).sum()) for c, cn in enumerate(self.classes)}
        return out


def split_pool(domain_ids: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Per-domain random hold-out (DomainBed style, 80/20 by default): True marks the test pool."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(domain_ids), dtype=bool)
    for d in np.unique(domain_ids):
        idx = np.flatnonzero(domain_ids == d)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * test_fraction))
        is_test[idx[:k]] = True
    return is_test
