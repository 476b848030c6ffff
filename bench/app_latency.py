"""App-facing latencies on the embedded default (toy-shapes + toy-clip, CLIPood, batch 32, 500 steps).

* ``first_events``: seconds from calling ``core.engine.train()`` to its first StartEvent, step-0 curve EvalEvent
  (zero-shot on the subsample; the full zero-shot evaluation comes at the end of a run, so ``first_eval_s`` is
  None when the run is closed after its first step) and StepEvent, in this process; the first call is cold
  (renders the world, loads the model, computes text features), later calls are what a second click costs. The
  run is closed after its first step (as Stop would).
* ``default_run``: wall time and peak RSS of ``python -m core train`` as a fresh process (interpreter start and
  imports included), engine images/s from its events.
* ``app_process``: peak RSS of one process holding what the app holds at once: gradio + plotly imported, a training
  run in-process, the eval embeddings and a UMAP of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from core import engine, evaluator
from core.config import RunConfig, defaults_for
from core.hardware import SERVED_OPENMP_ENV
from core.models import TOY_CLIP_DIR

from .common import ROOT, median


def embedded_model(tmp: Path) -> tuple[str, str]:
    """The embedded default model id, or a random-weight model of its architecture when the weights are missing
    (same compute: the timings do not depend on the weights)."""
    if (TOY_CLIP_DIR / "open_clip_model.safetensors").is_file() and (TOY_CLIP_DIR / "open_clip_config.json").is_file():
        return "toy-clip", "toy-clip (shipped weights)"
    from core.world.pretrain import build_model, write_local_dir

    out = Path(tmp) / "toy-clip-random"
    if not (out / "open_clip_model.safetensors").is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            write_local_dir(build_model(), out)
    return f"local-dir:{out}", "random weights in the toy-clip architecture (shipped weights not present yet)"


def first_events(model_id: str, repeats: int, tmp: Path, steps: int | None = None,
                 data_options: dict | None = None) -> dict:
    calls = {"n": 0}
    real = evaluator.class_text_features  # what the engine's text-feature cache calls on a miss

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    evaluator.class_text_features = counting
    runs = []
    try:
        for i in range(repeats):
            calls["n"] = 0
            cfg = RunConfig(model=model_id, steps=steps, data_options=dict(data_options or {}))
            t0 = time.perf_counter()
            firsts: dict[str, float] = {}
            gen = engine.train(cfg, Path(tmp) / f"latency-{i}-{os.getpid()}", threading.Event())
            try:
                for ev in gen:
                    t = time.perf_counter() - t0
                    key = ev.kind if ev.kind != "eval" else ("eval_full" if ev.full else "eval_curve")
                    firsts.setdefault(key, t)
                    if ev.kind in ("step", "finish"):
                        break
            finally:
                gen.close()
            curve = [firsts[k] for k in ("eval_full", "eval_curve", "step") if k in firsts]
            runs.append({"start_s": firsts.get("start"), "first_eval_s": firsts.get("eval_full"),
                         "first_curve_eval_s": firsts.get("eval_curve"), "first_step_s": firsts.get("step"),
                         "first_curve_point_s": min(curve) if curve else None,
                         "text_feature_computations": calls["n"]})
    finally:
        evaluator.class_text_features = real
    warm = runs[1:] or runs

    def med(key):
        xs = [r[key] for r in warm if r[key] is not None]
        return median(xs) if xs else None

    return {"cold": runs[0], "warm": {k: med(k) for k in runs[0] if k != "text_feature_computations"},
            "warm_text_feature_computations": [r["text_feature_computations"] for r in runs[1:]],
            "repeats": repeats,
            "note": "cold = first train() in a process that has imported core (world rendering, model load, text "
                    "features included); warm = median of later calls; first_curve_point = first EvalEvent or "
                    "StepEvent"}


def _spawn(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, timeout: float = 900) -> dict:
    """Run ``cmd``; wall seconds, exit code, peak RSS (MB) of that child alone, stdout/stderr tails."""
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out_f, stderr=err_f)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read().decode(errors="replace"), err_f.read().decode(errors="replace")
    return {"wall_s": wall, "rc": p.returncode, "peak_rss_mb": ru.ru_maxrss / 1024, "stdout": out, "stderr": err}


def _env() -> dict:
    """Child environment: offline, this checkout importable, the same torch thread count as this process, and
    OpenMP's own defaults (``bench space`` sets the app's ``SERVED_OPENMP_ENV`` for its served Studio only)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    for key, value in SERVED_OPENMP_ENV.items():  # the CLI as a user runs it, without the served app's setting
        if env.get(key) == value:
            del env[key]
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def default_run(model_id: str, repeats: int, tmp: Path, steps: int | None = None,
                data_options: dict | None = None) -> dict:
    """``python -m core train`` (the default run, or ``--steps`` fewer) as fresh processes."""
    runs = []
    for i in range(repeats):
        run_id = f"bench-default-{i}-{os.getpid()}"
        cmd = [sys.executable, "-m", "core", "train", "--out", str(tmp), "--run-id", run_id, "--quiet"]
        if model_id != "toy-clip":
            cmd += ["--model", model_id]
        if steps is not None:
            cmd += ["--steps", str(steps)]
        for k, v in (data_options or {}).items():
            cmd += ["--data", f"{k}={json.dumps(v)}"]
        r = _spawn(cmd, env=_env())
        if r["rc"] != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {r['rc']}): {r['stderr'][-2000:]}")
        ips, n_steps, run_wall, elapsed = None, None, None, []
        events = Path(tmp) / run_id / "events.jsonl"
        if events.is_file():
            for line in events.read_text().splitlines():
                ev = json.loads(line)
                if ev.get("kind") == "step":
                    ips, n_steps = ev["images_per_s"], ev["total_steps"]
                    elapsed.append(ev["elapsed_s"])
        gaps = [b - a for a, b in zip(elapsed, elapsed[1:])]  # median gap: a step without the evaluations
        summary = Path(tmp) / run_id / "summary.json"
        if summary.is_file():
            run_wall = json.loads(summary.read_text()).get("wall_s")
        runs.append({"wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"], "engine_images_per_s": ips,
                     "steps": n_steps, "train_call_wall_s": run_wall,
                     "step_s": median(gaps) if gaps else None})
    steps_done = runs[0]["steps"]
    res = {"threads": torch.get_num_threads(),
           "command": "python -m core train" + (f" --model {model_id}" if model_id != "toy-clip" else "")
           + (f" --steps {steps}" if steps is not None else ""),
           "steps": steps_done, "repeats": repeats, "wall_s": median([r["wall_s"] for r in runs]),
           "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
           "engine_images_per_s": median([r["engine_images_per_s"] for r in runs if r["engine_images_per_s"]]),
           "train_call_wall_s": median([r["train_call_wall_s"] for r in runs if r["train_call_wall_s"]]),
           "step_s": median([r["step_s"] for r in runs if r["step_s"]]), "runs": runs,
           "note": "engine_images_per_s is the run's own figure (its clock includes the intermediate evaluations); "
                   "step_s is the median time between consecutive StepEvents (data + step, no evaluation)"}
    if steps is not None and steps_done and res["step_s"]:
        default_steps = defaults_for()["steps"]
        res["estimated_default_wall_s"] = res["wall_s"] + (default_steps - steps_done) * res["step_s"]
        res["estimate_note"] = (f"measured with {steps_done} steps; estimate = that wall + "
                                f"{default_steps - steps_done} more steps at its median step time "
                                "(evaluations and checkpoints are 5 of each either way)")
    return res


APP_PROBE = r"""
import json, resource, sys, time, threading, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import gradio, plotly  # the app's UI stack
import numpy as np, torch
from core.config import RunConfig
from core import engine
model, steps = sys.argv[1], int(sys.argv[2])
t_imports = time.perf_counter() - t0
s = engine.run_to_end(RunConfig(model=model, steps=steps, eval_every=0, checkpoint_every=0), None, None)
cfg = engine.resolve(RunConfig(model=model))
dev = torch.device("cpu")
bundle, table, splits, pipe, text = engine.prepare(cfg, dev)
from core.evaluator import SplitEvaluator
ev = SplitEvaluator(table, splits, pipe, text, dev, cfg.eval_subsample, cfg.seed)
rows = np.arange(min(2000, len(ev.images)))
f = ev.features(bundle.model.visual.float().eval(), rows).numpy()
try:
    from app.projection import project
    where = "app.projection.project"
except Exception:
    from bench.umap_probe import project
    where = "bench.umap_probe.project"
t1 = time.perf_counter()
xy = project(f, "umap", 0)
t_umap = time.perf_counter() - t1
print(json.dumps({"status": s.get("status"), "imports_s": t_imports, "umap_points": len(rows), "umap_s": t_umap,
                  "umap_code": where, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def app_process(model_id: str, steps: int, tmp: Path) -> dict:
    """Peak RSS of a process holding the app's heavy parts at once (see module doc)."""
    r = _spawn([sys.executable, "-c", APP_PROBE, model_id, str(steps)], env=_env(), timeout=900)
    if r["rc"] != 0:
        return {"error": r["stderr"][-1500:], "peak_rss_mb": r["peak_rss_mb"]}
    info = json.loads(r["stdout"].strip().splitlines()[-1])
    info["peak_rss_mb"] = max(info["peak_rss_mb"], r["peak_rss_mb"])
    info.update({"wall_s": r["wall_s"], "training_steps": steps})
    return info
