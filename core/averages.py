"""The weight averages a run keeps: which ones (from its method and ``track``), and the collection the loop updates.

A spec is ``kind`` or ``kind:value`` (``bma``, ``ema:0.9``, ``wiseft:0.25``, ``bma:0.1``); a bare kind takes the run's
own ``beta`` / ``ema_decay`` / ``wiseft_alpha``. The spec's name is what events, summaries and checkpoints use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from .clipood import BetaMovingAverage, ExponentialMovingAverage, WiseFT
from .methods import AVERAGES, METHODS


@dataclass(frozen=True)
class AverageSpec:
    name: str  # as events and checkpoints name it: the kind, or kind:value when the value is not the run's own
    kind: str  # bma | ema | wiseft
    value: float  # Beta parameter, EMA decay or WiSE-FT alpha


def default_value(kind: str, config: Mapping) -> float:
    """The run's own parameter of an average kind (``config``: a run config as a dict)."""
    return {"bma": config["beta"], "ema": config["ema_decay"], "wiseft": config["wiseft_alpha"]}[kind]


def parse_spec(spec: str, config: Mapping) -> AverageSpec:
    """``bma`` -> (bma, the run's beta); ``wiseft:0.25`` -> (wiseft, 0.25); a value equal to the run's own keeps the
    bare name."""
    kind, _, arg = str(spec).partition(":")
    if kind not in AVERAGES:
        raise ValueError(f"unknown average {spec!r} (known: {', '.join(AVERAGES)})")
    default = float(default_value(kind, config))
    value = float(arg) if arg else default
    return AverageSpec(kind if not arg or value == default else f"{kind}:{arg}", kind, value)


def average_specs(config: Mapping) -> list[AverageSpec]:
    """Every average a resolved run keeps, its method's own first, then ``track`` (duplicates once)."""
    result = METHODS[config["method"]].result
    names = [result] if result in AVERAGES else []
    names += [t for t in config["track"] if t not in names]
    out: list[AverageSpec] = []
    for name in names:
        spec = parse_spec(name, config)
        if spec.name not in [o.name for o in out]:
            out.append(spec)
    return out


def make_average(spec: AverageSpec, model: torch.nn.Module, theta_0: dict, total_steps: int):
    if spec.kind == "bma":
        return BetaMovingAverage(model, total_steps, spec.value)
    if spec.kind == "ema":
        return ExponentialMovingAverage(model, spec.value)
    return WiseFT(theta_0, spec.value)


class Averages(Mapping):
    """Name -> average (BMA, EMA or WiSE-FT, each answering ``update`` and ``averaged``), in the run's order."""

    def __init__(self, items: Mapping | None = None):
        self._items = dict(items or {})

    @classmethod
    def for_run(cls, config: Mapping, model: torch.nn.Module, theta_0: dict, total_steps: int) -> Averages:
        return cls({s.name: make_average(s, model, theta_0, total_steps) for s in average_specs(config)})

    def __getitem__(self, name: str):
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def update(self, model: torch.nn.Module) -> float | None:
        """Fold the model's weights into every average; returns the run's BMA share of this step (None without
        one)."""
        share = None
        for name, average in self._items.items():
            w = average.update(model)
            if name == "bma":
                share = w
        return share

    def checkpointed(self) -> dict:
        """The averages whose state a checkpoint holds (WiSE-FT has none)."""
        return {n: a for n, a in self._items.items() if a.checkpointed}

    def module(self, name: str, current: torch.nn.Module, scratch: torch.nn.Module) -> torch.nn.Module:
        """A module holding average ``name``: its own copy, or ``scratch`` loaded with its weights."""
        average = self._items[name]
        if average.checkpointed:
            return average.module
        scratch.load_state_dict(average.averaged(current.state_dict()))
        return scratch
