"""Load test of the Studio through its API: N browser sessions (``gradio_client`` on loopback) start short runs of
the tiny model at once; every ``stop_every``-th session stops its run part-way. Afterwards every run folder is checked
against the session that started it (no lost or mixed-up runs), and the report gives throughput, failures, queue
rejections and the most engine runs seen at the same time (must be 1).

    python scripts/load_test.py --sessions 8 --steps 12            # prints a JSON report
    python scripts/load_test.py --sessions 8 --queue-size 3        # a bounded queue turns the rest away
    python scripts/load_test.py --abuse --out bench/results/load_abuse.json   # hostile visitors (scripts/load_abuse.py)

``tests/test_load.py`` runs it at a small size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

STATUS, BROWSER_RUNS = 0, 7


class EngineMeter:
    """Wraps the engine's ``train`` as the app calls it and records how many runs were alive at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.started = 0

    def wrap(self, train):
        def counted(*a, **k):
            with self.lock:
                self.active += 1
                self.started += 1
                self.max_active = max(self.max_active, self.active)
            try:
                yield from train(*a, **k)
            finally:
                with self.lock:
                    self.active -= 1

        return counted


def _session(url: str, i: int, steps: int, stop: str | None, timeout: float) -> dict:
    from gradio_client import Client

    out = {"session": i, "seed": 1000 + i, "stop": stop, "run_id": None, "status": None, "error": None,
           "browser_runs": []}
    t0 = time.perf_counter()
    try:
        c = Client(url, verbose=False)
        job = c.submit(data_upload=None, browser_runs=[], steps=steps, batch_size=8, shots=4, eval_per=3,
                       model="tiny-random", seed=1000 + i, whatif=False, api_name="/train")
        stopped, seen, deadline = False, 0, time.time() + timeout
        while True:  # poll (a job the queue turned away never reaches FINISHED, so iterating it would hang)
            done = job.done()
            outputs = job.outputs()
            for o in outputs[seen:]:
                m = re.search(r"run `([^`]+)`", o[STATUS])
                if m and out["run_id"] is None:
                    out["run_id"] = m.group(1)
                if isinstance(o[BROWSER_RUNS], list) and o[BROWSER_RUNS]:
                    out["browser_runs"] = [t.split("~")[0] for t in o[BROWSER_RUNS]]
                if stop and not stopped and "step " in str(o[1]):
                    stopped = True
                    if stop == "cancel":  # the page goes away: gradio closes the stream, the run is drained
                        job.cancel()
                        out["status"] = "Cancelled"
                        break
                    c.predict(api_name="/stop")
            seen = len(outputs)
            if done or out["status"] == "Cancelled":
                break
            if time.time() > deadline:
                raise TimeoutError(f"no result after {timeout:g} s")
            time.sleep(0.05)
        if out["status"] != "Cancelled":
            job.result(timeout=timeout)  # raises what the server said (queue full, an error)
            last = outputs[-1][STATUS] if outputs else ""
            out["status"] = last.split("**")[1] if "**" in last else None
    except Exception as e:  # noqa: BLE001 - a failure is a result of the load test
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    return out


def _how_to_stop(i: int, every: int) -> str | None:
    """Every ``every``-th session stops its run: alternately with the Stop button and by leaving (cancel)."""
    if every <= 0 or i % every:
        return None
    return "stop" if (i // every) % 2 == 0 else "cancel"


def load_test(sessions: int = 6, steps: int = 8, stop_every: int = 3, queue_size: int = 16, timeout: float = 600,
              runs_dir: Path | None = None, private: bool = True) -> dict:
    import app.gpu as gpu
    from app.options import AppOptions, Caps, Defaults
    from app.ui import build_app, launch
    from core.runstore import RunStore

    meter = EngineMeter()
    real_train = gpu.train
    gpu.train = meter.wrap(real_train)
    tmp = None
    if runs_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="clipood-load-")
        runs_dir = Path(tmp.name) / "runs"
    demo = build_app(AppOptions(runs_dir=runs_dir, warmup=False, min_yield_s=0.3, shared_runs=not private,
                                defaults=Defaults(model="tiny-random", shots=4, eval_per=3, steps=steps,
                                                  batch_size=8),
                                caps=Caps(max_steps=max(steps, 100), max_batch=64, queue_size=queue_size)))
    try:
        _, url, _ = launch(demo, port=None, prevent_thread_lock=True, quiet=True)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sessions) as pool:
            results = list(pool.map(lambda i: _session(url, i, steps, _how_to_stop(i, stop_every), timeout),
                                    range(sessions)))
        wall = time.perf_counter() - t0
        deadline = time.time() + 120
        while time.time() < deadline and (meter.active or meter.started < len([r for r in results if r["run_id"]])):
            time.sleep(0.1)  # runs of sessions that left are still being drained
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # (gradio prints "Closing server"; stdout is the report)
            demo.close()
        gpu.train = real_train
    problems = []
    ids = [r["run_id"] for r in results if r["run_id"]]
    if len(ids) != len(set(ids)):
        problems.append("two sessions were shown the same run id")
    for r in results:
        if r["error"]:
            continue
        if r["run_id"] is None:
            problems.append(f"session {r['session']}: no run id")
            continue
        store = RunStore(Path(runs_dir) / r["run_id"])
        summary = store.read_summary() or {}
        cfg = summary.get("config") or store.read_config()
        if cfg.get("seed") != r["seed"]:
            problems.append(f"session {r['session']}: run {r['run_id']} has seed {cfg.get('seed')}, not {r['seed']}")
        want = {"cancelled", "done"} if r["stop"] else {"done"}
        if summary.get("status") not in want:
            problems.append(f"session {r['session']}: run {r['run_id']} is {summary.get('status')}")
        if private and r["browser_runs"] != [r["run_id"]]:
            problems.append(f"session {r['session']}: its run list is {r['browser_runs']}")
    errors = [r["error"] for r in results if r["error"]]
    finished = [r for r in results if not r["error"]]
    report = {"sessions": sessions, "steps": steps, "queue_size": queue_size, "wall_s": round(wall, 2),
              "runs_finished": len(finished), "runs_stopped": sum(r["status"] == "Stopped" for r in finished),
              "queue_full": sum("queue" in e.lower() and "full" in e.lower() for e in errors),
              "other_errors": [e for e in errors if not ("queue" in e.lower() and "full" in e.lower())],
              "runs_per_minute": round(60 * len(finished) / wall, 2) if wall else None,
              "session_wall_s": sorted(r["wall_s"] for r in results), "engine_runs_started": meter.started,
              "max_engine_runs_at_once": meter.max_active, "problems": problems, "results": results}
    if tmp is not None:
        tmp.cleanup()
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--stop-every", type=int, default=3, help="every k-th session stops its run (0: none)")
    p.add_argument("--queue-size", type=int, default=16)
    p.add_argument("--shared-runs", action="store_true", help="list all runs to everyone (default: private)")
    p.add_argument("--abuse", action="store_true", help="attackers among the sessions on a Space-mode server; "
                   "reports peak RSS and disk before/after (scripts/load_abuse.py)")
    p.add_argument("--out", type=Path, help="also write the JSON report here")
    a = p.parse_args(argv)
    if a.abuse:
        from load_abuse import abuse_test

        rep = abuse_test(a.sessions, a.steps)
        text = json.dumps(rep, indent=2, ensure_ascii=False)
        print(text)
        if a.out:
            a.out.write_text(text + "\n")
        return 0 if all(rep["checks"].values()) else 1
    rep = load_test(a.sessions, a.steps, a.stop_every, a.queue_size, private=not a.shared_runs)
    rep.pop("results")
    print(json.dumps(rep, indent=2))
    return 0 if not rep["problems"] and not rep["other_errors"] and rep["max_engine_runs_at_once"] <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
