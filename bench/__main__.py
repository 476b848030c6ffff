"""``python -m bench cpu|gpu|check``: performance benchmarks of CLIPood Studio (see BENCHMARKS.md).

    python -m bench cpu             # full CPU suite (a quiet machine: several minutes)
    python -m bench cpu --quick     # CI-sized (< ~60 s on 2 cores); figures are indicative only
    python -m bench gpu             # CUDA: correctness check + ViT-B/16 steps at batch 36 and 256 + eval
    python -m bench check --device cuda
    python -m bench space           # issue 16: Studio run Start -> table, first curve point, CLI run, torch install

Each prints a table and writes JSON (default ``bench/results/<suite>[-quick].json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from core.hardware import spin_openmp_workers

if sys.argv[1:2] == ["space"]:  # the Studio is served in this process: set up as app.py sets it up, before torch
    spin_openmp_workers()

from .common import RESULTS, ROOT  # noqa: E402 - after the OpenMP environment


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cpu", help="CPU suite: step vs seed design, BMA, eval, app latencies, UMAP, RSS")
    c.add_argument("--quick", action="store_true", help="CI-sized run (< ~60 s on 2 cores)")
    c.add_argument("--out", default=None, help="JSON file (default bench/results/cpu[-quick].json)")
    c.add_argument("--sections", type=_csv, default=["step", "eval", "app", "umap", "render"],
                   help="comma-separated subset of step,eval,app,umap,render")
    c.add_argument("--threads", type=int, default=None,
                   help="torch threads for this process and the runs it spawns (default: torch's)")
    g = sub.add_parser("gpu", help="GPU suite: correctness check, ViT-B/16 step vs seed design, FLOP/s, eval")
    g.add_argument("--quick", action="store_true")
    g.add_argument("--out", default=None, help="JSON file (default bench/results/gpu[-quick].json)")
    g.add_argument("--device", default="cuda")
    g.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak if the device is not known")
    g.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    s = sub.add_parser("space", help="issue 16: Studio default run Start -> final table, first curve point, teaching "
                                     "comparison, CLI run, installed torch stack, the runs' work in GFLOP and "
                                     "the least time it takes here; rows in BENCHMARKS.md")
    s.add_argument("--sections", type=_csv, default=["studio", "teaching", "cli", "install", "work"],
                   help="subset of studio,teaching,cli,install,work")
    s.add_argument("--steps", type=int, default=None, help="steps of the runs (default: the Studio's/CLI's default)")
    s.add_argument("--whatif", choices=["on", "off"], default=None,
                   help="the Studio run's what-if averages (default: as the Studio's form starts, off)")
    s.add_argument("--out", default=None, help="JSON file (default bench/results/space.json)")
    s.add_argument("--markdown", default="BENCHMARKS.md",
                   help="file whose space:start/end block gets the rows ('' to leave every file alone)")
    k = sub.add_parser("check", help="correctness only: device step == CPU step within bf16 tolerance")
    k.add_argument("--device", default="cuda")
    k.add_argument("--arch", default="toy-clip")
    k.add_argument("--batch", type=int, default=16)
    k.add_argument("--steps", type=int, default=3)
    k.add_argument("--amp", choices=["on", "off", "auto"], default="auto",
                   help="bf16 autocast on the device (auto: on for CUDA); '--device cpu --amp on' tests the check")
    k.add_argument("--out", default=None)
    return p


def _run_and_print(run, show, out: Path) -> dict | None:
    """Run a suite and print its report; on Ctrl-C print what its JSON kept so far and return None."""
    try:
        d = run()
    except KeyboardInterrupt:
        print("interrupted: the sections finished so far:", file=sys.stderr)
        print(show(json.loads(out.read_text())))
        return None
    print(show(d))
    print(f"\nwrote {out} ({d['wall_s']:.0f} s)")
    return d


def _whatif(choice: str | None) -> bool:
    from app.options import Defaults

    return Defaults().whatif if choice is None else choice == "on"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.cmd == "cpu":
        from .suite import SECTIONS

        unknown = sorted(set(a.sections) - set(SECTIONS))
        if unknown:
            parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    command = "python -m bench " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    if a.cmd == "cpu":
        import torch

        from .suite import print_cpu, run_cpu

        if a.threads:
            torch.set_num_threads(a.threads)
        out = Path(a.out) if a.out else RESULTS / f"cpu{'-quick' if a.quick else ''}.json"
        d = _run_and_print(lambda: run_cpu(out, quick=a.quick, sections=a.sections, command=command), print_cpu, out)
        if d is None:
            return 124
        return 1 if d["errors"] else 0
    if a.cmd == "gpu":
        import dataclasses

        from .suite import FULL_GPU, QUICK_GPU, print_gpu, run_gpu

        plan = dataclasses.replace(QUICK_GPU if a.quick else FULL_GPU, peak_tflops=a.peak_tflops)
        if a.no_compile:
            plan = dataclasses.replace(plan, compile_batch=None)
        out = Path(a.out) if a.out else RESULTS / f"gpu{'-quick' if a.quick else ''}.json"
        d = _run_and_print(lambda: run_gpu(out, quick=a.quick, plan=plan, command=command, device=a.device),
                           print_gpu, out)
        if d is None:
            return 124
        checks_ok = all(v.get("pass", True) for k, v in d["sections"].items() if k.startswith("check_"))
        return 1 if (d["errors"] or not checks_ok) else 0
    if a.cmd == "space":
        from .space import DEFAULT_OUT, SECTIONS, print_space, run_space

        unknown = sorted(set(a.sections) - set(SECTIONS))
        if unknown:
            parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
        out = Path(a.out) if a.out else DEFAULT_OUT
        md = (Path(a.markdown) if Path(a.markdown).is_absolute() else ROOT / a.markdown) if a.markdown else None
        whatif = _whatif(a.whatif)
        d = _run_and_print(lambda: run_space(out, a.sections, a.steps, whatif, command, md), print_space, out)
        if d is None:
            return 124
        return 1 if d["errors"] else 0
    if a.cmd == "check":
        from .check import check, format_check
        from .common import machine, write_json

        amp = {"on": True, "off": False, "auto": None}[a.amp]
        r = check(a.device, a.arch, batch=a.batch, steps=a.steps, amp=amp)
        print(format_check(r))
        if a.out:
            write_json(Path(a.out), {"schema": 1, "suite": "check", "command": command, "machine": machine(),
                                     "check": r})
        else:
            print(json.dumps({"pass": r["pass"]}))
        return 0 if r["pass"] else 1
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
