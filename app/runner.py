"""Streams one engine run as :class:`RunRecord` snapshots, throttled for the browser, and never loses the run.

If the consumer goes away (Stop with ``cancels=``, a closed tab, a dropped connection) the generator is closed: the
stop event is set and the engine is drained on a background thread, so it still writes its resumable checkpoint and
its ``cancelled`` summary. A zero-shot reference seen before (same model, data and split choice) is shown at once,
so the first curve point does not wait for the engine's own zero-shot evaluation.
"""

from __future__ import annotations

import collections
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


def _drain(gen, on_done: Callable[[], None] | None) -> None:
    try:
        for _ in gen:
            pass
    except Exception:  # noqa: BLE001 - the engine already recorded the failure in the run folder
        pass
    finally:
        if on_done is not None:
            on_done()


def stream_run(cfg: RunConfig, run_dir: Path, stop: threading.Event, resume: bool = False,
               min_interval: float = 0.5, prior: RunRecord | None = None,
               on_done: Callable[[], None] | None = None) -> Iterator[tuple[RunRecord, set[str]]]:
    """Yield ``(record, kinds of events since the last yield)``: at once, then at every start/eval/finish event
    and at most every ``min_interval`` seconds in between. ``prior`` (a resumed run's record) is continued.
    ``on_done`` is called once the engine has finished, also when the consumer left early (after the drain)."""
    rec = prior or RunRecord(run_id=Path(run_dir).name)
    cfg_dict = cfg.to_dict()
    if not resume:
        rec.config = cfg_dict
        rec.total_steps = cfg.steps
        known = known_zeroshot(cfg_dict)
        rec.zeroshot = known.get("full", {})
        if "subsample" in known:  # the step-0 point the engine is about to compute, seen before
            rec.evals.append({"kind": "eval", "step": 0, "accuracy": {"zeroshot": known["subsample"]}, "full": False})
    finished = exhausted = False
    try:
        yield rec, {"init"}
    except GeneratorExit:
        if on_done is not None:
            on_done()
        raise
    gen = events(cfg, run_dir, stop, resume)
    changed: set[str] = set()
    last = time.monotonic()
    try:
        for ev in gen:
            d = ev.to_dict()
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
        exhausted = True
    finally:
        if exhausted:
            if on_done is not None:
                on_done()
        else:  # closed early: let the engine stop (or return after its finish event) on its own, then clean up.
            if not finished:  # (closing it instead would make it record "cancelled", even after "done")
                stop.set()
            threading.Thread(target=_drain, args=(gen, on_done), name="clipood-drain", daemon=True).start()
