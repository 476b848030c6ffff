"""What this machine's CPU offers the engine, read from Linux's ``/proc/cpuinfo``: bf16 matrix units (x86
AVX512-BF16 or AMX-BF16, ARM BF16). Elsewhere (no such file) the answer is "no", and ``precision="bf16"`` still
forces bf16 autocast by hand."""

from __future__ import annotations

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
