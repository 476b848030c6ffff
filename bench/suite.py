"""The CPU and GPU suites: what runs, at which sizes, the targets of issue 6, the printed tables and the JSON.

Each section writes the JSON file as soon as it is done, so a suite cut short (timeout, Ctrl-C) keeps what it
measured. A section that fails is recorded with its error and the suite goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .common import machine, peak_rss_mb_self, table, write_json

SECTIONS = ("step", "eval", "app", "umap", "render")


@dataclass
class CpuPlan:
    arch: str = "toy-clip"
    batch: int = 32
    classes: int = 16
    lam: float = 0.2  # the toy default
    lr: float = 1e-4
    calls: int = 10  # steps per timed block
    warmup: int = 5
    repeats: int = 7
    variants: tuple[str, ...] = ("ours", "ours+fused-adamw", "ours+foreach-adamw", "ours+bf16-autocast",
                                 "ours+compile")
    threads: tuple[int, ...] = (1,)  # extra thread counts (the default count is the main table)
    batches: tuple[int, ...] = (16, 64)  # extra batch sizes, ours vs seed
    seed_as_written: bool = True  # the official code's fp16 casts on CPU too (slow; calls=2)
    model: str | None = None  # None: the embedded default (or its architecture with random weights)
    data_options: dict = field(default_factory=dict)
    eval_repeats: int = 5
    eval_warmup: int = 1
    eval_rows: int | None = None
    latency_repeats: int = 5
    latency_steps: int | None = None
    default_run_repeats: int = 3
    default_run_steps: int | None = None  # None: the real default (500 steps)
    app_process: bool = True
    app_steps: int = 500
    umap_points: int = 2000  # 0 skips UMAP
    umap_warm: int = 5
    umap_cached_cold: bool = True  # also a second fresh process that finds numba's on-disk cache
    umap_fresh_cache: bool = True  # False: numba's default cache dir (tests: faster after the first run)
    render_batch: int = 384  # the world renderer's throughput (pre-training stream and eval grid)
    render_repeats: int = 5  # 0 skips it


FULL_CPU = CpuPlan()
QUICK_CPU = CpuPlan(calls=3, warmup=2, repeats=3, variants=("ours", "ours+fused-adamw", "ours+foreach-adamw"),
                    threads=(), batches=(), seed_as_written=False, eval_repeats=2, eval_warmup=0,
                    latency_repeats=2, default_run_repeats=1, default_run_steps=20, app_process=False, umap_warm=1,
                    umap_cached_cold=False, render_repeats=2)


@dataclass
class GpuPlan:
    arch: str = "ViT-B-16"
    batches: tuple[int, ...] = (36, 256)
    classes: int = 65  # OfficeHome
    lam: float = 0.3
    lr: float = 1e-5
    calls: int = 10
    warmup: int = 5
    repeats: int = 5
    compile_batch: int | None = 256  # also time ours + torch.compile at this batch (None: skip)
    compile_variant: dict = field(default_factory=lambda: {"compile": True})
    eval_images: int = 4096
    check: tuple[tuple[str, int], ...] = (("toy-clip", 32), ("ViT-B-16", 4))
    check_steps: int = 3
    peak_tflops: float | None = None


FULL_GPU = GpuPlan()
QUICK_GPU = GpuPlan(calls=3, warmup=3, repeats=3, compile_batch=None, eval_images=1024,
                    check=(("toy-clip", 32),))


class Suite:
    def __init__(self, kind: str, out: Path, quick: bool, command: str, plan):
        self.out = Path(out)
        self.t0 = time.perf_counter()
        self.data: dict = {"schema": 1, "suite": kind, "quick": quick, "command": command,
                           "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "plan": dataclasses.asdict(plan), "machine": machine(), "sections": {}, "errors": {},
                           "targets": []}
        if quick:
            self.data["note"] = "--quick: fewer repeats and steps than the full suite; figures are indicative"
        self.targets_fn = None  # data -> targets, re-evaluated at every save

    def run(self, name: str, fn, *args, **kw):
        t = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            res = fn(*args, **kw)
            self.data["sections"][name] = res
        except KeyboardInterrupt:
            self.data["errors"][name] = "interrupted (Ctrl-C or the time limit) before this section finished"
            self.save()
            raise
        except Exception as e:  # noqa: BLE001 - a failed section is reported, the rest still runs
            res = None
            self.data["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}"
            print(f"[bench] {name} FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        print(f"[bench] {name} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        self.save()
        return res

    def save(self) -> None:
        if self.targets_fn is not None:
            self.data["targets"] = self.targets_fn(self.data)
        self.data["wall_s"] = time.perf_counter() - self.t0
        self.data["bench_process_peak_rss_mb"] = peak_rss_mb_self()
        self.data["machine"]["loadavg_1m_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        write_json(self.out, self.data)


def target(name: str, value, op: str, goal: float, unit: str = "", note: str = "") -> dict:
    met = None
    if isinstance(value, (int, float)) and value == value:
        met = bool(value >= goal) if op == ">=" else bool(value <= goal)
    return {"name": name, "value": value, "target": f"{op} {goal:g}{unit}", "met": met, "note": note}


# ---------------------------------------------------------------- CPU


def _cpu_step(plan: CpuPlan) -> dict:
    from .steps import CPU_VARIANTS, compare_steps, row

    kw = dict(classes=plan.classes, lam=plan.lam, lr=plan.lr, calls=plan.calls, warmup=plan.warmup,
              repeats=plan.repeats)
    variants = {v: CPU_VARIANTS[v] for v in plan.variants}
    main = compare_steps(plan.arch, "cpu", plan.batch, variants=variants, **kw)
    out = {"main": main, "threads": [], "batches": []}
    default_threads = torch.get_num_threads()
    for n in plan.threads:
        if n == default_threads:
            continue
        torch.set_num_threads(n)
        try:
            r = compare_steps(plan.arch, "cpu", plan.batch, **kw)
        finally:
            torch.set_num_threads(default_threads)
        out["threads"].append({"threads": n, "ours": row(r, "ours"), "seed": row(r, "seed")})
    for b in plan.batches:
        r = compare_steps(plan.arch, "cpu", b, **kw)
        out["batches"].append({"batch": b, "ours": row(r, "ours"), "seed": row(r, "seed")})
    if plan.seed_as_written:
        r = compare_steps(plan.arch, "cpu", plan.batch, seed_half=True, classes=plan.classes, lam=plan.lam,
                          lr=plan.lr, calls=2, warmup=1, repeats=3)
        out["seed_as_written"] = {"ours": row(r, "ours"), "seed_fp16": row(r, "seed"),
                                  "note": "the official code calls convert_weights on any device, so on a CPU it "
                                          "trains with fp16 weights: this is that, vs ours"}
    return out


def run_cpu(out: Path, quick: bool = False, sections=SECTIONS, plan: CpuPlan | None = None,
            command: str = "") -> dict:
    from .app_latency import app_process, default_run, embedded_model, first_events
    from .evaluation import embedded_eval, world_render

    plan = plan or (QUICK_CPU if quick else FULL_CPU)
    suite = Suite("cpu", out, quick, command, plan)
    suite.targets_fn = cpu_targets
    tmp = Path(tempfile.mkdtemp(prefix="clipood-bench-"))
    try:
        if plan.model is None:
            model_id, model_note = embedded_model(tmp)
        else:
            model_id, model_note = plan.model, plan.model
        suite.data["embedded_model"] = model_note
        if "step" in sections:
            suite.run("step", _cpu_step, plan)
        if "app" in sections:
            suite.run("first_events", first_events, model_id, plan.latency_repeats, tmp, steps=plan.latency_steps,
                      data_options=plan.data_options)
            suite.run("default_run", default_run, model_id, plan.default_run_repeats, tmp,
                      steps=plan.default_run_steps, data_options=plan.data_options)
            if plan.app_process:
                suite.run("app_process", app_process, model_id, plan.app_steps, tmp)
        if "eval" in sections:  # after "app": its first run in this process is the cold one
            suite.run("eval", embedded_eval, model_id, repeats=plan.eval_repeats, warmup=plan.eval_warmup,
                      max_rows=plan.eval_rows, data_options=plan.data_options)
        if "render" in sections and plan.render_repeats:
            suite.run("render", world_render, plan.render_batch, repeats=plan.render_repeats)
        if "umap" in sections and plan.umap_points:
            suite.run("umap", umap_section, plan.umap_points, plan.umap_warm, plan.umap_cached_cold, tmp,
                      plan.umap_fresh_cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    suite.save()
    return suite.data


def umap_section(points: int, warm: int, cached_cold: bool, tmp: Path, fresh_cache: bool = True) -> dict:
    from .app_latency import _env, _spawn

    env = _env()
    if fresh_cache:
        cache = Path(tmp) / "numba-cache"
        cache.mkdir(parents=True, exist_ok=True)
        env["NUMBA_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "bench.umap_probe", "--n", str(points), "--warm", str(warm)]

    def probe(w: int) -> dict:
        r = _spawn(cmd[:-1] + [str(w)], env=env, timeout=600)
        if r["rc"] != 0:
            raise RuntimeError(f"umap probe failed: {r['stderr'][-1500:]}")
        d = json.loads(r["stdout"].strip().splitlines()[-1])
        d["process_wall_s"] = r["wall_s"]
        d["peak_rss_mb"] = max(d["peak_rss_mb"], r["peak_rss_mb"])
        return d

    cold = probe(warm)
    res = {"points": points, "code": cold["code"], "import_s": cold["import_s"],
           "cold_s": cold["first_call_s"], "cold_total_s": cold["import_s"] + cold["first_call_s"],
           "numba_cache": "fresh (empty)" if fresh_cache else "numba default",
           "cold_note": "first call in a fresh process (JIT compile included); cold_total adds `import umap`, "
                        "which compiles numba's cached functions when the cache is empty", "warm_s": cold["warm_s"],
           "warm_all_s": cold["warm_all_s"], "peak_rss_mb": cold["peak_rss_mb"]}
    if cached_cold:
        again = probe(0)
        res["cold_with_numba_cache_s"] = again["first_call_s"]
        res["import_with_numba_cache_s"] = again["import_s"]
    return res


def cpu_targets(d: dict) -> list[dict]:
    s, t = d["sections"], []
    step = (s.get("step") or {}).get("main")
    if step:
        ours = next(r for r in step["rows"] if r["name"] == "ours")
        t.append(target(f"CPU step, ours vs seed design ({step['arch']} arch, batch {step['batch']})",
                        ours.get("speedup_vs_seed"), ">=", 1.0, "x"))
        if "bma" in step:
            t.append(target(f"BMA update / step (CPU, {step['arch']} arch)", step["bma"]["ours_fraction_of_step"],
                            "<=", 0.05))
    fe = s.get("first_events")
    if fe:
        t.append(target("Start -> first curve point, warm process", fe["warm"]["first_curve_point_s"], "<=", 2.0,
                        " s", "cold (first run in the process): " + _fmt(fe["cold"]["first_curve_point_s"]) + " s"))
    dr = s.get("default_run")
    if dr:
        if dr.get("estimated_default_wall_s") is not None:
            t.append(target("default run wall (python -m core train), ESTIMATED", dr["estimated_default_wall_s"],
                            "<=", 60.0, " s", dr.get("estimate_note", "")))
        else:
            t.append(target("default run wall (python -m core train)", dr["wall_s"], "<=", 60.0, " s"))
    um = s.get("umap")
    if um:
        t.append(target(f"UMAP {um['points']} points, warm", um["warm_s"], "<=", 5.0, " s",
                        f"cold: import {_fmt(um['import_s'])} s + first call {_fmt(um['cold_s'])} s"))
    rss = [x for x in ((s.get("app_process") or {}).get("peak_rss_mb"), (dr or {}).get("peak_rss_mb"),
                       (um or {}).get("peak_rss_mb")) if isinstance(x, (int, float))]
    if rss:
        what = "app-like process" if (s.get("app_process") or {}).get("peak_rss_mb") else "largest measured process"
        t.append(target(f"peak RSS ({what})", max(rss) / 1024, "<=", 3.0, " GB"))
    return t


def _fmt(x, f: str = ".2f") -> str:
    return "-" if x is None else format(x, f)


def print_cpu(d: dict) -> str:
    s = d["sections"]
    lines = [f"CPU suite{' (--quick)' if d['quick'] else ''}: {d['machine']['cpu']}, "
             f"{d['machine']['logical_cpus']} logical CPUs, torch {d['machine']['torch']} "
             f"({d['machine']['torch_threads']} threads), load {d['machine']['loadavg_1m']}; model: "
             f"{d.get('embedded_model')}"]
    st = s.get("step")
    if st:
        m = st["main"]
        lines += ["", f"Training step, {m['arch']} architecture, batch {m['batch']}, {m['threads']} threads "
                  f"(median of {m['repeats']} blocks of {m['calls_per_block']} steps; speedup = paired ratio):"]
        lines.append(table(m["rows"], [("name", "contender", ""), ("images_per_s", "images/s", ".1f"),
                                       ("ms_per_step", "ms/step", ".1f"), ("speedup_vs_seed", "x seed", ".3f"),
                                       ("spread", "spread", ".2f"), ("compile_s", "compile s", ".1f"),
                                       ("error", "error", "")]))
        if "bma" in m:
            b = m["bma"]
            lines.append(f"BMA update: ours {b['ours_ms']:.3f} ms = {100 * b['ours_fraction_of_step']:.2f} % of a "
                         f"step; seed loop {b['seed_loop_ms']:.3f} ms = "
                         f"{100 * b['seed_loop_fraction_of_seed_step']:.2f} % of its step "
                         f"({b['speedup_vs_seed_loop']:.1f}x), {b['params']:,} parameters")
        rows = [{"what": f"{x['threads']} threads", "ours": x["ours"]["images_per_s"],
                 "seed": x["seed"]["images_per_s"], "x": x["ours"]["speedup_vs_seed"]} for x in st["threads"]]
        rows += [{"what": f"batch {x['batch']}", "ours": x["ours"]["images_per_s"],
                  "seed": x["seed"]["images_per_s"], "x": x["ours"]["speedup_vs_seed"]} for x in st["batches"]]
        if "seed_as_written" in st:
            w = st["seed_as_written"]
            rows.append({"what": "seed as written (fp16 on CPU)", "ours": w["ours"]["images_per_s"],
                         "seed": w["seed_fp16"]["images_per_s"], "x": w["ours"]["speedup_vs_seed"]})
        if rows:
            lines += ["", table(rows, [("what", "setting", ""), ("ours", "ours img/s", ".1f"),
                                       ("seed", "seed img/s", ".1f"), ("x", "x seed", ".3f")])]
    ev = s.get("eval")
    if ev:
        lines += ["", f"Evaluation: {ev['images_per_s']:.0f} images/s embedding {ev['images']} eval images "
                  f"(batch {ev['batch']}); full accuracy pass {ev['full_accuracy_pass_s']:.2f} s "
                  f"({ev['full_eval_images']} images), curve point {ev['curve_point_accuracy_s']:.2f} s "
                  f"({ev['curve_point_images']} images); text features {ev['text_features_s']:.3f} s once "
                  f"({ev['text_classes']} classes x {ev['text_templates']} templates), "
                  f"{1000 * ev['text_features_cached_s']:.3f} ms when cached"]
    fe = s.get("first_events")
    if fe:
        c, w = fe["cold"], fe["warm"]
        lines += ["", "Start -> first events (s):      start  first eval  curve eval  first step  curve point",
                  f"  cold (first run in process)   {_fmt(c['start_s']):>5}  {_fmt(c['first_eval_s']):>10}  "
                  f"{_fmt(c['first_curve_eval_s']):>10}  {_fmt(c['first_step_s']):>10}  "
                  f"{_fmt(c['first_curve_point_s']):>11}",
                  f"  warm (median of later runs)   {_fmt(w['start_s']):>5}  {_fmt(w['first_eval_s']):>10}  "
                  f"{_fmt(w['first_curve_eval_s']):>10}  {_fmt(w['first_step_s']):>10}  "
                  f"{_fmt(w['first_curve_point_s']):>11}",
                  f"  text features computed: {c['text_feature_computations']} time(s) in the cold run, "
                  f"{fe['warm_text_feature_computations']} in later runs"]
    dr = s.get("default_run")
    if dr:
        est = (f"; ESTIMATED 500-step wall {dr['estimated_default_wall_s']:.1f} s"
               if dr.get("estimated_default_wall_s") is not None else "")
        lines += ["", f"`{dr['command']}`: {dr['wall_s']:.1f} s wall ({dr['steps']} steps, train() "
                  f"{_fmt(dr['train_call_wall_s'], '.1f')} s, median step {_fmt(dr['step_s'], '.3f')} s, engine's "
                  f"own figure {_fmt(dr['engine_images_per_s'], '.0f')} images/s), peak RSS "
                  f"{dr['peak_rss_mb']:.0f} MB{est}"]
    ap = s.get("app_process")
    if ap:
        lines.append(f"App-like process (gradio+plotly, {ap.get('training_steps')}-step run, eval embeddings, "
                     f"UMAP): peak RSS {_fmt(ap.get('peak_rss_mb'), '.0f')} MB")
    um = s.get("umap")
    if um:
        extra = (f"; next fresh process (numba cache filled): import {um['import_with_numba_cache_s']:.1f} s, "
                 f"first call {um['cold_with_numba_cache_s']:.1f} s" if "cold_with_numba_cache_s" in um else "")
        lines += ["", f"UMAP {um['points']} points ({um['code']}, numba cache {um['numba_cache']}): import "
                  f"{um['import_s']:.1f} s, first call {um['cold_s']:.1f} s (JIT), warm {_fmt(um['warm_s'])} s"
                  f"{extra}; peak RSS {um['peak_rss_mb']:.0f} MB"]
    rn = s.get("render")
    if rn:
        lines += ["", f"World renderer ({rn['size']} px, {rn['threads']} threads): pre-training stream "
                  f"{rn['stream_images_per_s']:.0f} images/s (batch {rn['batch']}, spread {rn['stream_spread']:.2f}); "
                  f"eval grid {rn['grid_images_per_s']:.0f} images/s ({rn['grid_images']} images per grid)"]
    return _with_targets(lines, d)


def _with_targets(lines: list[str], d: dict) -> str:
    """The printed report: the section lines, the targets table and any section errors."""
    lines = [*lines, "", print_targets(d)]
    if d["errors"]:
        lines += ["", "Errors: " + ", ".join(f"{k}: {v.splitlines()[0]}" for k, v in d["errors"].items())]
    return "\n".join(lines)


def print_targets(d: dict) -> str:
    rows = [{"name": t["name"], "value": t["value"], "target": t["target"],
             "met": {True: "yes", False: "NO", None: "?"}[t["met"]], "note": t["note"]} for t in d["targets"]]
    return "Targets (issue 6):\n" + table(rows, [("name", "target", ""), ("value", "value", ".3f"),
                                                  ("target", "goal", ""), ("met", "met", ""), ("note", "note", "")])


# ---------------------------------------------------------------- GPU


def run_gpu(out: Path, quick: bool = False, plan: GpuPlan | None = None, command: str = "",
            device: str = "cuda") -> dict:
    from .check import check
    from .evaluation import synthetic_eval
    from .hardware import SOURCE, bf16_peak_tflops
    from .steps import compare_steps

    plan = plan or (QUICK_GPU if quick else FULL_GPU)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: the GPU suite needs one (the CPU suite is `python -m bench cpu`)")
    suite = Suite("gpu", out, quick, command, plan)
    suite.targets_fn = lambda d: gpu_targets(d, plan)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    peak, matched = (plan.peak_tflops, "given with --peak-tflops") if plan.peak_tflops else bf16_peak_tflops(name)
    suite.data["peak_bf16_tflops"] = peak
    suite.data["peak_source"] = f"{matched}; {SOURCE}" if peak else matched
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # only fp32 leftovers; the step itself runs in bf16
        torch.backends.cudnn.allow_tf32 = True

    for arch, batch in plan.check:
        suite.run(f"check_{arch}", check, device, arch, batch=batch, steps=plan.check_steps)
    def add_mfu(r):
        if r is not None and peak:
            r["mfu"] = r["achieved_tflops"] / peak
            for row_ in r["rows"]:
                if "ms_per_step" in row_:
                    row_["mfu"] = r["flops_per_step"] / (row_["ms_per_step"] / 1000) / 1e12 / peak
            suite.save()

    common = dict(classes=plan.classes, lam=plan.lam, lr=plan.lr, calls=plan.calls, warmup=plan.warmup,
                  repeats=plan.repeats, flops=True)
    for b in plan.batches:
        add_mfu(suite.run(f"step_b{b}", compare_steps, plan.arch, device, b, bma_calls=50, **common))
    suite.run("eval", synthetic_eval, plan.arch, device, images=plan.eval_images, batch=256,
              repeats=3 if quick else 5)
    if plan.compile_batch:  # last: compiling takes a minute or two and must not cost the other figures
        add_mfu(suite.run(f"compile_b{plan.compile_batch}", compare_steps, plan.arch, device, plan.compile_batch,
                          variants={"ours": {}, "ours+compile": plan.compile_variant}, include_seed=False, **common))
    suite.save()
    return suite.data


def gpu_targets(d: dict, plan: GpuPlan) -> list[dict]:
    s, t = d["sections"], []
    for b in plan.batches:
        r = s.get(f"step_b{b}")
        if not r:
            continue
        ours = next(x for x in r["rows"] if x["name"] == "ours")
        t.append(target(f"GPU step {plan.arch} batch {b}, ours vs seed design", ours.get("speedup_vs_seed"), ">=",
                        1.5, "x"))
        t.append(target(f"BMA update / step ({plan.arch}, batch {b})", r["bma"]["ours_fraction_of_step"], "<=",
                        0.05))
        if b == max(plan.batches):
            note = f"{r['flops_per_image'] / 1e9:.1f} GFLOP/image (FlopCounterMode, fwd+bwd)"
            comp = s.get(f"compile_b{b}")
            if comp:
                c = next((x for x in comp["rows"] if x["name"] == "ours+compile" and "mfu" in x), None)
                if c:
                    note += f"; with torch.compile {c['mfu']:.3f}"
            t.append(target(f"bf16 step FLOP/s / peak ({plan.arch}, batch {b}, ours)", ours.get("mfu"), ">=", 0.40,
                            "", note if d.get("peak_bf16_tflops") else "peak unknown for this device"))
    checks = [v for k, v in s.items() if k.startswith("check_")]
    if checks:
        t.append({"name": "correctness: device step == CPU step within bf16 tolerance",
                  "value": sum(c["pass"] for c in checks), "target": f"{len(checks)} of {len(checks)} pass",
                  "met": all(c["pass"] for c in checks), "note": ", ".join(c["arch"] for c in checks)})
    return t


def print_gpu(d: dict) -> str:
    from .check import format_check

    s = d["sections"]
    m = d["machine"]
    cu = m.get("cuda") or {}
    lines = [f"GPU suite{' (--quick)' if d['quick'] else ''}: {cu.get('name')} ({cu.get('memory_gb')} GB, CUDA "
             f"{cu.get('cuda_version')}), torch {m['torch']}, host {m['cpu']} x{m['logical_cpus']}; bf16 peak "
             f"{d.get('peak_bf16_tflops')} TFLOP/s ({d.get('peak_source')})"]
    for k, v in s.items():
        if k.startswith("check_"):
            lines += ["", format_check(v)]
    for k, r in s.items():
        if not k.startswith(("step_b", "compile_b")):
            continue
        vs = "seed" if k.startswith("step_b") else "ours"
        what = f"seed: {r['seed_weights']}" if vs == "seed" else "torch.compile vs eager"
        lines += ["", f"Training step {r['arch']}, batch {r['batch']} (ours: bf16 autocast + fused AdamW + foreach "
                  f"BMA; {what}); {r['flops_per_image'] / 1e9:.1f} GFLOP/image fwd+bwd:"]
        lines.append(table(r["rows"], [("name", "contender", ""), ("images_per_s", "images/s", ".1f"),
                                       ("ms_per_step", "ms/step", ".2f"), (f"speedup_vs_{vs}", f"x {vs}", ".3f"),
                                       ("mfu", "of peak", ".3f"), ("spread", "spread", ".2f"),
                                       ("compile_s", "compile s", ".1f"), ("error", "error", "")]))
        b = r.get("bma")
        if b:
            lines.append(f"BMA update: ours {b['ours_ms']:.3f} ms = {100 * b['ours_fraction_of_step']:.2f} % of a "
                         f"step; seed loop {b['seed_loop_ms']:.3f} ms ({b['speedup_vs_seed_loop']:.1f}x)")
    ev = s.get("eval")
    if ev:
        lines += ["", f"Evaluation {ev['arch']}: {ev['images_per_s']:.0f} images/s ({ev['images']} images, batch "
                  f"{ev['batch']}, {ev['includes']}); text features of {ev['text_classes']} classes "
                  f"{ev['text_features_s'] * 1000:.1f} ms, once per run"]
    return _with_targets(lines, d)
