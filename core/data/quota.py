"""A disk quota for the on-disk caches (unpacked zips, eval tensors, validation marks): least recently used first.

Every distinct zip unpacks into its own folder and every dataset adds eval tensors, so without a quota a public
server's disk fills one upload at a time. Sizes are real disk use (allocated blocks: 40k one-byte files cost 160 MB,
not 40 kB). Use is recorded by touching the entry (so the order survives restarts); entries a live dataset of this
process still reads are pinned and never evicted.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import weakref
from collections import Counter
from pathlib import Path

from .cache import cache_root

QUOTA_BYTES = 16 << 30  # default: twice the largest zip allowed (archive.MAX_BYTES)
KINDS = ("zips", "eval", "validated")
TEMP_GRACE_S = 3600  # a half-written ".<sha>.*" unpack folder this old belongs to a process that died

_quota: list[int | None] = [QUOTA_BYTES]
_pins: Counter = Counter()
_lock = threading.Lock()


def set_quota(max_bytes: int | None) -> None:
    """The cache's byte quota for this process (None: unlimited); a public server sets it from its disk budget."""
    _quota[0] = None if max_bytes is None else int(max_bytes)


def quota() -> int | None:
    return _quota[0]


def disk_bytes(path: Path) -> int:
    """Allocated bytes of a file or a folder tree (symlinks not followed), directories included."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    total = st.st_blocks * 512
    if os.path.isdir(path) and not os.path.islink(path):
        for top, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    total += os.lstat(os.path.join(top, n)).st_blocks * 512
                except OSError:
                    pass
    return total


def touch(path: Path) -> None:
    """Record a use of a cache entry (its mtime orders eviction)."""
    try:
        os.utime(path)
    except OSError:
        pass


def pin(owner: object, path: Path) -> None:
    """Keep ``path`` out of eviction while ``owner`` (e.g. the dataset reading it) is alive."""
    key = str(Path(path).resolve())
    with _lock:
        _pins[key] += 1
    weakref.finalize(owner, _unpin, key)


def pinned(path: Path) -> bool:
    with _lock:
        return _pins.get(str(Path(path).resolve()), 0) > 0


def _unpin(key: str) -> None:
    with _lock:
        _pins[key] -= 1
        if _pins[key] <= 0:
            del _pins[key]


def entries(root: Path | None = None) -> list[Path]:
    """The evictable entries: each unpacked zip folder, eval tensor file and validation mark."""
    root = root or cache_root()
    out = []
    for kind in KINDS:
        d = root / kind if root else None
        if d is None or not d.is_dir():
            continue
        for p in d.iterdir():
            if p.name.startswith(".") and time.time() - _mtime(p) < TEMP_GRACE_S:
                continue  # an unpack in progress
            out.append(p)
    return out


def _mtime(p: Path) -> float:
    marker = p / ".complete"
    for q in (marker, p):
        try:
            return os.lstat(q).st_mtime
        except OSError:
            continue
    return 0.0


def usage(root: Path | None = None) -> int:
    """Disk bytes held by the cache (every kind, temp folders included)."""
    root = root or cache_root()
    return sum(disk_bytes(root / k) for k in KINDS) if root else 0


def trim(root: Path | None = None, keep: tuple[Path, ...] = ()) -> list[Path]:
    """Delete least recently used entries (not pinned, not in ``keep``) until the cache is within its quota."""
    root = root or cache_root()
    limit = quota()
    if root is None or limit is None:
        return []
    with _lock:
        pinned = set(_pins) | {str(Path(k).resolve()) for k in keep}
    sized = [(p, disk_bytes(p)) for p in entries(root)]
    total = usage(root)
    removed = []
    for p, size in sorted(sized, key=lambda e: _mtime(e[0])):
        if total <= limit:
            break
        if str(p.resolve()) in pinned:
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        total -= size
        removed.append(p)
    return removed
