"""Timing, machine description and result files shared by every benchmark.

Every figure is a median over repeats after warm-up; comparisons are *paired*: the contenders run in alternating
blocks in one process (the order rotates each repeat), and a ratio is the median of the per-repeat ratios, so slow
drift of a shared machine hits both sides alike.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCHEMA_VERSION = 1


def sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def spread(xs: list[float]) -> float:
    """(max - min) / median: how noisy the repeats were."""
    if len(xs) < 2:
        return 0.0
    m = median(xs)
    return float((max(xs) - min(xs)) / m) if m else float("nan")


def time_calls(fn: Callable[[], object], calls: int, warmup: int, repeats: int, device=None) -> list[float]:
    """Seconds per call of ``fn``, one figure per repeat (each the mean of ``calls`` calls), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        out.append((time.perf_counter() - t0) / calls)
    return out


def paired(runners: dict[str, Callable[[], object]], calls: int, warmup: int, repeats: int,
           device=None) -> dict[str, list[float]]:
    """Seconds per call of each runner, measured in alternating blocks of ``calls`` calls (order rotated each
    repeat) after ``warmup`` calls each. Returns name -> per-repeat seconds per call."""
    names = list(runners)
    for n in names:
        for _ in range(warmup):
            runners[n]()
        sync(device)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(calls):
                runners[n]()
            sync(device)
            out[n].append((time.perf_counter() - t0) / calls)
    return out


def paired_ratio(slow: list[float], fast: list[float]) -> float:
    """Median over repeats of ``slow[i] / fast[i]`` (how many times faster ``fast`` is)."""
    return median([a / b for a, b in zip(slow, fast) if b > 0])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """What ran the benchmark: enough to tell a quiet machine from a shared one."""
    import numpy as np

    m = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "mem_total_gb": mem_total_gb(),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cuda": None,
    }
    try:
        import open_clip

        m["open_clip"] = open_clip.__version__
    except Exception:  # noqa: BLE001 - informational only
        pass
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        m["cuda"] = {"name": torch.cuda.get_device_name(0), "capability": list(torch.cuda.get_device_capability(0)),
                     "memory_gb": round(p.total_memory / 1024 ** 3, 1), "cuda_version": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version(), "count": torch.cuda.device_count()}
    return m


def matmul_gflops(n: int = 512, calls: int = 50, repeats: int = 5) -> float:
    """This machine's speed right now: fp32 GFLOP/s of an n x n matmul on torch's threads, median of ``repeats``.
    A shared VM's speed drifts by tens of percent within an hour; a benchmark records this before and after so that
    its wall times can be compared with another run's."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    ts = time_calls(lambda: a @ b, calls=calls, warmup=3, repeats=repeats)
    return round(2 * n ** 3 / median(ts) / 1e9, 1)  # (time_calls gives seconds per call)


def peak_rss_mb_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def clean(x):
    """JSON-safe copy: NaN/inf become None, tuples lists, floats rounded to 6 significant digits."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, float):
        return float(f"{x:.6g}") if math.isfinite(x) else None
    return x


def write_json(path: Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(clean(data), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """Plain-text table; ``cols`` = (key, header, format spec) and a missing value prints as '-'."""
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        line = []
        for k, _, f in cols:
            v = r.get(k)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                line.append("-")
            elif f:
                line.append(format(v, f))
            else:
                line.append(str(v))
        cells.append(line)
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    out = []
    for j, c in enumerate(cells):
        out.append("  ".join(s.ljust(w[i]) if i == 0 else s.rjust(w[i]) for i, s in enumerate(c)))
        if j == 0:
            out.append("  ".join("-" * x for x in w))
    return "\n".join(out)


class Stopwatch:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0
