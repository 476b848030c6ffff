"""The work of a run in floating-point operations, counted on the run itself, and the least time a machine needs for it.

``run_gflop`` runs a config under torch's ``FlopCounterMode`` and splits what it counts by the event each operation
led to: a ``step`` event ends a training step (forward, backward), an ``eval`` event an evaluation pass. A wall-time
target can only be met if the machine can do that work in the time: :func:`floor_s` divides it by the machine's
measured fp32 matmul rate (``bench.common.matmul_gflops``, one large, well-shaped matmul). A run of the config that
beat the floor would have to compute faster than that; its own small matmuls, norms, optimiser and Python only add
time. Counting slows the run down: its wall time here is not a timing.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.flop_counter import FlopCounterMode

PHASES = {"step": "training", "eval": "evaluation"}


def run_gflop(cfg, run_dir: Path) -> dict[str, float]:
    """GFLOP of one run of ``cfg`` (in ``run_dir``) by phase: training, evaluation, other (start-up, checkpoints)."""
    from core.engine import train

    counter = FlopCounterMode(display=False)
    by = {"training": 0.0, "evaluation": 0.0, "other": 0.0}
    counted = 0
    with counter:
        for event in train(cfg, run_dir):
            total = counter.get_total_flops()
            by[PHASES.get(event.kind, "other")] += (total - counted) / 1e9
            counted = total
    return by


def floor_s(gflop: float, gflops_rate: float) -> float:
    """The least seconds a machine computing ``gflops_rate`` GFLOP/s needs for ``gflop`` GFLOP of work."""
    return gflop / gflops_rate
