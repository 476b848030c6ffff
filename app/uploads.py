"""Gradio's upload cache under a byte quota. ``delete_cache`` (set in ``app/ui.py``) only ages files out; a visitor
posting fifty 49 MB files in a minute would still fill the disk, so a sweeper deletes the oldest files this app put in
the cache (uploads, saved outputs) whenever their total passes the quota. A deleted upload that a run still names
fails with "zip ... does not exist" (upload it again), never silently."""

from __future__ import annotations

import os
import threading
import weakref


def _files(demo) -> list[tuple[float, int, str]]:
    """(ctime, disk bytes, path) of every file gradio recorded for ``demo`` that still exists."""
    out = []
    for temp_set in list(getattr(demo, "temp_file_sets", [])):
        for f in list(temp_set):
            try:
                st = os.lstat(f)
            except OSError:
                continue
            out.append((st.st_ctime, st.st_blocks * 512, f))
    return out


def usage(demo) -> int:
    return sum(size for _, size, _ in _files(demo))


def sweep(demo, max_bytes: int) -> list[str]:
    """Delete the oldest files of ``demo``'s upload/output cache until it holds at most ``max_bytes``."""
    files = sorted(_files(demo))
    keep = set()
    for block in getattr(demo, "blocks", {}).values():
        keep.update(getattr(block, "keep_in_cache", set()))
    total = sum(size for _, size, _ in files)
    removed = []
    for _, size, f in files:
        if total <= max_bytes:
            break
        if f in keep:
            continue
        try:
            os.remove(f)
        except OSError:
            continue
        total -= size
        removed.append(f)
        for temp_set in demo.temp_file_sets:
            temp_set.discard(f)
    return removed


def start_sweeper(demo, max_bytes: int, every_s: float = 5.0) -> threading.Thread:
    """A daemon thread sweeping ``demo``'s cache every ``every_s`` seconds; it ends with the app object."""
    ref = weakref.ref(demo)
    wake = threading.Event()

    def loop():
        while not wake.wait(every_s):
            d = ref()
            if d is None:
                return
            try:
                sweep(d, max_bytes)
            except Exception:  # noqa: BLE001 - a sweep that fails is retried next time; serving goes on
                pass
            del d

    t = threading.Thread(target=loop, name="clipood-upload-sweeper", daemon=True)
    t.start()
    return t
