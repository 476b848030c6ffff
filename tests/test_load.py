"""Issue 7, item 7: N concurrent sessions over gradio_client on loopback (``scripts/load_test.py``), bounded in
count and time. No run lost or mixed up, private run lists, one engine run at a time, a bounded queue turns the
excess away with a message."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from load_test import load_test  # noqa: E402


def test_concurrent_sessions_start_and_stop_runs_without_mixups(tmp_path):
    rep = load_test(sessions=5, steps=8, stop_every=2, queue_size=16, timeout=300, runs_dir=tmp_path / "runs")
    assert rep["problems"] == [] and rep["other_errors"] == [], rep
    assert rep["runs_finished"] == 5 and rep["queue_full"] == 0
    assert rep["engine_runs_started"] == 5 and rep["max_engine_runs_at_once"] == 1
    stopped = [r for r in rep["results"] if r["stop"]]
    assert {r["stop"] for r in stopped} == {"stop", "cancel"}  # both ways of stopping were exercised
    assert len({r["run_id"] for r in rep["results"]}) == 5


def test_a_full_queue_turns_sessions_away_with_a_message(tmp_path):
    rep = load_test(sessions=6, steps=80, stop_every=0, queue_size=2, timeout=300, runs_dir=tmp_path / "runs")
    assert rep["problems"] == [] and rep["other_errors"] == [], rep
    assert rep["queue_full"] >= 1 and rep["runs_finished"] >= 1
    assert rep["runs_finished"] + rep["queue_full"] == 6 and rep["max_engine_runs_at_once"] == 1
