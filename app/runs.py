"""The saved runs a session may see and open. Run ids come from users: they are validated and resolved inside the
runs root here, never used as paths as given."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.runstore import RunStore, check_run_id, list_runs, new_run_id

from .records import RunRecord

STALE_S = 120
LABEL_FILE = "label.txt"  # the user's name for a run (Compare view); one line, at most LABEL_MAX characters
LABEL_MAX = 40  # an unfinished run whose event log has been quiet this long is not going anywhere


class RunAccessError(ValueError):
    """A run id that is malformed, unknown, or not visible to this session."""


class RunStorageFull(ValueError):
    """The runs folder is at the server's quota and nothing can be evicted (every run in it is still going)."""


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _links(run: Path) -> bool:
    """Whether a run folder holds a symbolic link (a planted ``config.json -> /etc/...``): never followed, even
    locally."""
    for d in (run, run / "checkpoints"):
        try:
            if any(e.is_symlink() for e in os.scandir(d)):
                return True
        except OSError:
            pass
    return False


class RunIndex:
    """``max_bytes`` (a public server's disk quota) evicts the oldest runs that are not going before a new one
    starts; ``active`` names the runs sessions of this process are streaming."""

    def __init__(self, root: Path, shared: bool = True, max_bytes: int | None = None,
                 active: Callable[[], set[str]] | None = None, extra_bytes: Callable[[], int] | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.shared = shared
        self.max_bytes = max_bytes
        self.active = active or set
        self.extra_bytes = extra_bytes or (lambda: 0)  # the server's other disk (caches, uploads) under this quota
        self._lock = threading.Lock()

    def new(self, method: str, dataset: str) -> tuple[str, Path]:
        """A fresh run id and folder path, after making room under the quota (raises :class:`RunStorageFull`)."""
        self.make_room()
        rid = new_run_id(method, dataset.split(":")[0])
        return rid, self.root / rid

    def make_room(self) -> list[str]:
        """Delete the oldest runs that are not going until the folder is under 90 % of the quota; the evicted ids."""
        if self.max_bytes is None:
            return []
        with self._lock:
            runs = [p for p in list_runs(self.root) if not p.is_symlink()]  # (ids start with their start time)
            sizes = {p.name: folder_bytes(p) for p in runs}
            total = sum(sizes.values()) + self.extra_bytes()
            if total <= self.max_bytes:
                return []
            evicted, kept_going = [], False
            for p in runs:
                if total <= 0.9 * self.max_bytes:
                    break
                if self.going(RunStore(p)):
                    kept_going = True
                    continue
                shutil.rmtree(p, ignore_errors=True)
                total -= sizes[p.name]
                evicted.append(p.name)
            if total > self.max_bytes and kept_going:  # (caches over the quota are trimmed by their own sweeper)
                raise RunStorageFull("this server's run storage is full with runs still going; try again when one "
                                     "finishes")
            return evicted

    def _dir(self, run_id: str) -> Path:
        try:
            check_run_id(str(run_id))
        except ValueError as e:
            raise RunAccessError(str(e)) from None
        p = self.root / run_id
        if p.is_symlink() or not (p / "config.json").is_file() or p.resolve().parent != self.root or _links(p):
            raise RunAccessError(f"no saved run {run_id!r}")
        return p

    def visible(self, own: list[str] | None = None) -> list[str]:
        """Run ids this session may list, newest first: every saved run when runs are shared, else its own."""
        if self.shared:
            ids = [p.name for p in list_runs(self.root) if not p.is_symlink()]
        else:
            ids = []
            for r in own or []:
                try:
                    self._dir(r)
                    ids.append(r)
                except RunAccessError:
                    pass
        return sorted(set(ids), reverse=True)

    def path(self, run_id: str, own: list[str] | None = None) -> Path:
        """The folder of a run this session may open (raises :class:`RunAccessError` otherwise)."""
        p = self._dir(run_id)
        if not self.shared and run_id not in (own or []):
            raise RunAccessError(f"no saved run {run_id!r}")
        return p

    def going(self, store: RunStore) -> bool:
        """Streamed by a session here, or unfinished with a recently written event log (a run that is stopping after
        its page closed, or one a CLI process writes into the same folder)."""
        return store.dir.name in self.active() or not (store.summary_path.exists() or self.interrupted(store))

    def interrupted(self, store: RunStore) -> bool:
        """No summary, not going in this process, and its event log quiet for a while: the server died mid-run
        (restart, crash, SIGKILL). Such a run can be resumed from its last checkpoint."""
        if store.summary_path.exists() or store.dir.name in self.active():
            return False
        try:
            return time.time() - store.events_path.stat().st_mtime >= STALE_S
        except OSError:
            return True

    def describe(self, run_id: str, own: list[str] | None = None) -> tuple[str, str]:
        """(method, status) from the small config/summary files (no event log read): for run lists."""
        store = RunStore(self.path(run_id, own))
        summary = store.read_summary() or {}
        method = (summary.get("config") or store.read_config()).get("method", "?")
        return method, summary.get("status") or ("interrupted" if self.interrupted(store) else "running")

    def label(self, run_id: str, own: list[str] | None = None) -> str:
        try:
            return (self.path(run_id, own) / LABEL_FILE).read_text(encoding="utf-8").strip()[:LABEL_MAX]
        except (OSError, UnicodeDecodeError):
            return ""

    def set_label(self, run_id: str, label: str, own: list[str] | None = None) -> str:
        """Name a run (empty: remove its name); control characters are dropped and the name is cut to LABEL_MAX."""
        clean = "".join(ch for ch in str(label or "") if ch.isprintable()).strip()[:LABEL_MAX]
        p = self.path(run_id, own) / LABEL_FILE
        if clean:
            p.write_text(clean, encoding="utf-8")
        else:
            p.unlink(missing_ok=True)
        return clean

    def record(self, run_id: str, own: list[str] | None = None) -> RunRecord:
        store = RunStore(self.path(run_id, own))
        rec = RunRecord.from_events(store.read_events(), run_id=run_id, summary=store.read_summary())
        rec.label = self.label(run_id, own)
        if rec.finish is None and self.interrupted(store):
            at = (f"its last checkpoint (step {rec.last_checkpoint_step})" if rec.last_checkpoint_step
                  else "the start (no checkpoint was written)")
            rec.finish = {"status": "interrupted",
                          "reason": f"the server stopped during this run; press Resume to continue from {at}"}
        return rec
