"""Run folders (core/runstore.py): events.jsonl is flushed line by line and fsynced at every line but step lines."""

import json
import os

from core.engine import train
from core.events import StepEvent


def test_events_are_fsynced_except_step_lines_and_every_line_is_written(tiny_cfg, tmp_path, monkeypatch):
    synced = []  # the events.jsonl line count at each fsync of that file
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("events.jsonl"):
            synced.append(len((tmp_path / "run" / "events.jsonl").read_text().splitlines()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    events = list(train(tiny_cfg(), tmp_path / "run"))
    lines = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == [e.kind for e in events]
    durable = [i + 1 for i, e in enumerate(events) if not isinstance(e, StepEvent)]
    assert synced == durable and synced[-1] == len(lines)  # the finish line makes every step line durable too
