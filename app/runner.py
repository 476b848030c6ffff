"""Streams one engine run as :class:`RunRecord` snapshots, throttled for the browser, and never loses the run.

The engine runs on a thread of its own and queues its events, so it keeps training while the consumer draws a
snapshot (drawn between steps, the figures stalled the run). If the consumer goes away (Stop with ``cancels=``, a
closed tab, a dropped connection) the generator is closed: the stop event is set and the engine ends on its thread,
so it still writes its resumable checkpoint and its ``cancelled`` summary. A zero-shot reference seen before (same
model, data and split choice) is shown at once, so the first curve point does not wait for the engine's own zero-shot
evaluation.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.config import RunConfig
from core.evaluator import zeroshot_key

from .gpu import events
from .records import RunRecord

_ZS: collections.OrderedDict[tuple, dict] = collections.OrderedDict()
_ZS_LOCK = threading.Lock()


def remember_zeroshot(cfg: dict, accuracy: dict, kind: str = "full") -> None:
    """Keep a config's zero-shot accuracy: ``kind`` "subsample" (the step-0 curve point) or "full"."""
    with _ZS_LOCK:
        _ZS.setdefault(zeroshot_key(cfg), {})[kind] = dict(accuracy)
        _ZS.move_to_end(zeroshot_key(cfg))
        while len(_ZS) > 64:
            _ZS.popitem(last=False)


def known_zeroshot(cfg: dict) -> dict:
    """{"subsample": ..., "full": ...} as far as known (empty when this config was never evaluated)."""
    with _ZS_LOCK:
        return dict(_ZS.get(zeroshot_key(cfg), {}))


class _Failed:
    """The engine's exception, carried from its thread to the stream's consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def _produce(gen, out: queue.SimpleQueue, left: threading.Event, on_done: Callable[[], None] | None) -> None:
    """Run the engine to its end on this thread, queueing its events (as dicts) until the consumer has left; then
    ``on_done`` and the end mark. The engine never waits for the browser to draw a snapshot."""
    try:
        for ev in gen:
            if not left.is_set():
                out.put(ev.to_dict())
    except Exception as e:  # noqa: BLE001 - the engine already recorded the failure in the run folder
        out.put(_Failed(e))
    finally:
        if on_done is not None:
            on_done()
        out.put(_END)


def _queued(out: queue.SimpleQueue) -> Iterator[dict]:
    """The producer's events in order, up to its end mark; its exception is raised here, in the consumer."""
    while (item := out.get()) is not _END:
        if isinstance(item, _Failed):
            raise item.error
        yield item


def stream_run(cfg: RunConfig, run_dir: Path, stop: threading.Event, resume: bool = False,
               min_interval: float = 0.5, prior: RunRecord | None = None,
               on_done: Callable[[], None] | None = None) -> Iterator[tuple[RunRecord, set[str]]]:
    """Yield ``(record, kinds of events since the last yield)``: at once, then at every start/eval/finish event
    and at most every ``min_interval`` seconds in between. ``prior`` (a resumed run's record) is continued.
    ``on_done`` is called once the engine has finished, before the stream ends, also when the consumer left
    early."""
    rec = prior or RunRecord(run_id=Path(run_dir).name)
    cfg_dict = cfg.to_dict()
    if not resume:
        rec.config = cfg_dict
        rec.total_steps = cfg.steps
        known = known_zeroshot(cfg_dict)
        rec.zeroshot = known.get("full", {})
        if "subsample" in known:  # the step-0 point the engine is about to compute, seen before
            rec.evals.append({"kind": "eval", "step": 0, "accuracy": {"zeroshot": known["subsample"]}, "full": False})
    finished = False
    try:
        yield rec, {"init"}
    except GeneratorExit:
        if on_done is not None:
            on_done()
        raise
    out: queue.SimpleQueue = queue.SimpleQueue()
    left = threading.Event()
    threading.Thread(target=_produce, args=(events(cfg, run_dir, stop, resume), out, left, on_done),
                     name="clipood-engine", daemon=True).start()
    changed: set[str] = set()
    last = time.monotonic()
    try:
        for d in _queued(out):
            rec.add(d)
            kind = d["kind"]
            changed.add(kind)
            if kind == "eval" and d["step"] == 0 and "zeroshot" in d["accuracy"]:
                remember_zeroshot(rec.config, d["accuracy"]["zeroshot"], "full" if d["full"] else "subsample")
            finished = finished or kind == "finish"
            now = time.monotonic()
            if kind in ("start", "eval", "finish") or now - last >= min_interval:
                yield rec, changed
                changed, last = set(), time.monotonic()
    finally:  # closed early: the engine stops (or returns after its finish event) on its own thread, then on_done.
        left.set()  # (setting stop after "done" would make it record "cancelled")
        if not finished:
            stop.set()
