"""The learning-rate schedule, written out again: linear warm-up, then half a cosine to 0."""

import math

import pytest

from core.schedule import cosine_lr


@pytest.mark.parametrize("total,warmup", [(10, 0), (10, 3), (100, 10), (1, 0)])
def test_cosine_lr_formula(total, warmup):
    for step in range(total):
        if step < warmup:
            ref = 0.1 * (step + 1) / warmup
        else:
            ref = 0.05 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        assert cosine_lr(0.1, step, total, warmup) == pytest.approx(ref, rel=1e-12, abs=1e-15), step


def test_cosine_lr_shape():
    lrs = [cosine_lr(1.0, s, 20, 5) for s in range(20)]
    assert lrs[:5] == sorted(lrs[:5]) and lrs[4] == 1.0 == lrs[5]
    assert lrs[5:] == sorted(lrs[5:], reverse=True) and 0 < lrs[-1] < 0.05
    assert cosine_lr(1.0, 25, 20, 5) == 0.0 and cosine_lr(1.0, 0, 20) == 1.0
    assert cosine_lr(1.0, 1, 20) < 1.0, "no warm-up unless asked for"
    assert cosine_lr(1.0, 1, 1) == 0.0, "a step past the end of a one-step run gets lr 0"
