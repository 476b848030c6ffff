"""Registry of methods. All share data, schedule and evaluation; they differ in loss margin and output weights.

``finetune``, ``bma``, ``ema`` and ``wiseft`` share one trajectory (lam = 0), as do ``mms`` and ``clipood``
(lam > 0): a run can track every average at once (``RunConfig.track``), so a full comparison costs two runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    margin: bool  # trains with MMS (lam > 0) instead of plain CE
    result: str  # which weights are the method's output: zeroshot | last | bma | ema | wiseft
    trains: bool = True


METHODS: dict[str, Method] = {}


def register_method(m: Method) -> Method:
    if m.name in METHODS:
        raise ValueError(f"method {m.name!r} already registered")
    METHODS[m.name] = m
    return m


for _m in (
    Method("zeroshot", "the pre-trained CLIP with a text-prompt classifier; no training", False, "zeroshot", False),
    Method("finetune", "cross-entropy over CLIP logits, last weights", False, "last"),
    Method("mms", "margin metric softmax only, last weights", True, "last"),
    Method("bma", "cross-entropy + Beta moving average of weights", False, "bma"),
    Method("clipood", "CLIPood: margin metric softmax + Beta moving average", True, "bma"),
    Method("wiseft", "fine-tune, then alpha * theta_ft + (1 - alpha) * theta_0", False, "wiseft"),
    Method("ema", "cross-entropy + exponential moving average of weights", False, "ema"),
):
    register_method(_m)

AVERAGES = ("bma", "ema", "wiseft")

