"""Shared last step of every real dataset: caps, the fixed hold-out split, n-shot sampling, validation.

Builders (folders, zips, hub) only say what each row is (label, domain, how to fetch its bytes and what to call it).
The test pool is drawn with a fixed ``split_seed`` (DomainBed style), never the run seed, so runs with different
seeds are evaluated on the same images; ``shots`` subsamples the training pool only, by the run seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..world.scenes import stable_seed
from .images import DECODE_SIDE, MAX_DATASET_PIXELS, VALIDATE_SIDE, decode_image
from .table import DatasetError, ImageTable, split_pool
from .validate import validate_table

Fetch = Callable[[np.ndarray], list]  # row indices -> [(name, path-or-bytes), ...]


def int_option(name: str, value, minimum: int = 0, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise DatasetError(f"--data {name}: must be an integer >= {minimum} (got {value!r})")
    return int(value)


def bool_option(name: str, value) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise DatasetError(f"--data {name}: must be true or false (got {value!r})")


def float_option(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise DatasetError(f"--data {name}: must be a number in [{lo}, {hi}] (got {value!r})")
    return float(value)


def templates_option(v) -> tuple[str, ...]:
    """Prompt templates: one string or a list of strings, each with one ``{}`` for the class name."""
    t = (v,) if isinstance(v, str) else tuple(v or ())
    if not t or not all(isinstance(x, str) and "{}" in x for x in t):
        raise DatasetError(f"--data templates: each template needs a '{{}}' for the class name (got {v!r})")
    return t


def cap_per_pair(labels: np.ndarray, domain_ids: np.ndarray, cap: int | None, seed: int,
                 pool: np.ndarray | None = None) -> np.ndarray:
    """Boolean keep-mask with at most ``cap`` rows per (class, domain) [within ``pool``], chosen by ``seed``."""
    keep = np.ones(len(labels), dtype=bool)
    if not cap:
        return keep
    rng = np.random.default_rng(seed)
    considered = np.ones(len(labels), dtype=bool) if pool is None else pool
    pair = labels.astype(np.int64) * (int(domain_ids.max(initial=0)) + 1) + domain_ids
    for p in np.unique(pair[considered]):
        idx = np.flatnonzero(considered & (pair == p))
        if len(idx) > cap:
            keep[idx[rng.permutation(len(idx))[cap:]]] = False
    return keep


def finish_table(name: str, classes: list[str], domains: list[str], labels, domain_ids, fetch: Fetch, *,
                 seed: int = 0, shots=None, max_per_class_domain=None, test_fraction=0.2, split_seed=0,
                 fixed_test: np.ndarray | None = None, templates: tuple[str, ...] = ("a photo of a {}.",),
                 info: dict | None = None, fingerprint=None, validate: bool = True,
                 max_dataset_pixels=MAX_DATASET_PIXELS) -> ImageTable:
    labels = np.asarray(labels, dtype=np.int64)
    domain_ids = np.asarray(domain_ids, dtype=np.int64)
    shots = int_option("shots", shots)
    cap = int_option("max_per_class_domain", max_per_class_domain)
    split_seed = int_option("split_seed", split_seed, allow_none=False)
    test_fraction = float_option("test_fraction", test_fraction, 0.0, 0.9)
    seed = int_option("seed", seed, allow_none=False)
    max_dataset_pixels = int_option("max_dataset_pixels", max_dataset_pixels, 1)

    rows = np.flatnonzero(cap_per_pair(labels, domain_ids, cap, stable_seed("cap", split_seed)))
    labels, domain_ids = labels[rows], domain_ids[rows]
    if fixed_test is not None:
        is_test = np.asarray(fixed_test, dtype=bool)[rows]
    else:
        is_test = split_pool(domain_ids, test_fraction, split_seed)
    if shots:
        keep = cap_per_pair(labels, domain_ids, shots, stable_seed("shots", seed), pool=~is_test)
        rows, labels, domain_ids, is_test = rows[keep], labels[keep], domain_ids[keep], is_test[keep]

    def load(indices, side: int = DECODE_SIDE) -> list:
        picked = rows[np.asarray(indices, dtype=np.int64)]
        return [decode_image(src, nm, side=side) for nm, src in fetch(picked)]

    info = dict(info or {})
    info.update(images=int(len(rows)), test_images=int(is_test.sum()), shots=shots, max_per_class_domain=cap,
                split_seed=split_seed, test_fraction=None if fixed_test is not None else test_fraction)
    if fingerprint is not None:
        info["fingerprint"] = [fingerprint, cap, split_seed, test_fraction, fixed_test is not None, shots,
                               seed if shots else None]
    table = ImageTable(name, list(classes), list(domains), labels, domain_ids, is_test, load, tuple(templates),
                       info=info)
    # validation decodes every byte; JPEG draft mode (DCT scaling) skips only the full-size pixel output
    return validate_table(table, check=lambda idx: load(idx, side=VALIDATE_SIDE),
                          max_pixels=max_dataset_pixels) if validate else table
