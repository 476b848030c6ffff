"""Learning-rate schedules (the paper: cosine without warm-up, stepped per iteration)."""

from __future__ import annotations

import math


def cosine_lr(base_lr: float, step: int, total: int, warmup: int = 0) -> float:
    """LR for optimiser step ``step`` (0-based) of ``total``: linear warm-up, then cosine to 0 over the rest."""
    if warmup and step < warmup:
        return base_lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
