"""The pre-flight check every real dataset passes before a run starts.

A corrupt file found at step k kills a run hours in (torchvision decodes lazily, ``datasets`` cannot skip a bad
row); so every image is decoded once up front and all problems are reported together in one ``DatasetError``.
A dataset that passed is marked in the cache by its fingerprint, so the next run skips the decoding. The check
holds one byte-sized batch of small decoded images at a time and stops a dataset whose files make the decoder
produce more than ``max_pixels`` pixels in all (a zip of tiny files that each inflate to 49 Mpx burns CPU, not RAM).
"""

from __future__ import annotations

import numpy as np

from .cache import is_marked, key_of, mark
from .images import MAX_DATASET_PIXELS, VALIDATE_SIDE, BadImage, rows_per_batch
from .table import DatasetError, ImageTable

MAX_LISTED = 20


def _listing(items: list[str], indent: str = "  ") -> str:
    shown = f"\n{indent}".join(items[:MAX_LISTED])
    more = f"\n{indent}... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"\n{indent}{shown}{more}"


def structure_problems(table: ImageTable) -> list[str]:
    """Counts that make every setting fail: empty domains, empty pools, fewer than two classes with images."""
    problems = []
    present = np.unique(table.labels) if len(table) else np.array([], dtype=int)
    if len(present) < 2:
        problems.append(f"{len(present)} class(es) have images; at least two are needed")
    for d, name in enumerate(table.domains):
        if not np.any(table.domain_ids == d):
            problems.append(f"domain {name!r} has no images (add images or remove it)")
    if len(table) and not np.any(~table.is_test):
        problems.append("the training pool is empty (too few images, or every image is in the test split)")
    if len(table) and not np.any(table.is_test):
        problems.append("the test pool is empty (too few images per domain for a hold-out)")
    return problems


class _Budget:
    """Decoded pixels so far against a dataset's budget; raises a DatasetError once it is spent."""

    def __init__(self, name: str, limit: int | None):
        self.name, self.limit, self.used = name, limit, 0

    def add(self, images: list) -> None:
        self.used += sum(int(getattr(im, "info", {}).get("decoded_pixels", 0)) for im in images)
        if self.limit is not None and self.used > self.limit:
            raise DatasetError(f"dataset {self.name} decodes to more than {self.limit:,} pixels in all; use fewer "
                               f"or smaller images (or raise --data max_dataset_pixels=N where you run it)")


def bad_images(table: ImageTable, batch: int | None = None, check=None, max_pixels: int | None = None) -> list[str]:
    """Every row that does not decode, as 'name: why' (batches first, one by one only where a batch fails).
    ``check(indices)`` replaces ``table.load`` when a builder has a cheaper full decode (small, JPEG draft)."""
    check = check or table.load
    batch = batch or rows_per_batch(VALIDATE_SIDE)
    budget = _Budget(table.name, max_pixels)
    bad: list[str] = []
    n = len(table)
    for start in range(0, n, batch):
        idx = np.arange(start, min(n, start + batch))
        try:
            budget.add(check(idx))
        except BadImage:
            for i in idx:
                try:
                    budget.add(check(np.asarray([i])))
                except BadImage as e:
                    bad.append(str(e))
    return bad


def validate_table(table: ImageTable, decode: bool = True, check=None,
                   max_pixels: int | None = MAX_DATASET_PIXELS) -> ImageTable:
    """Raise one :class:`DatasetError` listing everything wrong with ``table``; return it unchanged if fine."""
    problems = structure_problems(table)
    fp = (table.info or {}).get("fingerprint")
    key = key_of("validated", fp) if fp else None
    if decode and not (key and is_marked("validated", key)):
        bad = bad_images(table, check=check, max_pixels=max_pixels)
        if bad:
            problems.append(f"{len(bad)} image(s) cannot be read; fix or delete them:{_listing(bad, '    ')}")
        elif key and not problems:
            mark("validated", key, table.name)
    if problems:
        raise DatasetError(f"dataset {table.name} cannot be used:{_listing(problems)}")
    return table
