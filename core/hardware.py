"""What this machine's CPU offers the engine, read from Linux's ``/proc/cpuinfo``: bf16 matrix units (x86
AVX512-BF16 or AMX-BF16, ARM BF16). Elsewhere (no such file) the answer is "no", and ``precision="bf16"`` still
forces bf16 autocast by hand."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 "flags"; aarch64 "Features"


def bf16_units(cpuinfo: str) -> bool:
    """Whether the first ``flags``/``Features`` line of a ``/proc/cpuinfo`` text names a bf16 matrix unit."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return not BF16_FLAGS.isdisjoint(value.split())
    return False


@lru_cache(maxsize=1)
def cpu_bf16_units() -> bool:
    """This machine's answer (read once per process)."""
    try:
        return bf16_units(CPUINFO.read_text())
    except OSError:
        return False


# libgomp (torch's OpenMP on Linux) gives every thread that starts parallel work its own team of workers. A served
# app has several (gradio's main thread, the worker thread a run streams on), and once a process holds more OpenMP
# threads than CPUs libgomp cuts the workers' spin-wait from 300,000 to 1,000 iterations, so between two small ops
# they sleep and every op waits for a futex wake-up: on 2 cores a Studio run's steps took 60 ms on gradio's worker
# thread against 38 ms on the main thread (a scratch A/B; `python -m bench space` measures the served run). ACTIVE
# with an explicit spin count keeps the usual 300,000 in that case too (idle workers still go to sleep after it;
# ACTIVE alone would spin for ever and halve the run's speed).
SERVED_OPENMP_ENV = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}


def spin_openmp_workers(environ=os.environ) -> bool:
    """Set :data:`SERVED_OPENMP_ENV` (values already in the environment win) for a process that runs torch on
    several threads, the app's. Only takes effect before torch is imported: returns whether it still could."""
    for key, value in SERVED_OPENMP_ENV.items():
        environ.setdefault(key, value)
    return "torch" not in sys.modules
