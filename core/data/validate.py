"""The pre-flight check every real dataset passes before a run starts.

A corrupt file found at step k kills a run hours in (torchvision decodes lazily, ``datasets`` cannot skip a bad
row); so every image is decoded once up front and all problems are reported together in one ``DatasetError``.
A dataset that passed is marked in the cache by its fingerprint, so the next run skips the decoding.
"""

from __future__ import annotations

import numpy as np

from .cache import is_marked, key_of, mark
from .images import BadImage
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


def bad_images(table: ImageTable, batch: int = 64, check=None) -> list[str]:
    """Every row that does not decode, as 'name: why' (batches first, one by one only where a batch fails).
    ``check(indices)`` replaces ``table.load`` when a builder has a cheaper full decode (JPEG draft mode)."""
    check = check or table.load
    bad: list[str] = []
    n = len(table)
    for start in range(0, n, batch):
        idx = np.arange(start, min(n, start + batch))
        try:
            check(idx)
        except BadImage:
            for i in idx:
                try:
                    check(np.asarray([i]))
                except BadImage as e:
                    bad.append(str(e))
    return bad


def validate_table(table: ImageTable, decode: bool = True, check=None) -> ImageTable:
    """Raise one :class:`DatasetError` listing everything wrong with ``table``; return it unchanged if fine."""
    problems = structure_problems(table)
    fp = (table.info or {}).get("fingerprint")
    key = key_of("validated", fp) if fp else None
    if decode and not (key and is_marked("validated", key)):
        bad = bad_images(table, check=check)
        if bad:
            problems.append(f"{len(bad)} image(s) cannot be read; fix or delete them:{_listing(bad, '    ')}")
        elif key and not problems:
            mark("validated", key, table.name)
    if problems:
        raise DatasetError(f"dataset {table.name} cannot be used:{_listing(problems)}")
    return table
