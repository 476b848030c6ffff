"""``python -m bench space``: what a visitor of a free 2-vCPU Space waits for, and what the Space installs (issue 16).

* ``studio``: the Studio served in this process (with its background warm-up done first, as for a visitor who
  arrives after the Space woke up), default runs through ``gradio_client`` from Start to the final table, and the
  first curve point on the way (what a browser waits for, minus drawing): the median of ``STUDIO_REPEATS`` runs one
  after another, each kept in the JSON (this VM's speed differs from run to run by up to a fifth). The client runs in
  its own process at the lowest CPU priority, as a visitor's browser runs on the visitor's machine; CPU seconds are
  the server's;
* ``teaching``: the Compare view's teaching comparison (one click, both runs) through the same API, to the end;
* ``cli``: ``python -m core train`` (the default run) as a fresh process;
* ``install``: the disk the pinned torch stack takes once installed (torch, torchvision, triton, the CUDA wheels),
  summed from each installed distribution's file list;
* ``work``: the floating-point work of the Studio's default run and of the teaching comparison, counted on the runs
  themselves (``bench.work``), and the least time this machine needs for it at its measured matmul rate: meeting a
  target below that floor would take less work, not faster code.

Targets: default run <= 20 s, first curve point <= 1 s, teaching comparison <= 45 s. Writes
``bench/results/space.json`` and, with ``--markdown``,
the rows between ``<!-- space:start -->`` and ``<!-- space:end -->`` of that file (BENCHMARKS.md by default), so a
re-run with another step count (``--steps``) rewrites the figures it changes and nothing else.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import resource
import socket
import tempfile
import time
from pathlib import Path

from .common import RESULTS, ROOT, machine, matmul_gflops, median, write_json
from .work import floor_s

TARGETS = {"studio_run_s": 20.0, "first_curve_point_s": 1.0, "teaching_s": 45.0}
SECTIONS = ("studio", "teaching", "cli", "install", "work")
STUDIO_REPEATS = 3
MARK_START, MARK_END = "<!-- space:start -->", "<!-- space:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def first_point_and_run(client, args: dict) -> dict:
    """Submit a run; time to the first streamed update that has a zero-shot curve, and to the end (wall clock)."""
    t0 = time.perf_counter()
    job = client.submit(**args, api_name="/train")
    first = None
    first_step = None
    for out in job:
        fig = json.loads(out[2]["plot"]) if isinstance(out[2], dict) and out[2].get("plot") else None
        if first is None and fig and any(t.get("name") == "zero-shot" for t in fig["data"]):
            first = time.perf_counter() - t0
        if first_step is None and "step " in out[1]:
            first_step = time.perf_counter() - t0
    job.result()
    last = job.outputs()[-1]
    return {"first_curve_point_s": round(first, 2) if first is not None else None,
            "first_step_s": round(first_step, 2) if first_step is not None else None,
            "run_s": round(time.perf_counter() - t0, 2), "status": last[0].split("\n")[0]}


def teaching_pair(client, args: dict) -> dict:
    """The teaching comparison's button through the API: click -> both runs' final table."""
    t0 = time.perf_counter()
    job = client.submit(args.get("seed", 0), [], api_name="/teaching_pair")
    job.result()
    return {"run_s": round(time.perf_counter() - t0, 2), "status": str(job.outputs()[-1][2]).split("\n")[0]}


CLIENT_CALLS = {"train": first_point_and_run, "teaching_pair": teaching_pair}


def visitor(url: str, call: str, args: dict) -> dict:
    """What a visitor waits for, measured by a client in its own process at the lowest CPU priority: a browser does
    not run on the Space's CPU, so the client's decoding of every streamed update must not slow the server (in the
    server's process it did: its JSON work took CPU from the run's two threads). The server's CPU seconds are
    measured around the call, in the server's process only."""
    import subprocess
    import sys

    c0 = cpu_s()
    cmd = [sys.executable, "-m", "bench.space", url, call, json.dumps(args)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, preexec_fn=lambda: os.nice(19), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"visitor client failed: {done.stderr.strip().splitlines()[-1:]}")
    res = json.loads(done.stdout.strip().splitlines()[-1])
    return {**res, "run_cpu_s": round(cpu_s() - c0, 1), "load_avg": os.getloadavg()}


def client_main(argv: list[str]) -> int:
    """``python -m bench.space URL CALL ARGS_JSON``: the visitor's side of :func:`visitor`; prints one JSON line."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client

    url, call, args = argv[0], argv[1], json.loads(argv[2])
    print(json.dumps(CLIENT_CALLS[call](Client(url, verbose=False), args)))
    return 0


def _served(use) -> dict:
    """Serve the Studio in this process (background warm-up done first, as for a visitor who arrives after the Space
    woke up) and call ``use(url)``; build and warm-up times are part of the answer."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.options import AppOptions
    from app.ui import build_app, launch, warm_up

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        demo = build_app(AppOptions(runs_dir=Path(tmp) / "runs", warmup=False))
        t1 = time.perf_counter()
        warm_up(demo.ctx).join()
        res = {"build_s": round(t1 - t0, 2), "warmup_s": round(time.perf_counter() - t1, 2)}
        _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            res.update(use(url))
        finally:
            demo.close()
    return res


def studio(steps: int | None, whatif: bool) -> dict:
    """One default run in the served Studio (see module doc)."""
    from app.options import Defaults
    from core.config import RunConfig
    from core.hardware import SERVED_OPENMP_ENV
    from core.step import use_bf16

    d = Defaults()
    res: dict = {"model": d.model, "steps": steps or d.steps, "whatif": whatif,
                 "cpu_bf16_autocast": use_bf16(RunConfig(), __import__("torch").device("cpu")),
                 "openmp_env": {k: os.environ.get(k) for k in SERVED_OPENMP_ENV}}
    args = dict(data_upload=None, browser_runs=[], whatif=whatif)
    if steps:
        args["steps"] = steps
    served = _served(lambda url: {"runs": [visitor(url, "train", args) for _ in range(STUDIO_REPEATS)]})
    keys = ("first_curve_point_s", "first_step_s", "run_s", "run_cpu_s")
    return {**res, **served, **{k: _median_of(served["runs"], k) for k in keys},
            "status": served["runs"][-1]["status"], "repeats": STUDIO_REPEATS}


def _median_of(runs: list[dict], key: str) -> float | None:
    got = [r[key] for r in runs if r.get(key) is not None]
    return round(median(got), 2) if got else None


def teaching(steps: int | None, whatif: bool) -> dict:
    """The Compare view's teaching comparison (its button, through the API): Start -> both runs' final table."""
    from app.options import Defaults

    return {"steps": Defaults().steps, **_served(lambda url: visitor(url, "teaching_pair", {"seed": 0}))}


def cli(steps: int | None) -> dict:
    from .app_latency import default_run, embedded_model

    with tempfile.TemporaryDirectory() as tmp:
        model_id, note = embedded_model(Path(tmp))
        r = default_run(model_id, repeats=1, tmp=Path(tmp), steps=steps)
    r.pop("runs", None)
    r["model_note"] = note
    return r


def work(steps: int | None, whatif: bool) -> dict:
    """GFLOP by phase of the Studio's default run and of the teaching comparison's two runs (core only, the zero-shot
    features already computed, as after the Studio's warm-up)."""
    import dataclasses

    from app.context import AppContext
    from app.options import AppOptions, Defaults
    from app.records import teaching_configs
    from core.config import resolve
    from core.explore import zeroshot_reference

    from .work import run_gflop

    d = Defaults()
    defaults = dataclasses.replace(d, whatif=whatif, steps=steps or d.steps)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = AppContext(AppOptions(runs_dir=Path(tmp) / "runs", warmup=False, defaults=defaults))
        form = ctx.default_config()
        studio_cfg = resolve(form)
        zeroshot_reference(studio_cfg)
        studio_gf = run_gflop(studio_cfg, Path(tmp) / "studio")
        pair = [run_gflop(cfg, Path(tmp) / cfg.method) for cfg in teaching_configs(form, seed=0)]
    teaching_gf = {k: round(sum(r[k] for r in pair), 1) for k in pair[0]}
    return {"steps": studio_cfg.steps, "whatif": whatif,
            "studio_gflop": {k: round(v, 1) for k, v in studio_gf.items()}, "teaching_gflop": teaching_gf}


def _stack_dist(name: str) -> bool:
    n = name.lower().replace("_", "-")
    return n in ("torch", "torchvision", "triton") or n.startswith(("nvidia-", "cuda-"))


def install() -> dict:
    """Installed size (MB) of every distribution of the torch stack, from its RECORD file list."""
    sizes: dict[str, float] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if not name or not _stack_dist(name):
            continue
        total = 0
        for f in dist.files or []:
            try:
                total += f.locate().stat().st_size
            except OSError:
                pass
        sizes[f"{name}=={dist.version}"] = round(total / 2 ** 20, 1)
    torch_dist = next((k for k in sizes if k.lower().startswith("torch==")), None)
    return {"by_distribution_mb": dict(sorted(sizes.items(), key=lambda kv: -kv[1])),
            "torch_stack_mb": round(sum(sizes.values()), 1), "torch": torch_dist,
            "note": "installed bytes of torch, torchvision, triton and every nvidia-*/cuda-* wheel, as pip put them"}


def _fmt(x, unit="s") -> str:
    return "–" if x is None else f"{x:.2f} {unit}" if unit == "s" else f"{x:,.0f} {unit}"


def _speed(d: dict) -> str:
    """The machine's measured speed around the runs (a shared VM drifts: compare wall times at like speeds)."""
    if d.get("gflops_before") is None or d.get("gflops_after") is None:
        return ""
    return (f" Machine speed (fp32 512x512 matmul, `bench.common.matmul_gflops`): {d['gflops_before']:.0f} GFLOP/s "
            f"before, {d['gflops_after']:.0f} after.")


def markdown(d: dict) -> str:
    """The BENCHMARKS.md rows of one ``space.json``."""
    m, s = d["machine"], d["sections"]
    lines = [f"Measured by `{d['command']}` on {m['cpu']}, {m['logical_cpus']} logical CPUs, torch threads "
             f"{m['torch_threads']}, load average {d['load_before']:.2f} before and {d['load_after']:.2f} after "
             f"(a busy machine runs slower: compare CPU seconds), {d['date']}; every figure is in "
             f"`{d['out']}`.{_speed(d)}",
             "", "| what | target | value | met |", "|---|---|---|---|"]

    def met(v, goal):
        return "–" if v is None else "✓" if v <= goal else "✗"

    st = s.get("studio")
    if st:
        each = ", ".join(_fmt(r["run_s"]) for r in st.get("runs", []))
        lines.append(f"| Studio default run ({st['steps']} steps, what-if {'on' if st['whatif'] else 'off'}), Start → "
                     f"final table | ≤ 20 s | {_fmt(st['run_s'])} ({st['run_cpu_s']:.0f} CPU s; median of "
                     f"{st.get('repeats', 1)}: {each or _fmt(st['run_s'])}) | "
                     f"{met(st['run_s'], TARGETS['studio_run_s'])} |")
        lines.append(f"| Studio first curve point after Start | ≤ 1 s | {_fmt(st['first_curve_point_s'])} | "
                     f"{met(st['first_curve_point_s'], TARGETS['first_curve_point_s'])} |")
    t = s.get("teaching")
    if t:
        lines.append(f"| Compare's teaching comparison ({t['steps']} steps per run), click → both runs' final table "
                     f"| ≤ 45 s | {_fmt(t['run_s'])} ({t['run_cpu_s']:.0f} CPU s) | "
                     f"{met(t['run_s'], TARGETS['teaching_s'])} |")
    c = s.get("cli")
    if c:
        lines.append(f"| `{c['command']}` ({c['steps']} steps), fresh process | – | {_fmt(c['wall_s'])} "
                     f"(peak RSS {c['peak_rss_mb']:,.0f} MB) | – |")
    i = s.get("install")
    if i:
        top = ", ".join(f"{k} {v:,.0f} MB" for k, v in list(i["by_distribution_mb"].items())[:3])
        lines.append(f"| installed torch stack ({i['torch']}) | – | {_fmt(i['torch_stack_mb'], 'MB')} ({top}) | – |")
    w = s.get("work")
    rate = max(d.get("gflops_before") or 0.0, d.get("gflops_after") or 0.0)
    if w and rate:
        for key, what, run in (("studio_gflop", f"Studio default run ({w['steps']} steps)", st),
                               ("teaching_gflop", "teaching comparison (both runs)", t)):
            gf = w[key]
            total = sum(gf.values())
            floor = floor_s(total, rate)
            took = f" (the run above took {run['run_s'] / floor:.1f}x that)" if run else ""
            lines.append(f"| least time for the work of the {what}: {total:,.0f} GFLOP (training "
                         f"{gf['training']:,.0f}, evaluation {gf['evaluation']:,.0f}) at {rate:.0f} GFLOP/s | – | "
                         f"{_fmt(floor)}{took} | – |")
    if st:
        lines += ["", f"bf16 autocast under `precision=auto` on this CPU: {'on' if st['cpu_bf16_autocast'] else 'off'} "
                  "(`core/hardware.py` reads the CPU's bf16 flags)."]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    if MARK_START not in text or MARK_END not in text:
        raise ValueError(f"no {MARK_START} ... {MARK_END} block to replace")
    return re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END),
                  lambda _: f"{MARK_START}\n{block}\n{MARK_END}", text, flags=re.S)


def run_space(out: Path, sections, steps: int | None, whatif: bool, command: str,
              markdown_path: Path | None) -> dict:
    rel = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    d: dict = {"schema": 1, "suite": "space", "command": command, "out": str(rel), "machine": machine(),
               "targets": TARGETS, "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0],
               "gflops_before": matmul_gflops(),
               "sections": {}, "errors": {}}
    t0 = time.perf_counter()
    for name in sections:
        try:
            d["sections"][name] = {"studio": lambda: studio(steps, whatif), "teaching": lambda: teaching(steps, whatif),
                                   "cli": lambda: cli(steps), "work": lambda: work(steps, whatif),
                                   "install": install}[name]()
        except Exception as e:  # noqa: BLE001 - one failed section must not lose the others
            d["errors"][name] = f"{type(e).__name__}: {e}"
        d["load_after"] = os.getloadavg()[0]
        d["wall_s"] = time.perf_counter() - t0
        write_json(out, d)
    d["gflops_after"] = matmul_gflops()
    write_json(out, d)
    if markdown_path is not None:
        markdown_path.write_text(replace_block(markdown_path.read_text(), markdown(d)))
    return d


def print_space(d: dict) -> str:
    return markdown(d) + ("\n\nerrors: " + json.dumps(d["errors"]) if d["errors"] else "")


DEFAULT_OUT = RESULTS / "space.json"
DEFAULT_MARKDOWN = ROOT / "BENCHMARKS.md"


if __name__ == "__main__":
    import sys

    raise SystemExit(client_main(sys.argv[1:]))
