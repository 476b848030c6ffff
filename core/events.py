"""Typed events of a training run: the one stream the CLI, the app and the tests all consume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class Event:
    kind = "event"

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass
class StartEvent(Event):
    run_dir: str | None
    config: dict
    total_steps: int
    start_step: int
    splits: dict[str, int]  # split name -> number of images
    classes: list[str]
    device: str
    logit_scale: float
    kind = "start"


@dataclass
class StepEvent(Event):
    step: int  # optimiser steps done
    total_steps: int
    loss: float | None
    lr: float
    bma_weight: float | None  # this step's normalised share of the final Beta average
    images_per_s: float
    elapsed_s: float
    eta_s: float
    kind = "step"


@dataclass
class EvalEvent(Event):
    step: int
    accuracy: dict[str, dict[str, float]]  # model name (zeroshot, current, bma, ema, wiseft, ...) -> split -> %
    full: bool  # False for intermediate evaluations on a fixed subsample
    kind = "eval"


@dataclass
class CheckpointEvent(Event):
    step: int
    path: str
    kind = "checkpoint"


@dataclass
class FinishEvent(Event):
    status: str  # done | cancelled | failed
    reason: str  # ``code`` and ``detail`` in neutral words (core/reasons.py); front ends word them their own way
    summary: dict = field(default_factory=dict)
    code: str = ""  # core/reasons.py: finished, stopped, time_limit, nan_loss, out_of_memory, ...
    detail: dict = field(default_factory=dict)
    kind = "finish"

