"""Per-browser-session state that cannot live in ``gr.State`` (threads, events), keyed by ``session_hash``.

Nothing here is visible to another session: each entry is reached only through the request's own session hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class SessionState:
    stop: threading.Event = field(default_factory=threading.Event)
    idle: threading.Event = field(default_factory=threading.Event)  # set while no run of this session is active
    active: str | None = None  # run id being streamed
    runs: list[str] = field(default_factory=list)  # run ids started in this session, oldest first

    def __post_init__(self):
        self.idle.set()

    def begin(self, run_id: str) -> None:
        self.stop.clear()
        self.idle.clear()
        self.active = run_id
        if run_id not in self.runs:
            self.runs.append(run_id)

    def end(self) -> None:
        self.active = None
        self.idle.set()


class Sessions:
    """A bounded map session_hash -> :class:`SessionState` (least recently used idle sessions are dropped)."""

    def __init__(self, capacity: int = 2000):
        self.capacity = capacity
        self._d: OrderedDict[str, SessionState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | None) -> SessionState:
        key = key or "local"
        with self._lock:
            s = self._d.get(key)
            if s is None:
                s = self._d[key] = SessionState()
                for k in list(self._d):
                    if len(self._d) <= self.capacity:
                        break
                    if self._d[k].active is None:
                        del self._d[k]
            self._d.move_to_end(key)
            return s

    def drop(self, key: str | None) -> None:
        """Page closed: stop its run (it keeps a resumable checkpoint) and forget the session."""
        with self._lock:
            s = self._d.pop(key or "local", None)
        if s is not None:
            s.stop.set()

    def active_runs(self) -> set[str]:
        """Run ids being streamed right now (by any session; ids only, for labelling run lists)."""
        with self._lock:
            return {s.active for s in self._d.values() if s.active}

    def __len__(self) -> int:
        return len(self._d)
